package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// ErrMisaligned says an atomic access was not naturally aligned.
var ErrMisaligned = errors.New("atomic access not naturally aligned")

// aligned reports whether b starts at a host address that is a multiple of n.
func aligned(b []byte, n uintptr) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))%n == 0
}

// LoadUint32 reads the little-endian dword at the start of b (at least 4
// bytes), atomically when b is 4-byte aligned: an aligned read is one access
// on x86 (SDM Vol. 3A §9.1.1), and a concurrent compare-and-swap by another
// vCPU is then seen whole or not at all.
func LoadUint32(b []byte) uint32 {
	if len(b) >= 4 && aligned(b, 4) {
		return le32(atomic.LoadUint32((*uint32)(unsafe.Pointer(unsafe.SliceData(b)))))
	}
	return binary.LittleEndian.Uint32(b)
}

// LoadUint64 reads the little-endian qword at the start of b (at least 8
// bytes), atomically when b is 8-byte aligned.
func LoadUint64(b []byte) uint64 {
	if len(b) >= 8 && aligned(b, 8) {
		return le64(atomic.LoadUint64((*uint64)(unsafe.Pointer(unsafe.SliceData(b)))))
	}
	return binary.LittleEndian.Uint64(b)
}

// StoreUint32 writes v little-endian at the start of b (at least 4 bytes),
// atomically when b is 4-byte aligned.
func StoreUint32(b []byte, v uint32) {
	if len(b) >= 4 && aligned(b, 4) {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(unsafe.SliceData(b))), le32(v))
		return
	}
	binary.LittleEndian.PutUint32(b, v)
}

// StoreUint64 writes v little-endian at the start of b (at least 8 bytes),
// atomically when b is 8-byte aligned.
func StoreUint64(b []byte, v uint64) {
	if len(b) >= 8 && aligned(b, 8) {
		atomic.StoreUint64((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), le64(v))
		return
	}
	binary.LittleEndian.PutUint64(b, v)
}

// CompareAndSwapUint32 atomically replaces the little-endian dword at the
// start of b with new if it holds old, and reports whether it did. b must
// be at least 4 bytes and 4-byte aligned in host memory; otherwise the
// result is an error wrapping ErrMisaligned.
func CompareAndSwapUint32(b []byte, old, new uint32) (bool, error) {
	if len(b) < 4 || !aligned(b, 4) {
		return false, ErrMisaligned
	}
	return atomic.CompareAndSwapUint32((*uint32)(unsafe.Pointer(unsafe.SliceData(b))), le32(old), le32(new)), nil
}

// CompareAndSwapUint64 is CompareAndSwapUint32 for a qword: b must be at
// least 8 bytes and 8-byte aligned.
func CompareAndSwapUint64(b []byte, old, new uint64) (bool, error) {
	if len(b) < 8 || !aligned(b, 8) {
		return false, ErrMisaligned
	}
	return atomic.CompareAndSwapUint64((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), le64(old), le64(new)), nil
}

// CompareAndSwapUint32 atomically replaces the dword at gpa with new if it
// holds old, and reports whether it did: how the page walker sets accessed
// and dirty flags in paging-structure entries that other vCPUs may be
// using (KVM's walker does the same with cmpxchg). gpa must be 4-byte
// aligned and the dword wholly in RAM; otherwise it is an error, never a
// panic.
func (r *RAM) CompareAndSwapUint32(gpa uint64, old, new uint32) (bool, error) {
	if gpa%4 != 0 {
		return false, fmt.Errorf("4-byte compare-and-swap at GPA %#x: %w", gpa, ErrMisaligned)
	}
	s, err := r.Slice(gpa, 4)
	if err != nil {
		return false, err
	}
	ok, err := CompareAndSwapUint32(s, old, new)
	if err != nil {
		return false, fmt.Errorf("4-byte compare-and-swap at GPA %#x (host mapping): %w", gpa, err)
	}
	return ok, nil
}

// CompareAndSwapUint64 is CompareAndSwapUint32 for the qword at gpa, which
// must be 8-byte aligned.
func (r *RAM) CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error) {
	if gpa%8 != 0 {
		return false, fmt.Errorf("8-byte compare-and-swap at GPA %#x: %w", gpa, ErrMisaligned)
	}
	s, err := r.Slice(gpa, 8)
	if err != nil {
		return false, err
	}
	ok, err := CompareAndSwapUint64(s, old, new)
	if err != nil {
		return false, fmt.Errorf("8-byte compare-and-swap at GPA %#x (host mapping): %w", gpa, err)
	}
	return ok, nil
}

// Word is a naturally aligned 4- or 8-byte word of guest RAM, kept to be
// read again and again (the paging-structure entries a verified exit site
// re-reads at every exit): RAM.Word checks its bounds and alignment once,
// so Load checks nothing. The zero Word is not a word; only RAM.Word makes
// one.
type Word struct {
	q *uint64 // an 8-byte word, or
	d *uint32 // a 4-byte word
}

// Word returns the size-byte word (4 or 8) at gpa, which must be
// size-aligned and wholly in RAM.
func (r *RAM) Word(gpa uint64, size int) (Word, error) {
	if size != 4 && size != 8 {
		return Word{}, fmt.Errorf("%d-byte word at GPA %#x: want 4 or 8 bytes", size, gpa)
	}
	if gpa%uint64(size) != 0 {
		return Word{}, fmt.Errorf("%d-byte word at GPA %#x: %w", size, gpa, ErrMisaligned)
	}
	b, err := r.Slice(gpa, uint64(size))
	if err != nil {
		return Word{}, err
	}
	if !aligned(b, uintptr(size)) {
		return Word{}, fmt.Errorf("%d-byte word at GPA %#x (host mapping): %w", size, gpa, ErrMisaligned)
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	if size == 8 {
		return Word{q: (*uint64)(p)}, nil
	}
	return Word{d: (*uint32)(p)}, nil
}

// Load reads the word, little-endian and atomically: an aligned read is
// one access on x86 (SDM Vol. 3A §9.1.1).
func (w Word) Load() uint64 {
	if w.q != nil {
		return le64(atomic.LoadUint64(w.q))
	}
	return uint64(le32(atomic.LoadUint32(w.d)))
}
