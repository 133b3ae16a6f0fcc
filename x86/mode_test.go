package x86

import "testing"

func TestModeOf(t *testing.T) {
	const pe, pg = CR0PE, CR0PE | CR0PG
	const lma = EFERLME | EFERLMA
	for _, c := range []struct {
		cr0, efer, rflags uint64
		l, d              bool
		want              Mode
		cpl               uint8 // with SS.DPL = 2
		bits              uint8
	}{
		{0, 0, 0, false, false, ModeReal, 0, 16},
		{0, 0, FlagVM, false, true, ModeReal, 0, 16}, // VM and CS.D mean nothing in real mode
		{pe, 0, 0, false, false, ModeProtected16, 2, 16},
		{pe, 0, 0, false, true, ModeProtected32, 2, 32},
		{pg, 0, 0, false, true, ModeProtected32, 2, 32},
		{pe, 0, FlagVM, false, true, ModeVM86, 3, 16},
		{pg, lma, 0, true, false, ModeLong64, 2, 64},
		{pg, lma, 0, false, true, ModeCompat32, 2, 32},
		{pg, lma, 0, false, false, ModeCompat16, 2, 16},
		{pg, lma, FlagVM, true, false, ModeLong64, 2, 64}, // VM is ignored in IA-32e mode
	} {
		m := ModeOf(c.cr0, c.efer, c.rflags, c.l, c.d)
		if m != c.want || m.CPL(2) != c.cpl || m.CodeSize() != c.bits {
			t.Errorf("CR0 %#x EFER %#x RFLAGS %#x L=%v D=%v: %v (CPL %d, %d-bit), want %v (CPL %d, %d-bit)",
				c.cr0, c.efer, c.rflags, c.l, c.d, m, m.CPL(2), m.CodeSize(), c.want, c.cpl, c.bits)
		}
		if m.Protected() != (m >= ModeProtected16) || m.IA32e() != (m >= ModeCompat16) {
			t.Errorf("%v: Protected %v IA32e %v", m, m.Protected(), m.IA32e())
		}
	}
	if s := Mode(99).String(); s != "mode(99)" {
		t.Errorf("Mode(99) = %q", s)
	}
}

func TestPagingOf(t *testing.T) {
	const pe, pg = CR0PE | CR0ET, CR0PE | CR0PG | CR0ET
	const long = EFERLME | EFERLMA
	for _, c := range []struct {
		name           string
		cr0, cr4, efer uint64
		want           Paging
		levels         int
		bad            bool
	}{
		{"real", 0, 0, 0, PagingNone, 0, false},
		{"protected", pe, 0, 0, PagingNone, 0, false},
		{"32-bit", pg, 0, 0, Paging32, 2, false},
		{"PAE", pg, CR4PAE, 0, PagingPAE, 3, false},
		{"4-level", pg, CR4PAE, long, Paging4Level, 4, false},
		{"5-level", pg, CR4PAE | CR4LA57, long, Paging5Level, 5, false},
		{"LA57 outside long mode is PAE", pg, CR4PAE | CR4LA57, 0, PagingPAE, 3, false},
		{"LME without PG", pe, 0, EFERLME, PagingNone, 0, false},
		{"PG without PE", CR0PG, 0, 0, Paging32, 2, true},
		{"LMA without PG", pe, 0, EFERLMA, PagingNone, 0, true},
		{"LMA without PAE", pg, 0, long, Paging32, 2, true},
		{"LME and PG without LMA", pg, CR4PAE, EFERLME, PagingPAE, 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := PagingOf(c.cr0, c.cr4, c.efer)
			if p != c.want || p.Levels() != c.levels {
				t.Errorf("PagingOf = %v (%d levels), want %v (%d)", p, p.Levels(), c.want, c.levels)
			}
			if err := CheckModeRegs(c.cr0, c.cr4, c.efer); (err != nil) != c.bad {
				t.Errorf("CheckModeRegs = %v, want error %v", err, c.bad)
			}
		})
	}
	if Paging5Level.LinearBits() != 57 || Paging4Level.LinearBits() != 48 {
		t.Error("LinearBits")
	}
}

func TestMaxPhyAddr(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries []CPUIDEntry
		want    uint8
	}{
		{"absent", nil, 36},
		{"zero", []CPUIDEntry{{Function: 0x80000000, EAX: 0x80000008}, {Function: 0x80000008}}, 36},
		{"39 bits", []CPUIDEntry{{Function: 0x80000000, EAX: 0x80000008}, {Function: 0x80000008, EAX: 0x3027}}, 39},
		{"beyond the maximum extended leaf", []CPUIDEntry{{Function: 0x80000000, EAX: 0x80000004}, {Function: 0x80000008, EAX: 40}}, 36},
		{"0x80000000 not listed", []CPUIDEntry{{Function: 0x80000008, EAX: 40}}, 36},
		{"other subleaf ignored", []CPUIDEntry{{Function: 0x80000000, EAX: 0x80000008}, {Function: 0x80000008, Index: 1, EAX: 40}}, 36},
	} {
		if got := MaxPhyAddr(c.entries); got != c.want {
			t.Errorf("%s: MaxPhyAddr = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{
		AccessRead:                  "read",
		AccessWrite | AccessStack:   "write,stack",
		AccessFetch:                 "fetch",
		AccessRead | AccessImplicit: "read,implicit",
		AccessWrite | AccessFetch:   "write+fetch",
	} {
		if got := a.String(); got != want {
			t.Errorf("%#x: %q, want %q", uint8(a), got, want)
		}
	}
}
