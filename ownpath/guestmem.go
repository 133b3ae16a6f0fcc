package ownpath

import (
	"walkvm/emulate"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/trace"
	"walkvm/x86"
)

// maxWalks bounds the walks one exit records: a fetch across a page (2),
// two operands across pages (4), with room to spare.
const maxWalks = 8

// physMem is guest-physical memory: RAM through memory.RAM, everything
// else on the MMIO bus, where an unassigned access is counted.
type physMem struct {
	ram   *memory.RAM
	bus   *memory.Bus
	stats *trace.Stats
}

// access reads or writes len(b) bytes at gpa.
func (m *physMem) access(gpa uint64, b []byte, write bool) error {
	if m.ram.Contains(gpa, uint64(len(b))) {
		if write {
			return m.ram.Write(gpa, b)
		}
		return m.ram.Read(gpa, b)
	}
	mapped, err := m.bus.Serve(gpa, b, write)
	if !mapped {
		m.stats.CountUnassigned(false, write)
	}
	return err
}

// guestMem is the emulator's view of the guest (emulate.Memory) for the
// walks of the path: walks with walkvm's own mmu.Context over physMem. It
// records the walks of the current exit for stats and traces and, when
// asked, checks each one against KVM_TRANSLATE.
type guestMem struct {
	phys physMem
	ctx  mmu.Context

	walks     [maxWalks]mmu.Walk
	info      [maxWalks]trace.WalkInfo // how each walk ended, KVM's answer
	nwalks    int
	spare     mmu.Walk // used once the record is full
	spareInfo trace.WalkInfo

	// kvm, when set, answers KVM_TRANSLATE; a walk that disagrees with it
	// is counted and remembered.
	kvm        Translator
	checks     uint64
	ioctls     uint64
	mismatches uint64
	mismatch   translateMismatch // the first mismatch of the current exit

	// memo remembers KVM's answers: KVM_TRANSLATE runs KVM's own walker
	// over the same guest memory, so for a walk that read exactly the
	// entries KVM last confirmed, under the same control registers, KVM
	// would answer the same. Only a changed walk costs an ioctl.
	memo     [memoSize]translateMemo
	memoGen  uint64 // bumped when the walker's control-register state changes
	walkMemo walkMemo
}

// Translator is KVM_TRANSLATE; *kvm.VCPU implements it.
type Translator interface {
	Translate(la uint64) (gpa uint64, valid bool, err error)
}

const memoSize = 64

type translateMemo struct {
	gen      uint64
	page     uint64 // linear page number
	n        uint8
	supRead  bool                  // a supervisor read could use the walk
	entries  [mmu.MaxLevels]uint64 // values of the entries the walk read
	kvmPage  uint64
	kvmValid bool
}

type translateMismatch struct {
	seen     bool
	la       uint64
	own      uint64
	ownFault error
	kvm      uint64
	kvmValid bool
}

func (g *guestMem) reset() {
	g.nwalks = 0
	g.mismatch = translateMismatch{}
}

// Walks returns the walks recorded since the last reset.
func (g *guestMem) Walks() []mmu.Walk { return g.walks[:g.nwalks] }

// WalkInfo returns what is known of each walk Walks returns.
func (g *guestMem) WalkInfo() []trace.WalkInfo { return g.info[:g.nwalks] }

func (g *guestMem) nextWalk() (*mmu.Walk, *trace.WalkInfo) {
	if g.nwalks == len(g.walks) {
		return &g.spare, &g.spareInfo
	}
	g.nwalks++
	return &g.walks[g.nwalks-1], &g.info[g.nwalks-1]
}

// walkMemoSize is how many walks walkMemo keeps: the code and operand
// pages of a few MMIO sites. A page's read, write and fetch walks have
// slots of their own.
const walkMemoSize = 32

// walkMemo remembers successful walks that set no flags, by linear page
// and access, under one walker context (its generation, mmu.Context.Gen).
// A walk of the same page for the same access whose entries still hold
// the values it read (mmu.Context.Unchanged re-reads them) has the same
// result, so it is copied instead of made again: exact, as a new walk.
type walkMemo struct {
	e [walkMemoSize]walkMemoEntry
}

type walkMemoEntry struct {
	valid bool
	gen   uint64
	page  uint64 // linear page number, as given to the walk
	acc   x86.Access
	w     mmu.Walk
}

// walk translates la for the emulator's intent: WalkCommit, which sets
// accessed and dirty flags, for an instruction being executed, else Walk.
func walk(c *mmu.Context, mem mmu.Memory, la uint64, in emulate.Intent, w *mmu.Walk) error {
	if in.Commit {
		return c.WalkCommit(mem, la, in.Access, w)
	}
	return c.Walk(mem, la, in.Access, w)
}

// walk is walk with the memo: a walk that sets no flags under paging is
// the memo's copy when its entries are unchanged.
func (m *walkMemo) walk(c *mmu.Context, mem mmu.Memory, la uint64, in emulate.Intent, w *mmu.Walk) error {
	if in.Commit || c.Paging() == x86.PagingNone {
		return walk(c, mem, la, in, w)
	}
	gen := c.Gen()
	page := la >> 12
	e := &m.e[(page*4+uint64(in.Access&3))%walkMemoSize]
	if e.valid && e.gen == gen && e.page == page && e.acc == in.Access && c.Unchanged(mem, &e.w) {
		copyWalk(w, &e.w, la&0xfff)
		return nil
	}
	if err := c.Walk(mem, la, in.Access, w); err != nil {
		return err
	}
	e.valid, e.gen, e.page, e.acc = true, gen, page, in.Access
	copyWalk(&e.w, w, w.Addr&0xfff)
	return nil
}

// copyWalk makes dst the successful walk src for the address at offset
// off in the same 4 KiB linear page.
func copyWalk(dst, src *mmu.Walk, off uint64) {
	dst.Addr, dst.GPA = src.Addr&^0xfff|off, src.GPA&^0xfff|off
	dst.Access, dst.Walker, dst.Levels, dst.N = src.Access, src.Walker, src.Levels, src.N
	copy(dst.Entries[:src.N], src.Entries[:src.N])
	dst.PageSize, dst.Perm, dst.PKey, dst.MemType = src.PageSize, src.Perm, src.PKey, src.MemType
}

// Translate implements emulate.Memory.
func (g *guestMem) Translate(la uint64, in emulate.Intent) (uint64, error) {
	w, info := g.nextWalk()
	err := g.walkMemo.walk(&g.ctx, g.phys.ram, la, in, w)
	*info = trace.WalkInfo{Err: err, Commit: in.Commit}
	if g.kvm != nil {
		g.check(la, w, err, &info.KVM)
	}
	if err != nil {
		return 0, err
	}
	return w.GPA, nil
}

// check compares one walk with KVM_TRANSLATE. KVM translates for an
// explicit supervisor-mode read, so a successful walk must give KVM's GPA
// when that read is allowed too, and be invalid for KVM when SMAP or a
// protection key refuses it (a user page at CPL 3, as Linux's user space
// runs); a walk that found a not-present entry must be invalid for KVM
// too. A walk refused for its own access rights is not compared. KVM's
// answer is kept in k.
func (g *guestMem) check(la uint64, w *mmu.Walk, werr error, k *trace.KVMTranslation) {
	var pf bool
	if werr != nil {
		ex, isExc := werr.(*x86.Exception)
		if !isExc || ex.Vector != x86.VectorPF || ex.ErrorCode&x86.PFErrPresent != 0 {
			return // a permission or reserved-bit fault, or not a #PF: KVM may still translate
		}
		pf = true
	}
	supRead := !pf && g.ctx.AllowsSupervisorRead(w)
	gpa, valid, memo, err := g.kvmTranslate(la, w, supRead)
	if err != nil {
		return
	}
	*k = trace.KVMTranslation{Checked: true, GPA: gpa, Valid: valid, Memo: memo}
	g.checks++
	var ok bool
	switch {
	case !supRead:
		ok = !valid
	default:
		ok = valid && gpa == w.GPA
	}
	if ok {
		return
	}
	g.mismatches++
	if !g.mismatch.seen {
		g.mismatch = translateMismatch{seen: true, la: la, own: w.GPA, ownFault: werr, kvm: gpa, kvmValid: valid}
	}
}

// kvmTranslate asks KVM, or the memo when the walk is one KVM confirmed
// with the same answer to whether a supervisor read may use it (which
// RFLAGS.AC can change between exits); memo says the answer came from it.
func (g *guestMem) kvmTranslate(la uint64, w *mmu.Walk, supRead bool) (gpa uint64, valid, memo bool, err error) {
	page := la >> 12
	m := &g.memo[page%memoSize]
	if m.gen == g.memoGen && m.page == page && m.n == w.N && m.supRead == supRead && g.sameEntries(m, w) {
		return m.kvmPage | la&0xfff, m.kvmValid, true, nil
	}
	gpa, valid, err = g.kvm.Translate(la)
	if err != nil {
		return 0, false, false, err
	}
	g.ioctls++
	*m = translateMemo{gen: g.memoGen, page: page, n: w.N, supRead: supRead, kvmPage: gpa &^ 0xfff, kvmValid: valid}
	for i := range w.N {
		m.entries[i] = w.Entries[i].Value
	}
	return gpa, valid, false, nil
}

func (g *guestMem) sameEntries(m *translateMemo, w *mmu.Walk) bool {
	for i := range w.N {
		if m.entries[i] != w.Entries[i].Value {
			return false
		}
	}
	return true
}

// ReadPhys implements emulate.Memory.
func (g *guestMem) ReadPhys(gpa uint64, b []byte) error { return g.phys.access(gpa, b, false) }

// WritePhys implements emulate.Memory.
func (g *guestMem) WritePhys(gpa uint64, b []byte) error { return g.phys.access(gpa, b, true) }

// searchMem is the guest as the search for the instruction behind a write
// exit sees it: the path's walker over the same memory, but its walks are
// not walks of the path, so none is recorded or checked.
type searchMem struct {
	phys physMem
	mem  *guestMem // its walker context and walk memo
	w    mmu.Walk

	// With record set, the walks are kept for the site memo: the first
	// maxSearchWalks of them in rec, all counted in nrec; failed says one
	// faulted or could not be kept.
	record bool
	rec    [maxSearchWalks]siteWalk
	nrec   int
	failed bool
}

// startRecord starts recording the search's walks when on.
func (s *searchMem) startRecord(on bool) { s.record, s.nrec, s.failed = on, 0, false }

// Translate implements emulate.Memory.
func (s *searchMem) Translate(la uint64, in emulate.Intent) (uint64, error) {
	g := s.mem
	err := g.walkMemo.walk(&g.ctx, s.phys.ram, la, in, &s.w)
	if s.record {
		if s.nrec < len(s.rec) && err == nil {
			s.failed = s.failed || !s.rec[s.nrec].keep(&s.w)
		} else {
			s.failed = true
		}
		s.nrec++
	}
	if err != nil {
		return 0, err
	}
	return s.w.GPA, nil
}

// ReadPhys implements emulate.Memory.
func (s *searchMem) ReadPhys(gpa uint64, b []byte) error { return s.phys.access(gpa, b, false) }

// WritePhys implements emulate.Memory.
func (s *searchMem) WritePhys(gpa uint64, b []byte) error { return s.phys.access(gpa, b, true) }
