// Package linux loads a Linux bzImage through the 64-bit boot protocol
// (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"): the zero page
// (struct boot_params, arch/x86/include/uapi/asm/bootparam.h) built from
// the image's setup header, the command line, the initrd, the e820 map,
// the protected-mode kernel at its preferred address, and an entry state
// in 64-bit mode on an identity map with the __BOOT_CS/__BOOT_DS GDT.
package linux

import (
	"encoding/binary"
	"fmt"
)

// Setup header fields (boot.rst, "The Real-Mode Kernel Header"), at their
// offsets in the image and in the zero page.
const (
	OffSetupSects      = 0x1f1
	OffBootFlag        = 0x1fe
	OffJump            = 0x200
	OffHeader          = 0x202
	OffVersion         = 0x206
	OffTypeOfLoader    = 0x210
	OffLoadFlags       = 0x211
	OffRamdiskImage    = 0x218
	OffRamdiskSize     = 0x21c
	OffHeapEndPtr      = 0x224
	OffCmdLinePtr      = 0x228
	OffInitrdAddrMax   = 0x22c
	OffKernelAlignment = 0x230
	OffRelocatable     = 0x234
	OffXLoadFlags      = 0x236
	OffCmdlineSize     = 0x238
	OffPrefAddress     = 0x258
	OffInitSize        = 0x260
)

// Other zero-page fields (Documentation/arch/x86/zero-page.rst).
const (
	OffACPIRSDPAddr = 0x070
	OffE820Entries  = 0x1e8
	OffSentinel     = 0x1ef
	OffE820Table    = 0x2d0
	E820Max         = 128 // E820_MAX_ENTRIES_ZEROPAGE
	E820EntrySize   = 20  // addr u64, size u64, type u32
	ZeroPageSize    = 0x1000
	// setupHeaderMax: struct boot_params has the setup header from 0x1f1
	// and edd_mbr_sig_buffer from 0x290.
	setupHeaderMax = 0x290
)

// Magic values and flags.
const (
	BootFlag   = 0xaa55
	HeaderHdrS = 0x53726448 // "HdrS"
	// MinVersion is the oldest boot protocol walkvm loads: 2.12 is where
	// xloadflags says whether the kernel has the 64-bit entry point
	// (XLF_KERNEL_64); it also has pref_address and init_size (2.10).
	MinVersion = 0x020c

	TypeOfLoaderUndefined = 0xff // "undefined" boot loader ID

	LoadedHigh = 1 << 0 // loadflags: protected-mode code at 0x100000 or above
	KeepSegs   = 1 << 6
	CanUseHeap = 1 << 7

	XLFKernel64 = 1 << 0 // xloadflags: 64-bit entry at the load address + 0x200

	// Entry64 is the 64-bit entry point's offset in the protected-mode code.
	Entry64 = 0x200
)

// Header is the part of a bzImage's setup header the loader uses.
type Header struct {
	SetupSects      int // as the protocol reads it: 0 means 4
	Version         uint16
	LoadFlags       uint8
	InitrdAddrMax   uint32
	KernelAlignment uint32
	Relocatable     bool
	XLoadFlags      uint16
	CmdlineSize     uint32
	PrefAddress     uint64
	InitSize        uint32
	// HeaderEnd is the end of the setup header: 0x202 + the byte at 0x201.
	HeaderEnd int
	// PMOffset is the file offset of the protected-mode code:
	// (SetupSects+1)*512.
	PMOffset int
}

// IsBzImage reports whether b has the boot flag 0xAA55 at 0x1fe and "HdrS"
// at 0x202.
func IsBzImage(b []byte) bool {
	le := binary.LittleEndian
	return len(b) >= OffHeader+4 && le.Uint16(b[OffBootFlag:]) == BootFlag && le.Uint32(b[OffHeader:]) == HeaderHdrS
}

// ParseHeader reads and checks the setup header of bzImage b.
func ParseHeader(b []byte) (*Header, error) {
	if !IsBzImage(b) {
		return nil, fmt.Errorf("bzImage: no boot flag 0xaa55 at 0x1fe and \"HdrS\" at 0x202")
	}
	if len(b) < OffInitSize+4 {
		return nil, fmt.Errorf("bzImage: file of %d bytes ends inside the setup header", len(b))
	}
	le := binary.LittleEndian
	h := &Header{
		SetupSects:      int(b[OffSetupSects]),
		Version:         le.Uint16(b[OffVersion:]),
		LoadFlags:       b[OffLoadFlags],
		InitrdAddrMax:   le.Uint32(b[OffInitrdAddrMax:]),
		KernelAlignment: le.Uint32(b[OffKernelAlignment:]),
		Relocatable:     b[OffRelocatable] != 0,
		XLoadFlags:      le.Uint16(b[OffXLoadFlags:]),
		CmdlineSize:     le.Uint32(b[OffCmdlineSize:]),
		PrefAddress:     le.Uint64(b[OffPrefAddress:]),
		InitSize:        le.Uint32(b[OffInitSize:]),
		HeaderEnd:       OffHeader + int(b[OffJump+1]),
	}
	if h.SetupSects == 0 {
		h.SetupSects = 4
	}
	h.PMOffset = (h.SetupSects + 1) * 512
	if h.Version < MinVersion {
		return nil, fmt.Errorf("bzImage: boot protocol %d.%02d at 0x206, walkvm needs %d.%02d or later (xloadflags with the 64-bit entry point)", h.Version>>8, h.Version&0xff, MinVersion>>8, MinVersion&0xff)
	}
	if h.XLoadFlags&XLFKernel64 == 0 {
		return nil, fmt.Errorf("bzImage: xloadflags %#x at 0x236 lacks XLF_KERNEL_64: no 64-bit entry point", h.XLoadFlags)
	}
	if h.LoadFlags&LoadedHigh == 0 {
		return nil, fmt.Errorf("bzImage: loadflags %#x at 0x211 lacks LOADED_HIGH: a zImage, which loads at 0x10000", h.LoadFlags)
	}
	if h.HeaderEnd > setupHeaderMax || h.HeaderEnd > len(b) {
		return nil, fmt.Errorf("bzImage: setup header end 0x202 + byte at 0x201 = %#x is past %#x or the %d-byte file", h.HeaderEnd, setupHeaderMax, len(b))
	}
	if h.HeaderEnd < OffInitSize+4 {
		return nil, fmt.Errorf("bzImage: setup header ends at %#x (0x202 + byte at 0x201), before init_size at 0x260 that protocol %d.%02d has", h.HeaderEnd, h.Version>>8, h.Version&0xff)
	}
	if h.PMOffset >= len(b) {
		return nil, fmt.Errorf("bzImage: protected-mode code at (setup_sects %d + 1) * 512 = %#x is past the end of the %d-byte file", h.SetupSects, h.PMOffset, len(b))
	}
	if h.Relocatable && (h.KernelAlignment == 0 || h.KernelAlignment&(h.KernelAlignment-1) != 0) {
		return nil, fmt.Errorf("bzImage: kernel_alignment %#x at 0x230 is not a power of two", h.KernelAlignment)
	}
	return h, nil
}
