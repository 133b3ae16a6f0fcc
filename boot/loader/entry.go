package loader

import (
	"encoding/binary"
	"fmt"
)

// Mode is the CPU mode a loader's entry state is in.
type Mode int

// Entry modes.
const (
	// Protected32: protected mode, flat 32-bit code and data segments,
	// paging off (multiboot, PVH).
	Protected32 Mode = iota + 1
	// Long64: 64-bit mode with 4-level paging (Linux's 64-bit boot
	// protocol).
	Long64
)

func (m Mode) String() string {
	switch m {
	case Protected32:
		return "32-bit protected mode, paging off"
	case Long64:
		return "64-bit mode, 4-level paging"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Entry is the vCPU state a loader leaves the guest in, as data: general
// registers not named are zero, RFLAGS is 0x2 (interrupts off), and the
// segment registers hold the descriptors GDT[selector>>3] of the GDT the
// loader wrote at GDTBase (DS is loaded into DS, ES, FS, GS and SS). A zero
// TR selector means no TSS was asked for (KVM still needs a busy TSS in
// TR's cache; the caller supplies its usual one).
type Entry struct {
	Mode          Mode
	RIP, RSP      uint64
	RAX, RBX, RSI uint64

	CR0, CR3, CR4, EFER uint64

	GDTBase    uint64
	GDT        []uint64 // the descriptors written at GDTBase, entry 0 null
	CS, DS, TR uint16   // selectors into GDT

	// Occupied is the guest memory the loader wrote: image segments and
	// boot structures, by address.
	Occupied []Range
}

// GDT descriptors the loaders use, walkvm's one set of them (SDM Vol. 3A
// §3.4.5): base 0, present, DPL 0, accessed bit set so that loading them
// never writes the GDT; the 32- and 64-bit ones with limit 4 GiB (G=1).
const (
	DescCode32 uint64 = 0x00cf9b000000ffff // execute/read, D=1
	DescData32 uint64 = 0x00cf93000000ffff // read/write, B=1
	DescCode64 uint64 = 0x00af9b000000ffff // execute/read, L=1
	// DescCode16 and DescData16: base 0, limit 64 KiB (G=0), 16-bit.
	DescCode16 uint64 = 0x00009b000000ffff // execute/read
	DescData16 uint64 = 0x000093000000ffff // read/write
	// DescTSS32Busy is a busy 32-bit TSS (type 11) at base 0, limit 0x67,
	// the TR the PVH ABI asks for.
	DescTSS32Busy uint64 = 0x00008b0000000067
)

// CR0, CR4 and EFER bits the loaders set (SDM Vol. 3A §2.5, §2.2.1).
const (
	CR0PE   = 1 << 0
	CR0ET   = 1 << 4
	CR0PG   = 1 << 31
	CR4PAE  = 1 << 5
	EFERLME = 1 << 8
	EFERLMA = 1 << 10
)

// WriteGDT writes gdt at base.
func WriteGDT(mem Memory, base uint64, gdt []uint64) error {
	b := make([]byte, 8*len(gdt))
	for i, d := range gdt {
		binary.LittleEndian.PutUint64(b[8*i:], d)
	}
	if err := mem.Write(base, b); err != nil {
		return fmt.Errorf("GDT at %#x: %w", base, err)
	}
	return nil
}

var zeros [64 << 10]byte

// Zero clears n bytes of guest memory at gpa.
func Zero(mem Memory, gpa, n uint64) error {
	for n > 0 {
		c := min(n, uint64(len(zeros)))
		if err := mem.Write(gpa, zeros[:c]); err != nil {
			return err
		}
		gpa, n = gpa+c, n-c
	}
	return nil
}
