// Package boottest holds what the image loaders' tests share: guest memory
// that records every write and refuses any outside the machine's regions,
// and a builder of small ELF executables.
package boottest

import (
	"encoding/binary"
	"fmt"
	"testing"

	"walkvm/boot/loader"
	"walkvm/memory"
)

// Window is an MMIO window in the BIOS area, where walkvm's machine has
// its low test window.
var Window = memory.Range{Name: "test window", Start: 0xd0000, Size: 0x10000, Kind: memory.KindMMIO}

// PC is walkvm's machine for kernels with size bytes of RAM
// (memory.FirmwareMap): RAM below the EBDA, the EBDA and BIOS area as
// firmware memory with Window carved out, RAM from 1 MiB.
func PC(t testing.TB, size uint64) *memory.Map {
	mm, err := memory.FirmwareMap(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := mm.Add(Window); err != nil {
		t.Fatal(err)
	}
	return mm
}

// Mem is guest memory for tests: walkvm's memory.RAM (anonymous memory,
// no KVM) laid out as Map, plus a log of the writes. A write that is not
// wholly guest memory fails the test: loaders must never try one.
type Mem struct {
	T      testing.TB
	RAM    *memory.RAM
	Map    *memory.Map
	Writes []loader.Range
}

// NewMem maps size bytes of RAM laid out as PC(size).
func NewMem(t testing.TB, size uint64) *Mem { return NewMemMap(t, PC(t, size)) }

// NewMemMap maps the guest memory of mm.
func NewMemMap(t testing.TB, mm *memory.Map) *Mem {
	ram, err := memory.NewRAMFromMap(mm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	return &Mem{T: t, RAM: ram, Map: mm}
}

// Read reads guest memory.
func (m *Mem) Read(gpa uint64, b []byte) error { return m.RAM.Read(gpa, b) }

// Write checks that [gpa, gpa+len(b)) is in a region, logs and writes it.
func (m *Mem) Write(gpa uint64, b []byte) error {
	if !m.Map.IsBacked(gpa, uint64(len(b))) {
		m.T.Fatalf("write of %d bytes at %#x is outside guest memory %v", len(b), gpa, m.Map.Ranges())
	}
	m.Writes = append(m.Writes, loader.Range{Base: gpa, Size: uint64(len(b))})
	return m.RAM.Write(gpa, b)
}

// Bytes reads n bytes at gpa or fails the test.
func (m *Mem) Bytes(gpa, n uint64) []byte {
	b := make([]byte, n)
	if err := m.RAM.Read(gpa, b); err != nil {
		m.T.Fatalf("reading %d bytes at %#x: %v", n, gpa, err)
	}
	return b
}

// U32 reads a dword at gpa.
func (m *Mem) U32(gpa uint64) uint32 { return binary.LittleEndian.Uint32(m.Bytes(gpa, 4)) }

// U64 reads a qword at gpa.
func (m *Mem) U64(gpa uint64) uint64 { return binary.LittleEndian.Uint64(m.Bytes(gpa, 8)) }

// CString reads a NUL-terminated string at gpa (at most 4 KiB).
func (m *Mem) CString(gpa uint64) string {
	var s []byte
	for i := uint64(0); i < 4096; i++ {
		c := m.Bytes(gpa+i, 1)[0]
		if c == 0 {
			return string(s)
		}
		s = append(s, c)
	}
	m.T.Fatalf("no NUL within 4 KiB of %#x", gpa)
	return ""
}

// Seg is one PT_LOAD segment of an ELF built by ELF.
type Seg struct {
	PAddr uint64
	Data  []byte
	MemSz uint64 // 0: len(Data)
}

// Note is an ELF note built into a PT_NOTE segment.
type Note struct {
	Name string
	Type uint32
	Desc []byte
}

// ELF builds a little-endian ET_EXEC ELF of class 32 or 64 for machine,
// with one PT_LOAD per segment, one PT_NOTE holding notes (if any), and
// extra bytes appended after the program headers (before segment data),
// e.g. a multiboot header: their file offset is returned.
func ELF(class int, machine uint16, entry uint64, segs []Seg, notes []Note, extra []byte) (b []byte, extraOff int) {
	le := binary.LittleEndian
	ehsize, phentsize := 52, 32
	if class == 64 {
		ehsize, phentsize = 64, 56
	}
	nph := len(segs)
	var noteBytes []byte
	for _, n := range notes {
		name := append([]byte(n.Name), 0)
		h := make([]byte, 12)
		le.PutUint32(h, uint32(len(name)))
		le.PutUint32(h[4:], uint32(len(n.Desc)))
		le.PutUint32(h[8:], n.Type)
		noteBytes = append(noteBytes, h...)
		noteBytes = append(noteBytes, pad4(name)...)
		noteBytes = append(noteBytes, pad4(n.Desc)...)
	}
	if len(notes) > 0 {
		nph++
	}
	b = make([]byte, ehsize+nph*phentsize)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = byte(class/32), 1, 1
	le.PutUint16(b[16:], 2)
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)
	if class == 64 {
		le.PutUint64(b[24:], entry)
		le.PutUint64(b[32:], uint64(ehsize))
		le.PutUint16(b[52:], uint16(ehsize))
		le.PutUint16(b[54:], uint16(phentsize))
		le.PutUint16(b[56:], uint16(nph))
	} else {
		le.PutUint32(b[24:], uint32(entry))
		le.PutUint32(b[28:], uint32(ehsize))
		le.PutUint16(b[40:], uint16(ehsize))
		le.PutUint16(b[42:], uint16(phentsize))
		le.PutUint16(b[44:], uint16(nph))
	}
	extraOff = len(b)
	b = append(b, extra...)
	for len(b)%16 != 0 {
		b = append(b, 0)
	}
	ph := func(i int, typ uint32, off, paddr, filesz, memsz uint64) {
		h := b[ehsize+i*phentsize:]
		if class == 64 {
			le.PutUint32(h, typ)
			le.PutUint32(h[4:], 7)
			le.PutUint64(h[8:], off)
			le.PutUint64(h[16:], paddr)
			le.PutUint64(h[24:], paddr)
			le.PutUint64(h[32:], filesz)
			le.PutUint64(h[40:], memsz)
			le.PutUint64(h[48:], 4)
		} else {
			le.PutUint32(h, typ)
			le.PutUint32(h[4:], uint32(off))
			le.PutUint32(h[8:], uint32(paddr))
			le.PutUint32(h[12:], uint32(paddr))
			le.PutUint32(h[16:], uint32(filesz))
			le.PutUint32(h[20:], uint32(memsz))
			le.PutUint32(h[24:], 7)
			le.PutUint32(h[28:], 4)
		}
	}
	for i, s := range segs {
		memsz := s.MemSz
		if memsz == 0 {
			memsz = uint64(len(s.Data))
		}
		ph(i, 1, uint64(len(b)), s.PAddr, uint64(len(s.Data)), memsz)
		b = append(b, s.Data...)
	}
	if len(notes) > 0 {
		ph(len(segs), 4, uint64(len(b)), 0, uint64(len(noteBytes)), 0)
		b = append(b, noteBytes...)
	}
	return b, extraOff
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Overlaps reports the first pair of ranges that overlap.
func Overlaps(rs []loader.Range) error {
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if rs[i].Base < rs[j].End() && rs[j].Base < rs[i].End() {
				return fmt.Errorf("%v overlaps %v", rs[i], rs[j])
			}
		}
	}
	return nil
}
