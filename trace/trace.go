package trace

import (
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

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
	// WalkInfo[i] is what is known of Walks[i] besides the walk itself;
	// it may be shorter than Walks (nothing more known).
	WalkInfo []WalkInfo
	// Paging is the state the walks were made in (control registers,
	// CPL, RFLAGS.AC, PKRU); HasPaging says it is set.
	Paging    mmu.State
	HasPaging bool

	// TimeNS is when the exit arrived (KVM_RUN returned), in nanoseconds
	// since the run started, and DurNS how long handling it took; Timed
	// says they are set.
	TimeNS, DurNS int64
	Timed         bool

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

// WalkInfo is what a record knows of one of its walks besides the walk.
type WalkInfo struct {
	// Err is how the walk failed: a guest fault (*x86.Exception, the
	// walk's Fault) or walkvm's error (an entry outside guest RAM); nil
	// when it translated.
	Err error
	// Commit says the walk was of an access being made (mmu.WalkCommit):
	// its entries' SetFlags are the accessed/dirty flags it set.
	Commit bool
	// KVM is KVM_TRANSLATE's answer for the walk's linear address.
	KVM KVMTranslation
}

// KVMTranslation is KVM_TRANSLATE's answer for a walk.
type KVMTranslation struct {
	Checked bool // KVM was asked (or its earlier answer reused)
	GPA     uint64
	Valid   bool
	// Memo says the answer is KVM's earlier one for the same entries
	// (no ioctl).
	Memo bool
}

// Header is the first line of a trace: what holds for every record.
type Header struct {
	// MaxPhyAddr is the guest's MAXPHYADDR: entry bits from it to 51 are
	// reserved.
	MaxPhyAddr uint8
}

// Clock is a run's monotonic clock for the trace's timestamps.
type Clock struct{ start time.Time }

// NewClock starts a clock.
func NewClock() *Clock { return &Clock{start: time.Now()} }

// Now is the time since the clock started, in nanoseconds. It reads the
// monotonic clock (vDSO) and allocates nothing.
func (c *Clock) Now() int64 { return int64(time.Since(c.start)) }

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

// WriteHeader writes the trace's header line; call it before any record.
func (t *Tracer) WriteHeader(h Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	b := append(t.buf[:0], `{"header":{"format":"walkvm trace","maxphyaddr":`...)
	b = strconv.AppendUint(b, uint64(h.MaxPhyAddr), 10)
	b = append(b, "}}\n"...)
	t.buf = b
	_, t.err = t.w.Write(b)
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
	if r.Timed {
		b = append(b, `,"t_ns":`...)
		b = strconv.AppendInt(b, r.TimeNS, 10)
		b = append(b, `,"dur_ns":`...)
		b = strconv.AppendInt(b, r.DurNS, 10)
	}
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
			if i > 0 {
				b = append(b, ',')
			}
			var info *WalkInfo
			if i < len(r.WalkInfo) {
				info = &r.WalkInfo[i]
			}
			b = r.appendWalk(b, &r.Walks[i], info)
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

// appendWalk writes one walk: the access, the state it was made in (CR3,
// PCID, the permission inputs), every entry read (as read, and as left
// when the walk set accessed/dirty flags), then the translation (GPA, page
// size, rights, protection key) or the fault, and KVM_TRANSLATE's answer.
func (r *Record) appendWalk(b []byte, w *mmu.Walk, info *WalkInfo) []byte {
	b = append(b, `{"walker":`...)
	b = jsontext.AppendString(b, w.Walker.String())
	b = append(b, `,"access":`...)
	b = jsontext.AppendString(b, accessName(w.Access))
	if w.Access&x86.AccessImplicit != 0 {
		b = append(b, `,"implicit":true`...)
	}
	paging := r.HasPaging && w.Walker != mmu.Nonpaging
	if paging {
		ps := &r.Paging
		cpl := ps.Mode().CPL(ps.CPL)
		if cpl == 3 && w.Access&x86.AccessImplicit == 0 {
			b = append(b, `,"user":true`...)
		}
	}
	b = append(b, `,"linear":`...)
	b = appendHex(b, w.Addr)
	if paging {
		b = appendPaging(b, &r.Paging)
	}
	b = append(b, `,"levels":[`...)
	for j := range int(w.N) {
		e := &w.Entries[j]
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"level":`...)
		b = strconv.AppendUint(b, uint64(e.Level), 10)
		if e.FromRegister {
			b = append(b, `,"from_register":true`...)
		}
		b = append(b, `,"table":`...)
		b = appendHex(b, e.TableGPA)
		b = append(b, `,"index":`...)
		b = strconv.AppendUint(b, uint64(e.Index), 10)
		b = append(b, `,"entry":`...)
		b = appendHex(b, e.EntryGPA)
		b = append(b, `,"value":`...)
		b = appendHex(b, e.Value&^e.SetFlags)
		if e.SetFlags != 0 {
			b = append(b, `,"value_after":`...)
			b = appendHex(b, e.Value)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	var err error
	if info != nil {
		err = info.Err
	}
	var ex *x86.Exception
	switch {
	case err == nil:
		b = append(b, `,"gpa":`...)
		b = appendHex(b, w.GPA)
		b = append(b, `,"page_size":`...)
		b = strconv.AppendUint(b, w.PageSize, 10)
		b = append(b, `,"perm":"`...)
		b = w.Perm.Append(b)
		b = append(b, '"')
		if paging && r.Paging.CR4&x86.CR4PKE != 0 && w.Levels >= 4 {
			b = append(b, `,"pkey":`...)
			b = strconv.AppendUint(b, uint64(w.PKey), 10)
		}
		if info != nil && info.Commit {
			b = append(b, `,"set_ad":true`...)
		}
	case errors.As(err, &ex):
		b = append(b, `,"fault":{"vector":`...)
		b = strconv.AppendUint(b, uint64(ex.Vector), 10)
		b = append(b, `,"name":`...)
		b = jsontext.AppendString(b, x86.VectorName(ex.Vector))
		if ex.HasErrorCode {
			b = append(b, `,"error_code":`...)
			b = appendHex(b, uint64(ex.ErrorCode))
		}
		if ex.Reason != "" {
			b = append(b, `,"reason":`...)
			b = jsontext.AppendString(b, ex.Reason)
		}
		b = append(b, '}')
	default:
		b = append(b, `,"error":`...)
		b = jsontext.AppendString(b, err.Error())
	}
	if info != nil && info.KVM.Checked {
		k := &info.KVM
		b = append(b, `,"kvm_translate":{"gpa":`...)
		b = appendHex(b, k.GPA)
		b = append(b, `,"valid":`...)
		b = strconv.AppendBool(b, k.Valid)
		b = append(b, `,"memo":`...)
		b = strconv.AppendBool(b, k.Memo)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendPaging writes the state a walk is made in: CR3 and its PCID, and
// what the permission check reads (SDM Vol. 3A §4.6).
func appendPaging(b []byte, ps *mmu.State) []byte {
	b = append(b, `,"cr3":`...)
	b = appendHex(b, ps.CR3)
	if ps.CR4&x86.CR4PCIDE != 0 {
		b = append(b, `,"pcid":`...)
		b = strconv.AppendUint(b, ps.CR3&0xfff, 10)
	}
	b = append(b, `,"cpl":`...)
	b = strconv.AppendUint(b, uint64(ps.Mode().CPL(ps.CPL)), 10)
	for _, f := range [...]struct {
		name string
		on   bool
	}{
		{`,"cr0_wp":`, ps.CR0&x86.CR0WP != 0},
		{`,"smep":`, ps.CR4&x86.CR4SMEP != 0},
		{`,"smap":`, ps.CR4&x86.CR4SMAP != 0},
		{`,"nxe":`, ps.EFER&x86.EFERNXE != 0},
		{`,"ac":`, ps.RFLAGS&x86.FlagAC != 0},
		{`,"pke":`, ps.CR4&x86.CR4PKE != 0 && ps.EFER&x86.EFERLMA != 0},
	} {
		b = append(b, f.name...)
		b = strconv.AppendBool(b, f.on)
	}
	if ps.CR4&x86.CR4PKE != 0 {
		b = append(b, `,"pkru":`...)
		b = appendHex(b, uint64(ps.PKRU))
	}
	return b
}
