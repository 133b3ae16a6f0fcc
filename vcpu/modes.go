package vcpu

import (
	"fmt"

	"walkvm/kvm"
	"walkvm/x86"
)

// Mode is the vCPU's operating and paging mode as walkvm reports it.
type Mode uint8

// The modes an exit is classified into.
const (
	ModeReal        Mode = iota // CR0.PE = 0
	ModeVM86                    // virtual-8086 mode
	ModeProtected16             // protected mode without paging, CS.D = 0
	ModeProtected32             // protected mode without paging, CS.D = 1
	ModePaging32                // 32-bit paging
	ModePAE                     // PAE paging
	ModeLong64                  // 64-bit mode, 4-level paging
	ModeLong64LA57              // 64-bit mode, 5-level paging
	ModeCompat                  // compatibility mode, 4-level paging
	ModeCompatLA57              // compatibility mode, 5-level paging
	numModes
)

var modeNames = [numModes]string{"real", "vm86", "protected16", "protected32", "paging32", "pae",
	"long64", "long64-la57", "compat", "compat-la57"}

func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ClassifyMode labels the operating mode (x86.ModeOf) and paging mode
// (x86.PagingOf) of the special registers and RFLAGS for reports: paging
// is named in legacy protected mode, 5-level paging in IA-32e mode.
func ClassifyMode(s *kvm.Sregs2, rflags uint64) Mode {
	op := x86.ModeOf(s.CR0, s.EFER, rflags, s.CS.L != 0, s.CS.DB != 0)
	paging := x86.PagingOf(s.CR0, s.CR4, s.EFER)
	switch op {
	case x86.ModeReal:
		return ModeReal
	case x86.ModeVM86:
		return ModeVM86
	case x86.ModeLong64:
		if paging == x86.Paging5Level {
			return ModeLong64LA57
		}
		return ModeLong64
	case x86.ModeCompat16, x86.ModeCompat32:
		if paging == x86.Paging5Level {
			return ModeCompatLA57
		}
		return ModeCompat
	}
	switch {
	case paging == x86.PagingPAE:
		return ModePAE
	case paging == x86.Paging32:
		return ModePaging32
	case op == x86.ModeProtected32:
		return ModeProtected32
	}
	return ModeProtected16
}

// ModeSpan is a stretch of consecutive exits in one mode.
type ModeSpan struct {
	Mode     Mode
	FirstCS  uint16 // CS selector at the first exit in the mode
	FirstRIP uint64
	Exits    uint64
}

// ModeLog keeps the ordered list of mode changes seen at exits. Its storage
// is preallocated; a guest that changes mode more than Cap times has its
// later changes counted in Dropped.
type ModeLog struct {
	Spans   []ModeSpan
	Dropped uint64
}

// ModeLogCap is how many mode spans a ModeLog keeps.
const ModeLogCap = 1024

// NewModeLog returns an empty log.
func NewModeLog() *ModeLog { return &ModeLog{Spans: make([]ModeSpan, 0, ModeLogCap)} }

// Observe records one exit in mode m at cs:rip.
func (l *ModeLog) Observe(m Mode, cs uint16, rip uint64) {
	if n := len(l.Spans); n > 0 && l.Spans[n-1].Mode == m {
		l.Spans[n-1].Exits++
		return
	}
	if len(l.Spans) == cap(l.Spans) {
		l.Dropped++
		if n := len(l.Spans); n > 0 {
			l.Spans[n-1].Exits++
		}
		return
	}
	l.Spans = append(l.Spans, ModeSpan{Mode: m, FirstCS: cs, FirstRIP: rip, Exits: 1})
}

// Names lists the modes in order of appearance, for tests and summaries.
func (l *ModeLog) Names() []string {
	out := make([]string, len(l.Spans))
	for i, s := range l.Spans {
		out[i] = s.Mode.String()
	}
	return out
}
