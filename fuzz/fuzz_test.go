package fuzz

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/ownpath"
	"walkvm/vcpu"
	"walkvm/x86"
)

// flatMem is guest memory where every linear address is its own GPA: the
// generator's aim is checked on linear addresses.
type flatMem struct{}

func (flatMem) Translate(la uint64, in emulate.Intent) (uint64, error) { return la, nil }
func (flatMem) ReadPhys(gpa uint64, b []byte) error                    { return nil }
func (flatMem) WritePhys(gpa uint64, b []byte) error                   { return nil }

// stateFor is the CPU state a program's instruction starts with.
func stateFor(p *Program) *emulate.State {
	s := &emulate.State{RFLAGS: 2, RIP: p.InsnAddr()}
	copy(s.GPR[:], p.Regs[:])
	switch p.Mode {
	case ModeReal:
		for i := range s.Seg {
			s.Seg[i] = x86.Segment{Selector: p.Seg, Base: uint64(p.Seg) << 4, Limit: 0xffff, Type: 3, S: true, Present: true}
		}
		s.Seg[x86.CS] = x86.Segment{Limit: 0xffff, Type: 11, S: true, Present: true}
		for r := range s.GPR {
			s.GPR[r] &= 0xffffffff
		}
	default:
		flat := x86.Segment{Limit: 0xffffffff, Type: 3, S: true, Present: true, DB: true, G: true}
		for i := range s.Seg {
			s.Seg[i] = flat
		}
		s.Seg[x86.CS].Type = 11
		s.CR0 = x86.CR0PE
		if p.Mode == ModeLong4 || p.Mode == ModeLong5 {
			s.CR0 |= x86.CR0PG
			s.CR4 = x86.CR4PAE
			if p.Mode == ModeLong5 {
				s.CR4 |= x86.CR4LA57
			}
			s.EFER = x86.EFERLME | x86.EFERLMA
			s.Seg[x86.CS] = x86.Segment{Type: 11, S: true, Present: true, L: true}
		} else {
			for r := range s.GPR {
				s.GPR[r] &= 0xffffffff
			}
		}
	}
	if p.Vector {
		s.CR4 |= x86.CR4OSFXSR
	}
	return s
}

// The generator's programs assemble, hold their instruction where they say,
// and aim it: resolved with the registers the program sets, the first
// memory access (or the stack slot) is at the target.
func TestGeneratorAims(t *testing.T) {
	var total, aimed, faulted int
	for m := range NumModes {
		g := NewGenerator(uint64(m)+1, true)
		for range 300 {
			p := g.Program(m)
			img := p.Image()
			at := p.InsnAddr()
			if at >= codeMax || !bytes.Equal(img[at-Load:at-Load+uint64(len(p.Insn))], p.Insn) {
				t.Fatalf("%v: instruction % x not at %#x in the image", m, p.Insn, at)
			}
			var inst decode.Inst
			if err := decode.Decode(p.Insn, m.DecodeMode(), &inst); err != nil {
				t.Fatalf("%v: % x does not decode: %v", m, p.Insn, err)
			}
			total++
			e := &emulate.Emulator{Mem: flatMem{}}
			var refs emulate.MemRefs
			if err := e.Resolve(stateFor(p), &inst, &refs); err != nil {
				faulted++ // a fault the target was chosen for, or #UD
				continue
			}
			if refs.N == 0 {
				continue
			}
			// A second operand (MOVS, CMPS) is aimed 0x40 further.
			got := refs.A[0].Linear
			if near(got, p.Target) || refs.N > 1 && near(refs.A[1].Linear, p.Target) {
				aimed++
				continue
			}
			if emulate.FactsOf(inst.Op).Stack == emulate.StackNone {
				t.Errorf("%v: %s (% x) reaches %#x, aimed at %#x (%s)", m, emulate.Disasm(p.Insn, m.DecodeMode(), at), p.Insn, got, p.Target, p.TargetKind)
			}
		}
	}
	t.Logf("%d programs: %d reach their target, %d fault in the resolver", total, aimed, faulted)
	if aimed < total/2 {
		t.Errorf("only %d of %d programs reach their target", aimed, total)
	}
}

func near(a, t uint64) bool { return a+0x48 >= t && a <= t+0x48 }

// The same seed makes the same programs.
func TestGeneratorDeterministic(t *testing.T) {
	a, b := NewGenerator(7, false), NewGenerator(7, false)
	for i := range 50 {
		m := Mode(i % int(NumModes))
		if pa, pb := a.Program(m), b.Program(m); !bytes.Equal(pa.Image(), pb.Image()) {
			t.Fatalf("program %d differs", i)
		}
	}
}

// A fake runner: the class depends on RDX being set and on the instruction
// keeping its 66 prefix; the shrinker drops everything else.
func TestShrink(t *testing.T) {
	runs := 0
	run := func(p *Program) Outcome {
		runs++
		if p.Regs[x86.RDX] != 0 && bytes.HasPrefix(p.Insn, []byte{0x66}) || bytes.Contains(p.Insn, []byte{0x66, 0x8b}) && p.Regs[x86.RDX] != 0 {
			return Outcome{Class: "result mov [rdx]"}
		}
		return Outcome{}
	}
	p := &Program{Mode: ModeProt32, Insn: []byte{0x2E, 0x66, 0x8B, 0x03}, Target: 0xd0000, TargetKind: "low window",
		Fills: []Fill{{0xd0000, 1}, {0xd0004, 2}}, Vector: true}
	for r := range p.Regs {
		p.Regs[r] = uint64(r + 1)
	}
	small := Shrink(p, "result mov [rdx]", run, 100)
	if len(small.Fills) != 0 || !bytes.Equal(small.Insn, []byte{0x66, 0x8B, 0x03}) || small.Vector {
		t.Errorf("shrunk to % x, fills %v, vector %v", small.Insn, small.Fills, small.Vector)
	}
	for r, v := range small.Regs[:8] { // r8-r15 are not set outside 64-bit mode
		switch {
		case r == int(x86.RDX) && v == 0, r == int(x86.RBX) && v != 0xd0000:
			t.Errorf("%v = %#x", x86.Reg(r), v)
		case r != int(x86.RDX) && r != int(x86.RBX) && v != 0:
			t.Errorf("%v = %#x, want 0", x86.Reg(r), v)
		}
	}
	if runs > 100 {
		t.Errorf("%d runs, budget 100", runs)
	}
}

func TestClassify(t *testing.T) {
	d := &ownpath.Disagreement{What: "result", Bytes: []byte{0x01, 0x03}, Fields: []string{"rflags", "ram 0x2000", "rax", "ram 0x2008"}}
	o := Classify(ModeProt32, vcpu.End{Kind: vcpu.EndFailure, Err: fmt.Errorf("vCPU 0: MMIO exit: %w", d)})
	if o.Class != "result add [ram rax rflags]" || o.Crash() {
		t.Errorf("class %q, crash %v", o.Class, o.Crash())
	}
	o = Classify(ModeLong4, vcpu.End{Kind: vcpu.EndFailure, Err: errors.New("KVM_RUN: bad address at 0x1234")})
	if !o.Crash() || o.Class != "error: KVM_RUN: bad address at N" {
		t.Errorf("class %q, crash %v", o.Class, o.Crash())
	}
	o = Classify(ModeReal, vcpu.End{Kind: vcpu.EndDebugExit, Status: 0})
	if o.Class != "" || o.End != "exit 0" {
		t.Errorf("%+v", o)
	}
}

// The fuzzing loop with a fake runner: each class once, shrunk, written as
// a guest and a JSON description that names its replay command.
func TestFuzzLoop(t *testing.T) {
	run := func(p *Program) Outcome {
		if p.Insn[0] == 0x90 {
			return Outcome{End: "exit 0"}
		}
		var inst decode.Inst
		if err := decode.Decode(p.Insn, p.Mode.DecodeMode(), &inst); err == nil && inst.Op == decode.ADD {
			return Outcome{End: "failure", Class: "result add [rflags]", Verdict: "result", Op: "add", Fields: []string{"rflags"}}
		}
		return Outcome{End: "exit 0", Checked: 1}
	}
	dir := t.TempDir()
	rep, err := Fuzz(Options{Seed: 3, Max: 400, Modes: []Mode{ModeProt32, ModeLong4}, Run: run, Out: dir, ShrinkRuns: 20})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Programs != 400 || len(rep.Findings) != 1 || rep.Findings[0].Seen < 2 || rep.Crashes() != 0 || len(rep.Known) != len(Known()) {
		t.Fatalf("programs %d, findings %+v, known %d", rep.Programs, rep.Findings, len(rep.Known))
	}
	f := rep.Findings[0]
	b, err := os.ReadFile(f.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var d Description
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Class != f.Class || d.Seen != f.Seen || !strings.Contains(d.Replay, f.Bin) || !strings.HasPrefix(d.Instruction, "add") {
		t.Errorf("description %+v", d)
	}
	img, err := os.ReadFile(f.Bin)
	if err != nil || !bytes.Equal(img, f.Program.Image()) {
		t.Errorf("guest file: %v", err)
	}
	var sum strings.Builder
	rep.Summary(&sum)
	if !strings.Contains(sum.String(), "1 findings, 0 crashes") || !strings.Contains(sum.String(), f.Replay) {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// The hand-made cases assemble, with their instruction where they say.
func TestKnown(t *testing.T) {
	for _, k := range Known() {
		p := k.Program
		img := p.Image()
		at := p.InsnAddr() - Load
		if !bytes.Equal(img[at:at+uint64(len(p.Insn))], p.Insn) || k.SDM == "" {
			t.Errorf("%s: instruction not in place", k.Name)
		}
	}
}

func TestParseModes(t *testing.T) {
	if m, err := ParseModes("all"); err != nil || len(m) != int(NumModes) {
		t.Errorf("all: %v %v", m, err)
	}
	if m, err := ParseModes("real,la57"); err != nil || len(m) != 2 || m[1] != ModeLong5 {
		t.Errorf("real,la57: %v %v", m, err)
	}
	if _, err := ParseModes("v86"); err == nil {
		t.Error("v86 accepted")
	}
}

// The replay guests committed under docs/fuzz (README: KVM behaviours that
// differ from the SDM): the hand-made ones are what Known builds, and each
// holds the instruction its description names where it says.
func TestReplayFiles(t *testing.T) {
	const dir = "../docs/fuzz"
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		t.Skipf("%s is not here (a test binary run outside the source tree, as in the nested runner)", dir)
	}
	known := map[string]*Program{}
	for _, k := range Known() {
		known["known-"+k.Name] = k.Program
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no descriptions in %s: %v", dir, err)
	}
	for _, jn := range names {
		base := strings.TrimSuffix(filepath.Base(jn), ".json")
		b, err := os.ReadFile(jn)
		if err != nil {
			t.Fatal(err)
		}
		var d Description
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", jn, err)
		}
		img, err := os.ReadFile(filepath.Join(dir, base+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		if p := known[base]; p != nil && !bytes.Equal(img, p.Image()) {
			t.Errorf("%s.bin is not what Known builds: regenerate it with vmm fuzz", base)
		}
		at, err1 := strconv.ParseUint(d.InsnAddr, 0, 64)
		insn, err2 := hex.DecodeString(d.Bytes)
		if err1 != nil || err2 != nil || at < Load || int(at-Load)+len(insn) > len(img) || !bytes.Equal(img[at-Load:int(at-Load)+len(insn)], insn) {
			t.Errorf("%s: the instruction %s is not at %s", base, d.Bytes, d.InsnAddr)
		}
		if !strings.Contains(d.Replay, "docs/fuzz/"+base+".bin") {
			t.Errorf("%s: replay %q", base, d.Replay)
		}
	}
}
