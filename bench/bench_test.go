package bench

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"walkvm/boot"
	"walkvm/kvm"
	"walkvm/memory"
)

// TestLayout pins the STATE layout to floor.c's structs.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(kvm.Regs{}), 144},
		{"kvm_sregs", unsafe.Sizeof(kvm.Sregs{}), 312},
		{"state header before the registers", uintptr(binary.Size(stateHeader{})), 48},
		{"state_slot", uintptr(binary.Size(stateSlot{})), 24},
		{"state_chunk", uintptr(binary.Size(stateChunk{})), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, floor.c has %d", c.name, c.got, c.want)
		}
	}
}

// readState parses a STATE file as floor.c does.
func readState(t *testing.T, b []byte) (stateHeader, kvm.Regs, kvm.Sregs, []stateSlot, []byte) {
	t.Helper()
	r := bytes.NewReader(b)
	var h stateHeader
	var regs kvm.Regs
	var sregs kvm.Sregs
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(binary.Read(r, binary.LittleEndian, &h))
	_, err := r.Read(structBytes(&regs))
	must(err)
	_, err = r.Read(structBytes(&sregs))
	must(err)
	slots := make([]stateSlot, h.NSlots)
	must(binary.Read(r, binary.LittleEndian, slots))
	mem := make([]byte, h.MemSize)
	for range h.NChunks {
		var c stateChunk
		must(binary.Read(r, binary.LittleEndian, &c))
		if c.Offset+c.Len > h.MemSize {
			t.Fatalf("chunk %#x+%#x outside %#x bytes of RAM", c.Offset, c.Len, h.MemSize)
		}
		_, err := r.Read(mem[c.Offset : c.Offset+c.Len])
		must(err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left over after the chunks", r.Len())
	}
	return h, regs, sregs, slots, mem
}

// TestStateMatchesBootLoad: the floor gets exactly the RAM, memslots and
// registers that walkvm's boot.Load gives walkvm.
func TestStateMatchesBootLoad(t *testing.T) {
	const memSize = 4 << 20
	for _, w := range Workloads {
		t.Run(w.Name, func(t *testing.T) {
			img, err := w.Image(1234)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteState(&b, memSize, img); err != nil {
				t.Fatal(err)
			}
			h, regs, sregs, slots, mem := readState(t, b.Bytes())
			if string(h.Magic[:]) != stateMagic || h.Version != stateVersion || h.MemSize != memSize {
				t.Fatalf("header %+v", h)
			}
			mm, err := memory.PCMap(memSize)
			if err != nil {
				t.Fatal(err)
			}
			ram, err := memory.NewRAMFromMap(mm)
			if err != nil {
				t.Fatal(err)
			}
			defer ram.Close()
			entry, err := boot.Load(ram, mm, boot.Flat(img))
			if err != nil {
				t.Fatal(err)
			}
			wantRegs, wantSregs := &entry.Regs, &entry.Sregs
			if regs != *wantRegs || sregs != *wantSregs {
				t.Errorf("registers differ from boot.Load's:\n%+v %+v\nwant %+v %+v", regs, sregs, *wantRegs, *wantSregs)
			}
			rgs := ram.Regions()
			if len(slots) != len(rgs) {
				t.Fatalf("%d slots, walkvm registers %d", len(slots), len(rgs))
			}
			for i, rg := range rgs {
				want := stateSlot{GPA: rg.GPA, Offset: rg.GPA, Size: uint64(len(rg.Host))}
				if slots[i] != want {
					t.Errorf("slot %d = %+v, want %+v", i, slots[i], want)
				}
				if !bytes.Equal(mem[rg.GPA:rg.End()], rg.Host) {
					t.Errorf("slot %d: RAM contents differ from boot.Load's", i)
				}
			}
			if got := binary.LittleEndian.Uint32(mem[Load+iterationsOffset:]); got != 1234 {
				t.Errorf("iterations in RAM = %d, want 1234", got)
			}
		})
	}
}

func TestWorkloadImage(t *testing.T) {
	for _, w := range Workloads {
		img, err := w.Image(7)
		if err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		if got := binary.LittleEndian.Uint32(img.Data[iterationsOffset:]); got != 7 {
			t.Errorf("%s: iterations %d, want 7", w.Name, got)
		}
		if binary.LittleEndian.Uint32(w.image[iterationsOffset:]) != 1 {
			t.Errorf("%s: Image changed the embedded guest", w.Name)
		}
		if _, err := w.Image(0); err == nil {
			t.Errorf("%s: Image(0) accepted", w.Name)
		}
	}
	bad := Workload{Name: "bad", image: []byte{0xeb, 0x0e, 0, 0, 1, 0, 0, 0, 'X'}}
	if _, err := bad.Image(1); err == nil {
		t.Error("an image without the header was accepted")
	}
	if _, err := LookupWorkload("nosuch"); err == nil {
		t.Error("LookupWorkload(nosuch) succeeded")
	}
}

func TestSummary(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Stat
	}{
		{nil, Stat{}},
		{[]float64{3}, Stat{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, Stat{3, 1, 5, 3}},
		{[]float64{4, 1, 3, 2}, Stat{2.5, 1, 4, 4}},
	} {
		if got := summary(c.in); got != c.want {
			t.Errorf("summary(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

// TestBuildFloor compiles the floor as the bench does.
func TestBuildFloor(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc to build the floor:", err)
	}
	bin, err := BuildFloor("gcc", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !bytes.Contains(out, []byte("usage: floor")) {
		t.Errorf("floor without arguments: %v, %q; want status 2 and its usage", err, out)
	}
}

// TestRunKUT runs a fake vmm that records its arguments.
func TestRunKUT(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	for _, c := range []struct {
		exit       int
		wantStatus int
		wantErr    bool
	}{{0, 0, false}, {1, 1, false}, {2, 0, true}} {
		vmm := filepath.Join(dir, "vmm")
		script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >%s\nexit %d\n", args, c.exit)
		if err := os.WriteFile(vmm, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		wall, status, err := runKUT(vmm, "/kut", "strict", dir)
		if (err != nil) != c.wantErr {
			t.Fatalf("exit %d: err %v", c.exit, err)
		}
		if err != nil {
			continue
		}
		if status != c.wantStatus || wall <= 0 {
			t.Errorf("exit %d: status %d, wall %v", c.exit, status, wall)
		}
		got, _ := os.ReadFile(args)
		if want := "unittests -verify strict -logs " + filepath.Join(dir, "kut-strict") + " /kut\n"; string(got) != want {
			t.Errorf("vmm got %q, want %q", got, want)
		}
	}
	r := summarizeKUT("/kut", []string{"off"}, map[string][]time.Duration{"off": {time.Second, 3 * time.Second}}, map[string][]int{"off": {0, 1}})
	if len(r.Rows) != 1 || r.Rows[0].WallS != (Stat{2, 1, 3, 2}) || len(r.Rows[0].Status) != 2 {
		t.Errorf("summarizeKUT: %+v", r)
	}
}

// TestSummarizeAndReport builds rows from made-up samples and prints them.
func TestSummarizeAndReport(t *testing.T) {
	variants := []Variant{{Name: "floor"}, {Name: "off", verify: "off", self: true}, {Name: "old/off", verify: "off"}}
	ms := time.Millisecond
	samples := [][]sample{
		{{wall: 100 * ms, loop: 80 * ms, inproc: true}, {wall: 120 * ms, loop: 90 * ms, inproc: true}},
		{{wall: 150 * ms, loop: 100 * ms, allocs: 4, inproc: true}, {wall: 180 * ms, loop: 99 * ms, allocs: 4, inproc: true}},
		{{wall: 300 * ms}, {wall: 240 * ms}},
	}
	mmio, _ := LookupWorkload("mmio")
	wr := summarize(mmio, 1000, variants, samples)
	if wr.Exits != 2001 || len(wr.Rows) != 3 {
		t.Fatalf("%+v", wr)
	}
	off := wr.Rows[1]
	if off.WallRatio != (Stat{1.5, 1.5, 1.5, 2}) || off.LoopRatio == nil || off.AllocsPerExit == nil || *off.AllocsPerExit != 4.0/2001 {
		t.Errorf("off row %+v", off)
	}
	if old := wr.Rows[2]; old.LoopExitNS != nil || old.AllocsPerExit != nil || old.WallRatio.Median != 2.5 {
		t.Errorf("another binary's row has in-process figures or a wrong ratio: %+v", old)
	}
	boot, _ := LookupWorkload("boot")
	br := summarize(boot, 1000, variants, samples)
	if br.Exits != 1 || br.Rows[1].ExitNS != nil || br.Rows[1].OverFloorMS.Median != 55 {
		t.Errorf("boot rows %+v", br.Rows[1])
	}
	res := &Result{Rounds: 2, Iterations: 1000, Variants: []string{"floor", "off", "old/off"}, Workloads: []WorkloadResult{wr, br},
		NotAvailable: []string{"qemu: not here"}, KUT: summarizeKUT("/kut", []string{"off"}, map[string][]time.Duration{"off": {time.Second}}, map[string][]int{"off": {0}})}
	var b bytes.Buffer
	if err := WriteText(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"not available: qemu: not here", "mmio:", "1.50 (1.50–1.50)", "boot:", "55.00 (50.00–60.00)", "kvm-unit-tests (/kut)"} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, b.Bytes())
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Error(err)
	}
}

// TestPVHELF reads the wrapper back with debug/elf.
func TestPVHELF(t *testing.T) {
	w, _ := LookupWorkload("mmio")
	img, err := w.Image(5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PVHELF(img.Data, img.Load)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Entry != Load || len(f.Progs) != 2 {
		t.Fatalf("entry %#x, %d program headers", f.Entry, len(f.Progs))
	}
	load, note := f.Progs[0], f.Progs[1]
	if load.Type != elf.PT_LOAD || load.Paddr != Load || load.Filesz != uint64(len(img.Data)) {
		t.Errorf("PT_LOAD %+v", load.ProgHeader)
	}
	data, _ := io.ReadAll(load.Open())
	if !bytes.Equal(data, img.Data) {
		t.Error("PT_LOAD does not hold the image")
	}
	n, _ := io.ReadAll(note.Open())
	if note.Type != elf.PT_NOTE || len(n) != 20 || string(n[12:16]) != "Xen\x00" ||
		binary.LittleEndian.Uint32(n[8:]) != 18 || binary.LittleEndian.Uint32(n[16:]) != Load {
		t.Errorf("PT_NOTE % x", n)
	}
	if _, err := PVHELF(img.Data, 0xfffffff0); err == nil {
		t.Error("an image crossing 4 GiB was wrapped")
	}
}

// TestQEMUTCG boots the PVH wrappers under QEMU's TCG, where no KVM is
// needed: the guests run to their debug exit.
func TestQEMUTCG(t *testing.T) {
	q, err := FindQEMU()
	if err != nil {
		t.Skip("needs QEMU:", err)
	}
	for _, w := range Workloads {
		if !qemuSupports(w) {
			continue
		}
		img, err := w.Image(100)
		if err != nil {
			t.Fatal(err)
		}
		b, err := PVHELF(img.Data, img.Load)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), w.Name+".elf")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Run(p, "tcg", time.Minute); err != nil {
			if strings.Contains(err.Error(), "could not load module for type 'tcg-accel-ops'") {
				// A copied QEMU binary (as in the nested KVM) without
				// its accelerator modules.
				t.Skipf("QEMU %s has no TCG here: %v", q.Path, err)
			}
			t.Errorf("%s: %v", w.Name, err)
		}
	}
	// A guest that exits with 5 is a failed run.
	bad := bytes.Clone(exitBin)
	if !bytes.Equal(bad[16:20], []byte{0x30, 0xc0, 0xe6, 0xf4}) {
		t.Fatalf("exit.bin at 16: % x, want xor %%al,%%al; out %%al,$0xf4", bad[16:20])
	}
	bad[16], bad[17] = 0xb0, 5 // mov $5,%al
	b, err := PVHELF(bad, Load)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bad.elf")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Run(p, "tcg", time.Minute); err == nil || !strings.Contains(err.Error(), "exit status 11") {
		t.Errorf("a guest exiting with 5: %v, want exit status 11", err)
	}
}

// TestPerExitLessBoot: the per-exit figure leaves out each variant's boot.
func TestPerExitLessBoot(t *testing.T) {
	ms := time.Millisecond
	variants := []Variant{{Name: "floor"}, {Name: "qemu"}}
	samples := [][]sample{
		{{wall: 100 * ms, boot: 20 * ms}},
		{{wall: 1120 * ms, boot: 1000 * ms}},
	}
	mmio, _ := LookupWorkload("mmio")
	wr := summarize(mmio, 1000, variants, samples) // 2001 exits
	floor, qemu := wr.Rows[0], wr.Rows[1]
	if floor.ExitNS.Median != 40000 || qemu.ExitNS.Median != 60000 || qemu.ExitRatio.Median != 1.5 {
		t.Errorf("floor %v ns/exit, qemu %v ns/exit, ratio %v; want 40000, 60000, 1.5", floor.ExitNS.Median, qemu.ExitNS.Median, qemu.ExitRatio.Median)
	}
	if qemu.WallRatio.Median != 11.2 {
		t.Errorf("process ratio %v, want 11.2", qemu.WallRatio.Median)
	}
}
