// Package elfload reads an x86 ELF executable's header, program headers
// and notes, and copies its PT_LOAD segments into guest memory at their
// physical addresses (p_paddr), zeroing each segment's bss up to p_memsz.
//
// Both classes are read whatever e_machine says: kvm-unit-tests' x86_64
// images are 64-bit code in an ELFCLASS32/EM_386 file (objcopy -O
// elf32-i386). Every offset and size is checked against the file and every
// segment against guest memory before anything is written; bad input gets
// an error naming the header and field, never a panic.
package elfload

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"walkvm/boot/loader"
)

// ELF constants (System V gABI, "ELF Header" and "Program Header").
const (
	ClassELF32 = 1
	ClassELF64 = 2

	EM386    = 3
	EMX86_64 = 62

	ETExec = 2

	PTLoad = 1
	PTNote = 4
)

var magic = []byte{0x7f, 'E', 'L', 'F'}

// IsELF reports whether b starts with the ELF magic.
func IsELF(b []byte) bool { return bytes.HasPrefix(b, magic) }

// File is a parsed ELF executable.
type File struct {
	Class   int // ClassELF32 or ClassELF64
	Machine uint16
	Entry   uint64
	Progs   []Prog
}

// Prog is one program header; Index is its position in the table.
type Prog struct {
	Index                                      int
	Type, Flags                                uint32
	Offset, VAddr, PAddr, FileSz, MemSz, Align uint64
}

// Note is one entry of a PT_NOTE segment.
type Note struct {
	Prog   int    // index of the PT_NOTE program header
	Offset uint64 // file offset of the note's header
	Name   string // without the terminating NUL
	Type   uint32
	Desc   []byte // aliases the file
}

// Parse reads the ELF header and program headers of b, checking that the
// program header table and every segment's file bytes lie inside b.
func Parse(b []byte) (*File, error) {
	if !IsELF(b) {
		return nil, fmt.Errorf("ELF header: no \\x7fELF magic")
	}
	if len(b) < 52 {
		return nil, fmt.Errorf("ELF header: file of %d bytes is shorter than an ELF header", len(b))
	}
	f := &File{Class: int(b[4])}
	if b[5] != 1 {
		return nil, fmt.Errorf("ELF header: EI_DATA %d, want 1 (little-endian)", b[5])
	}
	le := binary.LittleEndian
	if t := le.Uint16(b[16:]); t != ETExec {
		return nil, fmt.Errorf("ELF header: e_type %d, want %d (ET_EXEC)", t, ETExec)
	}
	f.Machine = le.Uint16(b[18:])
	if f.Machine != EM386 && f.Machine != EMX86_64 {
		return nil, fmt.Errorf("ELF header: e_machine %d, want %d (EM_386) or %d (EM_X86_64)", f.Machine, EM386, EMX86_64)
	}
	var phoff, phentsize, phnum, want uint64
	switch f.Class {
	case ClassELF32:
		f.Entry = uint64(le.Uint32(b[24:]))
		phoff = uint64(le.Uint32(b[28:]))
		phentsize, phnum, want = uint64(le.Uint16(b[42:])), uint64(le.Uint16(b[44:])), 32
	case ClassELF64:
		if len(b) < 64 {
			return nil, fmt.Errorf("ELF header: file of %d bytes is shorter than an ELF64 header", len(b))
		}
		f.Entry = le.Uint64(b[24:])
		phoff = le.Uint64(b[32:])
		phentsize, phnum, want = uint64(le.Uint16(b[54:])), uint64(le.Uint16(b[56:])), 56
	default:
		return nil, fmt.Errorf("ELF header: EI_CLASS %d, want 1 (ELFCLASS32) or 2 (ELFCLASS64)", f.Class)
	}
	if phnum == 0xffff {
		return nil, fmt.Errorf("ELF header: e_phnum 0xffff (PN_XNUM, extended numbering) is not supported")
	}
	if phnum > 0 && phentsize != want {
		return nil, fmt.Errorf("ELF header: e_phentsize %d, want %d for ELFCLASS%d", phentsize, want, 32*f.Class)
	}
	if end := phoff + phnum*phentsize; end < phoff || end > uint64(len(b)) {
		return nil, fmt.Errorf("ELF header: program header table at file offset %#x (%d x %d bytes) is past the end of the %d-byte file", phoff, phnum, phentsize, len(b))
	}
	for i := uint64(0); i < phnum; i++ {
		h := b[phoff+i*phentsize:]
		p := Prog{Index: int(i)}
		if f.Class == ClassELF32 {
			p.Type, p.Offset, p.VAddr, p.PAddr = le.Uint32(h), uint64(le.Uint32(h[4:])), uint64(le.Uint32(h[8:])), uint64(le.Uint32(h[12:]))
			p.FileSz, p.MemSz, p.Flags, p.Align = uint64(le.Uint32(h[16:])), uint64(le.Uint32(h[20:])), le.Uint32(h[24:]), uint64(le.Uint32(h[28:]))
		} else {
			p.Type, p.Flags, p.Offset, p.VAddr = le.Uint32(h), le.Uint32(h[4:]), le.Uint64(h[8:]), le.Uint64(h[16:])
			p.PAddr, p.FileSz, p.MemSz, p.Align = le.Uint64(h[24:]), le.Uint64(h[32:]), le.Uint64(h[40:]), le.Uint64(h[48:])
		}
		if p.Type == PTLoad || p.Type == PTNote {
			if end := p.Offset + p.FileSz; end < p.Offset || end > uint64(len(b)) {
				return nil, fmt.Errorf("ELF program header %d: p_offset %#x + p_filesz %#x is past the end of the %d-byte file", i, p.Offset, p.FileSz, len(b))
			}
		}
		if p.Type == PTLoad {
			if p.FileSz > p.MemSz {
				return nil, fmt.Errorf("ELF program header %d: p_filesz %#x is larger than p_memsz %#x", i, p.FileSz, p.MemSz)
			}
			if end := p.PAddr + p.MemSz; end < p.PAddr {
				return nil, fmt.Errorf("ELF program header %d: p_paddr %#x + p_memsz %#x wraps the address space", i, p.PAddr, p.MemSz)
			}
		}
		f.Progs = append(f.Progs, p)
	}
	return f, nil
}

// Loads lists the PT_LOAD program headers that occupy memory (p_memsz > 0).
func (f *File) Loads() []Prog {
	var out []Prog
	for _, p := range f.Progs {
		if p.Type == PTLoad && p.MemSz > 0 {
			out = append(out, p)
		}
	}
	return out
}

// Notes reads the notes of every PT_NOTE segment of b (the file f was
// parsed from). Names and descriptors are padded to 4 bytes, as Linux and
// the Xen tools write them for both classes.
func (f *File) Notes(b []byte) ([]Note, error) {
	le := binary.LittleEndian
	var out []Note
	for _, p := range f.Progs {
		if p.Type != PTNote {
			continue
		}
		if end := p.Offset + p.FileSz; end < p.Offset || end > uint64(len(b)) {
			return nil, fmt.Errorf("ELF program header %d: PT_NOTE at %#x+%#x is past the end of the %d-byte file", p.Index, p.Offset, p.FileSz, len(b))
		}
		seg := b[p.Offset : p.Offset+p.FileSz]
		for off := uint64(0); off < uint64(len(seg)); {
			rest := uint64(len(seg)) - off
			if rest < 12 {
				return nil, fmt.Errorf("ELF program header %d: note at file offset %#x: %d bytes left, shorter than a note header", p.Index, p.Offset+off, rest)
			}
			namesz, descsz := uint64(le.Uint32(seg[off:])), uint64(le.Uint32(seg[off+4:]))
			n := Note{Prog: p.Index, Offset: p.Offset + off, Type: le.Uint32(seg[off+8:])}
			nameEnd := 12 + align4(namesz)
			descEnd := nameEnd + align4(descsz)
			if namesz > rest || descsz > rest || descEnd > rest {
				return nil, fmt.Errorf("ELF program header %d: note at file offset %#x: n_namesz %d + n_descsz %d run past the segment's end (%d bytes left)", p.Index, n.Offset, namesz, descsz, rest)
			}
			name := seg[off+12 : off+12+namesz]
			n.Name = string(bytes.TrimRight(name, "\x00"))
			n.Desc = seg[off+nameEnd : off+nameEnd+descsz]
			out = append(out, n)
			off += descEnd
		}
	}
	return out, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// Load checks every PT_LOAD segment of f against guest memory and claims
// it in pl ("ELF program header N"), then copies p_filesz bytes from b at
// p_offset to p_paddr and zeroes the rest up to p_memsz. It returns the
// ranges written. Nothing is written when a check fails.
func (f *File) Load(mem loader.Memory, pl *loader.Placer, b []byte) ([]loader.Range, error) {
	loads := f.Loads()
	if len(loads) == 0 {
		return nil, fmt.Errorf("ELF: no PT_LOAD program header with p_memsz > 0")
	}
	var out []loader.Range
	for _, p := range loads {
		what := fmt.Sprintf("ELF program header %d", p.Index)
		if !pl.Backed(p.PAddr, p.MemSz) {
			return nil, fmt.Errorf("%s: p_paddr %#x .. p_paddr+p_memsz %#x is not in guest RAM", what, p.PAddr, p.PAddr+p.MemSz)
		}
		if err := pl.Claim(what, p.PAddr, p.MemSz); err != nil {
			return nil, err
		}
		out = append(out, loader.Range{Base: p.PAddr, Size: p.MemSz, What: what})
	}
	for _, p := range loads {
		if end := p.Offset + p.FileSz; end < p.Offset || end > uint64(len(b)) {
			return nil, fmt.Errorf("ELF program header %d: p_offset %#x + p_filesz %#x is past the end of the %d-byte file", p.Index, p.Offset, p.FileSz, len(b))
		}
	}
	for _, p := range loads {
		if err := mem.Write(p.PAddr, b[p.Offset:p.Offset+p.FileSz]); err != nil {
			return nil, fmt.Errorf("ELF program header %d: copying %#x bytes to %#x: %w", p.Index, p.FileSz, p.PAddr, err)
		}
		if err := loader.Zero(mem, p.PAddr+p.FileSz, p.MemSz-p.FileSz); err != nil {
			return nil, fmt.Errorf("ELF program header %d: zeroing bss at %#x: %w", p.Index, p.PAddr+p.FileSz, err)
		}
	}
	return out, nil
}
