package unittests

import (
	"bytes"
	"fmt"
	"strings"
)

// Verdict is a test's outcome in kvm-unit-tests' words.
type Verdict string

// The verdicts.
const (
	Pass Verdict = "PASS"
	Fail Verdict = "FAIL"
	Skip Verdict = "SKIP"
)

// Exit statuses of `vmm run -debug-exit qemu`: the guest's exit(v) becomes
// (v<<1)|1, as with QEMU's isa-debug-exit.
const (
	StatusPass    = 1   // exit(0)
	StatusFail    = 3   // exit(1)
	StatusSkip    = 77  // exit(38): report_summary when every test skipped
	StatusAbort   = 127 // exit(63): abort()
	StatusTimeout = 124
	StatusWalkvm  = 125 // walkvm or the VM failed; one "vmm run: …" line says why
)

// Outcome is how a run ended, as the runner saw it.
type Outcome struct {
	Status int    // exit status; meaningless when Signal is set
	Signal string // "SIGKILL" … when the process died on a signal
	Stdout []byte // the guest's console (its tail is enough)
	Stderr []byte // walkvm's diagnostics (its head is enough)
	// TimeoutText is the entry's timeout as the cfg says it.
	TimeoutText string
}

// Judgement is a verdict with kvm-unit-tests' parenthesised text: Summary
// from the guest's SUMMARY line, or Reason when the runner knows better.
type Judgement struct {
	Verdict Verdict
	Summary string
	Reason  string
}

// Text is what goes in the parentheses after the name.
func (j Judgement) Text() string {
	if j.Reason != "" {
		return j.Reason
	}
	return j.Summary
}

// ExtractSummary finds the guest's "SUMMARY: …" line among the last five
// lines of its console, as runtime.bash's extract_summary does, and returns
// the text after "SUMMARY: ".
func ExtractSummary(console []byte) string {
	lines := strings.Split(strings.TrimRight(string(console), "\n"), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	for _, l := range lines {
		if s, ok := strings.CutPrefix(l, "SUMMARY: "); ok {
			return strings.TrimSuffix(s, "\r")
		}
	}
	return ""
}

// walkvmLine is the first "vmm run: …" line walkvm printed, without the
// prefix; or the last non-empty line when there is none.
func walkvmLine(stderr []byte) string {
	last := ""
	for _, l := range bytes.Split(stderr, []byte("\n")) {
		s := strings.TrimSpace(string(l))
		if r, ok := strings.CutPrefix(s, "vmm run: "); ok {
			return r
		}
		if s != "" {
			last = s
		}
	}
	return last
}

// refusesCPU reports whether walkvm's failure line is about the -cpu spec
// (an unknown model or feature, or one KVM cannot give).
func refusesCPU(line string) bool {
	return strings.Contains(line, "-cpu") || strings.Contains(line, "CPU feature") || strings.Contains(line, "CPU model")
}

// Judge reads an outcome the way runtime.bash's run() reads QEMU's
// translated status: 1 pass, 77 skip, 124 timeout, a signal, anything else a
// failure; walkvm's 125 is a failure with its line as the reason, except a
// refused -cpu spec, which is a SKIP naming it.
func Judge(o Outcome) Judgement {
	sum := ExtractSummary(o.Stdout)
	if o.Signal != "" {
		return Judgement{Verdict: Fail, Summary: sum, Reason: "terminated on " + o.Signal}
	}
	switch o.Status {
	case StatusPass:
		return Judgement{Verdict: Pass, Summary: sum}
	case StatusSkip:
		return Judgement{Verdict: Skip, Summary: sum}
	case StatusTimeout:
		return Judgement{Verdict: Fail, Summary: sum, Reason: "timeout; duration=" + o.TimeoutText}
	case StatusWalkvm:
		line := walkvmLine(o.Stderr)
		if refusesCPU(line) {
			return Judgement{Verdict: Skip, Reason: line}
		}
		if line == "" {
			line = "failed without saying why"
		}
		return Judgement{Verdict: Fail, Summary: sum, Reason: "walkvm: " + line}
	case 0:
		return Judgement{Verdict: Fail, Summary: sum, Reason: "exited 0 without the debug-exit"}
	case StatusAbort:
		if sum == "" {
			return Judgement{Verdict: Fail, Reason: "aborted"}
		}
	case StatusFail:
	default:
		if sum == "" {
			reason := fmt.Sprintf("status %d", o.Status)
			if line := walkvmLine(o.Stderr); line != "" {
				reason += ": " + line
			}
			return Judgement{Verdict: Fail, Reason: reason}
		}
	}
	return Judgement{Verdict: Fail, Summary: sum}
}
