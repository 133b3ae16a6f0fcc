package memory

import (
	"errors"
	"testing"
)

func TestNewRAMSizes(t *testing.T) {
	for _, size := range []uint64{0, 4096, MinRAM - 4096, MinRAM + 1, MaxRAM + 4096} {
		if r, err := NewRAM(size); err == nil {
			r.Close()
			t.Errorf("NewRAM(%d) accepted a bad size", size)
		}
	}
	r, err := NewRAM(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := r.Size(), uint64(16<<20-(HoleEnd-HoleStart)); got != want {
		t.Errorf("Size() = %#x, want %#x (hole excluded)", got, want)
	}
}

func TestRAMBounds(t *testing.T) {
	r, err := NewRAM(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	end := uint64(4 << 20)
	for _, c := range []struct {
		name string
		gpa  uint64
		n    uint64
		ok   bool
	}{
		{"first byte", 0, 1, true},
		{"last byte below the hole", HoleStart - 1, 1, true},
		{"dword straddling the hole start", HoleStart - 2, 4, false},
		{"inside the hole", 0xB8000, 2, false},
		{"last byte of the hole", HoleEnd - 1, 1, false},
		{"straddling the hole end", HoleEnd - 1, 2, false},
		{"first byte above the hole", HoleEnd, 1, true},
		{"last qword", end - 8, 8, true},
		{"past the end", end - 4, 8, false},
		{"far past the end", 1 << 40, 1, false},
		{"wrapping length", 0x1000, ^uint64(0), false},
		{"top of the address space", ^uint64(0), 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Slice(c.gpa, c.n)
			if (err == nil) != c.ok {
				t.Fatalf("Slice(%#x, %d) err = %v, want ok=%v", c.gpa, c.n, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("error %v does not match ErrOutOfRange", err)
			}
		})
	}
	if err := r.WriteUint64(0x2000, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	if v, err := r.ReadUint32(0x2004); err != nil || v != 0x11223344 {
		t.Fatalf("ReadUint32 = %#x, %v", v, err)
	}
	if _, err := r.ReadUint64(end - 4); err == nil {
		t.Fatal("ReadUint64 past the end succeeded")
	}
	if err := r.Write(HoleStart-1, []byte{1, 2}); err == nil {
		t.Fatal("Write into the hole succeeded")
	}
}

type recorder struct {
	last uint64
	n    int
}

func (d *recorder) Read(off uint64, data []byte) error  { d.last = off; d.n = len(data); return nil }
func (d *recorder) Write(off uint64, data []byte) error { d.last = off; d.n = len(data); return nil }

func TestBusRegisterOverlap(t *testing.T) {
	b := NewBus("mmio")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Register("a", 0x1000, 0x100, &recorder{}))
	must(b.Register("b", 0x1100, 0x100, &recorder{}))
	for _, c := range []struct {
		name       string
		base, size uint64
	}{
		{"same range", 0x1000, 0x100},
		{"overlaps the end of a", 0x10ff, 2},
		{"covers both", 0x0, 0x10000},
		{"inside b", 0x1180, 1},
		{"empty", 0x5000, 0},
		{"wraps", ^uint64(0) - 1, 4},
	} {
		if err := b.Register(c.name, c.base, c.size, &recorder{}); err == nil {
			t.Errorf("%s: Register(%#x, %#x) accepted", c.name, c.base, c.size)
		}
	}
}

func TestBusRouting(t *testing.T) {
	b := NewBus("pio")
	a, c := &recorder{}, &recorder{}
	if err := b.Register("a", 0x3f8, 8, a); err != nil {
		t.Fatal(err)
	}
	if err := b.Register("c", 0xf4, 1, c); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if err := b.Read(0x3fd, buf[:1]); err != nil || a.last != 5 || a.n != 1 {
		t.Fatalf("read 0x3fd: err %v, off %d n %d", err, a.last, a.n)
	}
	if err := b.Write(0xf4, buf[:1]); err != nil || c.last != 0 {
		t.Fatalf("write 0xf4: %v", err)
	}
	for _, bad := range []struct {
		addr uint64
		n    int
	}{{0x3fe, 4}, {0x3f7, 2}, {0x100, 1}, {0xf5, 1}} {
		err := b.Read(bad.addr, buf[:bad.n])
		if !errors.Is(err, ErrNoDevice) {
			t.Errorf("read %#x/%d: err = %v, want ErrNoDevice", bad.addr, bad.n, err)
		}
	}
	if name, ok := b.Lookup(0x3ff); !ok || name != "a" {
		t.Errorf("Lookup(0x3ff) = %q, %v", name, ok)
	}
}

// Serve is the PC bus: all ones and dropped writes where nothing is mapped,
// the device's access elsewhere, without allocating.
func TestBusServe(t *testing.T) {
	b := NewBus("pio")
	d := &recorder{}
	if err := b.Register("d", 0x3f8, 8, d); err != nil {
		t.Fatal(err)
	}
	buf := []byte{1, 2, 3, 4}
	if mapped, err := b.Serve(0x100, buf, false); mapped || err != nil || string(buf) != "\xff\xff\xff\xff" {
		t.Errorf("unassigned read: mapped %v err %v data % x", mapped, err, buf)
	}
	if mapped, err := b.Serve(0x3fe, buf, true); mapped || err != nil || d.n != 0 {
		t.Errorf("write across the device's end: mapped %v err %v, device saw %d", mapped, err, d.n)
	}
	if mapped, err := b.Serve(0x3fa, buf[:2], true); !mapped || err != nil || d.last != 2 || d.n != 2 {
		t.Errorf("mapped write: mapped %v err %v off %d n %d", mapped, err, d.last, d.n)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = b.Serve(0x100, buf, false) }); a != 0 {
		t.Errorf("an unassigned access allocates %v times", a)
	}
}

func BenchmarkBusRead(b *testing.B) {
	bus := NewBus("mmio")
	for i := uint64(0); i < 8; i++ {
		if err := bus.Register("d", 0x1000*i, 0x100, &recorder{}); err != nil {
			b.Fatal(err)
		}
	}
	var buf [8]byte
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Read(0x5010, buf[:4]); err != nil {
			b.Fatal(err)
		}
	}
}

// A device registered after lookups (which sorts it in among the others
// and may move them) is found, and so are the others.
func TestBusRegisterAfterLookups(t *testing.T) {
	b := NewBus("mmio")
	devs := map[uint64]*recorder{}
	for _, base := range []uint64{0x100, 0x10, 0x200, 0x50, 0x180} {
		devs[base] = &recorder{}
		if err := b.Register("r", base, 0x10, devs[base]); err != nil {
			t.Fatal(err)
		}
		for want := range devs {
			for _, addr := range []uint64{want, want + 0xf} {
				if e := b.find(addr, 1); e == nil || e.dev != devs[want] {
					t.Fatalf("after registering %#x: find(%#x) = %v, want the device at %#x", base, addr, e, want)
				}
			}
		}
	}
}

// find agrees with a linear scan of the ranges for every address and
// size around 17 ranges with gaps between some of them.
func TestBusFindMatchesScan(t *testing.T) {
	b := NewBus("pio")
	type rng struct{ base, size uint64 }
	var rs []rng
	base := uint64(3)
	for i := range 17 {
		size := uint64(1 + i%4)
		rs = append(rs, rng{base, size})
		if err := b.Register("r", base, size, &recorder{}); err != nil {
			t.Fatal(err)
		}
		base += size + uint64(i%3) // back to back, or a gap of 1 or 2
	}
	for addr := uint64(0); addr < base+3; addr++ {
		for n := 1; n <= 4; n++ {
			want := -1
			for i, r := range rs {
				if addr >= r.base && addr+uint64(n) <= r.base+r.size {
					want = i
				}
			}
			e := b.find(addr, n)
			ok := e != nil
			switch {
			case ok != (want >= 0):
				t.Errorf("find(%#x, %d) found %v, want entry %d", addr, n, ok, want)
			case ok && e.base != rs[want].base:
				t.Errorf("find(%#x, %d) = the range at %#x, want the one at %#x", addr, n, e.base, rs[want].base)
			}
		}
	}
}
