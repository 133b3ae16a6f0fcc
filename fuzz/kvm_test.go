package fuzz

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/cpu"

	"walkvm/internal/kvmtest"
)

// vmm fuzz for a fixed seed and a short run, on KVM: every mode the host
// enters, the hand-made cases, and no program makes walkvm fail
// (disagreements with KVM are findings, logged).
func TestFuzzKVM(t *testing.T) {
	kvmtest.Require(t)
	n, timeout := 120, time.Second
	if kvmtest.Nested() {
		n, timeout = 60, 3*time.Second // everything is emulated there
	}
	rep, err := Fuzz(Options{Seed: 1, Max: n, Modes: mustModes(t), Run: KVMRunner(timeout), Out: t.TempDir(),
		AVX: cpu.X86.HasAVX && cpu.X86.HasOSXSAVE, ShrinkRuns: 10})
	if err != nil {
		t.Fatal(err)
	}
	var sum strings.Builder
	rep.Summary(&sum)
	t.Log(sum.String())
	if rep.Programs != n || rep.Checked == 0 {
		t.Errorf("%d programs, %d results checked", rep.Programs, rep.Checked)
	}
	if kvmtest.Nested() && len(rep.Modes) != int(NumModes) {
		t.Errorf("the nested KVM enters every mode, the fuzzer entered %v (%v)", rep.Modes, rep.Skipped)
	}
	for _, f := range rep.Findings {
		if f.Outcome.Crash() {
			t.Errorf("walkvm failed: %s\n%s\nreplay: %s", f.Class, f.Outcome.Detail, f.Replay)
		}
	}
}

func mustModes(t *testing.T) []Mode {
	m, err := ParseModes("all")
	if err != nil {
		t.Fatal(err)
	}
	return m
}
