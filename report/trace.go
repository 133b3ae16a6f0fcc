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
	// Value is the entry as the walk read it, ValueAfter as the walk left
	// it when it set accessed/dirty flags.
	Value      string `json:"value,omitempty"`
	ValueAfter string `json:"value_after,omitempty"`
	// FromRegister marks a PAE PDPTE taken from the PDPTE registers.
	FromRegister bool `json:"from_register,omitempty"`
}

// Fault is the exception a walk ended in.
type Fault struct {
	Vector    uint8  `json:"vector"`
	Name      string `json:"name,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// KVMTranslation is KVM_TRANSLATE's answer for a walk's linear address;
// Memo says it is KVM's earlier answer for the same entries.
type KVMTranslation struct {
	GPA   string `json:"gpa"`
	Valid bool   `json:"valid"`
	Memo  bool   `json:"memo,omitempty"`
}

// Walk is one translation of the own path (an instruction fetch or an
// operand).
type Walk struct {
	Walker   string `json:"walker,omitempty"`
	Access   string `json:"access,omitempty"`
	Implicit bool   `json:"implicit,omitempty"` // an implicit supervisor-mode access
	User     bool   `json:"user,omitempty"`     // a user-mode access (CPL 3, not implicit)
	Linear   string `json:"linear,omitempty"`

	// The state the walk was made in: CR3 and its PCID (with CR4.PCIDE),
	// and the inputs of the permission check (SDM Vol. 3A §4.6).
	CR3   string `json:"cr3,omitempty"`
	PCID  *int   `json:"pcid,omitempty"`
	CPL   *int   `json:"cpl,omitempty"`
	CR0WP *bool  `json:"cr0_wp,omitempty"`
	SMEP  *bool  `json:"smep,omitempty"`
	SMAP  *bool  `json:"smap,omitempty"`
	NXE   *bool  `json:"nxe,omitempty"`
	AC    *bool  `json:"ac,omitempty"`
	PKE   *bool  `json:"pke,omitempty"`
	PKRU  string `json:"pkru,omitempty"`

	Levels []Level `json:"levels,omitempty"`

	// A translation: the GPA, the page size, the effective rights
	// ("rwxu"), the protection key; SetAD says the walk set
	// accessed/dirty flags (Level.ValueAfter).
	GPA      string `json:"gpa,omitempty"`
	PageSize uint64 `json:"page_size,omitempty"`
	Perm     string `json:"perm,omitempty"`
	PKey     *int   `json:"pkey,omitempty"`
	SetAD    bool   `json:"set_ad,omitempty"`
	// Or how it failed: a fault, or walkvm's error.
	Fault *Fault `json:"fault,omitempty"`
	Error string `json:"error,omitempty"`

	KVM *KVMTranslation `json:"kvm_translate,omitempty"`
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
	// Alternatives are the other instructions that end where a write
	// exit's instruction does and make the same write.
	Alternatives []Alternative `json:"alternatives,omitempty"`

	// Header is set only on the trace's header line (Trace.Header).
	Header *Header `json:"header,omitempty"`
}

// Alternative is another reading of the bytes before a write exit's RIP.
type Alternative struct {
	InsnRIP string `json:"insn_rip"`
	Bytes   string `json:"bytes"`
	Disasm  string `json:"disasm,omitempty"`
}

// Header is the first line of a trace: what holds for every record.
type Header struct {
	Format     string `json:"format,omitempty"`
	MaxPhyAddr int    `json:"maxphyaddr,omitempty"`
}

// Trace is a decoded trace: the records, and each record's JSON line as
// read (the HTML page embeds those, so fields this package does not know
// still reach the page).
type Trace struct {
	// Header is the trace's header line, nil for a trace without one.
	Header  *Header
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
	t.takeHeader()
	return t, nil
}

// takeHeader moves the header line out of the records; lines that claim
// to be headers after the first are dropped.
func (t *Trace) takeHeader() {
	n := 0
	for i := range t.Records {
		if h := t.Records[i].Header; h != nil {
			if t.Header == nil {
				t.Header = h
			}
			continue
		}
		t.Records[n], t.Lines[n] = t.Records[i], t.Lines[i]
		n++
	}
	t.Records, t.Lines = t.Records[:n], t.Lines[:n]
}

// parseHex reads the "0x..." strings the trace writes addresses in.
func parseHex(s string) (uint64, bool) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return 0, false
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	return v, err == nil
}
