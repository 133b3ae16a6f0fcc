package trace

import (
	"testing"

	"walkvm/kvm"
	"walkvm/x86"
)

func TestClassifyMode(t *testing.T) {
	pe, pg := uint64(x86.CR0PE), uint64(x86.CR0PE|x86.CR0PG)
	lma := uint64(x86.EFERLME | x86.EFERLMA)
	for _, c := range []struct {
		cr0, cr4, efer uint64
		l, db          uint8
		rflags         uint64
		want           Mode
	}{
		{0, 0, 0, 0, 0, 2, ModeReal},
		{pe, 0, 0, 0, 0, 2, ModeProtected16},
		{pe, 0, 0, 0, 1, 2, ModeProtected32},
		{pe, 0, 0, 0, 0, 2 | x86.FlagVM, ModeVM86},
		{pg, x86.CR4PSE, 0, 0, 1, 2, ModePaging32},
		{pg, x86.CR4PAE, 0, 0, 1, 2, ModePAE},
		{pg, x86.CR4PAE, lma, 1, 0, 2, ModeLong64},
		{pg, x86.CR4PAE | x86.CR4LA57, lma, 1, 0, 2, ModeLong64LA57},
		{pg, x86.CR4PAE, lma, 0, 1, 2, ModeCompat},
		{pg, x86.CR4PAE | x86.CR4LA57, lma, 0, 0, 2, ModeCompatLA57},
	} {
		s := &kvm.Sregs2{CR0: c.cr0, CR4: c.cr4, EFER: c.efer}
		s.CS.L, s.CS.DB = c.l, c.db
		if got := ClassifyMode(s, c.rflags); got != c.want {
			t.Errorf("CR0 %#x CR4 %#x EFER %#x L%d D%d: %v, want %v", c.cr0, c.cr4, c.efer, c.l, c.db, got, c.want)
		}
	}
}

func TestModeLog(t *testing.T) {
	s := NewStats(0)
	s.ObserveMode(ModeReal, 0, 0x1000)
	s.ObserveMode(ModeReal, 0, 0x1010)
	s.ObserveMode(ModeProtected32, 8, 0x2000)
	s.ObserveMode(ModeReal, 0, 0x1020)
	want := []ModeSpan{{ModeReal, 0, 0x1000, 2}, {ModeProtected32, 8, 0x2000, 1}, {ModeReal, 0, 0x1020, 1}}
	if len(s.Modes) != len(want) {
		t.Fatalf("spans %+v", s.Modes)
	}
	for i := range want {
		if s.Modes[i] != want[i] {
			t.Errorf("span %d = %+v, want %+v", i, s.Modes[i], want[i])
		}
	}
	for i := 0; i < 2*ModeLogCap; i++ {
		s.ObserveMode(Mode(i%2), 0, 0)
	}
	if len(s.Modes) != ModeLogCap || s.ModesDropped == 0 {
		t.Errorf("log grew to %d spans, dropped %d", len(s.Modes), s.ModesDropped)
	}
	if a := testing.AllocsPerRun(100, func() { s.ObserveMode(ModeLong64, 0, 0) }); a != 0 {
		t.Errorf("ObserveMode allocates %v times", a)
	}
}
