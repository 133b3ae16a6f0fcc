package machine

import (
	"strings"
	"testing"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/memory"
)

// The memory map is data: a PC's RAM and hole, KVM's private pages and the
// devices' MMIO windows (the low test window carved out of the hole), and
// a loader's claims on top.
func TestMemoryMap(t *testing.T) {
	m := &Machine{}
	mm, err := memoryMap(64<<20, m.pcDevices())
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
			_, err := memoryMap(64<<20, devs)
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
	extra := Device{Name: "two-spans", Ports: []Span{{0x510, 2}, {0x2000, 24}}, MMIO: []Span{{0xfe000000, 0x1000}}, IRQ: 0,
		New: func(e DeviceEnv) (memory.Device, error) {
			built++
			env = e
			return devices.NewTestWindow(0, 0x1000), nil
		}}
	if err := m.addDevices(append(m.pcDevices(), extra), nil); err != nil {
		t.Fatal(err)
	}
	if built != 1 || env.Stop == nil || env.IRQ != nil {
		t.Errorf("built %d times, env %+v", built, env)
	}
	for _, port := range []uint64{0x510, 0x2017, devices.COM1Port, devices.DebugExitPort} {
		if _, ok := m.PIO.Lookup(port); !ok {
			t.Errorf("port %#x unmapped", port)
		}
	}
	if name, ok := m.MMIO.Lookup(0xfe000010); !ok || name != "two-spans" {
		t.Errorf("MMIO %q %v", name, ok)
	}
	if m.UART == nil || m.Report == nil || m.WindowHigh == nil || m.WindowLow == nil || len(m.Devices) != 6 {
		t.Errorf("machine's devices not kept: %d", len(m.Devices))
	}
	bad := &Machine{}
	err := bad.addDevices([]Device{{Name: "x", IRQ: 24, New: extra.New}}, nil)
	if err == nil || !strings.Contains(err.Error(), "IRQ 24") {
		t.Errorf("IRQ 24: %v", err)
	}
}
