// Package boot loads a flat guest image into guest RAM and builds the vCPU
// state to enter it in real, protected (flat 32-bit, paging off) or long
// mode (walkvm's identity map of the first 4 GiB with 2 MiB pages).
//
// Layout walkvm owns in low RAM (documented for guest authors):
//
//	0x00500–0x0052f  GDT (GDTBase): null, flat code32 (0x08), flat data32
//	                 (0x10), code64 (0x18), code16 (0x20), data16 (0x28)
//	0x9a000          PML4 (long entry only)
//	0x9b000          PDPT
//	0x9c000–0x9ffff  four page directories, 2 MiB pages, identity 0–4 GiB
package boot

import (
	"encoding/binary"
	"fmt"
	"strings"

	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/x86"
)

// Mode is the CPU mode a flat image is entered in.
type Mode int

// Entry modes.
const (
	Real Mode = iota
	Protected
	Long
)

var modeNames = []string{"real", "protected", "long"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode reads "real", "protected" or "long".
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("entry mode %q: want one of %s", s, strings.Join(modeNames, ", "))
}

// Fixed GPAs of walkvm's boot structures.
const (
	DefaultLoad = 0x1000
	GDTBase     = 0x500
	PML4Base    = 0x9a000
	PDPTBase    = 0x9b000
	PDBase      = 0x9c000 // four consecutive PDs
	bootAreaEnd = 0xa0000

	SelCode32 = 0x08
	SelData32 = 0x10
	SelCode64 = 0x18
	SelCode16 = 0x20
	SelData16 = 0x28
)

var gdt = [...]uint64{
	0,
	0x00cf9a000000ffff, // code32: base 0, limit 4 GiB, execute/read
	0x00cf92000000ffff, // data32: base 0, limit 4 GiB, read/write
	0x00af9a000000ffff, // code64: L=1
	0x00009a000000ffff, // code16: base 0, limit 64 KiB
	0x000092000000ffff, // data16
}

// Image is a flat binary and where it goes.
type Image struct {
	Data []byte
	Load uint64
	Mode Mode
}

// Load copies img into ram, writes walkvm's GDT (and page tables for long
// mode) and returns the registers to enter it with.
func Load(ram *memory.RAM, img Image) (*kvm.Regs, *kvm.Sregs, error) {
	if len(img.Data) == 0 {
		return nil, nil, fmt.Errorf("image is empty")
	}
	size := uint64(len(img.Data))
	end := img.Load + size
	if end < img.Load {
		return nil, nil, fmt.Errorf("image of %d bytes at %#x wraps the address space", size, img.Load)
	}
	if img.Load < memory.HoleEnd && end > memory.HoleStart {
		return nil, nil, fmt.Errorf("image at %#x-%#x overlaps the PC hole %#x-%#x", img.Load, end-1, memory.HoleStart, memory.HoleEnd-1)
	}
	if img.Load < GDTBase+uint64(len(gdt))*8 {
		return nil, nil, fmt.Errorf("image at %#x overlaps walkvm's GDT at %#x-%#x (load at %#x or above)", img.Load, GDTBase, GDTBase+len(gdt)*8-1, GDTBase+len(gdt)*8)
	}
	if img.Mode == Long && img.Load < bootAreaEnd && end > PML4Base {
		return nil, nil, fmt.Errorf("image at %#x-%#x overlaps walkvm's long-mode page tables at %#x-%#x", img.Load, end-1, PML4Base, bootAreaEnd-1)
	}
	if img.Mode == Real && end > memory.HoleStart {
		return nil, nil, fmt.Errorf("real-mode image at %#x-%#x must end below %#x", img.Load, end-1, memory.HoleStart)
	}
	dst, err := ram.Slice(img.Load, size)
	if err != nil {
		return nil, nil, fmt.Errorf("image of %d bytes at %#x does not fit in guest RAM (%d MiB): %w", size, img.Load, ram.Size()>>20, err)
	}
	copy(dst, img.Data)
	for i, d := range gdt {
		if err := ram.WriteUint64(GDTBase+uint64(i)*8, d); err != nil {
			return nil, nil, err
		}
	}
	regs := &kvm.Regs{RFLAGS: 2, RIP: img.Load, RSP: img.Load}
	sregs := &kvm.Sregs{}
	sregs.GDT = kvm.Descriptor{Base: GDTBase, Limit: uint16(len(gdt)*8 - 1)}
	sregs.IDT = kvm.Descriptor{Limit: 0x3ff}
	sregs.TR = kvm.Segment{Limit: 0xffff, Typ: 11, Present: 1} // busy TSS
	sregs.LDT = kvm.Segment{Limit: 0xffff, Typ: 2, Present: 1} // LDT
	sregs.CR0 = x86.CR0ET
	switch img.Mode {
	case Real:
		cs := uint16(0)
		if img.Load > 0xffff {
			cs = uint16(img.Load >> 4)
			regs.RIP = img.Load & 0xf
		}
		// The stack ends just below the image: SS:SP = CS-0x1000:0xfff0+IP.
		ss := cs
		regs.RSP = regs.RIP
		if cs != 0 {
			ss = cs - 0x1000
			regs.RSP = 0x10000 + regs.RIP - 0x10
		}
		sregs.CS = realSeg(cs, 11)
		sregs.SS = realSeg(ss, 3)
		for _, s := range []*kvm.Segment{&sregs.DS, &sregs.ES, &sregs.FS, &sregs.GS} {
			*s = realSeg(cs, 3)
		}
	case Protected:
		sregs.CR0 |= x86.CR0PE
		sregs.CS = flatSeg(SelCode32, 11, false)
		setData(sregs, flatSeg(SelData32, 3, false))
	case Long:
		if err := identityMap(ram); err != nil {
			return nil, nil, err
		}
		sregs.CR0 |= x86.CR0PE | x86.CR0PG
		sregs.CR3 = PML4Base
		sregs.CR4 = x86.CR4PAE
		sregs.EFER = x86.EFERLME | x86.EFERLMA
		sregs.CS = flatSeg(SelCode64, 11, true)
		setData(sregs, flatSeg(SelData32, 3, false))
		regs.RSP = img.Load
	default:
		return nil, nil, fmt.Errorf("unknown entry mode %v", img.Mode)
	}
	return regs, sregs, nil
}

func realSeg(sel uint16, typ uint8) kvm.Segment {
	return kvm.Segment{Base: uint64(sel) << 4, Limit: 0xffff, Selector: sel, Typ: typ, Present: 1, S: 1}
}

func flatSeg(sel uint16, typ uint8, long bool) kvm.Segment {
	s := kvm.Segment{Limit: 0xffffffff, Selector: sel, Typ: typ, Present: 1, S: 1, G: 1, DB: 1}
	if long {
		s.L, s.DB = 1, 0
	}
	return s
}

func setData(s *kvm.Sregs, seg kvm.Segment) {
	s.DS, s.ES, s.FS, s.GS, s.SS = seg, seg, seg, seg, seg
}

// identityMap maps 0–4 GiB 1:1 with 2 MiB pages (present, writable,
// supervisor) at PML4Base.
func identityMap(ram *memory.RAM) error {
	const p, rw, ps = 1, 2, 0x80
	var buf [8]byte
	put := func(gpa, v uint64) error {
		binary.LittleEndian.PutUint64(buf[:], v)
		return ram.Write(gpa, buf[:])
	}
	if err := put(PML4Base, PDPTBase|p|rw); err != nil {
		return fmt.Errorf("long-mode page tables: %w", err)
	}
	for i := uint64(0); i < 4; i++ {
		if err := put(PDPTBase+i*8, (PDBase+i*0x1000)|p|rw); err != nil {
			return err
		}
		for j := uint64(0); j < 512; j++ {
			if err := put(PDBase+i*0x1000+j*8, (i<<30|j<<21)|p|rw|ps); err != nil {
				return err
			}
		}
	}
	return nil
}
