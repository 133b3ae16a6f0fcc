package machine

import (
	"errors"
	"strings"
	"testing"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
)

// The memory map is data: a PC's RAM and hole, KVM's private pages and the
// devices' MMIO windows (the low test window carved out of the hole), and
// a loader's claims on top.
func TestMemoryMap(t *testing.T) {
	m := &Machine{}
	mm, err := memoryMap(64<<20, false, false, m.pcDevices())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr uint64
		name string
		kind memory.Kind
	}{
		{0x1000, "low RAM", memory.KindRAM},
		{0xa0000, "the PC hole", memory.KindHole},
		{devices.TestWindowLow + 0x10, "testwindow-low", memory.KindMMIO},
		{0xf0000, "the PC hole", memory.KindHole},
		{0x200000, "RAM", memory.KindRAM},
		{devices.TestWindowHigh, "testwindow-high", memory.KindMMIO},
		{TSSAddr, kvmPrivate.Name, memory.KindReserved},
	} {
		r, ok := mm.Find(c.addr)
		if !ok || r.Name != c.name || r.Kind != c.kind {
			t.Errorf("%#x: %+v %v, want %s (%v)", c.addr, r, ok, c.name, c.kind)
		}
	}
	if _, ok := mm.Find(0x10000000); ok {
		t.Errorf("0x10000000 is mapped in a 64 MiB machine")
	}
	if err := boot.Flat(boot.Image{Data: make([]byte, 16), Load: 0x1000, Mode: boot.Long}).Plan(mm); err != nil {
		t.Fatal(err)
	}
	if c := mm.Claims(); len(c) != 3 || c[0].Name != "walkvm's GDT" {
		t.Errorf("claims %v", c)
	}
}

// A device's window may not overlap RAM, another window or KVM's pages.
func TestMemoryMapRejectsOverlaps(t *testing.T) {
	m := &Machine{}
	for _, c := range []struct {
		name string
		span Span
		want string
	}{
		{"over RAM", Span{0x100000, 0x1000}, "overlaps RAM"},
		{"over a window", Span{devices.TestWindowHigh + 0x8000, 0x10000}, "overlaps testwindow-high"},
		{"over KVM's pages", Span{TSSAddr, 0x1000}, "overlaps KVM's"},
	} {
		t.Run(c.name, func(t *testing.T) {
			devs := append(m.pcDevices(), Device{Name: "new", MMIO: []Span{c.span}})
			_, err := memoryMap(64<<20, false, false, devs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// The device list builds each device once and maps it at every span,
// handing it the run's Stopper.
func TestAddDevices(t *testing.T) {
	m := &Machine{}
	built := 0
	var env DeviceEnv
	extra := Device{Name: "two-spans", Ports: []Span{{0x1510, 2}, {0x3000, 24}}, MMIO: []Span{{0xfe000000, 0x1000}},
		New: func(e DeviceEnv) (memory.Device, error) {
			built++
			env = e
			return devices.NewTestWindow(0, 0x1000), nil
		}}
	if err := m.addDevices(append(m.pcDevices(), extra), nil); err != nil {
		t.Fatal(err)
	}
	if built != 1 || env.Stop == nil || env.IRQs != nil || env.SetIRQ != nil {
		t.Errorf("built %d times, env %+v", built, env)
	}
	for _, port := range []uint64{0x1510, 0x3017, devices.COM1Port, devices.DebugExitPort} {
		if _, ok := m.PIO.Lookup(port); !ok {
			t.Errorf("port %#x unmapped", port)
		}
	}
	if name, ok := m.MMIO.Lookup(0xfe000010); !ok || name != "two-spans" {
		t.Errorf("MMIO %q %v", name, ok)
	}
	if m.UART == nil || m.Report == nil || m.WindowHigh == nil || m.WindowLow == nil || m.PCTestDev == nil || len(m.Devices) != len(m.pcDevices())+1 {
		t.Errorf("machine's devices not kept: %d", len(m.Devices))
	}
	bad := &Machine{}
	err := bad.addDevices([]Device{{Name: "x", IRQs: []int{24}, New: extra.New}}, nil)
	if err == nil || !strings.Contains(err.Error(), "IRQ 24") {
		t.Errorf("IRQ 24: %v", err)
	}
}

// A kernel's machine backs the first MiB around the low test window and
// keeps the irqchip's pages free of memslots.
func TestKernelMemoryMap(t *testing.T) {
	m := &Machine{}
	mm, err := memoryMap(128<<20, true, true, m.pcDevices())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr uint64
		kind memory.Kind
	}{
		{0x9fbff, memory.KindRAM},
		{0x9fc00, memory.KindFirmware},
		{0xa0000, memory.KindFirmware},
		{devices.TestWindowLow, memory.KindMMIO},
		{0xe0000, memory.KindFirmware},
		{0x100000, memory.KindRAM},
		{0xfec00000, memory.KindReserved},
		{0xfee00000, memory.KindReserved},
		{devices.TestWindowHigh, memory.KindMMIO},
	} {
		if r, ok := mm.Find(c.addr); !ok || r.Kind != c.kind {
			t.Errorf("%#x: %v %v, want %v", c.addr, r, ok, c.kind)
		}
	}
	for _, r := range mm.Backed() {
		if r.End() > 0xfec00000 {
			t.Errorf("guest memory %v reaches the interrupt controllers' pages", r)
		}
	}
	// A Linux kernel scans the option-ROM area: the low window is left
	// out and the first MiB is the firmware's.
	linux := &Machine{Needs: boot.Needs{Firmware: true, IRQChip: true, ROMScan: true}}
	mm, err = memoryMap(128<<20, true, true, linux.pcDevices())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := mm.Find(devices.TestWindowLow); !ok || r.Kind != memory.KindFirmware {
		t.Errorf("%#x for a Linux kernel: %v %v, want firmware memory", devices.TestWindowLow, r, ok)
	}
	if r, ok := mm.Find(devices.TestWindowHigh); !ok || r.Kind != memory.KindMMIO {
		t.Errorf("%#x for a Linux kernel: %v %v, want the high window", devices.TestWindowHigh, r, ok)
	}
}

func TestWantIRQChip(t *testing.T) {
	for _, c := range []struct {
		mode  IRQChipMode
		needs bool
		n     int
		want  bool
		err   string
	}{
		{IRQChipAuto, false, 1, false, ""},
		{IRQChipAuto, true, 1, true, ""},
		{IRQChipAuto, false, 4, true, ""},
		{IRQChipOn, false, 1, true, ""},
		{IRQChipOff, true, 1, false, ""},
		{IRQChipOff, false, 2, false, "2 vCPUs need the in-kernel irqchip"},
	} {
		got, err := wantIRQChip(c.mode, c.needs, c.n)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v needs=%v n=%d: err %v, want %q", c.mode, c.needs, c.n, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v needs=%v n=%d: %v %v, want %v", c.mode, c.needs, c.n, got, err, c.want)
		}
	}
	for _, s := range []string{"auto", "on", "off"} {
		if m, err := ParseIRQChip(s); err != nil || m.String() != s {
			t.Errorf("ParseIRQChip(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseIRQChip("yes"); err == nil {
		t.Errorf("ParseIRQChip(yes) accepted")
	}
}

func TestDescribeMPStates(t *testing.T) {
	got := DescribeMPStates([]MPState{{State: kvm.MPHalted}, {State: kvm.MPUninitialized}, {State: kvm.MPRunnable}, {Err: errors.New("EBADF")}})
	want := "vCPU 0 halted, vCPU 1 waiting for INIT/SIPI, vCPU 2 runnable, vCPU 3 state unknown (EBADF)"
	if got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestAPICBase(t *testing.T) {
	if got := APICBase(0); got != 0xfee00900 {
		t.Errorf("BSP %#x", got)
	}
	if got := APICBase(3); got != 0xfee00800 {
		t.Errorf("AP %#x", got)
	}
}

// The PICs are left as a BIOS leaves them: vector base, initialised, 8086
// mode, lines open; what ICW1 keeps (the ELCR and its mask) is kept.
func TestBIOSPIC(t *testing.T) {
	for _, c := range []struct {
		name string
		in   kvm.PICState
		base uint8
	}{
		{"as KVM creates the master", kvm.PICState{ELCRMask: 0xf8}, BIOSPICMasterBase},
		{"as KVM creates the slave", kvm.PICState{ELCRMask: 0xde}, BIOSPICSlaveBase},
		{"mid-initialisation, masked, in service", kvm.PICState{IRQBase: 0x20, InitState: 2, IMR: 0xff, ISR: 0x04, IRR: 0x01, AutoEOI: 1, ELCR: 0x08, ELCRMask: 0xf8}, BIOSPICMasterBase},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := biosPIC(c.in, c.base)
			want := kvm.PICState{IRQBase: c.base, Init4: 1, IRR: c.in.IRR, LastIRR: c.in.LastIRR, ELCR: c.in.ELCR, ELCRMask: c.in.ELCRMask}
			if got != want {
				t.Errorf("biosPIC(%+v, %#x) = %+v, want %+v", c.in, c.base, got, want)
			}
		})
	}
}
