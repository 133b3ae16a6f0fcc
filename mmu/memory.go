package mmu

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Memory is how the walker reads paging-structure entries from guest
// physical memory and writes back accessed/dirty flags. Addresses are
// guest-physical; values are little-endian. An address that is not guest RAM
// (MMIO, a hole, beyond the end) is an error, never a panic.
type Memory interface {
	ReadUint32(gpa uint64) (uint32, error)
	ReadUint64(gpa uint64) (uint64, error)
	WriteUint32(gpa uint64, v uint32) error
	WriteUint64(gpa uint64, v uint64) error
}

// CASMemory is Memory that can change a paging-structure entry with an
// atomic compare-and-exchange (*memory.RAM is one). Another vCPU may write
// an entry while a walk sets its accessed and dirty flags; with CASMemory
// the walker sets them as KVM's does (update_accessed_dirty_bits: a locked
// CMPXCHG, and the walk again when the entry changed meanwhile). Without
// it the flags are written with plain writes (one vCPU, or tests).
type CASMemory interface {
	Memory
	CompareAndSwapUint32(gpa uint64, old, new uint32) (bool, error)
	CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error)
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

// ReadUint32 reads 4 bytes at gpa.
func (m *SliceMemory) ReadUint32(gpa uint64) (uint32, error) {
	if off, ok := m.in(gpa, 4); ok {
		return binary.LittleEndian.Uint32(m.Data[off:]), nil
	}
	return 0, m.rangeError(gpa, 4)
}

// ReadUint64 reads 8 bytes at gpa.
func (m *SliceMemory) ReadUint64(gpa uint64) (uint64, error) {
	if off, ok := m.in(gpa, 8); ok {
		return binary.LittleEndian.Uint64(m.Data[off:]), nil
	}
	return 0, m.rangeError(gpa, 8)
}

// WriteUint32 writes 4 bytes at gpa.
func (m *SliceMemory) WriteUint32(gpa uint64, v uint32) error {
	if off, ok := m.in(gpa, 4); ok {
		binary.LittleEndian.PutUint32(m.Data[off:], v)
		return nil
	}
	return m.rangeError(gpa, 4)
}

// WriteUint64 writes 8 bytes at gpa.
func (m *SliceMemory) WriteUint64(gpa uint64, v uint64) error {
	if off, ok := m.in(gpa, 8); ok {
		binary.LittleEndian.PutUint64(m.Data[off:], v)
		return nil
	}
	return m.rangeError(gpa, 8)
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
