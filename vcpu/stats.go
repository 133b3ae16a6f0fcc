package vcpu

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"walkvm/kvm"
	"walkvm/mmu"
)

// Stats is what a run counted: exits by reason, the own MMIO path's verdicts,
// walks by walker and the modes the guest went through.
type Stats struct {
	ExitStatus int

	Exits struct {
		MMIO, IO, HLT, EmulationFailure, Shutdown, Other, Total uint64
	}
	MMIO struct {
		Reads, Writes        uint64
		Agreed, Disagreed    uint64
		CompletedInUserspace uint64
		// ExceptionsInjected counts faults walkvm delivered to the guest
		// for instructions it completed or refused (#UD, #PF, #GP...).
		ExceptionsInjected uint64
	}
	Translate struct {
		// Checks counts walks compared with KVM_TRANSLATE; Ioctls those
		// that needed a new answer from KVM (the rest repeated a walk KVM
		// had confirmed); Mismatches those where KVM's answer differed.
		Checks, Ioctls, Mismatches uint64
	}
	Walks struct {
		Nonpaging, Paging32, Paging64 uint64
		// Paging64Levels counts paging64 walks by levels: [3] PAE,
		// [4] 4-level, [5] 5-level.
		Paging64Levels [6]uint64
	}
	Modes *ModeLog
}

// NewStats returns zeroed statistics with a preallocated mode log.
func NewStats() *Stats { return &Stats{Modes: NewModeLog()} }

// CountExit counts one exit.
func (s *Stats) CountExit(reason kvm.ExitReason, emulationFailure bool) {
	s.Exits.Total++
	switch {
	case reason == kvm.ExitMMIO:
		s.Exits.MMIO++
	case reason == kvm.ExitIO:
		s.Exits.IO++
	case reason == kvm.ExitHLT:
		s.Exits.HLT++
	case reason == kvm.ExitShutdown:
		s.Exits.Shutdown++
	case emulationFailure:
		s.Exits.EmulationFailure++
	default:
		s.Exits.Other++
	}
}

// CountWalk counts one walk by the walker KVM would name.
func (s *Stats) CountWalk(w *mmu.Walk) {
	switch w.Walker {
	case mmu.Nonpaging:
		s.Walks.Nonpaging++
	case mmu.Paging32:
		s.Walks.Paging32++
	case mmu.Paging64:
		s.Walks.Paging64++
		if int(w.Levels) < len(s.Walks.Paging64Levels) {
			s.Walks.Paging64Levels[w.Levels]++
		}
	}
}

type jsonMode struct {
	Mode     string `json:"mode"`
	FirstRIP string `json:"first_rip"`
	Exits    uint64 `json:"exits"`
}

type jsonStats struct {
	ExitStatus int `json:"exit_status"`
	Exits      struct {
		MMIO             uint64 `json:"mmio"`
		IO               uint64 `json:"io"`
		HLT              uint64 `json:"hlt"`
		EmulationFailure uint64 `json:"emulation_failure"`
		Shutdown         uint64 `json:"shutdown"`
		Other            uint64 `json:"other"`
		Total            uint64 `json:"total"`
	} `json:"exits"`
	MMIO struct {
		Reads                uint64 `json:"reads"`
		Writes               uint64 `json:"writes"`
		Agreed               uint64 `json:"agreed"`
		Disagreed            uint64 `json:"disagreed"`
		CompletedInUserspace uint64 `json:"completed_in_userspace"`
		ExceptionsInjected   uint64 `json:"exceptions_injected"`
	} `json:"mmio"`
	Translate struct {
		Checks     uint64 `json:"checks"`
		Ioctls     uint64 `json:"ioctls"`
		Mismatches uint64 `json:"mismatches"`
	} `json:"kvm_translate"`
	Walks struct {
		Nonpaging      uint64            `json:"nonpaging"`
		Paging32       uint64            `json:"paging32"`
		Paging64       uint64            `json:"paging64"`
		Paging64Levels map[string]uint64 `json:"paging64_levels"`
	} `json:"walks"`
	Modes        []jsonMode `json:"modes"`
	ModesDropped uint64     `json:"modes_dropped,omitempty"`
}

// FormatCSRIP renders CS:RIP as walkvm prints it everywhere.
func FormatCSRIP(cs uint16, rip uint64) string { return fmt.Sprintf("%04x:%#x", cs, rip) }

// MarshalJSON renders the stats in the documented `-stats json` shape.
func (s *Stats) MarshalJSON() ([]byte, error) {
	var j jsonStats
	j.ExitStatus = s.ExitStatus
	e := &s.Exits
	j.Exits.MMIO, j.Exits.IO, j.Exits.HLT = e.MMIO, e.IO, e.HLT
	j.Exits.EmulationFailure, j.Exits.Shutdown, j.Exits.Other, j.Exits.Total = e.EmulationFailure, e.Shutdown, e.Other, e.Total
	m := &s.MMIO
	j.MMIO.Reads, j.MMIO.Writes, j.MMIO.Agreed, j.MMIO.Disagreed = m.Reads, m.Writes, m.Agreed, m.Disagreed
	j.MMIO.CompletedInUserspace, j.MMIO.ExceptionsInjected = m.CompletedInUserspace, m.ExceptionsInjected
	j.Translate.Checks, j.Translate.Ioctls, j.Translate.Mismatches = s.Translate.Checks, s.Translate.Ioctls, s.Translate.Mismatches
	w := &s.Walks
	j.Walks.Nonpaging, j.Walks.Paging32, j.Walks.Paging64 = w.Nonpaging, w.Paging32, w.Paging64
	j.Walks.Paging64Levels = map[string]uint64{"3": w.Paging64Levels[3], "4": w.Paging64Levels[4], "5": w.Paging64Levels[5]}
	j.Modes = []jsonMode{}
	if s.Modes != nil {
		for _, sp := range s.Modes.Spans {
			j.Modes = append(j.Modes, jsonMode{Mode: sp.Mode.String(), FirstRIP: FormatCSRIP(sp.FirstCS, sp.FirstRIP), Exits: sp.Exits})
		}
		j.ModesDropped = s.Modes.Dropped
	}
	return json.Marshal(&j)
}

// WriteText writes the short table a person reads at a glance.
func (s *Stats) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	e, m, wk := &s.Exits, &s.MMIO, &s.Walks
	fmt.Fprintf(tw, "exit status\t%d\n", s.ExitStatus)
	fmt.Fprintf(tw, "exits\t%d total: %d mmio, %d io, %d hlt, %d emulation failure, %d shutdown, %d other\n",
		e.Total, e.MMIO, e.IO, e.HLT, e.EmulationFailure, e.Shutdown, e.Other)
	fmt.Fprintf(tw, "mmio\t%d reads, %d writes: %d agreed, %d disagreed, %d completed in userspace, %d exceptions injected\n",
		m.Reads, m.Writes, m.Agreed, m.Disagreed, m.CompletedInUserspace, m.ExceptionsInjected)
	fmt.Fprintf(tw, "KVM_TRANSLATE\t%d checks (%d ioctls), %d mismatches\n", s.Translate.Checks, s.Translate.Ioctls, s.Translate.Mismatches)
	fmt.Fprintf(tw, "walks\tnonpaging %d, paging32 %d, paging64 %d (3-level %d, 4-level %d, 5-level %d)\n",
		wk.Nonpaging, wk.Paging32, wk.Paging64, wk.Paging64Levels[3], wk.Paging64Levels[4], wk.Paging64Levels[5])
	if s.Modes != nil {
		// One line per stretch of exits in one mode: mode, where it was
		// first seen, how many exits it lasted.
		for i, sp := range s.Modes.Spans {
			label := ""
			if i == 0 {
				label = "modes"
			}
			fmt.Fprintf(tw, "%s\t%-12s first at %s, %d exits\n", label, sp.Mode, FormatCSRIP(sp.FirstCS, sp.FirstRIP), sp.Exits)
		}
		if s.Modes.Dropped > 0 {
			fmt.Fprintf(tw, "\t(the list is full: %d later exits in other modes are counted in its last line)\n", s.Modes.Dropped)
		}
	}
	return tw.Flush()
}
