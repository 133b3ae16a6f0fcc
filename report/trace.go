package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
)

// Level is one paging-structure entry a walk read.
type Level struct {
	Level uint8  `json:"level"`
	Table string `json:"table,omitempty"`
	Index uint16 `json:"index"`
	Entry string `json:"entry,omitempty"`
	Value string `json:"value,omitempty"`
}

// Walk is one translation of the own path (an instruction fetch or an
// operand).
type Walk struct {
	Walker string  `json:"walker,omitempty"`
	Access string  `json:"access,omitempty"`
	Linear string  `json:"linear,omitempty"`
	Levels []Level `json:"levels,omitempty"`
	GPA    string  `json:"gpa,omitempty"`
}

// Depth is the number of paging-structure levels of the walk's format: the
// level of the first entry read (2 for 32-bit paging, 3 PAE, 4 or 5), 0
// without paging.
func (w *Walk) Depth() int {
	if len(w.Levels) == 0 {
		return 0
	}
	return int(w.Levels[0].Level)
}

// Record is one exit of the trace.
type Record struct {
	VCPU    int    `json:"vcpu,omitempty"`
	Seq     uint64 `json:"seq"`
	Exit    string `json:"exit"`
	Mode    string `json:"mode"`
	CSRIP   string `json:"cs_rip"`
	InsnRIP string `json:"insn_rip,omitempty"`
	Bytes   string `json:"bytes,omitempty"`
	Disasm  string `json:"disasm,omitempty"`
	Walks   []Walk `json:"walks,omitempty"`
	Linear  string `json:"linear,omitempty"`
	GPA     string `json:"gpa,omitempty"`
	Size    int    `json:"size,omitempty"`
	Dir     string `json:"direction,omitempty"`
	Data    string `json:"data,omitempty"`
	KVMGPA  string `json:"kvm_gpa,omitempty"`
	KVMLen  int    `json:"kvm_len,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// TimeNS is nanoseconds since the run started when the exit arrived,
	// DurNS how long walkvm took to handle it; nil where the trace lacks
	// them.
	TimeNS *int64 `json:"t_ns,omitempty"`
	DurNS  *int64 `json:"dur_ns,omitempty"`
}

// Trace is a decoded trace: the records, and each record's JSON line as
// read (the HTML page embeds those, so fields this package does not know
// still reach the page).
type Trace struct {
	Records []Record
	Lines   [][]byte
}

// maxLine bounds one record's line: the largest record (every walk of a
// string instruction, every level) is a few KiB.
const maxLine = 1 << 20

// Read decodes a trace: one JSON object per line, blank lines skipped.
// An error names the line. Lines are decoded in parallel, one chunk per
// CPU.
func Read(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	t := &Trace{}
	var lineNo []int // file line of each kept line, for errors
	// One backing array per MiB of lines: the scanner reuses its buffer.
	var keep []byte
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if cap(keep)-len(keep) < len(line) {
			keep = make([]byte, 0, max(1<<20, len(line)))
		}
		start := len(keep)
		keep = append(keep, line...)
		t.Lines = append(t.Lines, keep[start:len(keep):len(keep)])
		lineNo = append(lineNo, n)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("trace line %d: longer than %d bytes", n+1, maxLine)
		}
		return nil, fmt.Errorf("trace line %d: %w", n+1, err)
	}
	t.Records = make([]Record, len(t.Lines))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(t.Lines)/1000))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(t.Lines)/workers, (w+1)*len(t.Lines)/workers
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				rec := &t.Records[i]
				if err := json.Unmarshal(t.Lines[i], rec); err != nil {
					errs[w] = fmt.Errorf("trace line %d: %w", lineNo[i], err)
					return
				}
				if rec.VCPU < 0 {
					errs[w] = fmt.Errorf("trace line %d: vcpu %d is negative", lineNo[i], rec.VCPU)
					return
				}
			}
		})
	}
	wg.Wait()
	// The first error in the file: chunks are in file order.
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// parseHex reads the "0x..." strings the trace writes addresses in.
func parseHex(s string) (uint64, bool) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return 0, false
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	return v, err == nil
}
