package report

import (
	"fmt"
	"sort"
)

// Span is a stretch of consecutive exits of one vCPU in one mode.
type Span struct {
	VCPU  int
	Mode  string
	First int // index into Trace.Records of the span's first exit
	Last  int // and of its last
	Exits int
	CSRIP string // where the span began
}

// Count is one bar of a chart.
type Count struct {
	Name string
	N    int
}

// Summary is what the page and the Chrome export draw from the records.
type Summary struct {
	Exits    int
	VCPUs    []int
	Spans    []Span
	ByKind   []Count
	ByMode   []Count
	Verdicts []Count
	// Walks counts walks by walker and depth: "paging64/4" is a 4-level walk.
	Walks []Count
	// Timed says every record carries t_ns.
	Timed bool
}

// Summarize counts t's records.
func Summarize(t *Trace) *Summary {
	s := &Summary{Exits: len(t.Records), Timed: len(t.Records) > 0}
	kinds, modes, verdicts, walks := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	last := map[int]int{} // vCPU -> index of its current span in s.Spans
	for i := range t.Records {
		r := &t.Records[i]
		if r.TimeNS == nil {
			s.Timed = false
		}
		kinds[r.Exit]++
		modes[r.Mode]++
		if r.Verdict != "" {
			verdicts[r.Verdict]++
		}
		for j := range r.Walks {
			w := &r.Walks[j]
			name := w.Walker
			if d := w.Depth(); d > 0 {
				name = fmt.Sprintf("%s/%d", w.Walker, d)
			}
			walks[name]++
		}
		k, ok := last[r.VCPU]
		if ok && s.Spans[k].Mode == r.Mode {
			s.Spans[k].Exits++
			s.Spans[k].Last = i
			continue
		}
		if !ok {
			s.VCPUs = append(s.VCPUs, r.VCPU)
		}
		last[r.VCPU] = len(s.Spans)
		s.Spans = append(s.Spans, Span{VCPU: r.VCPU, Mode: r.Mode, First: i, Last: i, Exits: 1, CSRIP: r.CSRIP})
	}
	sort.Ints(s.VCPUs)
	s.ByKind, s.ByMode, s.Verdicts, s.Walks = counts(kinds), counts(modes), counts(verdicts), counts(walks)
	return s
}

// counts orders a histogram by count, then name.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Name < out[j].Name
	})
	return out
}
