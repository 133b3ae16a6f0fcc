// Package acpi builds a minimal set of ACPI tables for a PC-like guest:
// RSDP (ACPI 1.0 form) → RSDT → FADT (with the PM timer block) → an empty
// DSDT, and a MADT with N local APICs, the I/O APIC and the ISA interrupt
// overrides. kvm-unit-tests finds the RSDP by scanning 0xE0000-0xFFFFF
// and reads the FADT's PM_TMR_BLK (vmexit's inl_from_pmtimer); Linux can
// be handed the RSDP's address (boot_params.acpi_rsdp_addr, PVH
// rsdp_paddr). Nothing here describes sleep states: kvm-unit-tests' s3
// test needs a FACS and \_S3 and is not served.
//
// Reference: ACPI Specification 6.5, §5.2 (tables), §5.2.9 (FADT),
// §5.2.12 (MADT).
package acpi

import (
	"encoding/binary"
	"fmt"

	"walkvm/boot/loader"
	"walkvm/boot/mptable"
	"walkvm/devices"
)

// Where the RSDP may go: a BIOS leaves it on a 16-byte boundary in
// 0xE0000-0xFFFFF (ACPI 6.5 §5.2.5.1).
const (
	RSDPAreaStart = 0xe0000
	RSDPAreaEnd   = 0x100000
	DefaultBase   = RSDPAreaStart
)

// Table sizes and fields.
const (
	rsdpSize   = 20 // ACPI 1.0 RSDP
	headerSize = 36
	fadtSize   = 116 // FADT revision 1
	DefaultSCI = 9

	OffFADTDSDT     = 40
	OffFADTSCI      = 46
	OffFADTSMICmd   = 48
	OffFADTPM1aEvt  = 56
	OffFADTPM1aCnt  = 64
	OffFADTPMTmrBlk = 76
	OffFADTPM1EvtLn = 88
	OffFADTPM1CntLn = 89
	OffFADTPMTmrLen = 91
	OffFADTFlags    = 112

	// FADT flags: WBINVD works; no fixed power or sleep button. TMR_VAL_EXT
	// (bit 8) stays clear: the PM timer is 24 bits (devices.PMTimer).
	fadtFlags = 1<<0 | 1<<4 | 1<<5

	madtPCATCompat = 1 // dual 8259s present
	OEMID          = "WALKVM"
	OEMTableID     = "WALKVM  "
)

// Config describes the machine the tables tell of.
type Config struct {
	CPUs int
	// PMTimerPort is PM_TMR_BLK; 0 gives devices.PMTimerPort.
	PMTimerPort uint16
	// PM1aEventPort and PM1aControlPort are PM1a_EVT_BLK (4 bytes) and
	// PM1a_CNT_BLK (2 bytes); 0 leaves them out (walkvm has no ACPI PM1
	// registers: Linux runs with acpi=off).
	PM1aEventPort, PM1aControlPort uint16
	// SCI is the SCI's ISA IRQ; 0 gives 9.
	SCI uint8
	// IRQ0OnPin0: as mptable.Config (no IRQ0→GSI2 override).
	IRQ0OnPin0 bool
}

// Tables is what Build laid out.
type Tables struct {
	Bytes                        []byte // to be written at RSDP
	RSDP, RSDT, FADT, DSDT, MADT uint64
}

// Build lays the tables out from base, the RSDP first.
func Build(base uint64, cfg Config) (*Tables, error) {
	if cfg.CPUs < 1 || cfg.CPUs > mptable.MaxCPUs {
		return nil, fmt.Errorf("ACPI tables: %d CPUs, want 1 to %d", cfg.CPUs, mptable.MaxCPUs)
	}
	if base%16 != 0 || base < RSDPAreaStart || base+rsdpSize > RSDPAreaEnd {
		return nil, fmt.Errorf("ACPI RSDP at %#x: want a 16-byte boundary in %#x-%#x", base, RSDPAreaStart, RSDPAreaEnd-1)
	}
	if cfg.PMTimerPort == 0 {
		cfg.PMTimerPort = devices.PMTimerPort
	}
	if cfg.SCI == 0 {
		cfg.SCI = DefaultSCI
	}
	le := binary.LittleEndian
	t := &Tables{RSDP: base}
	var b loader.Block
	rsdp := b.Add(rsdpSize, 16)
	rsdt := b.Add(headerSize+4*2, 16)
	fadt := b.Add(fadtSize, 16)
	dsdt := b.Add(headerSize, 16)
	madtBody := madt(cfg)
	madtOff := b.Add(uint64(len(madtBody)), 16)
	if base+b.Size() > RSDPAreaEnd {
		return nil, fmt.Errorf("ACPI tables for %d CPUs (%d bytes at %#x) run past %#x", cfg.CPUs, b.Size(), base, RSDPAreaEnd)
	}
	t.RSDT, t.FADT, t.DSDT, t.MADT = base+rsdt, base+fadt, base+dsdt, base+madtOff
	buf := b.Bytes()

	// RSDT: the FADT and the MADT.
	r := buf[rsdt : rsdt+headerSize+8]
	header(r, "RSDT", 1)
	le.PutUint32(r[headerSize:], uint32(t.FADT))
	le.PutUint32(r[headerSize+4:], uint32(t.MADT))
	r[9] = checksum(r)

	// FADT.
	f := buf[fadt : fadt+fadtSize]
	header(f, "FACP", 1)
	le.PutUint32(f[OffFADTDSDT:], uint32(t.DSDT))
	le.PutUint16(f[OffFADTSCI:], uint16(cfg.SCI))
	// SMI_CMD 0: ACPI mode is always on; there is nothing to switch.
	if cfg.PM1aEventPort != 0 {
		le.PutUint32(f[OffFADTPM1aEvt:], uint32(cfg.PM1aEventPort))
		f[OffFADTPM1EvtLn] = 4
	}
	if cfg.PM1aControlPort != 0 {
		le.PutUint32(f[OffFADTPM1aCnt:], uint32(cfg.PM1aControlPort))
		f[OffFADTPM1CntLn] = 2
	}
	le.PutUint32(f[OffFADTPMTmrBlk:], uint32(cfg.PMTimerPort))
	f[OffFADTPMTmrLen] = 4
	le.PutUint32(f[OffFADTFlags:], fadtFlags)
	f[9] = checksum(f)

	// DSDT: a header and no AML.
	d := buf[dsdt : dsdt+headerSize]
	header(d, "DSDT", 1)
	d[9] = checksum(d)

	// MADT.
	m := buf[madtOff : madtOff+uint64(len(madtBody))]
	copy(m, madtBody)
	m[9] = checksum(m)

	// RSDP, ACPI 1.0 form (revision 0, RSDT only).
	p := buf[rsdp : rsdp+rsdpSize]
	copy(p, "RSD PTR ")
	copy(p[9:15], OEMID)
	le.PutUint32(p[16:], uint32(t.RSDT))
	p[8] = checksum(p)

	t.Bytes = buf
	return t, nil
}

// madt returns the MADT with its checksum zero.
func madt(cfg Config) []byte {
	le := binary.LittleEndian
	b := make([]byte, headerSize+8)
	le.PutUint32(b[headerSize:], mptable.LAPICAddr)
	le.PutUint32(b[headerSize+4:], madtPCATCompat)
	for i := 0; i < cfg.CPUs; i++ {
		// Processor Local APIC: processor UID, APIC ID, enabled.
		b = le.AppendUint32(append(b, 0, 8, uint8(i), uint8(i)), 1)
	}
	// I/O APIC: ID (after the CPUs', as in the MP table), address, GSI base 0.
	b = le.AppendUint32(le.AppendUint32(append(b, 1, 12, uint8(cfg.CPUs), 0), mptable.IOAPICAddr), 0)
	if !cfg.IRQ0OnPin0 {
		// Interrupt Source Override: ISA IRQ 0 → GSI 2, conforming.
		b = le.AppendUint16(le.AppendUint32(append(b, 2, 10, 0, 0), 2), 0)
	}
	// The SCI: level-triggered, active high (flags 0b1101).
	b = le.AppendUint16(le.AppendUint32(append(b, 2, 10, 0, cfg.SCI), uint32(cfg.SCI)), 0xd)
	// Local APIC NMI: every processor, LINT1.
	b = append(le.AppendUint16(append(b, 4, 6, 0xff), 0), 1)
	header(b, "APIC", 3)
	return b
}

// header fills a table's header (signature, length, revision, OEM fields);
// the checksum (offset 9) is left zero.
func header(b []byte, sig string, rev uint8) {
	le := binary.LittleEndian
	copy(b, sig)
	le.PutUint32(b[4:], uint32(len(b)))
	b[8] = rev
	copy(b[10:16], OEMID)
	copy(b[16:24], OEMTableID)
	le.PutUint32(b[24:], 1)
	copy(b[28:32], "WKVM")
	le.PutUint32(b[32:], 1)
}

// Write builds the tables for cfg at base and writes them; room is how
// many bytes from base the caller set aside.
func Write(mem loader.Memory, base, room uint64, cfg Config) (*Tables, loader.Range, error) {
	t, err := Build(base, cfg)
	if err != nil {
		return nil, loader.Range{}, err
	}
	if uint64(len(t.Bytes)) > room {
		return nil, loader.Range{}, fmt.Errorf("ACPI tables for %d CPUs are %d bytes, %d bytes of room at %#x", cfg.CPUs, len(t.Bytes), room, base)
	}
	if err := mem.Write(base, t.Bytes); err != nil {
		return nil, loader.Range{}, fmt.Errorf("ACPI tables at %#x: %w", base, err)
	}
	return t, loader.Range{Base: base, Size: uint64(len(t.Bytes)), What: "ACPI tables"}, nil
}

func checksum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return -s
}
