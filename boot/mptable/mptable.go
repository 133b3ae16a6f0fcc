// Package mptable builds an Intel MultiProcessor Specification 1.4 table
// (the "_MP_" floating pointer and the "PCMP" configuration table) for N
// CPUs, one ISA bus and one I/O APIC: how Linux finds the CPUs and the
// I/O APIC when ACPI is off (arch/x86/kernel/mpparse.c).
package mptable

import (
	"encoding/binary"
	"fmt"

	"walkvm/boot/loader"
)

// Addresses, versions and table constants (MP spec 1.4, chapter 4).
const (
	LAPICAddr     = 0xfee00000
	IOAPICAddr    = 0xfec00000
	LAPICVersion  = 0x14 // integrated xAPIC
	IOAPICVersion = 0x11 // KVM's in-kernel I/O APIC
	IOAPICPins    = 24
	SpecRev       = 4 // MP spec 1.4

	// Where Linux's smp_scan_config looks for the floating pointer: the
	// last KiB of base memory and the BIOS ROM area.
	EBDABase = loader.EBDA
	EBDAEnd  = 0xa0000
	BIOSBase = 0xf0000
	BIOSEnd  = 0x100000

	MaxCPUs = 254 // APIC IDs 0..N-1 and the I/O APIC's ID N stay below 0xff

	floatingSize = 16
	headerSize   = 44
	cpuSize      = 20
	entrySize    = 8 // bus, I/O APIC, interrupt entries
)

// Entry types and interrupt types (MP spec Tables 4-3, 4-10).
const (
	EntryProcessor = 0
	EntryBus       = 1
	EntryIOAPIC    = 2
	EntryIOIntr    = 3
	EntryLocalIntr = 4

	IntINT    = 0
	IntNMI    = 1
	IntExtINT = 3

	CPUEnabled = 1 << 0
	CPUBoot    = 1 << 1
)

// Config describes the machine the table tells of.
type Config struct {
	CPUs int
	// CPUSignature and FeatureFlags are CPUID leaf 1's EAX and EDX, copied
	// into every processor entry; zero gives family 6 with FPU and APIC.
	CPUSignature, FeatureFlags uint32
	// IRQ0OnPin0 wires ISA IRQ 0 to I/O APIC pin 0, as KVM's default GSI
	// routing does; otherwise IRQ 0 goes to pin 2 as on PCs (and QEMU's
	// routing) and IRQ 2, the PIC cascade, gets no entry.
	IRQ0OnPin0 bool
}

// Size is the size of the floating pointer and configuration table for
// cfg.
func Size(cfg Config) int {
	irqs := 16
	if !cfg.IRQ0OnPin0 {
		irqs--
	}
	return floatingSize + headerSize + cpuSize*cfg.CPUs + entrySize*(2+irqs+2)
}

// Build returns the floating pointer followed by the configuration table,
// for writing at base.
func Build(base uint64, cfg Config) ([]byte, error) {
	if cfg.CPUs < 1 || cfg.CPUs > MaxCPUs {
		return nil, fmt.Errorf("MP table: %d CPUs, want 1 to %d", cfg.CPUs, MaxCPUs)
	}
	if base%16 != 0 {
		return nil, fmt.Errorf("MP table: floating pointer at %#x is not 16-byte aligned", base)
	}
	if !(base >= EBDABase && base+floatingSize <= EBDAEnd) && !(base >= BIOSBase && base+floatingSize <= BIOSEnd) {
		return nil, fmt.Errorf("MP table: floating pointer at %#x is outside %#x-%#x and %#x-%#x, where Linux looks for it", base, EBDABase, EBDAEnd-1, BIOSBase, BIOSEnd-1)
	}
	sig, feat := cfg.CPUSignature, cfg.FeatureFlags
	if sig == 0 && feat == 0 {
		sig, feat = 0x600, 1<<0|1<<9 // family 6; FPU, APIC
	}
	le := binary.LittleEndian
	b := make([]byte, floatingSize+headerSize, Size(cfg))

	// Configuration table entries.
	entries := 0
	ioapicID := uint8(cfg.CPUs)
	for i := 0; i < cfg.CPUs; i++ {
		flags := uint8(CPUEnabled)
		if i == 0 {
			flags |= CPUBoot
		}
		e := []byte{EntryProcessor, uint8(i), LAPICVersion, flags}
		e = le.AppendUint32(e, sig)
		e = le.AppendUint32(e, feat)
		b = append(append(b, e...), make([]byte, 8)...)
		entries++
	}
	b = append(b, EntryBus, 0, 'I', 'S', 'A', ' ', ' ', ' ')
	b = le.AppendUint32(append(b, EntryIOAPIC, ioapicID, IOAPICVersion, 1), IOAPICAddr)
	entries += 2
	for irq := uint8(0); irq < 16; irq++ {
		pin := irq
		if !cfg.IRQ0OnPin0 {
			if irq == 2 {
				continue
			}
			if irq == 0 {
				pin = 2
			}
		}
		// Polarity and trigger 0: as the ISA bus has them (edge, high).
		b = append(b, EntryIOIntr, IntINT, 0, 0, 0, irq, ioapicID, pin)
		entries++
	}
	b = append(b, EntryLocalIntr, IntExtINT, 0, 0, 0, 0, 0, 0) // PIC on the BSP's LINT0
	b = append(b, EntryLocalIntr, IntNMI, 0, 0, 0, 0, 0xff, 1) // NMI on every LINT1
	entries += 2

	// Floating pointer.
	fp := b[:floatingSize]
	copy(fp, "_MP_")
	le.PutUint32(fp[4:], uint32(base+floatingSize))
	fp[8], fp[9] = 1, SpecRev // length in 16-byte units, revision
	fp[10] = checksum(fp)

	// Header.
	h := b[floatingSize:]
	copy(h, "PCMP")
	le.PutUint16(h[4:], uint16(len(b)-floatingSize))
	h[6] = SpecRev
	copy(h[8:16], "WALKVM  ")
	copy(h[16:28], "walkvm      ")
	le.PutUint16(h[34:], uint16(entries))
	le.PutUint32(h[36:], LAPICAddr)
	h[7] = checksum(h)
	return b, nil
}

// Write builds the table for cfg and writes it at base, which must leave
// room bytes for it; it returns the range written.
func Write(mem loader.Memory, base, room uint64, cfg Config) (loader.Range, error) {
	b, err := Build(base, cfg)
	if err != nil {
		return loader.Range{}, err
	}
	if uint64(len(b)) > room {
		return loader.Range{}, fmt.Errorf("MP table for %d CPUs is %d bytes, %d bytes of room at %#x", cfg.CPUs, len(b), room, base)
	}
	if err := mem.Write(base, b); err != nil {
		return loader.Range{}, fmt.Errorf("MP table at %#x: %w", base, err)
	}
	return loader.Range{Base: base, Size: uint64(len(b)), What: "MP table"}, nil
}

// checksum is the byte that makes b sum to zero (b's own checksum byte
// zero when called).
func checksum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return -s
}
