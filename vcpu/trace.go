package vcpu

import (
	"encoding/hex"
	"io"
	"strconv"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/mmu"
	"walkvm/x86"
)

// TraceRecord is what `-trace` writes for one exit.
type TraceRecord struct {
	Seq    uint64
	Reason kvm.ExitReason
	Mode   Mode
	CS     uint16
	RIP    uint64
	// CodeMode is the code size the instruction decodes with.
	CodeMode decode.Mode

	insn    [15]byte
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
}

func (r *TraceRecord) reset() {
	*r = TraceRecord{}
}

func (r *TraceRecord) setInsn(b []byte) { r.insnLen = copy(r.insn[:], b) }

func (r *TraceRecord) setMMIO(e *kvm.MMIOExit, n int) {
	r.HasMMIO, r.KVMGPA, r.KVMLen, r.Write = true, e.PhysAddr, n, e.IsWrite != 0
	if e.IsWrite != 0 {
		r.Data = le64(e.Data[:n])
	}
}

func (r *TraceRecord) setAccess(a *emulate.MemRefs) {
	if a.N == 0 {
		return
	}
	// The access KVM's exit belongs to is the one written for a write
	// exit, else the first.
	acc := &a.A[0]
	for i := range a.N {
		if a.A[i].Write == r.Write {
			acc = &a.A[i]
			break
		}
	}
	r.HasAccess, r.Linear, r.GPA, r.Size = true, acc.Linear, acc.Pieces[0].GPA, int(acc.Size)
}

// Tracer writes one JSON object per exit, one per line. It reuses its
// buffer; a write error stops tracing and is kept in Err.
type Tracer struct {
	w   io.Writer
	buf []byte
	Err error
}

// NewTracer writes to w.
func NewTracer(w io.Writer) *Tracer { return &Tracer{w: w, buf: make([]byte, 0, 4096)} }

func appendHex(b []byte, v uint64) []byte {
	b = append(b, '"', '0', 'x')
	b = strconv.AppendUint(b, v, 16)
	return append(b, '"')
}

// Write renders r.
func (t *Tracer) Write(r *TraceRecord) {
	if t.Err != nil {
		return
	}
	b := t.buf[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"exit":`...)
	b = strconv.AppendQuote(b, r.Reason.String())
	b = append(b, `,"mode":`...)
	b = strconv.AppendQuote(b, r.Mode.String())
	b = append(b, `,"cs_rip":`...)
	b = strconv.AppendQuote(b, FormatCSRIP(r.CS, r.RIP))
	if r.insnLen > 0 {
		insn := r.insn[:r.insnLen]
		if r.HasInsnRIP {
			b = append(b, `,"insn_rip":`...)
			b = appendHex(b, r.InsnRIP)
		}
		b = append(b, `,"bytes":"`...)
		b = hex.AppendEncode(b, insn)
		b = append(b, `","disasm":`...)
		b = strconv.AppendQuote(b, emulate.Disasm(insn, r.CodeMode, r.RIP))
	}
	if len(r.Walks) > 0 {
		b = append(b, `,"walks":[`...)
		for i := range r.Walks {
			w := &r.Walks[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"walker":`...)
			b = strconv.AppendQuote(b, w.Walker.String())
			b = append(b, `,"access":`...)
			b = strconv.AppendQuote(b, accessName(w.Access))
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
		b = strconv.AppendQuote(b, r.Verdict)
	}
	if r.Detail != "" {
		b = append(b, `,"detail":`...)
		b = strconv.AppendQuote(b, r.Detail)
	}
	b = append(b, "}\n"...)
	t.buf = b
	_, t.Err = t.w.Write(b)
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
