package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	visual "walkvm/report"
)

// cmdReport renders a trace as an HTML page or a Chrome trace-event file.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vmm report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output FILE (- for stdout; default report.html, or report.json for -format chrome)")
	format := fs.String("format", "html", "html (a self-contained page) or chrome (trace events for Perfetto UI and chrome://tracing)")
	title := fs.String("title", "", "page title (default: walkvm report: TRACE)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vmm report [-o FILE] [-format html|chrome] TRACE   (TRACE: the JSON lines of vmm run -trace; - for stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "vmm report: want one TRACE, got %d arguments\n", fs.NArg())
		return 2
	}
	if *format != "html" && *format != "chrome" {
		fmt.Fprintf(stderr, "vmm report: -format %q: want html or chrome\n", *format)
		return 2
	}
	if *out == "" {
		*out = map[string]string{"html": "report.html", "chrome": "report.json"}[*format]
	}
	in := fs.Arg(0)
	if *title == "" {
		*title = "walkvm report: " + filepath.Base(in)
	}
	if err := renderTrace(in, *out, *format, *title, stdout); err != nil {
		fmt.Fprintf(stderr, "vmm report: %v\n", err)
		return 1
	}
	return 0
}

// renderTrace reads the trace at in ("-": stdin) and writes it to out
// ("-": stdout) in format.
func renderTrace(in, out, format, title string, stdout io.Writer) error {
	var r io.Reader = os.Stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	t, err := visual.Read(r)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	s := visual.Summarize(t)
	w, closeOut := stdout, func() error { return nil }
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		w, closeOut = f, f.Close
	}
	if format == "chrome" {
		err = visual.WriteChrome(w, t, s)
	} else {
		err = visual.WriteHTML(w, t, s, title)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return nil
}

// traceSink is where `vmm run` sends its trace: the JSON lines go to
// -trace directly, or to a temporary file when -report or -trace-format
// chrome turn them into something else at the end.
type traceSink struct {
	trace, format, report string
	tmp                   string
}

// path is the file the tracer writes ("" for no trace, "-" for stderr).
func (s *traceSink) path() (string, error) {
	if s.format == "json" && s.report == "" || s.format == "json" && s.trace != "" && s.trace != "-" {
		return s.trace, nil
	}
	if s.trace == "" && s.report == "" {
		return "", nil
	}
	f, err := os.CreateTemp("", "walkvm-trace-*.jsonl")
	if err != nil {
		return "", err
	}
	s.tmp = f.Name()
	return s.tmp, f.Close()
}

// finish converts the trace once it is closed, and removes the temporary
// file.
func (s *traceSink) finish(stderr io.Writer) error {
	src := s.trace
	if s.tmp != "" {
		src = s.tmp
		defer os.Remove(s.tmp)
	}
	var errs []error
	switch {
	case s.trace == "":
	case s.format == "chrome":
		if err := renderTrace(src, s.trace, "chrome", "", stderr); err != nil {
			errs = append(errs, fmt.Errorf("-trace-format chrome: %w", err))
		}
	case s.trace == "-" && s.tmp != "":
		if f, err := os.Open(src); err == nil {
			_, err = io.Copy(stderr, bufio.NewReader(f))
			f.Close()
			errs = append(errs, err)
		}
	}
	if s.report != "" {
		if err := renderTrace(src, s.report, "html", "walkvm report", stderr); err != nil {
			errs = append(errs, fmt.Errorf("-report: %w", err))
		}
	}
	return errors.Join(errs...)
}
