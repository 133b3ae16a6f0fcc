// Package memory is walkvm's guest-physical address space: the memory map
// as data (RAM, reserved space, MMIO windows, and what a loader claims),
// guest RAM (anonymous host memory registered with KVM as memslots) with
// bounds-checked access at a GPA, and the MMIO and port-I/O buses that
// route the rest of the space to device models.
//
// Code that reads guest memory never maps or manages it: every access is
// checked against the RAM regions and fails with an error, never a panic or
// an access outside guest RAM.
package memory

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrOutOfRange says a GPA range is not wholly inside guest RAM.
var ErrOutOfRange = errors.New("not in guest RAM")

// RangeError is an access to [GPA, GPA+Len) that is not wholly guest RAM.
type RangeError struct {
	GPA uint64
	Len uint64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("GPA %#x (+%d bytes) is not in guest RAM", e.GPA, e.Len)
}

// Unwrap lets callers match ErrOutOfRange.
func (e *RangeError) Unwrap() error { return ErrOutOfRange }

// Region is one contiguous piece of guest RAM.
type Region struct {
	GPA  uint64
	Host []byte // the host mapping of exactly this region
}

// End is the first GPA after the region.
func (r Region) End() uint64 { return r.GPA + uint64(len(r.Host)) }

// RAM is guest memory: one host mapping, GPA == offset, with what is not
// guest memory in the memory map (holes, MMIO windows, reserved ranges)
// left out of the regions.
type RAM struct {
	mapping []byte // the host mapping, as mmap returned it
	regions []Region
}

// hugePage is the size of a transparent huge page and of KVM's large
// (nested) page-table entries.
const hugePage = 2 << 20

// NewRAM maps size bytes of guest RAM laid out as a PC's (PCMap).
func NewRAM(size uint64) (*RAM, error) {
	m, err := PCMap(size)
	if err != nil {
		return nil, err
	}
	return NewRAMFromMap(m)
}

// NewRAMFromMap maps the guest memory of m (Map.Backed: RAM and firmware
// ranges, adjacent ones joined): one host mapping up to the end of the
// last, of which the ranges are the regions.
//
// As QEMU's, the mapping starts on a 2 MiB boundary and asks for
// transparent huge pages (MADV_HUGEPAGE): where host address and GPA agree
// modulo 2 MiB, KVM maps guest memory with 2 MiB entries, so a guest that
// touches its memory (a Linux boot) takes one page fault and one nested
// page-table fill per 2 MiB instead of per 4 KiB.
func NewRAMFromMap(m *Map) (*RAM, error) {
	ranges := m.Backed()
	if len(ranges) == 0 {
		return nil, fmt.Errorf("the memory map has no RAM")
	}
	size := ranges[len(ranges)-1].End()
	mapping, err := unix.Mmap(-1, 0, int(size+hugePage), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes of guest RAM: %w", size, err)
	}
	off := (hugePage - uint64(uintptr(unsafe.Pointer(&mapping[0])))%hugePage) % hugePage
	guest := mapping[off : off+size : off+size]
	// Without transparent huge pages (disabled, or not built) the advice
	// fails and the RAM works the same with 4 KiB pages.
	_ = unix.Madvise(guest, unix.MADV_HUGEPAGE)
	r := &RAM{mapping: mapping}
	for _, rg := range ranges {
		r.regions = append(r.regions, Region{GPA: rg.Start, Host: guest[rg.Start:rg.End():rg.End()]})
	}
	return r, nil
}

// NewRAMFromSlice wraps b as RAM at GPA 0 with no hole: for tests and tools
// that model memory without KVM.
func NewRAMFromSlice(b []byte) *RAM {
	return &RAM{regions: []Region{{GPA: 0, Host: b}}}
}

// Close unmaps the RAM. Nothing may use it afterwards.
func (r *RAM) Close() error {
	if r.mapping == nil {
		return nil
	}
	err := unix.Munmap(r.mapping)
	r.mapping, r.regions = nil, nil
	return err
}

// Size is the amount of guest memory, holes and windows excluded.
func (r *RAM) Size() uint64 {
	var n uint64
	for _, rg := range r.regions {
		n += uint64(len(rg.Host))
	}
	return n
}

// Regions lists the RAM regions in GPA order.
func (r *RAM) Regions() []Region { return r.regions }

// SlotSetter registers a memslot; *kvm.VM implements it.
type SlotSetter interface {
	SetMemoryRegion(slot uint32, gpa uint64, mem []byte, readonly bool) error
}

// Register makes every region a KVM memslot, numbered from 0.
func (r *RAM) Register(vm SlotSetter) error {
	for i, rg := range r.regions {
		if err := vm.SetMemoryRegion(uint32(i), rg.GPA, rg.Host, false); err != nil {
			return err
		}
	}
	return nil
}

// Flush makes the host kernel drop KVM's mapping of the guest page at gpa
// (4 KiB-aligned), so that the guest's next access to it faults into KVM
// again, as QEMU's pc-testdev does for its "flush page" port: the host
// page is made read-only and writable again, and a change of protection
// invalidates every secondary MMU's mapping of it (mmu notifiers). The
// page keeps its contents. Read-only rather than QEMU's PROT_NONE, so that
// another vCPU thread reading guest memory meanwhile cannot fault. RAM
// without a host mapping of its own (NewRAMFromSlice) has nothing to flush.
func (r *RAM) Flush(gpa uint64) error {
	if gpa%4096 != 0 {
		return fmt.Errorf("flush of GPA %#x: not page-aligned", gpa)
	}
	page, err := r.Slice(gpa, 4096)
	if err != nil {
		return err
	}
	if r.mapping == nil {
		return nil
	}
	if err := unix.Mprotect(page, unix.PROT_READ); err != nil {
		return fmt.Errorf("flush of GPA %#x: mprotect: %w", gpa, err)
	}
	if err := unix.Mprotect(page, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		return fmt.Errorf("flush of GPA %#x: mprotect: %w", gpa, err)
	}
	return nil
}

// Slice returns the host bytes of [gpa, gpa+n) when they are one piece of
// RAM. The slice aliases guest memory.
func (r *RAM) Slice(gpa, n uint64) ([]byte, error) {
	for _, rg := range r.regions {
		if gpa >= rg.GPA && gpa < rg.End() {
			off := gpa - rg.GPA
			if n > uint64(len(rg.Host))-off {
				break
			}
			return rg.Host[off : off+n : off+n], nil
		}
	}
	return nil, &RangeError{GPA: gpa, Len: n}
}

// Contains reports whether [gpa, gpa+n) is wholly RAM.
func (r *RAM) Contains(gpa, n uint64) bool {
	_, err := r.Slice(gpa, n)
	return err == nil
}

// Read copies guest memory at gpa into b.
func (r *RAM) Read(gpa uint64, b []byte) error {
	s, err := r.Slice(gpa, uint64(len(b)))
	if err != nil {
		return err
	}
	copy(b, s)
	return nil
}

// Write copies b into guest memory at gpa.
func (r *RAM) Write(gpa uint64, b []byte) error {
	s, err := r.Slice(gpa, uint64(len(b)))
	if err != nil {
		return err
	}
	copy(s, b)
	return nil
}

// ReadUint32 reads a little-endian dword at gpa, atomically when it is
// aligned (see LoadUint32).
func (r *RAM) ReadUint32(gpa uint64) (uint32, error) {
	s, err := r.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return LoadUint32(s), nil
}

// ReadUint64 reads a little-endian qword at gpa, atomically when it is
// aligned.
func (r *RAM) ReadUint64(gpa uint64) (uint64, error) {
	s, err := r.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return LoadUint64(s), nil
}

// WriteUint32 writes a little-endian dword at gpa, atomically when it is
// aligned.
func (r *RAM) WriteUint32(gpa uint64, v uint32) error {
	s, err := r.Slice(gpa, 4)
	if err != nil {
		return err
	}
	StoreUint32(s, v)
	return nil
}

// WriteUint64 writes a little-endian qword at gpa, atomically when it is
// aligned.
func (r *RAM) WriteUint64(gpa uint64, v uint64) error {
	s, err := r.Slice(gpa, 8)
	if err != nil {
		return err
	}
	StoreUint64(s, v)
	return nil
}
