package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"text/tabwriter"

	"walkvm/kvm"
	"walkvm/mmu"
)

// Stats is what a run counted on one vCPU, or totalled over all of them:
// exits by kind, the own MMIO path's verdicts, accesses nothing is mapped
// at, KVM_TRANSLATE checks, walks by walker and the modes the guest went
// through. Its JSON form is `vmm run -stats json`.
type Stats struct {
	// VCPU is the vCPU counted, or -1 in a total over several vCPUs.
	VCPU int `json:"vcpu"`
	// ExitStatus is the run's exit status (`vmm run`'s).
	ExitStatus int `json:"exit_status"`

	Exits struct {
		MMIO             uint64 `json:"mmio"`
		IO               uint64 `json:"io"`
		HLT              uint64 `json:"hlt"`
		EmulationFailure uint64 `json:"emulation_failure"`
		Shutdown         uint64 `json:"shutdown"`
		Other            uint64 `json:"other"`
		Total            uint64 `json:"total"`
	} `json:"exits"`
	MMIO struct {
		Reads  uint64 `json:"reads"`
		Writes uint64 `json:"writes"`
		Agreed uint64 `json:"agreed"`
		// Remembered counts the agreed exits whose verdict came from a
		// site the own path kept (its inputs re-read and found unchanged,
		// not derived again).
		Remembered           uint64 `json:"remembered"`
		Disagreed            uint64 `json:"disagreed"`
		CompletedInUserspace uint64 `json:"completed_in_userspace"`
		// ExceptionsInjected counts faults walkvm delivered to the guest
		// for instructions it completed or refused (#UD, #PF, #GP...).
		ExceptionsInjected uint64 `json:"exceptions_injected"`
	} `json:"mmio"`
	// Results counts `-verify exec`'s result checks: instructions whose
	// result (registers, flags, segments, vector state, fault, bytes
	// written) walkvm compared with KVM's, those where they differed
	// (each also counted in MMIO.Disagreed), and those walkvm does not
	// execute itself, which stay unchecked.
	Results struct {
		Checked   uint64 `json:"checked"`
		Disagreed uint64 `json:"disagreed"`
		Unchecked uint64 `json:"unchecked"`
	} `json:"results"`
	// Unassigned counts guest accesses where no device is mapped: reads
	// return all ones, writes are dropped.
	Unassigned struct {
		PortReads  uint64 `json:"port_reads"`
		PortWrites uint64 `json:"port_writes"`
		MMIOReads  uint64 `json:"mmio_reads"`
		MMIOWrites uint64 `json:"mmio_writes"`
	} `json:"unassigned"`
	Translate struct {
		// Checks counts walks compared with KVM_TRANSLATE; Ioctls those
		// that needed a new answer from KVM (the rest repeated a walk KVM
		// had confirmed); Mismatches those where KVM's answer differed.
		Checks     uint64 `json:"checks"`
		Ioctls     uint64 `json:"ioctls"`
		Mismatches uint64 `json:"mismatches"`
	} `json:"kvm_translate"`
	Walks struct {
		Nonpaging uint64 `json:"nonpaging"`
		Paging32  uint64 `json:"paging32"`
		Paging64  uint64 `json:"paging64"`
		// Paging64Levels counts paging64 walks by levels: [3] PAE,
		// [4] 4-level, [5] 5-level.
		Paging64Levels LevelCounts `json:"paging64_levels"`
	} `json:"walks"`

	// Modes is the ordered list of mode changes seen at exits, in storage
	// preallocated for ModeLogCap spans; a guest that changes mode more
	// often has its later changes counted in ModesDropped. A total over
	// several vCPUs carries the boot vCPU's.
	Modes        []ModeSpan `json:"modes"`
	ModesDropped uint64     `json:"modes_dropped,omitempty"`

	// VCPUs holds each vCPU's own statistics in a total over several.
	VCPUs []*Stats `json:"vcpus,omitempty"`
}

// ModeLogCap is how many mode spans a Stats keeps.
const ModeLogCap = 1024

// NewStats returns zeroed statistics for vCPU vcpu with a preallocated mode
// log.
func NewStats(vcpu int) *Stats {
	return &Stats{VCPU: vcpu, Modes: make([]ModeSpan, 0, ModeLogCap)}
}

// Total sums per-vCPU statistics. For one vCPU it is that vCPU's own.
func Total(per []*Stats) *Stats {
	if len(per) == 1 {
		return per[0]
	}
	t := &Stats{VCPU: -1, Modes: []ModeSpan{}, VCPUs: per}
	for i, s := range per {
		addCounters(reflect.ValueOf(t).Elem(), reflect.ValueOf(s).Elem())
		if i == 0 {
			t.Modes, t.ModesDropped, t.ExitStatus = s.Modes, s.ModesDropped, s.ExitStatus
		}
	}
	return t
}

// addCounters adds every uint64 counter of src (in nested structs and
// arrays) to dst's; the other fields are not counters.
func addCounters(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Uint64:
		dst.SetUint(dst.Uint() + src.Uint())
	case reflect.Struct:
		for i := range src.NumField() {
			if src.Type().Field(i).Name != "ModesDropped" {
				addCounters(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Array:
		for i := range src.Len() {
			addCounters(dst.Index(i), src.Index(i))
		}
	}
}

// CountExit counts one exit.
func (s *Stats) CountExit(kind kvm.ExitKind) {
	s.Exits.Total++
	switch kind {
	case kvm.KindMMIO:
		s.Exits.MMIO++
	case kvm.KindIO:
		s.Exits.IO++
	case kvm.KindHLT:
		s.Exits.HLT++
	case kvm.KindShutdown:
		s.Exits.Shutdown++
	case kvm.KindEmulationFailure:
		s.Exits.EmulationFailure++
	default:
		s.Exits.Other++
	}
}

// CountUnassigned counts one access nothing is mapped at.
func (s *Stats) CountUnassigned(port, write bool) {
	u := &s.Unassigned
	switch {
	case port && write:
		u.PortWrites++
	case port:
		u.PortReads++
	case write:
		u.MMIOWrites++
	default:
		u.MMIOReads++
	}
}

// CountWalk counts one walk by the walker KVM would name.
func (s *Stats) CountWalk(w *mmu.Walk) { s.CountWalkOf(w.Walker, w.Levels) }

// CountWalkOf counts one walk of the walker kind with levels levels.
func (s *Stats) CountWalkOf(kind mmu.WalkerKind, levels uint8) {
	switch kind {
	case mmu.Nonpaging:
		s.Walks.Nonpaging++
	case mmu.Paging32:
		s.Walks.Paging32++
	case mmu.Paging64:
		s.Walks.Paging64++
		if int(levels) < len(s.Walks.Paging64Levels) {
			s.Walks.Paging64Levels[levels]++
		}
	}
}

// ModeSpan is a stretch of consecutive exits in one mode.
type ModeSpan struct {
	Mode     Mode
	FirstCS  uint16 // CS selector at the first exit in the mode
	FirstRIP uint64
	Exits    uint64
}

// MarshalJSON renders a span as {"mode", "first_rip" (CS:RIP), "exits"}.
func (sp ModeSpan) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Mode     Mode   `json:"mode"`
		FirstRIP string `json:"first_rip"`
		Exits    uint64 `json:"exits"`
	}{sp.Mode, FormatCSRIP(sp.FirstCS, sp.FirstRIP), sp.Exits})
}

// ObserveMode records one exit in mode m at cs:rip. It allocates nothing.
func (s *Stats) ObserveMode(m Mode, cs uint16, rip uint64) {
	n := len(s.Modes)
	if n > 0 && s.Modes[n-1].Mode == m {
		s.Modes[n-1].Exits++
		return
	}
	if n == cap(s.Modes) {
		s.ModesDropped++
		if n > 0 {
			s.Modes[n-1].Exits++
		}
		return
	}
	s.Modes = append(s.Modes, ModeSpan{Mode: m, FirstCS: cs, FirstRIP: rip, Exits: 1})
}

// ModeNames lists the modes in order of appearance, for tests and summaries.
func (s *Stats) ModeNames() []string {
	out := make([]string, len(s.Modes))
	for i, sp := range s.Modes {
		out[i] = sp.Mode.String()
	}
	return out
}

// LevelCounts counts walks by their number of levels; its JSON form keys
// the paging64 levels "3", "4" and "5".
type LevelCounts [6]uint64

// MarshalJSON implements json.Marshaler.
func (c LevelCounts) MarshalJSON() ([]byte, error) {
	m := map[string]uint64{}
	for lv := 3; lv <= 5; lv++ {
		m[strconv.Itoa(lv)] = c[lv]
	}
	return json.Marshal(m)
}

// FormatCSRIP renders CS:RIP as walkvm prints it everywhere.
func FormatCSRIP(cs uint16, rip uint64) string { return fmt.Sprintf("%04x:%#x", cs, rip) }

// WriteText writes the short table a person reads at a glance, then one
// table per vCPU in a total over several.
func (s *Stats) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s.writeText(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range s.VCPUs {
		fmt.Fprintf(w, "vcpu %d:\n", v.VCPU)
		if err := v.WriteText(w); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stats) writeText(tw io.Writer) {
	e, m, u, wk := &s.Exits, &s.MMIO, &s.Unassigned, &s.Walks
	fmt.Fprintf(tw, "exit status\t%d\n", s.ExitStatus)
	fmt.Fprintf(tw, "exits\t%d total: %d mmio, %d io, %d hlt, %d emulation failure, %d shutdown, %d other\n",
		e.Total, e.MMIO, e.IO, e.HLT, e.EmulationFailure, e.Shutdown, e.Other)
	fmt.Fprintf(tw, "mmio\t%d reads, %d writes: %d agreed (%d remembered), %d disagreed, %d completed in userspace, %d exceptions injected\n",
		m.Reads, m.Writes, m.Agreed, m.Remembered, m.Disagreed, m.CompletedInUserspace, m.ExceptionsInjected)
	if r := &s.Results; r.Checked+r.Unchecked > 0 {
		fmt.Fprintf(tw, "results\t%d checked, %d disagreed, %d not executed by walkvm\n", r.Checked, r.Disagreed, r.Unchecked)
	}
	fmt.Fprintf(tw, "unassigned\t%d port reads, %d port writes, %d MMIO reads, %d MMIO writes\n",
		u.PortReads, u.PortWrites, u.MMIOReads, u.MMIOWrites)
	fmt.Fprintf(tw, "KVM_TRANSLATE\t%d checks (%d ioctls), %d mismatches\n", s.Translate.Checks, s.Translate.Ioctls, s.Translate.Mismatches)
	fmt.Fprintf(tw, "walks\tnonpaging %d, paging32 %d, paging64 %d (3-level %d, 4-level %d, 5-level %d)\n",
		wk.Nonpaging, wk.Paging32, wk.Paging64, wk.Paging64Levels[3], wk.Paging64Levels[4], wk.Paging64Levels[5])
	// One line per stretch of exits in one mode: mode, where it was first
	// seen, how many exits it lasted.
	for i, sp := range s.Modes {
		label := ""
		if i == 0 {
			label = "modes"
		}
		fmt.Fprintf(tw, "%s\t%-12s first at %s, %d exits\n", label, sp.Mode, FormatCSRIP(sp.FirstCS, sp.FirstRIP), sp.Exits)
	}
	if s.ModesDropped > 0 {
		fmt.Fprintf(tw, "\t(the list is full: %d later exits in other modes are counted in its last line)\n", s.ModesDropped)
	}
}
