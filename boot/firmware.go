package boot

import (
	"fmt"

	"walkvm/boot/acpi"
	"walkvm/boot/mptable"
	"walkvm/memory"
)

// Where walkvm puts the firmware tables, in firmware memory
// (memory.FirmwareMap): the ACPI tables from the start of the area a
// kernel scans for the RSDP, the MP table at the start of the BIOS ROM
// area, which Linux scans for its floating pointer.
const (
	RSDPBase     = acpi.DefaultBase // 0xe0000
	ACPIRoom     = 0x10000
	MPTableBase  = mptable.BIOSBase // 0xf0000
	MPTableRoom  = 0x10000
	acpiTables   = "ACPI tables"
	mpTableClaim = "MP table"
)

// Firmware is what walkvm leaves in firmware memory for a kernel, as a PC's
// firmware would:
//
//   - the ACPI tables (RSDP, RSDT, FADT with the PM timer block at
//     devices.PMTimerPort, an empty DSDT, a MADT with the CPUs and the I/O
//     APIC): kvm-unit-tests finds the RSDP by scanning 0xe0000-0xfffff and
//     reads the FADT's PM_TMR_BLK; Linux reads them unless acpi=off;
//   - the MP table, for one CPU too (as SeaBIOS and QEMU's qboot write
//     it): how Linux finds the CPUs and the I/O APIC with acpi=off. With
//     its local APIC enabled and no table, Linux sets up virtual-wire mode
//     and, under KVM's irqchip, gets no timer interrupts: its clock stops
//     and the boot hangs.
//
// Both describe KVM's default interrupt routing, where ISA IRQ 0 (the
// in-kernel PIT) is I/O APIC pin 0 (IRQ0OnPin0): walkvm sets no routing of
// its own.
type Firmware struct {
	CPUs int
	// CPUSignature and FeatureFlags are CPUID leaf 1's EAX and EDX, for
	// the MP table's processor entries (0: a default).
	CPUSignature, FeatureFlags uint32
}

// mpTable says whether the MP table is written.
func (f Firmware) mpTable() bool { return f.CPUs >= 1 }

// Plan claims the tables' memory in mm.
func (f Firmware) Plan(mm *memory.Map) error {
	t, err := acpi.Build(RSDPBase, f.acpi())
	if err != nil {
		return err
	}
	if err := mm.Claim(acpiTables, RSDPBase, uint64(len(t.Bytes))); err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	if f.mpTable() {
		if err := mm.Claim(mpTableClaim, MPTableBase, uint64(mptable.Size(f.mp()))); err != nil {
			return fmt.Errorf("firmware: %w", err)
		}
	}
	return nil
}

// Write writes the tables into ram and lists what it wrote.
func (f Firmware) Write(ram *memory.RAM) ([]memory.Range, error) {
	_, r, err := acpi.Write(ram, RSDPBase, ACPIRoom, f.acpi())
	if err != nil {
		return nil, err
	}
	out := []memory.Range{{Name: acpiTables, Start: r.Base, Size: r.Size, Kind: memory.KindRAM}}
	if f.mpTable() {
		r, err := mptable.Write(ram, MPTableBase, MPTableRoom, f.mp())
		if err != nil {
			return nil, err
		}
		out = append(out, memory.Range{Name: mpTableClaim, Start: r.Base, Size: r.Size, Kind: memory.KindRAM})
	}
	return out, nil
}

func (f Firmware) acpi() acpi.Config { return acpi.Config{CPUs: f.CPUs, IRQ0OnPin0: true} }

func (f Firmware) mp() mptable.Config {
	return mptable.Config{CPUs: f.CPUs, CPUSignature: f.CPUSignature, FeatureFlags: f.FeatureFlags, IRQ0OnPin0: true}
}

// WithFirmware is l on a machine whose firmware memory holds f's tables:
// Plan claims them before l plans, Load writes them before l loads.
func WithFirmware(f Firmware, l Loader) Loader { return withFirmware{f, l} }

type withFirmware struct {
	fw Firmware
	l  Loader
}

// Needs passes on what the image needs.
func (w withFirmware) Needs() Needs { return NeedsOf(w.l) }

// Plan implements Loader.
func (w withFirmware) Plan(mm *memory.Map) error {
	if err := w.fw.Plan(mm); err != nil {
		return err
	}
	return w.l.Plan(mm)
}

// Load implements Loader.
func (w withFirmware) Load(ram *memory.RAM) (*Entry, error) {
	tables, err := w.fw.Write(ram)
	if err != nil {
		return nil, err
	}
	e, err := w.l.Load(ram)
	if err != nil {
		return nil, err
	}
	e.Written = append(tables, e.Written...)
	return e, nil
}
