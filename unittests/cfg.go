// Package unittests runs kvm-unit-tests' x86 suite under walkvm: it parses
// the suite's unittests.cfg, plans one `vmm run` per entry (or a SKIP with
// the reason), runs them as subprocesses, judges each exit status and console
// the way kvm-unit-tests' own runner (scripts/runtime.bash) does, and reports
// in its text form, TAP or JSON.
package unittests

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Entry is one [section] of unittests.cfg, its values as written (before
// shell expansion).
type Entry struct {
	Name string
	Line int // line of the [section] header

	File     string // file = NAME.flat
	SMP      string // smp = N or an expression such as $MAX_SMP; "" for 1
	TestArgs string // test_args: the guest's command line, shell-quoted
	Params   string // qemu_params / extra_params: QEMU options, shell-quoted
	Groups   []string
	Arch     string
	Machine  string
	Check    string // PATH=VALUE ... read before running
	Accel    string
	Timeout  string // timeout(1) duration; "" for the default
	// DisabledIf is a bash condition; the entry is skipped when it holds.
	DisabledIf string
}

// InGroup reports whether the entry lists group g.
func (e *Entry) InGroup(g string) bool {
	for _, x := range e.Groups {
		if x == g {
			return true
		}
	}
	return false
}

var (
	sectionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\[(.*)\]$`) })
	keyRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([a-z_]+) *= *(.*)$`) })
)

// Parse reads unittests.cfg the way kvm-unit-tests' for_each_unittest
// (scripts/common.bash) does: "[name]" opens an entry, "key = value" lines
// set its fields (unknown keys are ignored, as there), qemu_params may span
// lines between triple quotes, anything else (comments, blank lines) is
// skipped. name is used in errors.
func Parse(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	var cur *Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if m := sectionRE().FindStringSubmatch(line); m != nil {
			if m[1] == "" {
				return nil, fmt.Errorf("%s:%d: empty test name", name, n)
			}
			out = append(out, Entry{Name: m[1], Line: n})
			cur = &out[len(out)-1]
			continue
		}
		m := keyRE().FindStringSubmatch(line)
		if m == nil || cur == nil {
			continue
		}
		key, val := m[1], m[2]
		switch key {
		case "file":
			cur.File = val
		case "smp":
			cur.SMP = val
		case "test_args":
			cur.TestArgs = val
		case "qemu_params", "extra_params":
			if rest, ok := strings.CutPrefix(val, `"""`); ok {
				start := n
				text, closed := cutTripleQuote(rest)
				for !closed {
					if !sc.Scan() {
						return nil, fmt.Errorf("%s:%d: [%s] %s: no closing \"\"\"", name, start, cur.Name, key)
					}
					n++
					var more string
					more, closed = cutTripleQuote(sc.Text())
					text = joinContinued(text, more)
				}
				val = text
			}
			cur.Params = val
		case "groups":
			cur.Groups = strings.Fields(val)
		case "arch":
			cur.Arch = val
		case "machine":
			cur.Machine = val
		case "check":
			cur.Check = val
		case "accel":
			cur.Accel = val
		case "timeout":
			cur.Timeout = val
		case "disabled_if":
			cur.DisabledIf = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, n, err)
	}
	return out, nil
}

// cutTripleQuote returns s up to a closing """ (trailing blanks allowed
// after it) and whether it was there.
func cutTripleQuote(s string) (string, bool) {
	t := strings.TrimRight(s, " \t")
	if before, ok := strings.CutSuffix(t, `"""`); ok {
		return before, true
	}
	return s, false
}

// joinContinued appends a line of a multi-line value: a line ending in an
// odd number of backslashes continues without the newline, as in
// common.bash.
func joinContinued(text, more string) string {
	if text == "" {
		return more
	}
	bs := len(text) - len(strings.TrimRight(text, `\`))
	if bs%2 == 1 {
		return text[:len(text)-1] + more
	}
	return text + "\n" + more
}
