package fuzz

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/boot"
	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/machine"
	"walkvm/ownpath"
	"walkvm/vcpu"
)

// Outcome is how one program's run ended and what it found.
type Outcome struct {
	// End is how the guest ended: "exit 0", "shutdown", "halt",
	// "timeout", "failure" ...
	End string
	// Class names a disagreement or a walkvm failure; empty for neither.
	// Runs with the same Class are one finding.
	Class string
	// Verdict is the disagreement's kind ("result", "read", "write",
	// "fetch", "translate"; "read: walkvm faults" where walkvm's resolve
	// raised a fault at an access KVM made), or "error" for a walkvm
	// failure.
	Verdict string
	Op      string   // the disagreeing instruction's mnemonic
	Fields  []string // what differs in a result disagreement
	Detail  string   // the disagreement or failure, as walkvm reported it
	// NotEmulated says walkvm stopped at an instruction KVM gave up on and
	// walkvm does not execute: a known gap, not a finding.
	NotEmulated bool
	// Checked counts the results -verify exec compared.
	Checked uint64
}

// Crash reports a walkvm failure that is neither a disagreement nor a
// known gap.
func (o *Outcome) Crash() bool { return o.Verdict == "error" }

// Runner runs one program under -verify exec.
type Runner func(p *Program) Outcome

// KVMRunner runs programs in a fresh VM each, through walkvm's own MMIO
// path under -verify exec, each for at most timeout.
func KVMRunner(timeout time.Duration) Runner {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return func(p *Program) Outcome {
		m, err := machine.New(machine.Config{MemSize: MemSize, Image: boot.Image{Data: p.Image(), Load: Load, Mode: p.Mode.Entry()},
			Console: io.Discard, Log: log})
		if err != nil {
			return Outcome{End: "failure", Verdict: "error", Class: "error: " + normalize(err.Error()), Detail: err.Error()}
		}
		defer m.Close()
		own, err := m.OwnPath(ownpath.VerifyExec, nil)
		if err != nil {
			return Outcome{End: "failure", Verdict: "error", Class: "error: " + normalize(err.Error()), Detail: err.Error()}
		}
		res := m.RunOwn(own, timeout)
		o := Classify(p.Mode, res)
		o.Checked = own.Stats().Results.Checked
		return o
	}
}

// Classify turns a run's end into an Outcome.
func Classify(mode Mode, res vcpu.End) Outcome {
	o := Outcome{End: endName(res)}
	var d *ownpath.Disagreement
	var ne *emulate.NotEmulatedError
	switch {
	case errors.As(res.Err, &d):
		o.Verdict, o.Detail = d.What, d.Error()
		if d.What == "read" && strings.Contains(d.Detail, "resolving the operand failed") {
			o.Verdict = "read: walkvm faults"
		}
		o.Op = opName(mode, d.Bytes, d.Disasm)
		for _, f := range d.Fields {
			o.Fields = append(o.Fields, fieldKind(f))
		}
		sort.Strings(o.Fields)
		o.Fields = dedup(o.Fields)
		o.Class = fmt.Sprintf("%s %s", o.Verdict, o.Op)
		if len(o.Fields) > 0 {
			o.Class += " [" + strings.Join(o.Fields, " ") + "]"
		}
	case errors.As(res.Err, &ne):
		o.NotEmulated = true
	case res.Kind == vcpu.EndFailure:
		o.Verdict, o.Detail = "error", res.Err.Error()
		o.Class = "error: " + normalize(firstLine(res.Err.Error()))
	}
	return o
}

func endName(res vcpu.End) string {
	if res.Kind == vcpu.EndDebugExit {
		return fmt.Sprintf("exit %d", res.Status)
	}
	return res.Kind.String()
}

// opName is the mnemonic of the instruction a disagreement names.
func opName(mode Mode, b []byte, disasm string) string {
	var inst decode.Inst
	for _, dm := range []decode.Mode{mode.DecodeMode(), decode.Mode16, decode.Mode32, decode.Mode64} {
		if len(b) > 0 && decode.Decode(b, dm, &inst) == nil {
			return inst.Op.String()
		}
	}
	if f := strings.Fields(disasm); len(f) > 0 && !strings.HasPrefix(f[0], "(bad") {
		return f[0]
	}
	return "undefined"
}

// hexRE matches the numbers in a message; compiled at first use, not at
// every start of vmm.
var hexRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`0x[0-9a-f]+|\b[0-9a-f]{2}( [0-9a-f]{2})+\b|\b[0-9]+\b`)
})

// fieldKind drops the address from a field name ("ram 0x1000" -> "ram").
func fieldKind(f string) string {
	return strings.TrimSpace(hexRE().ReplaceAllString(f, ""))
}

// normalize drops the numbers from a message, so that failures of one
// kind at different places are one class.
func normalize(s string) string {
	s = hexRE().ReplaceAllString(s, "N")
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
