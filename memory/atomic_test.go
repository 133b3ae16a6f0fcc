package memory

import (
	"errors"
	"testing"
	"unsafe"
)

func TestRAMCompareAndSwap(t *testing.T) {
	r, err := NewRAM(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WriteUint64(0x1000, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.CompareAndSwapUint64(0x1000, 1, 2); ok || err != nil {
		t.Errorf("CAS with a stale old value: %v %v", ok, err)
	}
	if ok, err := r.CompareAndSwapUint64(0x1000, 0x1122334455667788, 0x1122334455667789); !ok || err != nil {
		t.Errorf("CAS64: %v %v", ok, err)
	}
	b := make([]byte, 8)
	r.Read(0x1000, b)
	if b[0] != 0x89 || b[7] != 0x11 {
		t.Errorf("CAS64 stored % x, want little-endian", b)
	}
	if ok, err := r.CompareAndSwapUint32(0x1004, 0x11223344, 0xaabbccdd); !ok || err != nil {
		t.Errorf("CAS32: %v %v", ok, err)
	}
	if v, _ := r.ReadUint64(0x1000); v != 0xaabbccdd55667789 {
		t.Errorf("after CAS32: %#x", v)
	}
	for _, c := range []struct {
		name string
		gpa  uint64
		size int
		want error
	}{
		{"misaligned qword", 0x1004, 8, ErrMisaligned},
		{"misaligned dword", 0x1002, 4, ErrMisaligned},
		{"qword in the hole", HoleStart, 8, ErrOutOfRange},
		{"dword beyond RAM", 4 << 20, 4, ErrOutOfRange},
		{"qword at the top of the address space", ^uint64(7), 8, ErrOutOfRange},
	} {
		var err error
		if c.size == 8 {
			_, err = r.CompareAndSwapUint64(c.gpa, 0, 1)
		} else {
			_, err = r.CompareAndSwapUint32(c.gpa, 0, 1)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// A Word reads what is at its GPA now, at its own width, and RAM.Word
// refuses what Load could not read whole.
func TestRAMWord(t *testing.T) {
	const size = 4 << 20
	r, err := NewRAM(size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	q, err := r.Word(0x1000, 8)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Word(0x1004, 4)
	if err != nil {
		t.Fatal(err)
	}
	top, err := r.Word(size-4, 4) // the last dword of RAM
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint64{0, 0x1122334455667788, ^uint64(0)} {
		if err := r.WriteUint64(0x1000, v); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteUint32(size-4, uint32(v>>8)); err != nil {
			t.Fatal(err)
		}
		if got := q.Load(); got != v {
			t.Errorf("8-byte word holds %#x, want %#x", got, v)
		}
		if got := d.Load(); got != v>>32 {
			t.Errorf("4-byte word holds %#x, want %#x", got, v>>32)
		}
		if got := top.Load(); got != uint64(uint32(v>>8)) {
			t.Errorf("last dword holds %#x, want %#x", got, uint32(v>>8))
		}
	}
	for _, c := range []struct {
		name string
		gpa  uint64
		size int
		want error // nil: any error
	}{
		{"misaligned qword", 0x1004, 8, ErrMisaligned},
		{"misaligned dword", 0x1002, 4, ErrMisaligned},
		{"qword past the end", size - 4, 8, ErrMisaligned},
		{"qword beyond RAM", size, 8, ErrOutOfRange},
		{"qword in the hole", HoleStart, 8, ErrOutOfRange},
		{"qword at the top of the address space", ^uint64(7), 8, ErrOutOfRange},
		{"2-byte word", 0x1000, 2, nil},
	} {
		if _, err := r.Word(c.gpa, c.size); err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Host bytes misaligned (a test's odd slice): no word.
	buf := make([]byte, 64+8)
	off := 0
	for uintptr(unsafe.Pointer(&buf[off]))%8 != 1 {
		off++
	}
	if _, err := NewRAMFromSlice(buf[off:off+64]).Word(8, 8); !errors.Is(err, ErrMisaligned) {
		t.Errorf("a misaligned host word: %v", err)
	}
}

// RAM whose host bytes are misaligned (a test's odd slice) reads and writes
// as usual, but refuses an atomic compare-and-swap with an error.
func TestMisalignedHostRAM(t *testing.T) {
	buf := make([]byte, 64+8)
	off := 0
	for uintptr(unsafe.Pointer(&buf[off]))%8 != 1 {
		off++
	}
	r := NewRAMFromSlice(buf[off : off+64])
	if err := r.WriteUint64(8, 0x0102030405060708); err != nil {
		t.Fatal(err)
	}
	if v, err := r.ReadUint64(8); v != 0x0102030405060708 || err != nil {
		t.Errorf("ReadUint64 = %#x, %v", v, err)
	}
	if v, err := r.ReadUint32(12); v != 0x01020304 || err != nil {
		t.Errorf("ReadUint32 = %#x, %v", v, err)
	}
	if _, err := r.CompareAndSwapUint64(8, 0x0102030405060708, 0); !errors.Is(err, ErrMisaligned) {
		t.Errorf("CAS64 on a misaligned host word: %v", err)
	}
	if _, err := r.CompareAndSwapUint32(8, 0x05060708, 0); !errors.Is(err, ErrMisaligned) {
		t.Errorf("CAS32 on a misaligned host word: %v", err)
	}
}
