package acpi

import (
	"encoding/binary"
	"strings"
	"testing"

	"walkvm/boot/internal/boottest"
	"walkvm/devices"
	"walkvm/memory"
)

// machine is guest memory with the BIOS area backed.
func machine(t *testing.T) *boottest.Mem { return boottest.NewMem(t, 4<<20) }

func sum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

// find follows kvm-unit-tests' lib/acpi.c: scan 0xE0000-0xFFFFF in
// 16-byte steps for "RSD PTR ", then the RSDT's entries for sig. It also
// checks every checksum on the way.
func find(t *testing.T, m *boottest.Mem, sig string) uint64 {
	t.Helper()
	for a := uint64(0xe0000); a < 0x100000; a += 16 {
		if string(m.Bytes(a, 8)) != "RSD PTR " {
			continue
		}
		if sum(m.Bytes(a, 20)) != 0 {
			t.Fatalf("RSDP checksum")
		}
		rsdt := uint64(m.U32(a + 16))
		n := m.U32(rsdt + 4)
		if string(m.Bytes(rsdt, 4)) != "RSDT" || sum(m.Bytes(rsdt, uint64(n))) != 0 {
			t.Fatalf("RSDT at %#x", rsdt)
		}
		for e := rsdt + 36; e < rsdt+uint64(n); e += 4 {
			tb := uint64(m.U32(e))
			if string(m.Bytes(tb, 4)) == sig {
				if sum(m.Bytes(tb, uint64(m.U32(tb+4)))) != 0 {
					t.Fatalf("%s checksum", sig)
				}
				return tb
			}
		}
		return 0
	}
	t.Fatal("no RSDP in 0xE0000-0xFFFFF")
	return 0
}

func TestWrite(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		base uint64
	}{
		{"1 CPU", Config{CPUs: 1}, DefaultBase},
		{"4 CPUs at 0xf5000, own PM ports", Config{CPUs: 4, PMTimerPort: 0xb008, PM1aEventPort: 0xb000, PM1aControlPort: 0xb004, IRQ0OnPin0: true}, 0xf5000},
		{"254 CPUs", Config{CPUs: 254}, DefaultBase},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := machine(t)
			tb, r, err := Write(m, c.base, 0x10000, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tb.RSDP != c.base || r.Base != c.base || r.Size != uint64(len(tb.Bytes)) {
				t.Fatalf("tables %+v range %v", tb, r)
			}
			fadt := find(t, m, "FACP")
			if fadt != tb.FADT {
				t.Fatalf("FACP at %#x, built at %#x", fadt, tb.FADT)
			}
			port := c.cfg.PMTimerPort
			if port == 0 {
				port = devices.PMTimerPort
			}
			if got := m.U32(fadt + OffFADTPMTmrBlk); got != uint32(port) || m.Bytes(fadt+OffFADTPMTmrLen, 1)[0] != 4 {
				t.Errorf("pm_tmr_blk %#x", got)
			}
			if m.U32(fadt+OffFADTFlags)&(1<<8) != 0 {
				t.Errorf("TMR_VAL_EXT set for a 24-bit timer")
			}
			if got := m.U32(fadt + OffFADTPM1aEvt); got != uint32(c.cfg.PM1aEventPort) {
				t.Errorf("PM1a_EVT_BLK %#x", got)
			}
			dsdt := uint64(m.U32(fadt + OffFADTDSDT))
			if string(m.Bytes(dsdt, 4)) != "DSDT" || sum(m.Bytes(dsdt, uint64(m.U32(dsdt+4)))) != 0 {
				t.Errorf("DSDT at %#x", dsdt)
			}
			madt := find(t, m, "APIC")
			if madt == 0 || m.U32(madt+36) != 0xfee00000 {
				t.Fatalf("MADT at %#x", madt)
			}
			var lapics []uint8
			var ioapic uint32
			overrides := map[uint8]uint32{}
			end := madt + uint64(m.U32(madt+4))
			for e := madt + 44; e < end; {
				h := m.Bytes(e, 2)
				body := m.Bytes(e, uint64(h[1]))
				switch h[0] {
				case 0:
					if binary.LittleEndian.Uint32(body[4:])&1 != 0 {
						lapics = append(lapics, body[3])
					}
				case 1:
					ioapic = binary.LittleEndian.Uint32(body[4:])
				case 2:
					overrides[body[3]] = binary.LittleEndian.Uint32(body[4:])
				}
				if h[1] == 0 {
					t.Fatal("MADT entry of length 0")
				}
				e += uint64(h[1])
			}
			if len(lapics) != c.cfg.CPUs || ioapic != 0xfec00000 {
				t.Errorf("%d local APICs, I/O APIC at %#x", len(lapics), ioapic)
			}
			for i, id := range lapics {
				if int(id) != i {
					t.Errorf("local APIC %d has ID %d", i, id)
				}
			}
			if gsi, ok := overrides[0]; ok == c.cfg.IRQ0OnPin0 || (ok && gsi != 2) {
				t.Errorf("IRQ 0 override %v (GSI %d)", ok, gsi)
			}
			if overrides[9] != 9 {
				t.Errorf("SCI override %v", overrides)
			}
		})
	}
}

func TestWriteRejects(t *testing.T) {
	m := machine(t)
	for _, c := range []struct {
		cfg        Config
		base, room uint64
		want       string
	}{
		{Config{CPUs: 0}, DefaultBase, 0x1000, "0 CPUs"},
		{Config{CPUs: 1}, 0xd0000, 0x1000, "16-byte boundary in 0xe0000-0xfffff"},
		{Config{CPUs: 1}, 0xe0008, 0x1000, "16-byte boundary"},
		{Config{CPUs: 200}, 0xffc00, 0x400, "run past 0x100000"},
		{Config{CPUs: 8}, DefaultBase, 0x40, "of room"},
	} {
		if _, _, err := Write(m, c.base, c.room, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v at %#x: err = %v, want %q", c.cfg, c.base, err, c.want)
		}
	}
	// Without the BIOS area backed, the write fails (memory.RAM's hole).
	hole, err := memory.PCMap(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	plain := boottest.NewMemMap(t, hole)
	if _, _, err := Write(plain.RAM, DefaultBase, 0x10000, Config{CPUs: 1}); err == nil || !strings.Contains(err.Error(), "not in guest RAM") {
		t.Errorf("into the PC hole: err = %v", err)
	}
}

// FuzzBuild: whatever the configuration, Build errs or lays out tables
// that a kvm-unit-tests-style scan finds with every checksum right.
func FuzzBuild(f *testing.F) {
	f.Add(4, uint16(0), uint16(0), uint16(0), uint8(0), false, uint64(DefaultBase))
	f.Fuzz(func(t *testing.T, cpus int, tmr, evt, cnt uint16, sci uint8, pin0 bool, base uint64) {
		cfg := Config{CPUs: cpus, PMTimerPort: tmr, PM1aEventPort: evt, PM1aControlPort: cnt, SCI: sci, IRQ0OnPin0: pin0}
		tb, err := Build(base, cfg)
		if err != nil {
			return
		}
		if tb.RSDP != base || base+uint64(len(tb.Bytes)) > RSDPAreaEnd {
			t.Fatalf("tables at %#x+%d", base, len(tb.Bytes))
		}
		m := machine(t)
		if err := m.Write(base, tb.Bytes); err != nil {
			t.Fatal(err)
		}
		if find(t, m, "FACP") != tb.FADT || find(t, m, "APIC") != tb.MADT {
			t.Fatal("tables not found where Build put them")
		}
	})
}
