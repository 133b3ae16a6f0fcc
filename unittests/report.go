package unittests

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Result is one entry's outcome.
type Result struct {
	Name string
	Judgement
	Status   int           // vmm's exit status; -1 when not run
	Duration time.Duration // 0 when not run
	Log      string        // the log file; "" when not run
	Command  []string      // the vmm command line; nil when not run
}

// Totals count the verdicts.
type Totals struct {
	Passed, Failed, Skipped int
	// Interrupted is set when Ctrl-C stopped the run: the totals count
	// only the entries that finished.
	Interrupted bool
}

// Add counts r.
func (t *Totals) Add(r Result) {
	switch r.Verdict {
	case Pass:
		t.Passed++
	case Fail:
		t.Failed++
	case Skip:
		t.Skipped++
	}
}

// String is the summary line.
func (t Totals) String() string {
	s := fmt.Sprintf("%d passed, %d failed, %d skipped", t.Passed, t.Failed, t.Skipped)
	if t.Interrupted {
		s += " (interrupted)"
	}
	return s
}

// Reporter writes results as they are settled, in cfg order.
type Reporter interface {
	Result(Result) error
	End(Totals) error
}

// NewText reports kvm-unit-tests' way: "PASS name (N tests, M skipped)",
// one line per entry, then the summary line.
func NewText(w io.Writer) Reporter { return textReporter{w} }

type textReporter struct{ w io.Writer }

func (t textReporter) Result(r Result) error {
	if s := r.Text(); s != "" {
		_, err := fmt.Fprintf(t.w, "%s %s (%s)\n", r.Verdict, r.Name, s)
		return err
	}
	_, err := fmt.Fprintf(t.w, "%s %s\n", r.Verdict, r.Name)
	return err
}

func (t textReporter) End(tot Totals) error {
	_, err := fmt.Fprintln(t.w, tot.String())
	return err
}

// NewTAP reports in TAP version 13: "ok N - name (text)", "not ok N - …",
// "ok N - name # SKIP reason", the plan at the end and the summary as a
// comment.
func NewTAP(w io.Writer) Reporter { return &tapReporter{w: w} }

type tapReporter struct {
	w io.Writer
	n int
}

func (t *tapReporter) Result(r Result) error {
	if t.n == 0 {
		if _, err := fmt.Fprintln(t.w, "TAP version 13"); err != nil {
			return err
		}
	}
	t.n++
	var err error
	switch r.Verdict {
	case Pass:
		_, err = fmt.Fprintf(t.w, "ok %d - %s%s\n", t.n, r.Name, paren(r.Text()))
	case Fail:
		_, err = fmt.Fprintf(t.w, "not ok %d - %s%s\n", t.n, r.Name, paren(r.Text()))
	case Skip:
		_, err = fmt.Fprintf(t.w, "ok %d - %s # SKIP %s\n", t.n, r.Name, r.Text())
	}
	return err
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func (t *tapReporter) End(tot Totals) error {
	if t.n == 0 {
		if _, err := fmt.Fprintln(t.w, "TAP version 13"); err != nil {
			return err
		}
	}
	if tot.Interrupted {
		if _, err := fmt.Fprintln(t.w, "Bail out! interrupted"); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(t.w, "1..%d\n# %s\n", t.n, tot)
	return err
}

// JSONResult is the JSON form of one result.
type JSONResult struct {
	Name    string   `json:"name"`
	Result  Verdict  `json:"result"`
	Summary string   `json:"summary,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Status  *int     `json:"status,omitempty"`
	Seconds float64  `json:"seconds,omitempty"`
	Log     string   `json:"log,omitempty"`
	Command []string `json:"command,omitempty"`
}

// JSONSummary is the last JSON object.
type JSONSummary struct {
	Summary struct {
		Passed      int  `json:"passed"`
		Failed      int  `json:"failed"`
		Skipped     int  `json:"skipped"`
		Interrupted bool `json:"interrupted,omitempty"`
	} `json:"summary"`
}

// NewJSON reports one JSON object per line per entry, then a summary
// object.
func NewJSON(w io.Writer) Reporter { return jsonReporter{json.NewEncoder(w)} }

type jsonReporter struct{ enc *json.Encoder }

func (j jsonReporter) Result(r Result) error {
	o := JSONResult{Name: r.Name, Result: r.Verdict, Summary: r.Summary, Reason: r.Reason,
		Seconds: r.Duration.Seconds(), Log: r.Log, Command: r.Command}
	if r.Command != nil {
		s := r.Status
		o.Status = &s
	}
	return j.enc.Encode(o)
}

func (j jsonReporter) End(t Totals) error {
	var s JSONSummary
	s.Summary.Passed, s.Summary.Failed, s.Summary.Skipped, s.Summary.Interrupted = t.Passed, t.Failed, t.Skipped, t.Interrupted
	return j.enc.Encode(s)
}
