package unittests

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

var sampleResults = []Result{
	{Name: "emulator", Judgement: Judgement{Verdict: Pass, Summary: "120 tests, 2 skipped"}, Status: 1, Duration: 1500 * time.Millisecond, Log: "logs/emulator.log", Command: []string{"vmm", "run", "x86/emulator.flat"}},
	{Name: "pmu", Judgement: Judgement{Verdict: Fail, Summary: "10 tests, 3 unexpected failures"}, Status: 3, Duration: time.Second, Log: "logs/pmu.log", Command: []string{"vmm", "run", "x86/pmu.flat"}},
	{Name: "sieve", Judgement: Judgement{Verdict: Fail, Reason: "timeout; duration=180"}, Status: 124, Duration: 3 * time.Minute, Log: "logs/sieve.log", Command: []string{"vmm", "run", "x86/sieve.flat"}},
	{Name: "cmpxchg8b", Judgement: Judgement{Verdict: Skip, Reason: "i386 only"}, Status: -1},
	{Name: "dummy", Judgement: Judgement{Verdict: Pass}, Status: 1, Command: []string{"vmm"}},
}

func report(t *testing.T, r Reporter, interrupted bool) {
	t.Helper()
	var tot Totals
	for _, res := range sampleResults {
		tot.Add(res)
		if err := r.Result(res); err != nil {
			t.Fatal(err)
		}
	}
	tot.Interrupted = interrupted
	if err := r.End(tot); err != nil {
		t.Fatal(err)
	}
}

func TestTextReporter(t *testing.T) {
	var b bytes.Buffer
	report(t, NewText(&b), false)
	want := `PASS emulator (120 tests, 2 skipped)
FAIL pmu (10 tests, 3 unexpected failures)
FAIL sieve (timeout; duration=180)
SKIP cmpxchg8b (i386 only)
PASS dummy
2 passed, 2 failed, 1 skipped
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestTAPReporter(t *testing.T) {
	var b bytes.Buffer
	report(t, NewTAP(&b), true)
	want := `TAP version 13
ok 1 - emulator (120 tests, 2 skipped)
not ok 2 - pmu (10 tests, 3 unexpected failures)
not ok 3 - sieve (timeout; duration=180)
ok 4 - cmpxchg8b # SKIP i386 only
ok 5 - dummy
Bail out! interrupted
1..5
# 2 passed, 2 failed, 1 skipped (interrupted)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := NewTAP(&b).End(Totals{}); err != nil || b.String() != "TAP version 13\n1..0\n# 0 passed, 0 failed, 0 skipped\n" {
		t.Errorf("empty TAP: %q, %v", b.String(), err)
	}
}

func TestJSONReporter(t *testing.T) {
	var b bytes.Buffer
	report(t, NewJSON(&b), false)
	dec := json.NewDecoder(&b)
	for _, want := range sampleResults {
		var got JSONResult
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Name != want.Name || got.Result != want.Verdict || got.Summary != want.Summary || got.Reason != want.Reason ||
			got.Log != want.Log || len(got.Command) != len(want.Command) || got.Seconds != want.Duration.Seconds() {
			t.Errorf("%s: got %+v", want.Name, got)
		}
		if (got.Status == nil) != (want.Command == nil) || got.Status != nil && *got.Status != want.Status {
			t.Errorf("%s: status %v, want %d (run: %v)", want.Name, got.Status, want.Status, want.Command != nil)
		}
	}
	var s JSONSummary
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Summary.Passed != 2 || s.Summary.Failed != 2 || s.Summary.Skipped != 1 || s.Summary.Interrupted {
		t.Errorf("summary %+v", s.Summary)
	}
	if dec.More() {
		t.Error("output after the summary")
	}
}
