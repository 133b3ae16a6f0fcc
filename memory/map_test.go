package memory

import (
	"strings"
	"testing"
)

func TestMapAddAndClaim(t *testing.T) {
	m, err := PCMap(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PCMap(4<<20 + 1); err == nil {
		t.Errorf("a size that is not a multiple of 4 KiB was accepted")
	}
	// A window carved out of the hole splits it in two.
	if err := m.Add(Range{Name: "win", Start: 0xd0000, Size: 0x10000, Kind: KindMMIO}); err != nil {
		t.Fatal(err)
	}
	if r, ok := m.Find(0xc0000); !ok || r.Kind != KindHole || r.End() != 0xd0000 {
		t.Errorf("below the window: %+v", r)
	}
	if r, ok := m.Find(0xe0000); !ok || r.Kind != KindHole || r.Start != 0xe0000 || r.End() != HoleEnd {
		t.Errorf("above the window: %+v", r)
	}
	for _, c := range []struct {
		r    Range
		want string
	}{
		{Range{Name: "a", Start: 0xd8000, Size: 0x1000, Kind: KindMMIO}, "overlaps win"},
		{Range{Name: "b", Start: 0x1000, Size: 0x1000, Kind: KindMMIO}, "overlaps low RAM"},
		{Range{Name: "c", Start: 0xa0000, Size: 0x1000, Kind: KindReserved}, "overlaps the PC hole"},
		{Range{Name: "d", Start: 0x1000, Size: 0, Kind: KindMMIO}, "empty"},
	} {
		if err := m.Add(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%v): %v, want %q", c.r, err, c.want)
		}
	}
	if !m.IsRAM(0x9f000, 0x1000) || m.IsRAM(0x9f000, 0x2000) || !m.IsRAM(HoleEnd, 1<<20) || m.IsRAM(4<<20-8, 16) {
		t.Errorf("IsRAM wrong")
	}
	if err := m.Claim("gdt", 0x500, 0x30); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		start, size uint64
		want        string
	}{
		{0x520, 0x100, "overlaps gdt"},
		{0x9f800, 0x1000, "overlaps the PC hole"},
		{4<<20 - 8, 16, "does not fit in guest RAM (3 MiB)"},
		{^uint64(0) - 4, 16, "wraps"},
	} {
		if err := m.Claim("image", c.start, c.size); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Claim(%#x+%#x): %v, want %q", c.start, c.size, err, c.want)
		}
	}
	if len(m.Claims()) != 1 || len(m.RAM()) != 2 {
		t.Errorf("claims %v, RAM %v", m.Claims(), m.RAM())
	}
}

// RAM from a map has exactly the map's RAM ranges as regions.
func TestNewRAMFromMap(t *testing.T) {
	m, err := PCMap(MinRAM)
	if err != nil {
		t.Fatal(err)
	}
	ram, err := NewRAMFromMap(m)
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	if ram.Size() != MinRAM-(HoleEnd-HoleStart) || ram.Contains(HoleStart, 1) || !ram.Contains(HoleEnd, 1) {
		t.Errorf("size %d", ram.Size())
	}
	if _, err := NewRAMFromMap(&Map{}); err == nil {
		t.Errorf("a map without RAM gave RAM")
	}
}

// The kernels' map backs the first MiB: RAM to the EBDA, firmware memory
// to 1 MiB (a window carved out of it), one memslot-sized piece of guest
// memory across the boundaries; claims may go into firmware memory.
func TestFirmwareMap(t *testing.T) {
	m, err := FirmwareMap(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add(Range{Name: "win", Start: 0xd0000, Size: 0x10000, Kind: KindMMIO}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr uint64
		kind Kind
	}{
		{0x9fbff, KindRAM}, {EBDA, KindFirmware}, {0xa0000, KindFirmware}, {0xcffff, KindFirmware},
		{0xd0000, KindMMIO}, {0xe0000, KindFirmware}, {0xfffff, KindFirmware}, {HoleEnd, KindRAM},
	} {
		if r, ok := m.Find(c.addr); !ok || r.Kind != c.kind {
			t.Errorf("%#x: %v %v, want %v", c.addr, r, ok, c.kind)
		}
	}
	want := []Range{
		{Name: "guest memory", Start: 0, Size: 0xd0000, Kind: KindRAM},
		{Name: "guest memory", Start: 0xe0000, Size: 8<<20 - 0xe0000, Kind: KindRAM},
	}
	if got := m.Backed(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("backed %v, want %v", got, want)
	}
	if !m.IsRAM(0x9e000, 0x1000) || m.IsRAM(0x9f000, 0x1000) || m.IsRAM(0x9fc00, 1) || !m.IsBacked(0x9f000, 0x2000) || m.IsBacked(0xcf000, 0x2000) {
		t.Errorf("IsRAM/IsBacked wrong")
	}
	c := m.Clone()
	if err := m.Claim("tables", 0xe0000, 0x100); err != nil {
		t.Fatal(err)
	}
	if err := m.Claim("more", 0xcff00, 0x200); err == nil || !strings.Contains(err.Error(), "overlaps win") {
		t.Errorf("claim across the window: %v", err)
	}
	if len(c.Claims()) != 0 || len(m.Claims()) != 1 {
		t.Errorf("the clone changed with the map: %v", c.Claims())
	}
	ram, err := NewRAMFromMap(m)
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	if !ram.Contains(0x9fb00, 0x200) || !ram.Contains(0xf0000, 0x10000) || ram.Contains(0xd0000, 1) {
		t.Errorf("RAM regions %v", ram.Regions())
	}
}

// Flush keeps the page's contents and refuses what is not a page of RAM.
func TestFlush(t *testing.T) {
	r, err := NewRAM(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WriteUint64(0x200008, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(0x200000); err != nil {
		t.Fatal(err)
	}
	if v, err := r.ReadUint64(0x200008); err != nil || v != 0x1122334455667788 {
		t.Errorf("after the flush: %#x %v", v, err)
	}
	if err := r.WriteUint64(0x200010, 1); err != nil {
		t.Errorf("the page is not writable after the flush: %v", err)
	}
	for _, gpa := range []uint64{0x200004, HoleStart, 4 << 20} {
		if err := r.Flush(gpa); err == nil {
			t.Errorf("Flush(%#x) accepted", gpa)
		}
	}
}
