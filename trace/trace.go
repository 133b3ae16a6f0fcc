package trace

import (
	"encoding/hex"
	"io"
	"strconv"
	"sync"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/internal/jsontext"
	"walkvm/kvm"
	"walkvm/mmu"
	"walkvm/x86"
)

// Record is what `-trace` writes for one exit. The own MMIO path fills it
// as it handles the exit; it holds no allocated storage of its own.
type Record struct {
	Seq    uint64
	VCPU   int
	Reason kvm.ExitReason
	Mode   Mode
	CS     uint16
	RIP    uint64
	// CodeMode is the code size the instruction decodes with.
	CodeMode decode.Mode

	insn    [decode.MaxLen]byte
	insnLen int
	// InsnRIP is where the instruction behind a write exit starts.
	InsnRIP    uint64
	HasInsnRIP bool

	Walks []mmu.Walk

	HasAccess bool
	Linear    uint64
	GPA       uint64
	Size      int
	Write     bool

	HasMMIO bool
	KVMGPA  uint64
	KVMLen  int
	Data    uint64

	Verdict string
	Detail  string

	// The other instructions that end where the write exit's instruction
	// does and make the same write (the record names the one a CPU
	// executed).
	alts  [MaxAlternatives]Alternative
	nalts int
}

// MaxAlternatives bounds the other readings of a write exit's instruction
// a record lists.
const MaxAlternatives = 3

// Alternative is another decode of the bytes before a write exit's RIP
// that explains the write: it starts at RIP and has the bytes Insn.
type Alternative struct {
	RIP     uint64
	insn    [decode.MaxLen]byte
	insnLen int
}

// Insn is the alternative's bytes.
func (a *Alternative) Insn() []byte { return a.insn[:a.insnLen] }

// AddAlternative records another instruction at rip with bytes b that
// makes the same write; those beyond MaxAlternatives are dropped.
func (r *Record) AddAlternative(rip uint64, b []byte) {
	if r.nalts == len(r.alts) {
		return
	}
	a := &r.alts[r.nalts]
	a.RIP, a.insnLen = rip, copy(a.insn[:], b)
	r.nalts++
}

// Alternatives are the other instructions recorded (AddAlternative).
func (r *Record) Alternatives() []Alternative { return r.alts[:r.nalts] }

// Reset empties the record for the next exit.
func (r *Record) Reset() { *r = Record{} }

// SetInsn records the instruction's bytes.
func (r *Record) SetInsn(b []byte) { r.insnLen = copy(r.insn[:], b) }

// Insn is the recorded instruction's bytes.
func (r *Record) Insn() []byte { return r.insn[:r.insnLen] }

// SetMMIO records KVM's access: n bytes at gpa; data is a write's value.
func (r *Record) SetMMIO(gpa uint64, n int, write bool, data uint64) {
	r.HasMMIO, r.KVMGPA, r.KVMLen, r.Write = true, gpa, n, write
	if write {
		r.Data = data
	}
}

// SetAccess records walkvm's access: size bytes at linear, GPA gpa.
func (r *Record) SetAccess(linear, gpa uint64, size int) {
	r.HasAccess, r.Linear, r.GPA, r.Size = true, linear, gpa, size
}

// Tracer writes one JSON object per exit, one per line; several vCPUs may
// share one. A write error stops tracing and is kept (Err).
//
// Writing a record reuses the tracer's buffer but allocates the
// instruction's disassembly (x86asm formats into a new string), so tracing
// costs allocations; with tracing off no record is written and the exit
// path allocates nothing.
type Tracer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// NewTracer writes to w.
func NewTracer(w io.Writer) *Tracer { return &Tracer{w: w, buf: make([]byte, 0, 4096)} }

func appendHex(b []byte, v uint64) []byte {
	b = append(b, '"', '0', 'x')
	b = strconv.AppendUint(b, v, 16)
	return append(b, '"')
}

// Err is the write error that stopped tracing, if any.
func (t *Tracer) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Write renders r as one line.
func (t *Tracer) Write(r *Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	b := t.buf[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"vcpu":`...)
	b = strconv.AppendInt(b, int64(r.VCPU), 10)
	b = append(b, `,"exit":`...)
	b = jsontext.AppendString(b, r.Reason.String())
	b = append(b, `,"mode":`...)
	b = jsontext.AppendString(b, r.Mode.String())
	b = append(b, `,"cs_rip":`...)
	b = jsontext.AppendString(b, FormatCSRIP(r.CS, r.RIP))
	if r.insnLen > 0 {
		insn := r.insn[:r.insnLen]
		if r.HasInsnRIP {
			b = append(b, `,"insn_rip":`...)
			b = appendHex(b, r.InsnRIP)
		}
		b = append(b, `,"bytes":"`...)
		b = hex.AppendEncode(b, insn)
		b = append(b, `","disasm":`...)
		pc := r.RIP
		if r.HasInsnRIP {
			pc = r.InsnRIP
		}
		b = jsontext.AppendString(b, emulate.Disasm(insn, r.CodeMode, pc))
	}
	if r.nalts > 0 {
		b = append(b, `,"alternatives":[`...)
		for i := range r.nalts {
			a := &r.alts[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"insn_rip":`...)
			b = appendHex(b, a.RIP)
			b = append(b, `,"bytes":"`...)
			b = hex.AppendEncode(b, a.Insn())
			b = append(b, `","disasm":`...)
			b = jsontext.AppendString(b, emulate.Disasm(a.Insn(), r.CodeMode, a.RIP))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(r.Walks) > 0 {
		b = append(b, `,"walks":[`...)
		for i := range r.Walks {
			w := &r.Walks[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"walker":`...)
			b = jsontext.AppendString(b, w.Walker.String())
			b = append(b, `,"access":`...)
			b = jsontext.AppendString(b, accessName(w.Access))
			b = append(b, `,"linear":`...)
			b = appendHex(b, w.Addr)
			b = append(b, `,"levels":[`...)
			for j := range int(w.N) {
				e := &w.Entries[j]
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"level":`...)
				b = strconv.AppendUint(b, uint64(e.Level), 10)
				b = append(b, `,"table":`...)
				b = appendHex(b, e.TableGPA)
				b = append(b, `,"index":`...)
				b = strconv.AppendUint(b, uint64(e.Index), 10)
				b = append(b, `,"entry":`...)
				b = appendHex(b, e.EntryGPA)
				b = append(b, `,"value":`...)
				b = appendHex(b, e.Value)
				b = append(b, '}')
			}
			b = append(b, `],"gpa":`...)
			b = appendHex(b, w.GPA)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.HasAccess {
		b = append(b, `,"linear":`...)
		b = appendHex(b, r.Linear)
		b = append(b, `,"gpa":`...)
		b = appendHex(b, r.GPA)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(r.Size), 10)
	}
	if r.HasMMIO {
		b = append(b, `,"direction":`...)
		if r.Write {
			b = append(b, `"write"`...)
		} else {
			b = append(b, `"read"`...)
		}
		b = append(b, `,"data":`...)
		b = appendHex(b, r.Data)
		b = append(b, `,"kvm_gpa":`...)
		b = appendHex(b, r.KVMGPA)
		b = append(b, `,"kvm_len":`...)
		b = strconv.AppendInt(b, int64(r.KVMLen), 10)
	}
	if r.Verdict != "" {
		b = append(b, `,"verdict":`...)
		b = jsontext.AppendString(b, r.Verdict)
	}
	if r.Detail != "" {
		b = append(b, `,"detail":`...)
		b = jsontext.AppendString(b, r.Detail)
	}
	b = append(b, "}\n"...)
	t.buf = b
	_, t.err = t.w.Write(b)
}

func accessName(a x86.Access) string {
	switch {
	case a&x86.AccessFetch != 0:
		return "fetch"
	case a&x86.AccessWrite != 0:
		return "write"
	}
	return "read"
}
