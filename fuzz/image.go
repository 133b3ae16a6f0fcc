package fuzz

import (
	"encoding/binary"
	"fmt"
	"strings"

	"walkvm/boot"
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Mode is a CPU mode a program runs its instruction in.
type Mode uint8

// Modes, in the order the fuzzer cycles through them.
const (
	ModeReal     Mode = iota // real mode (16-bit code, segments)
	ModeProt32               // protected mode, flat 32-bit segments, paging off
	ModePaging32             // 32-bit paging (4 KiB and 4 MiB pages)
	ModePAE                  // PAE paging
	ModeLong4                // long mode, 4-level paging
	ModeLong5                // long mode, 5-level paging (CR4.LA57)
	NumModes
)

var modeNames = [NumModes]string{"real", "protected", "paging32", "pae", "long", "la57"}

func (m Mode) String() string {
	if m < NumModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseModes reads "all" or a comma-separated list of mode names.
func ParseModes(s string) ([]Mode, error) {
	if s == "" || s == "all" {
		var all []Mode
		for m := range NumModes {
			all = append(all, m)
		}
		return all, nil
	}
	var out []Mode
	for _, name := range strings.Split(s, ",") {
		found := false
		for m := range NumModes {
			if modeNames[m] == name {
				out, found = append(out, m), true
			}
		}
		if !found {
			return nil, fmt.Errorf("mode %q: want all or some of %s", name, strings.Join(modeNames[:], ", "))
		}
	}
	return out, nil
}

// DecodeMode is the code size the instruction runs with.
func (m Mode) DecodeMode() decode.Mode {
	switch m {
	case ModeReal:
		return decode.Mode16
	case ModeLong4, ModeLong5:
		return decode.Mode64
	}
	return decode.Mode32
}

// Entry is the mode walkvm's flat loader enters the image in: the paging
// modes set up their own tables from protected mode.
func (m Mode) Entry() boot.Mode {
	if m == ModeReal {
		return boot.Real
	}
	return boot.Protected
}

// Paging reports whether the mode has the program's page tables (and with
// them the special pages).
func (m Mode) Paging() bool { return m >= ModePaging32 }

// Guest-physical layout of a program, loaded at Load. The code comes
// first; the page tables of the paging modes sit at fixed addresses after
// it. Linear addresses are identity-mapped, except the special pages from
// SpecialBase.
const (
	Load     = 0x1000
	codeMax  = 0x7000
	idt32    = 0x7000 // 32 interrupt gates, 32-bit
	idt64    = 0x7100 // 32 interrupt gates, 64-bit
	stubs    = 0x7400 // per vector: mov $0x80+vector,%al; out %al,$0xf4; hlt
	idtr32   = 0x7600 // pseudo-descriptors for LIDT
	idtr64   = 0x7610
	stubsEnd = 0x7620
	pd32     = 0x8000 // 32-bit paging: page directory (4 MiB pages above 4 MiB)
	pt32     = 0x9000 //   page table for 0-4 MiB, the special pages in it
	pdpt     = 0xa000 // PAE: the four PDPTEs
	pd64     = 0xb000 // four page directories (2 MiB pages), 0-4 GiB, PAE and long mode
	pt64     = 0xf000 // page table for 0x200000-0x3fffff, the special pages in it
	pml4     = 0x10000
	pdpt64   = 0x11000
	pml5     = 0x12000
	imageEnd = 0x13000

	// MemSize is the guest RAM a program needs.
	MemSize = 16 << 20

	// SpecialBase is the first of the special pages (paging modes only).
	SpecialBase = 0x200000
)

// The special pages, by index from SpecialBase: what each maps, for
// page-crossing accesses between RAM, the MMIO windows and absent pages.
var specials = [...]struct {
	gpa      uint64
	present  bool
	writable bool
	what     string
}{
	{0x200000, true, true, "RAM"},
	{0xd0000, true, true, "low window"},
	{0xff000000, true, true, "high window"},
	{0, false, false, "not present"},
	{0x204000, true, true, "RAM"},
	{0xd5000, true, true, "low window"},
	{0xff001000, true, false, "high window, read-only"},
	{0, false, false, "not present"},
}

// Paging-structure entry bits (SDM Vol. 3A §4.3-4.5).
const (
	pteP  = 1 << 0 // present
	pteRW = 1 << 1 // writable
	ptePS = 1 << 7 // page size (a 4 MiB, 2 MiB page)
)

// specialPTE is the entry of special page i.
func specialPTE(i int) uint64 {
	s := specials[i]
	if !s.present {
		return 0
	}
	v := s.gpa | pteP
	if s.writable {
		v |= pteRW
	}
	return v
}

// tables writes the page tables of mode m into img (which starts at Load).
func tables(img []byte, m Mode) {
	put32 := func(gpa uint64, v uint32) { binary.LittleEndian.PutUint32(img[gpa-Load:], v) }
	put64 := func(gpa uint64, v uint64) { binary.LittleEndian.PutUint64(img[gpa-Load:], v) }
	const p, rw, ps = pteP, pteRW, ptePS
	switch m {
	case ModePaging32:
		put32(pd32, pt32|p|rw)
		for i := uint64(1); i < 1024; i++ {
			put32(pd32+4*i, uint32(i<<22|p|rw|ps))
		}
		for j := uint64(0); j < 1024; j++ {
			v := j<<12 | p | rw
			if k := j - SpecialBase>>12; k < uint64(len(specials)) {
				v = specialPTE(int(k))
			}
			put32(pt32+4*j, uint32(v))
		}
		return
	case ModePAE, ModeLong4, ModeLong5:
	default:
		return
	}
	for k := uint64(0); k < 4; k++ {
		for i := uint64(0); i < 512; i++ {
			put64(pd64+k*0x1000+8*i, k<<30|i<<21|p|rw|ps)
		}
	}
	put64(pd64+8, pt64|p|rw)
	for j := uint64(0); j < 512; j++ {
		v := SpecialBase + j<<12 | p | rw
		if j < uint64(len(specials)) {
			v = specialPTE(int(j))
		}
		put64(pt64+8*j, v)
	}
	for k := uint64(0); k < 4; k++ {
		put64(pdpt+8*k, pd64+k*0x1000|p) // PAE PDPTEs: P only (RW is reserved)
		put64(pdpt64+8*k, pd64+k*0x1000|p|rw)
	}
	put64(pml4, pdpt64|p|rw)
	put64(pml5, pml4|p|rw)
}

// handlers writes the IDTs and their stubs: an exception ends the run with
// debug-exit status 0x80 + vector (outside real mode).
func handlers(img []byte) {
	le := binary.LittleEndian
	for v := uint64(0); v < 32; v++ {
		stub := stubs + 8*v
		copy(img[stub-Load:], []byte{0xB0, byte(0x80 + v), 0xE6, 0xF4, 0xF4})
		g := idt32 + 8*v
		le.PutUint16(img[g-Load:], uint16(stub))
		le.PutUint16(img[g-Load+2:], boot.SelCode32)
		le.PutUint16(img[g-Load+4:], 0x8E00) // present 32-bit interrupt gate
		le.PutUint16(img[g-Load+6:], uint16(stub>>16))
		g = idt64 + 16*v
		le.PutUint16(img[g-Load:], uint16(stub))
		le.PutUint16(img[g-Load+2:], boot.SelCode64)
		le.PutUint16(img[g-Load+4:], 0x8E00)
		le.PutUint16(img[g-Load+6:], uint16(stub>>16))
	}
	le.PutUint16(img[idtr32-Load:], 32*8-1)
	le.PutUint32(img[idtr32-Load+2:], idt32)
	le.PutUint16(img[idtr64-Load:], 32*16-1)
	le.PutUint64(img[idtr64-Load+2:], idt64)
}

// asm assembles the few instructions a program's scaffolding needs, in the
// code size of the moment.
type asm struct {
	b    []byte
	size int // 16, 32 or 64
}

func (a *asm) emit(b ...byte) { a.b = append(a.b, b...) }

func (a *asm) imm32(v uint32) { a.b = binary.LittleEndian.AppendUint32(a.b, v) }

func (a *asm) here() uint64 { return Load + uint64(len(a.b)) }

// movImm sets GPR r to v (the low 32 bits outside 64-bit mode).
func (a *asm) movImm(r int, v uint64) {
	switch a.size {
	case 64:
		rex := byte(0x48)
		if r >= 8 {
			rex |= 1
		}
		a.emit(rex, 0xB8+byte(r&7))
		a.b = binary.LittleEndian.AppendUint64(a.b, v)
	case 32:
		a.emit(0xB8 + byte(r))
		a.imm32(uint32(v))
	default:
		a.emit(0x66, 0xB8+byte(r))
		a.imm32(uint32(v))
	}
}

// orCR ORs v into control register cr (0 or 4) through rAX.
func (a *asm) orCR(cr byte, v uint32) {
	a.emit(0x0F, 0x20, 0xC0|cr<<3) // mov %crN,%eax
	switch a.size {
	case 64:
		a.emit(0x48, 0x0D)
	case 16:
		a.emit(0x66, 0x0D)
	default:
		a.emit(0x0D)
	}
	a.imm32(v)
	a.emit(0x0F, 0x22, 0xC0|cr<<3) // mov %eax,%crN
}

// store32 writes v at linear address addr (real mode: through DS, which it
// loads with addr's paragraph).
func (a *asm) store32(addr uint64, v uint32) {
	switch a.size {
	case 64:
		a.movImm(int(x86.RAX), addr)
		a.emit(0xC7, 0x00) // movl $v,(%rax)
		a.imm32(v)
	case 32:
		a.emit(0xC7, 0x05) // movl $v,addr
		a.imm32(uint32(addr))
		a.imm32(v)
	default:
		a.emit(0xB8, byte(addr>>4), byte(addr>>12)) // mov $seg,%ax
		a.emit(0x8E, 0xD8)                          // mov %ax,%ds
		a.emit(0x66, 0xC7, 0x06, byte(addr&0xf), 0) // movl $v,off
		a.imm32(v)
	}
}

// Fill is a dword a program stores before its instruction, to give the
// instruction data other than zeros at its target.
type Fill struct {
	Addr uint64 `json:"addr"`
	Val  uint32 `json:"value"`
}

// Program is one generated guest: the instruction under test, the state
// it runs with, and what it aims at.
type Program struct {
	Mode Mode `json:"-"`
	// Insn is the instruction under test.
	Insn []byte `json:"-"`
	// Regs are the GPRs the instruction starts with (encoding order).
	Regs [x86.NumGPR]uint64 `json:"-"`
	// Seg is the data segments' selector in real mode.
	Seg uint16 `json:"-"`
	// Fills are stored before the instruction.
	Fills []Fill `json:"fills,omitempty"`
	// Vector enables SSE (CR4.OSFXSR) and, with AVX, XCR0's AVX state.
	Vector, AVX bool `json:"-"`
	// Target is the linear address the memory operand was aimed at, and
	// TargetKind what lies there.
	Target     uint64 `json:"-"`
	TargetKind string `json:"-"`
	// Patches change the page tables (a hand-made program's odd entry).
	Patches []Patch `json:"-"`
}

// Patch stores Val (Size bytes, little-endian) at guest-physical GPA in a
// program's image.
type Patch struct {
	GPA  uint64
	Val  uint64
	Size int
}

// Clone returns a deep copy of p.
func (p *Program) Clone() *Program {
	q := *p
	q.Insn = append([]byte(nil), p.Insn...)
	q.Fills = append([]Fill(nil), p.Fills...)
	q.Patches = append([]Patch(nil), p.Patches...)
	return &q
}

// InsnAddr is where the instruction under test sits in its image.
func (p *Program) InsnAddr() uint64 {
	_, at := p.build()
	return at
}

// Image returns the program as a flat image for walkvm's loader (at Load,
// entered in Mode.Entry()).
func (p *Program) Image() []byte {
	img, _ := p.build()
	return img
}

// build assembles the program: an IDT (outside real mode: an exception
// ends the run with status 0x80 + vector), the mode's setup, the fills, the
// segments (real mode) and registers, the instruction, then a debug-exit
// write of 0 and HLT. It returns the image and the instruction's address.
func (p *Program) build() ([]byte, uint64) {
	a := &asm{size: 32}
	if p.Mode == ModeReal {
		a.size = 16
	} else {
		a.emit(0x0F, 0x01, 0x1D) // lidt idtr32
		a.imm32(idtr32)
	}
	const pg, wp = x86.CR0PG, x86.CR0WP
	switch p.Mode {
	case ModePaging32:
		a.emit(0xB8)
		a.imm32(pd32)
		a.emit(0x0F, 0x22, 0xD8) // mov %eax,%cr3
		a.orCR(4, x86.CR4PSE)
		a.orCR(0, pg|wp)
	case ModePAE:
		a.emit(0xB8)
		a.imm32(pdpt)
		a.emit(0x0F, 0x22, 0xD8)
		a.orCR(4, x86.CR4PAE)
		a.orCR(0, pg|wp)
	case ModeLong4, ModeLong5:
		cr4, root := uint32(x86.CR4PAE), uint32(pml4)
		if p.Mode == ModeLong5 {
			cr4, root = x86.CR4PAE|x86.CR4LA57, pml5
		}
		a.orCR(4, cr4)
		a.emit(0xB8)
		a.imm32(root)
		a.emit(0x0F, 0x22, 0xD8)
		a.emit(0xB9) // mov $EFER,%ecx; rdmsr; or $LME,%eax; wrmsr
		a.imm32(0xC0000080)
		a.emit(0x0F, 0x32, 0x0D)
		a.imm32(x86.EFERLME)
		a.emit(0x0F, 0x30)
		a.orCR(0, pg|wp)
		// ljmp $SelCode64,$next: into 64-bit code.
		next := a.here() + 7
		a.emit(0xEA)
		a.imm32(uint32(next))
		a.emit(byte(boot.SelCode64), 0)
		a.size = 64
		a.emit(0x0F, 0x01, 0x1C, 0x25) // lidt idtr64
		a.imm32(idtr64)
	}
	if p.Vector {
		cr4 := uint32(x86.CR4OSFXSR | x86.CR4OSXMMEXCPT)
		if p.AVX {
			cr4 |= x86.CR4OSXSAVE
		}
		a.orCR(4, cr4)
		if p.AVX {
			a.movImm(int(x86.RCX), 0)
			a.movImm(int(x86.RDX), 0)
			a.movImm(int(x86.RAX), 7)
			a.emit(0x0F, 0x01, 0xD1) // xsetbv
		}
	}
	for _, f := range p.Fills {
		a.store32(f.Addr, f.Val)
	}
	if p.Mode == ModeReal {
		a.emit(0xB8, byte(p.Seg), byte(p.Seg>>8))
		for _, modrm := range []byte{0xC0, 0xD8, 0xD0, 0xE0, 0xE8} { // es, ds, ss, fs, gs
			a.emit(0x8E, modrm)
		}
	}
	for r := range p.Regs {
		if r >= 8 && a.size != 64 {
			break
		}
		a.movImm(r, p.Regs[r])
	}
	at := a.here()
	a.emit(p.Insn...)
	a.emit(0xB0, 0x00, 0xE6, 0xF4, 0xF4) // mov $0,%al; out %al,$0xf4; hlt
	img := a.b
	switch {
	case p.Mode.Paging():
		img = append(img, make([]byte, imageEnd-Load-len(img))...)
		tables(img, p.Mode)
	case p.Mode != ModeReal:
		img = append(img, make([]byte, stubsEnd-Load-len(img))...)
	}
	if p.Mode != ModeReal {
		handlers(img)
	}
	for _, pt := range p.Patches {
		if pt.GPA >= Load && pt.GPA-Load+uint64(pt.Size) <= uint64(len(img)) {
			for i := range pt.Size {
				img[pt.GPA-Load+uint64(i)] = byte(pt.Val >> (8 * i))
			}
		}
	}
	return img, at
}
