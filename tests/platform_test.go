package tests

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"walkvm/boot"
	"walkvm/internal/kvmtest"
	"walkvm/machine"
	"walkvm/memory"
	"walkvm/vcpu"
)

// checkMultiboot: a multiboot guest ran on a kernel's machine (the first
// MiB backed, the firmware tables written, the in-kernel irqchip) and made
// no MMIO exits of its own.
func checkMultiboot(t *testing.T, r *guestRun) {
	if !r.m.IRQChip() || !r.m.Needs.Firmware {
		t.Errorf("machine: irqchip %v, needs %+v; want a kernel's machine", r.m.IRQChip(), r.m.Needs)
	}
	if rg, ok := r.m.Map.Find(0xe0000); !ok || rg.Kind != memory.KindFirmware {
		t.Errorf("0xe0000 is %v, want firmware memory", rg)
	}
	wrote := map[string]bool{}
	for _, w := range r.m.Entry.Written {
		wrote[w.Name] = true
	}
	if !wrote["ACPI tables"] || !wrote["multiboot information"] || !wrote["MP table"] {
		t.Errorf("written %v: want the ACPI tables, the MP table and the multiboot information", r.m.Entry.Written)
	}
	if len(r.exits) != 0 {
		t.Errorf("%d MMIO exits, want none: %+v", len(r.exits), r.exits)
	}
}

// mbHalt is a multiboot image (a.out kludge, loaded at 0x100000) whose
// code is `cli; hlt; jmp .-1`: with the in-kernel irqchip its HLT never
// exits to walkvm, so only the timeout ends the run.
func mbHalt() []byte {
	le := binary.LittleEndian
	const load = 0x100000
	flags := uint32(1 << 16)
	var b []byte
	for _, v := range []uint32{0x1BADB002, flags, -(0x1BADB002 + flags), load, load, 0, 0, load + 32} {
		b = le.AppendUint32(b, v)
	}
	return append(b, 0xfa, 0xf4, 0xeb, 0xfd)
}

// A timeout says what each vCPU was doing when the run was stopped.
func TestTimeoutSaysMPStates(t *testing.T) {
	kvmtest.Require(t)
	for _, c := range []struct {
		vcpus int
		want  string
	}{
		{1, "vCPU 0 halted"},
		{2, "vCPU 0 halted, vCPU 1 waiting for INIT/SIPI"},
	} {
		ch, err := boot.Select(mbHalt(), boot.Options{Name: "halt"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := machine.New(machine.Config{MemSize: 16 << 20, Loader: ch.Loader, VCPUs: c.vcpus})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		end := m.Run(300 * time.Millisecond)
		m.Close()
		if end.Kind != vcpu.EndTimeout || end.ExitStatus() != vcpu.StatusTimeout || end.Err == nil || !strings.Contains(end.Err.Error(), c.want) {
			t.Errorf("%d vCPUs: ended %v (%v), want a timeout saying %q", c.vcpus, end.Kind, end.Err, c.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%d vCPUs: the run took %v to stop", c.vcpus, d)
		}
	}
}

// checkSMP: four vCPUs ran, each made its own MMIO exits through the own
// path (all agreed with KVM), and the window holds every vCPU's results.
func checkSMP(t *testing.T, r *guestRun) {
	const n, rounds = 4, 64
	if len(r.m.CPUs) != n || !r.m.IRQChip() || len(r.own.Paths) != n {
		t.Fatalf("%d vCPUs, %d paths, irqchip %v; want %d and the irqchip", len(r.m.CPUs), len(r.own.Paths), r.m.IRQChip(), n)
	}
	for i, p := range r.own.Paths {
		st := p.Stats()
		// Its own slot: a write, a read, an increment (read and write) and
		// a compare per word; the others': a compare per word.
		if want := uint64(rounds*3 + (n-1)*rounds); st.MMIO.Reads != want || st.MMIO.Writes != 2*rounds {
			t.Errorf("vCPU %d: %d MMIO reads, %d writes; want %d and %d", i, st.MMIO.Reads, st.MMIO.Writes, want, 2*rounds)
		}
		if st.MMIO.Agreed != st.MMIO.Reads+st.MMIO.Writes || st.MMIO.Disagreed != 0 {
			t.Errorf("vCPU %d: %d agreed, %d disagreed", i, st.MMIO.Agreed, st.MMIO.Disagreed)
		}
	}
	win := r.m.WindowHigh.Bytes()
	for id := range n {
		for k := range rounds {
			got := binary.LittleEndian.Uint32(win[id*0x100+4*k:])
			if want := uint32(id<<24 | k<<8 | 0x5b); got != want {
				t.Fatalf("vCPU %d's word %d: %#x, want %#x", id, k, got, want)
			}
		}
	}
	reads, writes := r.m.WindowHigh.Counts()
	if reads+writes != uint64(n*(rounds*5+(n-1)*rounds)) {
		t.Errorf("window saw %d reads and %d writes", reads, writes)
	}
}

// checkPCDev: the guest's pass went through QEMU's form of the debug exit
// (status 1), and pc-testdev saw the flush of the guest's page.
func checkPCDev(t *testing.T, r *guestRun) {
	if r.res.Kind != vcpu.EndDebugExit || r.res.Status != 1 || r.res.ExitStatus() != 1 {
		t.Errorf("ended %v with status %d; want the QEMU-form debug exit of 0: status 1", r.res.Kind, r.res.ExitStatus())
	}
	if v := r.m.PCTestDev.Scratch(); v != 0x12ab5678 {
		t.Errorf("pc-testdev scratch %#x", v)
	}
	if n, gpa := r.m.PCTestDev.Flushes(); n != 1 || gpa != 0x40000 {
		t.Errorf("flushes %d, last %#x; want one of 0x40000", n, gpa)
	}
	if !r.m.IRQChip() {
		t.Errorf("no irqchip")
	}
}
