package mptable

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"walkvm/boot/internal/boottest"
	"walkvm/memory"
)

type parsed struct {
	cpus     []uint8 // APIC IDs, BSP first
	bsp      int
	ioapicID uint8
	ioapic   uint32
	isaBus   bool
	irqPin   map[uint8]uint8
	lint     [][2]uint8 // (type, LINTn)
}

// parse reads the table the way Linux's mpparse.c does: smp_scan_config
// (signature, checksum over length*16, revision 1 or 4), smp_check_mpc
// (signature, checksum over the base table, revision, local APIC address),
// then smp_read_mpc's walk over entries of known types and sizes.
func parse(m *boottest.Mem, fpAddr uint64) (parsed, error) {
	le := binary.LittleEndian
	fp := m.Bytes(fpAddr, 16)
	if string(fp[:4]) != "_MP_" || fp[8] != 1 || (fp[9] != 1 && fp[9] != 4) || sum(fp) != 0 {
		return parsed{}, fmt.Errorf("floating pointer %x", fp)
	}
	if fp[11] != 0 {
		return parsed{}, fmt.Errorf("feature1 %d: a default configuration", fp[11])
	}
	phys := uint64(le.Uint32(fp[4:]))
	h := m.Bytes(phys, 44)
	length := uint64(le.Uint16(h[4:]))
	t := m.Bytes(phys, length)
	if string(h[:4]) != "PCMP" || sum(t) != 0 || (h[6] != 1 && h[6] != 4) || le.Uint32(h[36:]) == 0 {
		return parsed{}, fmt.Errorf("config header %x (sum %d)", h, sum(t))
	}
	p := parsed{irqPin: map[uint8]uint8{}, bsp: -1}
	n := 0
	for off := uint64(44); off < length; n++ {
		switch t[off] {
		case EntryProcessor:
			if t[off+3]&CPUEnabled != 0 {
				if t[off+3]&CPUBoot != 0 {
					p.bsp = len(p.cpus)
				}
				p.cpus = append(p.cpus, t[off+1])
			}
			off += 20
		case EntryBus:
			p.isaBus = p.isaBus || strings.HasPrefix(string(t[off+2:off+8]), "ISA")
			off += 8
		case EntryIOAPIC:
			if t[off+3]&1 != 0 {
				p.ioapicID, p.ioapic = t[off+1], le.Uint32(t[off+4:])
			}
			off += 8
		case EntryIOIntr:
			if t[off+1] != IntINT || t[off+6] != p.ioapicID {
				return p, fmt.Errorf("I/O interrupt entry %x", t[off:off+8])
			}
			if _, dup := p.irqPin[t[off+5]]; dup {
				return p, fmt.Errorf("IRQ %d twice", t[off+5])
			}
			p.irqPin[t[off+5]] = t[off+7]
			off += 8
		case EntryLocalIntr:
			p.lint = append(p.lint, [2]uint8{t[off+1], t[off+7]})
			off += 8
		default:
			return p, fmt.Errorf("unknown entry type %d at %#x", t[off], off)
		}
		if off > length {
			return p, fmt.Errorf("entries run past the table length %d", length)
		}
	}
	if n != int(le.Uint16(h[34:])) {
		return p, fmt.Errorf("%d entries, header says %d", n, le.Uint16(h[34:]))
	}
	return p, nil
}

func sum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

func TestWrite(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		base uint64
	}{
		{Config{CPUs: 1}, EBDABase},
		{Config{CPUs: 4, CPUSignature: 0x806f8, FeatureFlags: 0x178bfbff}, EBDABase},
		{Config{CPUs: 40, IRQ0OnPin0: true}, EBDABase},
		{Config{CPUs: MaxCPUs}, BIOSBase},
	} {
		t.Run(fmt.Sprintf("%d CPUs at %#x", c.cfg.CPUs, c.base), func(t *testing.T) {
			m := boottest.NewMem(t, 8<<20)
			room := uint64(EBDAEnd - EBDABase)
			if c.base == BIOSBase {
				room = BIOSEnd - BIOSBase
			}
			r, err := Write(m, c.base, room, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Base != c.base || r.Size != uint64(Size(c.cfg)) {
				t.Fatalf("range %v, size %d", r, Size(c.cfg))
			}
			p, err := parse(m, c.base)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.cpus) != c.cfg.CPUs || p.bsp != 0 || p.cpus[0] != 0 {
				t.Fatalf("cpus %v bsp %d", p.cpus, p.bsp)
			}
			for i, id := range p.cpus {
				if int(id) != i {
					t.Fatalf("CPU %d has APIC ID %d", i, id)
				}
			}
			if p.ioapicID != uint8(c.cfg.CPUs) || p.ioapic != IOAPICAddr || !p.isaBus {
				t.Fatalf("I/O APIC %d at %#x, ISA bus %v", p.ioapicID, p.ioapic, p.isaBus)
			}
			for irq := uint8(0); irq < 16; irq++ {
				pin, ok := p.irqPin[irq]
				want := irq
				switch {
				case !c.cfg.IRQ0OnPin0 && irq == 0:
					want = 2
				case !c.cfg.IRQ0OnPin0 && irq == 2:
					if ok {
						t.Errorf("IRQ 2 (cascade) has an entry with pin 2 taken by IRQ 0")
					}
					continue
				}
				if !ok || pin != want {
					t.Errorf("IRQ %d -> pin %d (%v), want %d", irq, pin, ok, want)
				}
			}
			if len(p.lint) != 2 || p.lint[0] != [2]uint8{IntExtINT, 0} || p.lint[1] != [2]uint8{IntNMI, 1} {
				t.Errorf("local interrupts %v", p.lint)
			}
			if c.cfg.CPUSignature != 0 {
				if got := m.U32(c.base + 16 + 44 + 4); got != c.cfg.CPUSignature {
					t.Errorf("CPU signature %#x", got)
				}
			}
		})
	}
}

func TestWriteRejects(t *testing.T) {
	hole, err := memory.PCMap(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	m := boottest.NewMemMap(t, hole)
	for _, c := range []struct {
		cfg        Config
		base, room uint64
		want       string
	}{
		{Config{CPUs: 0}, EBDABase, 1024, "0 CPUs"},
		{Config{CPUs: 255}, BIOSBase, 0x10000, "255 CPUs"},
		{Config{CPUs: 1}, EBDABase + 8, 1024, "not 16-byte aligned"},
		{Config{CPUs: 1}, 0x80000, 1024, "where Linux looks"},
		{Config{CPUs: 41}, EBDABase, 1024, "1032 bytes, 1024 bytes of room"},
		{Config{CPUs: 2}, BIOSBase, 0x10000, "not in guest RAM"},
	} {
		// memory.RAM itself: a write into the PC hole (a machine without
		// the BIOS area backed) fails.
		if _, err := Write(m.RAM, c.base, c.room, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v at %#x: err = %v, want %q", c.cfg, c.base, err, c.want)
		}
	}
}

// FuzzBuild: every table Build accepts reads back through the Linux-like
// parser with the CPUs asked for; everything else is an error.
func FuzzBuild(f *testing.F) {
	f.Add(4, uint32(0x806f8), uint32(0x178bfbff), false, uint64(EBDABase))
	f.Fuzz(func(t *testing.T, cpus int, sig, feat uint32, pin0 bool, base uint64) {
		cfg := Config{CPUs: cpus, CPUSignature: sig, FeatureFlags: feat, IRQ0OnPin0: pin0}
		b, err := Build(base, cfg)
		if err != nil {
			return
		}
		if len(b) != Size(cfg) {
			t.Fatalf("%d bytes, Size says %d", len(b), Size(cfg))
		}
		m := boottest.NewMem(t, 4<<20)
		if base+uint64(len(b)) > BIOSEnd || (base < EBDAEnd && base+uint64(len(b)) > EBDAEnd) {
			return
		}
		if err := m.Write(base, b); err != nil {
			t.Fatal(err)
		}
		p, err := parse(m, base)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.cpus) != cpus {
			t.Fatalf("%d CPUs read back, %d written", len(p.cpus), cpus)
		}
	})
}
