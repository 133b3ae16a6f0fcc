package memory

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
)

// Device is a device model on a bus. off is the offset of the access inside
// the device's range; len(data) is the access size.
type Device interface {
	Read(off uint64, data []byte) error
	Write(off uint64, data []byte) error
}

// ErrNoDevice says nothing is mapped at an address.
var ErrNoDevice = errors.New("no device")

// Bus maps address ranges (GPAs on the MMIO bus, ports on the PIO bus) to
// devices. Ranges never overlap; an access must lie inside one device.
type Bus struct {
	name    string
	entries []busEntry // sorted by base
	// hint is the entry find returned last, tried first: a guest's exits
	// tend to hit one device over and over. The vCPUs share it; Register
	// clears it, as it may move the entries.
	hint atomic.Pointer[busEntry]
}

type busEntry struct {
	base, size uint64
	name       string
	dev        Device
}

// NewBus returns an empty bus; name ("mmio", "pio") appears in errors.
func NewBus(name string) *Bus { return &Bus{name: name} }

// Register maps dev at [base, base+size). It refuses empty, wrapping and
// overlapping ranges.
func (b *Bus) Register(name string, base, size uint64, dev Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("%s bus: %s range %#x+%#x is empty or wraps", b.name, name, base, size)
	}
	for _, e := range b.entries {
		if base < e.base+e.size && e.base < base+size {
			return fmt.Errorf("%s bus: %s at %#x-%#x overlaps %s at %#x-%#x",
				b.name, name, base, base+size-1, e.name, e.base, e.base+e.size-1)
		}
	}
	b.entries = append(b.entries, busEntry{base: base, size: size, name: name, dev: dev})
	sort.Slice(b.entries, func(i, j int) bool { return b.entries[i].base < b.entries[j].base })
	b.hint.Store(nil)
	return nil
}

// AccessError is an access the bus could not route.
type AccessError struct {
	Bus   string
	Addr  uint64
	Len   int
	Write bool
	Err   error
}

func (e *AccessError) Error() string {
	dir := "read"
	if e.Write {
		dir = "write"
	}
	return fmt.Sprintf("%s bus: %d-byte %s at %#x: %v", e.Bus, e.Len, dir, e.Addr, e.Err)
}

func (e *AccessError) Unwrap() error { return e.Err }

// find returns the entry that holds [addr, addr+n), or nil: the hinted
// one, else search's.
func (b *Bus) find(addr uint64, n int) *busEntry {
	if e := b.hinted(addr, n); e != nil {
		return e
	}
	return b.search(addr, n)
}

// hinted returns the hinted entry when it holds [addr, addr+n), else nil.
// It is small enough to be inlined, where find is not.
func (b *Bus) hinted(addr uint64, n int) *busEntry {
	if e := b.hint.Load(); e != nil && e.holds(addr, n) {
		return e
	}
	return nil
}

// holds reports whether [addr, addr+n) lies inside the entry. addr below
// base makes off wrap to at least 2^64-base, which no size reaches:
// Register refuses a range that wraps.
func (e *busEntry) holds(addr uint64, n int) bool {
	off := addr - e.base
	return off < e.size && uint64(n) <= e.size-off
}

// search finds the entry for find by a binary search for the first entry
// that ends above addr (sort.Search's, without its closure calls), and
// hints it.
func (b *Bus) search(addr uint64, n int) *busEntry {
	lo, hi := 0, len(b.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if e := &b.entries[m]; e.base+e.size > addr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == len(b.entries) || !b.entries[lo].holds(addr, n) {
		return nil
	}
	b.hint.Store(&b.entries[lo])
	return &b.entries[lo]
}

// Lookup names the device at addr, for traces.
func (b *Bus) Lookup(addr uint64) (string, bool) {
	e := b.find(addr, 1)
	if e == nil {
		return "", false
	}
	return e.name, true
}

// Read performs a read of len(data) bytes at addr.
func (b *Bus) Read(addr uint64, data []byte) error {
	e := b.find(addr, len(data))
	if e == nil {
		return &AccessError{Bus: b.name, Addr: addr, Len: len(data), Err: ErrNoDevice}
	}
	return e.dev.Read(addr-e.base, data)
}

// Write performs a write of data at addr.
func (b *Bus) Write(addr uint64, data []byte) error {
	e := b.find(addr, len(data))
	if e == nil {
		return &AccessError{Bus: b.name, Addr: addr, Len: len(data), Write: true, Err: ErrNoDevice}
	}
	return e.dev.Write(addr-e.base, data)
}

// Serve performs a guest's access as a PC bus does: the device mapped at
// [addr, addr+len(data)) reads into or writes from data. Where none is, a
// read returns all ones (nothing drives the lines) and a write is dropped;
// mapped says which. err is the device's own error. It allocates nothing.
func (b *Bus) Serve(addr uint64, data []byte, write bool) (mapped bool, err error) {
	e := b.hinted(addr, len(data))
	if e == nil {
		if e = b.search(addr, len(data)); e == nil {
			if !write {
				for i := range data {
					data[i] = 0xff
				}
			}
			return false, nil
		}
	}
	if write {
		return true, e.dev.Write(addr-e.base, data)
	}
	return true, e.dev.Read(addr-e.base, data)
}
