package mmu

import (
	"errors"
	"fmt"

	"walkvm/memory"
)

// Memory is how the walker reads paging-structure entries from guest
// physical memory and sets accessed/dirty flags in them. Addresses are
// guest-physical; values are little-endian. An address that is not guest RAM
// (MMIO, a hole, beyond the end) is an error, never a panic.
//
// Several vCPUs may walk and update the same paging structures at once, as
// CPUs do: an aligned read returns a whole entry, never half of one another
// vCPU is updating, and accessed/dirty flags are set with a
// compare-and-exchange that reports, without writing, an entry that no longer
// holds old. memory.RAM implements it.
type Memory interface {
	ReadUint32(gpa uint64) (uint32, error)
	ReadUint64(gpa uint64) (uint64, error)
	// CompareAndSwapUint32 and CompareAndSwapUint64 atomically store new at
	// gpa if it holds old, and report whether they did. gpa must be
	// naturally aligned (paging-structure entries always are); a
	// misaligned one is an error.
	CompareAndSwapUint32(gpa uint64, old, new uint32) (swapped bool, err error)
	CompareAndSwapUint64(gpa uint64, old, new uint64) (swapped bool, err error)
}

// ErrNotRAM is what SliceMemory wraps when an access falls outside it.
var ErrNotRAM = errors.New("not guest RAM")

// SliceMemory is guest RAM as one byte slice starting at guest-physical
// address Base. It is meant for tests and tools; use it through a pointer so
// that converting it to Memory does not allocate.
type SliceMemory struct {
	Base uint64
	Data []byte
}

// NewSliceMemory returns size bytes of zeroed RAM at guest-physical base.
func NewSliceMemory(base uint64, size int) *SliceMemory {
	return &SliceMemory{Base: base, Data: make([]byte, size)}
}

// in reports whether the n bytes at gpa lie inside m, and their offset.
func (m *SliceMemory) in(gpa uint64, n uint64) (uint64, bool) {
	off := gpa - m.Base
	return off, gpa >= m.Base && off <= uint64(len(m.Data)) && uint64(len(m.Data))-off >= n
}

func (m *SliceMemory) rangeError(gpa uint64, n uint64) error {
	return fmt.Errorf("%d bytes at gpa %#x: %w", n, gpa, ErrNotRAM)
}

// ReadUint32 reads 4 bytes at gpa, atomically when aligned.
func (m *SliceMemory) ReadUint32(gpa uint64) (uint32, error) {
	if off, ok := m.in(gpa, 4); ok {
		return memory.LoadUint32(m.Data[off:]), nil
	}
	return 0, m.rangeError(gpa, 4)
}

// ReadUint64 reads 8 bytes at gpa, atomically when aligned.
func (m *SliceMemory) ReadUint64(gpa uint64) (uint64, error) {
	if off, ok := m.in(gpa, 8); ok {
		return memory.LoadUint64(m.Data[off:]), nil
	}
	return 0, m.rangeError(gpa, 8)
}

// WriteUint32 writes 4 bytes at gpa, atomically when aligned.
func (m *SliceMemory) WriteUint32(gpa uint64, v uint32) error {
	if off, ok := m.in(gpa, 4); ok {
		memory.StoreUint32(m.Data[off:], v)
		return nil
	}
	return m.rangeError(gpa, 4)
}

// WriteUint64 writes 8 bytes at gpa, atomically when aligned.
func (m *SliceMemory) WriteUint64(gpa uint64, v uint64) error {
	if off, ok := m.in(gpa, 8); ok {
		memory.StoreUint64(m.Data[off:], v)
		return nil
	}
	return m.rangeError(gpa, 8)
}

// CompareAndSwapUint32 atomically stores new at gpa if it holds old.
func (m *SliceMemory) CompareAndSwapUint32(gpa uint64, old, new uint32) (bool, error) {
	off, ok := m.in(gpa, 4)
	if !ok {
		return false, m.rangeError(gpa, 4)
	}
	if gpa%4 != 0 {
		return false, fmt.Errorf("4-byte compare-and-swap at gpa %#x: %w", gpa, memory.ErrMisaligned)
	}
	swapped, err := memory.CompareAndSwapUint32(m.Data[off:], old, new)
	if err != nil {
		return false, fmt.Errorf("4-byte compare-and-swap at gpa %#x (host slice): %w", gpa, err)
	}
	return swapped, nil
}

// CompareAndSwapUint64 atomically stores new at gpa if it holds old.
func (m *SliceMemory) CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error) {
	off, ok := m.in(gpa, 8)
	if !ok {
		return false, m.rangeError(gpa, 8)
	}
	if gpa%8 != 0 {
		return false, fmt.Errorf("8-byte compare-and-swap at gpa %#x: %w", gpa, memory.ErrMisaligned)
	}
	swapped, err := memory.CompareAndSwapUint64(m.Data[off:], old, new)
	if err != nil {
		return false, fmt.Errorf("8-byte compare-and-swap at gpa %#x (host slice): %w", gpa, err)
	}
	return swapped, nil
}

// MemoryError says that a paging-structure entry could not be read (or its
// accessed/dirty flags written) because its address is not guest RAM. It is
// walkvm's failure to translate, not an architectural fault: hardware would
// have read whatever the bus returned. Err is the Memory's error.
type MemoryError struct {
	Walker   WalkerKind
	Level    uint8  // level of the entry (1 = PTE)
	EntryGPA uint64 // address of the entry
	Addr     uint64 // linear (or, for EPT, guest-physical) address walked
	Write    bool   // the failure was writing accessed/dirty flags
	Err      error
}

func (e *MemoryError) Error() string {
	op := "reading"
	if e.Write {
		op = "updating A/D of"
	}
	return fmt.Sprintf("mmu: %s: %s level-%d entry at gpa %#x (walking %#x): %v",
		e.Walker, op, e.Level, e.EntryGPA, e.Addr, e.Err)
}

func (e *MemoryError) Unwrap() error { return e.Err }
