package fuzz

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"walkvm/emulate"
	"walkvm/x86"
)

// Options say what a fuzzing run does.
type Options struct {
	Seed     uint64
	Duration time.Duration // stop after this long (0: only Max counts)
	Max      int           // stop after this many programs (0: only Duration counts)
	Modes    []Mode        // the modes to try; those the host cannot enter are skipped
	// Out is the directory findings are written to; empty writes none.
	Out string
	// Run runs one program (KVMRunner for real).
	Run Runner
	// AVX says the host can run AVX guests.
	AVX bool
	// ShrinkRuns bounds the runs spent shrinking one finding.
	ShrinkRuns int
	// Progress, when set, receives a line per finding.
	Progress io.Writer
}

// Finding is one distinct disagreement class (or walkvm failure), with the
// smallest program found for it.
type Finding struct {
	// Name is a hand-made case's name; Class the finding's class.
	Name    string
	Class   string
	Outcome Outcome
	Program *Program
	// Seen counts the programs that had this class; First is the index of
	// the first.
	Seen, First int
	// Bin and JSON are the files written for it, Replay the command that
	// runs the guest again.
	Bin, JSON, Replay string
	// Known, for a hand-made program, says what the SDM says instead.
	Known string
}

// Report is what a fuzzing run did.
type Report struct {
	Seed     uint64
	Programs int
	Elapsed  time.Duration
	// Modes are those entered; Skipped says why the others were not.
	Modes   []Mode
	Skipped map[Mode]string
	// Ends counts how the programs' runs ended; Checked the results
	// compared; NotEmulated the runs that stopped at an instruction
	// walkvm does not execute.
	Ends        map[string]int
	Checked     uint64
	NotEmulated int
	Findings    []*Finding
	Known       []*Finding
}

// Crashes counts the programs whose run walkvm failed in another way than
// a disagreement or a known gap.
func (r *Report) Crashes() int {
	n := 0
	for _, f := range r.Findings {
		if f.Outcome.Crash() {
			n += f.Seen
		}
	}
	return n
}

// Probe runs an empty program in each mode and returns those that reach
// their end, and why the others did not.
func Probe(modes []Mode, run Runner) ([]Mode, map[Mode]string) {
	var ok []Mode
	skipped := map[Mode]string{}
	for _, m := range modes {
		o := run(&Program{Mode: m, Insn: []byte{0x90}})
		if o.End == "exit 0" {
			ok = append(ok, m)
			continue
		}
		why := "the run ended " + o.End
		if o.Detail != "" {
			why += ": " + firstLine(o.Detail)
		}
		skipped[m] = why
	}
	return ok, skipped
}

// Fuzz runs programs until the duration or count is reached, collecting
// each distinct class once, shrunk.
func Fuzz(o Options) (*Report, error) {
	start := time.Now()
	rep := &Report{Seed: o.Seed, Ends: map[string]int{}}
	if o.Run == nil {
		return nil, fmt.Errorf("fuzz: no runner")
	}
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return nil, err
		}
	}
	for _, k := range Known() {
		out := o.Run(k.Program)
		f := &Finding{Name: k.Name, Class: out.Class, Outcome: out, Program: k.Program, Seen: 1, First: -1, Known: k.SDM}
		if err := rep.write(o, f, "known-"+k.Name); err != nil {
			return nil, err
		}
		rep.Known = append(rep.Known, f)
	}
	rep.Modes, rep.Skipped = Probe(o.Modes, o.Run)
	if len(rep.Modes) == 0 {
		return rep, fmt.Errorf("fuzz: the host enters none of the modes asked for")
	}
	g := NewGenerator(o.Seed, o.AVX)
	byClass := map[string]*Finding{}
	for i := 0; ; i++ {
		if o.Max > 0 && i >= o.Max || o.Duration > 0 && time.Since(start) >= o.Duration || o.Max == 0 && o.Duration == 0 {
			break
		}
		p := g.Program(rep.Modes[i%len(rep.Modes)])
		out := o.Run(p)
		rep.Programs++
		rep.Ends[out.End]++
		rep.Checked += out.Checked
		if out.NotEmulated {
			rep.NotEmulated++
		}
		if out.Class == "" {
			continue
		}
		if f := byClass[out.Class]; f != nil {
			f.Seen++
			continue
		}
		small := Shrink(p, out.Class, o.Run, o.ShrinkRuns)
		so := o.Run(small)
		if so.Class != out.Class {
			small, so = p, out
		}
		f := &Finding{Class: out.Class, Outcome: so, Program: small, Seen: 1, First: i}
		byClass[out.Class] = f
		rep.Findings = append(rep.Findings, f)
		if err := rep.write(o, f, fmt.Sprintf("%03d-%s", len(rep.Findings), slug(out.Class))); err != nil {
			return nil, err
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "finding %d: %s (%v mode)\n  replay: %s\n", len(rep.Findings), f.Class, small.Mode, f.Replay)
		}
	}
	rep.Elapsed = time.Since(start)
	// The counts are final now.
	for _, f := range rep.Findings {
		if err := writeJSON(f, rep.Seed); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// write stores f's guest and description under name in o.Out.
func (r *Report) write(o Options, f *Finding, name string) error {
	p := f.Program
	if o.Out == "" {
		f.Replay = fmt.Sprintf("vmm run -verify exec -entry %s -load %#x (image not written)", p.Mode.Entry(), Load)
		return nil
	}
	f.Bin = filepath.Join(o.Out, name+".bin")
	f.JSON = filepath.Join(o.Out, name+".json")
	f.Replay = fmt.Sprintf("vmm run -verify exec -entry %s -load %#x %s", p.Mode.Entry(), Load, f.Bin)
	if err := os.WriteFile(f.Bin, p.Image(), 0o644); err != nil {
		return err
	}
	return writeJSON(f, r.Seed)
}

// Description is a finding's JSON file.
type Description struct {
	Class       string            `json:"class"`
	Verdict     string            `json:"verdict"`
	Instruction string            `json:"instruction"`
	Bytes       string            `json:"bytes"`
	Fields      []string          `json:"fields,omitempty"`
	Mode        string            `json:"mode"`
	Entry       string            `json:"entry"`
	Load        string            `json:"load"`
	InsnAddr    string            `json:"instruction_address"`
	Target      string            `json:"target"`
	TargetKind  string            `json:"target_kind"`
	Registers   map[string]string `json:"registers"`
	Segment     string            `json:"real_mode_segments,omitempty"`
	Fills       []string          `json:"fills,omitempty"`
	End         string            `json:"end"`
	Detail      string            `json:"detail,omitempty"`
	SDM         string            `json:"sdm,omitempty"`
	Seen        int               `json:"seen"`
	Seed        uint64            `json:"seed,omitempty"`
	Program     int               `json:"first_program,omitempty"`
	Replay      string            `json:"replay"`
}

func writeJSON(f *Finding, seed uint64) error {
	if f.JSON == "" {
		return nil
	}
	p := f.Program
	at := p.InsnAddr()
	d := Description{
		Class: f.Class, Verdict: f.Outcome.Verdict, Bytes: hex.EncodeToString(p.Insn), Fields: f.Outcome.Fields,
		Instruction: emulate.Disasm(p.Insn, p.Mode.DecodeMode(), at),
		Mode:        p.Mode.String(), Entry: p.Mode.Entry().String(), Load: fmt.Sprintf("%#x", Load), InsnAddr: fmt.Sprintf("%#x", at),
		Target: fmt.Sprintf("%#x", p.Target), TargetKind: p.TargetKind, Registers: map[string]string{},
		End: f.Outcome.End, Detail: f.Outcome.Detail, SDM: f.Known, Seen: f.Seen, Replay: f.Replay,
	}
	if f.First >= 0 {
		d.Seed, d.Program = seed, f.First
	}
	for r, v := range p.Regs {
		if r >= 8 && p.Mode != ModeLong4 && p.Mode != ModeLong5 {
			break
		}
		d.Registers[x86.Reg(r).String()] = fmt.Sprintf("%#x", v)
	}
	if p.Mode == ModeReal {
		d.Segment = fmt.Sprintf("%#x", p.Seg)
	}
	for _, fl := range p.Fills {
		d.Fills = append(d.Fills, fmt.Sprintf("%#x=%#08x", fl.Addr, fl.Val))
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(f.JSON, append(b, '\n'), 0o644)
}

// slug makes a file name part of a class.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		switch {
		case ok:
			b.WriteRune(c)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 60 {
		out = strings.TrimRight(out[:60], "-")
	}
	return out
}

// Summary writes the report for a person.
func (r *Report) Summary(w io.Writer) {
	fmt.Fprintf(w, "seed %d: %d programs in %v", r.Seed, r.Programs, r.Elapsed.Round(time.Millisecond))
	var modes []string
	for _, m := range r.Modes {
		modes = append(modes, m.String())
	}
	fmt.Fprintf(w, ", modes %s\n", strings.Join(modes, ", "))
	var skipped []string
	for m, why := range r.Skipped {
		skipped = append(skipped, fmt.Sprintf("  %v: %s", m, why))
	}
	sort.Strings(skipped)
	if len(skipped) > 0 {
		fmt.Fprintf(w, "modes the host did not enter:\n%s\n", strings.Join(skipped, "\n"))
	}
	var ends []string
	for e, n := range r.Ends {
		ends = append(ends, fmt.Sprintf("%s %d", e, n))
	}
	sort.Strings(ends)
	fmt.Fprintf(w, "ends: %s; %d results checked; %d stopped at an instruction walkvm does not execute\n",
		strings.Join(ends, ", "), r.Checked, r.NotEmulated)
	for _, f := range r.Known {
		fmt.Fprintf(w, "known %s: %s\n  seen as: %s\n  %s\n  replay: %s\n", f.Name, f.Known, orNone(f.Class, f.Outcome.End),
			detailLine(f.Outcome.Detail), f.Replay)
	}
	fmt.Fprintf(w, "%d findings, %d crashes\n", len(r.Findings), r.Crashes())
	for i, f := range r.Findings {
		fmt.Fprintf(w, "%3d. %s (%v mode, %d programs)\n     %s\n     %s\n     replay: %s\n", i+1, f.Class, f.Program.Mode, f.Seen,
			emulate.Disasm(f.Program.Insn, f.Program.Mode.DecodeMode(), f.Program.InsnAddr()), detailLine(f.Outcome.Detail), f.Replay)
	}
}

func orNone(class, end string) string {
	if class == "" {
		return "no disagreement (the run ended " + end + ")"
	}
	return class
}

// detailLine is the part of a disagreement's text after the instruction.
func detailLine(d string) string {
	d = firstLine(d)
	if i := strings.Index(d, "): "); i >= 0 {
		d = d[i+3:]
	}
	return d
}
