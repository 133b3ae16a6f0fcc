package loader

import (
	"reflect"
	"strings"
	"testing"

	"walkvm/memory"
)

// pc is walkvm's machine for kernels with size bytes of RAM.
func pc(t testing.TB, size uint64) *memory.Map {
	mm, err := memory.FirmwareMap(size)
	if err != nil {
		t.Fatal(err)
	}
	return mm
}

func TestMemoryMap(t *testing.T) {
	for _, c := range []struct {
		name   string
		ranges func(t *testing.T) *memory.Map
		want   []MapEntry
	}{
		{
			name:   "walkvm 128M",
			ranges: func(t *testing.T) *memory.Map { return pc(t, 128<<20) },
			want: []MapEntry{
				{0, EBDA, MapRAM},
				{EBDA, BIOSEnd - EBDA, MapReserved},
				{BIOSEnd, 127 << 20, MapRAM},
			},
		},
		{
			name: "flat machine: the hole is reserved all the same",
			ranges: func(t *testing.T) *memory.Map {
				mm, err := memory.PCMap(4 << 20)
				if err != nil {
					t.Fatal(err)
				}
				return mm
			},
			want: []MapEntry{
				{0, EBDA, MapRAM},
				{EBDA, BIOSEnd - EBDA, MapReserved},
				{BIOSEnd, 3 << 20, MapRAM},
			},
		},
		{
			name: "windows left out, reserved ranges reserved",
			ranges: func(t *testing.T) *memory.Map {
				mm := pc(t, 3<<30)
				for _, r := range []memory.Range{
					{Name: "window", Start: 0xd0000, Size: 0x10000, Kind: memory.KindMMIO},
					{Name: "ioapic", Start: 0xfec00000, Size: 0x1000, Kind: memory.KindMMIO},
					{Name: "kvm", Start: 0xfeffc000, Size: 0x4000, Kind: memory.KindReserved},
					{Name: "high", Start: Below4G, Size: 1 << 30, Kind: memory.KindRAM},
				} {
					if err := mm.Add(r); err != nil {
						t.Fatal(err)
					}
				}
				return mm
			},
			want: []MapEntry{
				{0, EBDA, MapRAM},
				{EBDA, BIOSEnd - EBDA, MapReserved},
				{BIOSEnd, 3<<30 - BIOSEnd, MapRAM},
				{0xfeffc000, 0x4000, MapReserved},
				{Below4G, 1 << 30, MapRAM},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := MemoryMap(c.ranges(t)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("map\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestLowerUpper(t *testing.T) {
	for _, c := range []struct {
		size         uint64
		lower, upper uint32
	}{
		{2 << 20, 639, 1024},
		{128 << 20, 639, 127 * 1024},
		{3 << 30, 639, 3*1024*1024 - 1024},
	} {
		m := MemoryMap(pc(t, c.size))
		l, u := LowerUpper(m)
		if l != c.lower || u != c.upper {
			t.Errorf("%d MiB: lower %d upper %d, want %d %d", c.size>>20, l, u, c.lower, c.upper)
		}
		if top := RAMTop(m, Below4G); top != c.size {
			t.Errorf("%d MiB: RAM top %#x", c.size>>20, top)
		}
	}
}

func TestPlacer(t *testing.T) {
	mm := pc(t, 16<<20)
	if err := mm.Claim("firmware table", 0xf0000, 0x100); err != nil {
		t.Fatal(err)
	}
	p := NewPlacer(mm)
	if err := p.Claim("image", 0x400000, 0x10000); err != nil {
		t.Fatal(err)
	}
	p.Avoid("guest code", 0x8000, 0x6000)
	steps := []struct {
		name        string
		size, align uint64
		lo, hi      uint64
		top         bool
		want        uint64
		err         string
	}{
		{"top of base memory", 0x1000, 0x1000, 0, EBDA, true, 0x9e000, ""},
		{"next one in the space left above", 0x100, 16, 0, EBDA, true, 0x9fb00, ""},
		{"bottom skips the avoided area", 0x3000, 0x1000, 0x7000, EBDA, false, 0xe000, ""},
		{"bottom below the avoided area", 0x1000, 0x1000, 0x7000, EBDA, false, 0x7000, ""},
		{"high, top of RAM", 0x200000, 0x1000, BIOSEnd, Below4G, true, 16<<20 - 0x200000, ""},
		{"above the image", 0x1000, 0x1000, 0x400000, Below4G, false, 0x410000, ""},
		{"too big", 32 << 20, 0x1000, 0, Below4G, true, 0, "no room"},
		{"bad align", 16, 3, 0, Below4G, true, 0, "aligned"},
		{"the BIOS area is not usable RAM", 0x1000, 0x1000, 0xa0000, BIOSEnd, true, 0, "no room"},
	}
	for _, s := range steps {
		got, err := p.Place(s.name, s.size, s.align, s.lo, s.hi, s.top)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Errorf("%s: err = %v, want %q", s.name, err, s.err)
			}
			continue
		}
		if err != nil || got != s.want {
			t.Errorf("%s: got %#x, %v; want %#x", s.name, got, err, s.want)
		}
	}
	for _, c := range []struct {
		name       string
		base, size uint64
		err        string
	}{
		{"overlaps the image", 0x40f000, 0x2000, "overlaps image"},
		{"overlaps an avoided area", 0x9000, 0x10, "overlaps guest code"},
		{"overlaps the map's claim", 0xf0080, 0x10, "overlaps firmware table"},
		{"past RAM", 16<<20 - 8, 16, "not in guest RAM"},
		{"wraps", ^uint64(0) - 4, 16, "wraps"},
	} {
		if err := p.Claim(c.name, c.base, c.size); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
		}
	}
	got := p.Claimed()
	for i := 1; i < len(got); i++ {
		if got[i].Base < got[i-1].End() {
			t.Fatalf("claimed ranges overlap: %v", got)
		}
	}
}

// FuzzPlacer: whatever is asked, every range placed or claimed lies in
// guest memory (placed ones in usable RAM) and none overlaps another or an
// avoided area.
func FuzzPlacer(f *testing.F) {
	f.Add(uint64(0x1000), uint64(0x1000), uint64(0), uint64(EBDA), true, uint64(0x9000), uint64(0x100))
	f.Add(uint64(0x12345), uint64(0x10), uint64(0x100000), uint64(Below4G), false, uint64(0x3fff00), uint64(0x1000))
	f.Fuzz(func(t *testing.T, size, align, lo, hi uint64, top bool, cbase, csize uint64) {
		mm := pc(t, 8<<20)
		p := NewPlacer(mm)
		p.Avoid("avoided", 0x8000, 0x6000)
		_ = p.Claim("claimed", cbase, csize)
		for i := 0; i < 4; i++ {
			_, _ = p.Place("placed", size>>uint(i), 1<<(align%16), lo, hi, top != (i%2 == 1))
		}
		m := MemoryMap(mm)
		got := p.Claimed()
		for i, r := range got {
			if r.End() < r.Base || !p.Backed(r.Base, r.Size) {
				t.Fatalf("%v is not in guest memory", r)
			}
			if r.What == "placed" {
				in := false
				for _, e := range m {
					in = in || (e.Type == MapRAM && r.Base >= e.Addr && r.End() <= e.End())
				}
				if !in {
					t.Fatalf("%v is not in usable RAM", r)
				}
			}
			if r.Base < 0xe000 && r.End() > 0x8000 {
				t.Fatalf("%v overlaps the avoided area", r)
			}
			if i > 0 && r.Base < got[i-1].End() {
				t.Fatalf("%v overlaps %v", r, got[i-1])
			}
		}
	})
}

func TestBlock(t *testing.T) {
	var b Block
	a := b.Add(3, 1)
	s := b.String("hi")
	c := b.Add(8, 8)
	if a != 0 || s != 3 || c != 8 || b.Size() != 16 {
		t.Fatalf("offsets %d %d %d size %d", a, s, c, b.Size())
	}
	if got := string(b.Bytes()); got != "\x00\x00\x00hi\x00\x00\x00"+strings.Repeat("\x00", 8) {
		t.Fatalf("bytes %q", got)
	}
}
