package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Level is one paging-structure entry a walk read.
type Level struct {
	Level uint8  `json:"level"`
	Table string `json:"table"`
	Index uint16 `json:"index"`
	Entry string `json:"entry"`
	Value string `json:"value"`
}

// Walk is one translation of the own path (an instruction fetch or an
// operand).
type Walk struct {
	Walker string  `json:"walker"`
	Access string  `json:"access"`
	Linear string  `json:"linear"`
	Levels []Level `json:"levels"`
	GPA    string  `json:"gpa"`
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
	VCPU    int    `json:"vcpu"`
	Seq     uint64 `json:"seq"`
	Exit    string `json:"exit"`
	Mode    string `json:"mode"`
	CSRIP   string `json:"cs_rip"`
	InsnRIP string `json:"insn_rip"`
	Bytes   string `json:"bytes"`
	Disasm  string `json:"disasm"`
	Walks   []Walk `json:"walks"`
	Linear  string `json:"linear"`
	GPA     string `json:"gpa"`
	Size    int    `json:"size"`
	Dir     string `json:"direction"`
	Data    string `json:"data"`
	KVMGPA  string `json:"kvm_gpa"`
	KVMLen  int    `json:"kvm_len"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
	// TimeNS is nanoseconds since the run started when the exit arrived,
	// DurNS how long walkvm took to handle it; nil where the trace lacks
	// them.
	TimeNS *int64 `json:"t_ns"`
	DurNS  *int64 `json:"dur_ns"`
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
// An error names the line.
func Read(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	t := &Trace{}
	// One backing array for the kept lines: the scanner reuses its buffer.
	var keep []byte
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("trace line %d: %w", n, err)
		}
		if rec.VCPU < 0 {
			return nil, fmt.Errorf("trace line %d: vcpu %d is negative", n, rec.VCPU)
		}
		if cap(keep)-len(keep) < len(line) {
			keep = make([]byte, 0, max(1<<20, len(line)))
		}
		start := len(keep)
		keep = append(keep, line...)
		t.Lines = append(t.Lines, keep[start:len(keep):len(keep)])
		t.Records = append(t.Records, rec)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("trace line %d: longer than %d bytes", n+1, maxLine)
		}
		return nil, fmt.Errorf("trace line %d: %w", n+1, err)
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
