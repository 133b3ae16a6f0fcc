package ownpath

import (
	"math/bits"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/x86"
)

// The verdict on an MMIO exit is a function of what the path read to reach
// it: the special registers the exit state was built from, RIP, the RFLAGS
// bits and general registers that place the instruction's accesses
// (emulate.AddressFlags, emulate.AddressRegs), the code bytes, the
// paging-structure entries its walks read, and KVM's exit. A site memo
// keeps, for recent exit sites that agreed with KVM, those inputs and the
// verdict's side effects (the walks it counts, the read-modify-write it
// leaves pending). An exit whose inputs all equal a kept site's has the
// same verdict: checking them — re-reading the code bytes and every entry
// the walks read — is all it costs. Like the walk memo it is exact, not a
// sample: every exit is still compared with KVM and every walk's entries
// with guest memory, and any difference takes the whole path.
//
// Only -verify warn and strict use it; a trace wants each exit's full
// record and -verify exec executes every instruction anyway.

// siteMemoSize is how many sites the path keeps: the read and write sites
// of a few MMIO loops.
const siteMemoSize = 2 << siteSlotBits

// maxSearchWalks bounds the walks of a write exit's search a site keeps.
const maxSearchWalks = 8

// maxSiteEntries bounds the distinct paging-structure entries a site
// re-reads: a write site's fetch, operand and search walks in 5-level
// paging share their upper levels.
const maxSiteEntries = 24

// siteMemo is the path's kept sites.
type siteMemo struct {
	e [siteMemoSize]site
	// gen numbers the special registers the exit state is built from
	// (sregs): a site is valid only under the gen it was made at.
	gen     uint64
	sregs   kvm.Sregs2
	sregsOK bool
}

// site is one verified exit site.
type site struct {
	valid, write bool
	// hit says the site answered an exit; misses counts the sites kept
	// in this slot in a row that did not before they were replaced
	// (siteMissLimit), and skipped the chances to keep one passed over
	// since.
	hit             bool
	misses, skipped uint8
	gen             uint64 // siteMemo.gen
	walkerGen       uint64 // mmu.Context.Gen of the path's walker
	rip             uint64
	flags           uint64 // RFLAGS & emulate.AddressFlags
	regs            uint16 // emulate.AddressRegs of the instruction (or candidates)
	gpr             [x86.NumGPR]uint64
	gpa             uint64 // KVM's exit
	n               uint8
	data            uint64 // a write exit's data

	// The exit's own walks, for the statistics, and how many of them
	// KVM_TRANSLATE (or its memo) checked.
	kinds   [maxWalks]walkKind
	nkinds  uint8
	checked uint8
	// The paging-structure entries every walk of the verdict read (the
	// exit's own and a write search's), each once.
	ent  [maxSiteEntries]siteEntry
	nent uint8

	// A read site's instruction: its bytes, and the host bytes of guest
	// RAM it was fetched from.
	code     [decode.MaxLen]byte
	ncode    uint8
	codeHost []byte
	pend     pendingRMW
	// A write site's code window and where its bytes lie.
	win   writeWindow
	runs  [len(windowRuns{}.r)]siteRun
	nruns uint8
}

// siteRun is a run of a write site's window: where it starts in the window
// and its bytes in guest RAM.
type siteRun struct {
	at   uint8
	host []byte
}

// siteWalk is what a site keeps of a walk: the entries it read from
// memory, to re-read.
type siteWalk struct {
	n       uint8
	entries [mmu.MaxLevels]struct{ gpa, value uint64 }
}

// siteEntry is an entry a walk read: its GPA and value, and the word of
// guest RAM it lies in once a site keeps it.
type siteEntry struct {
	gpa, value uint64
	word       memory.Word
}

// holds reports whether the entry still holds its value.
func (e *siteEntry) holds() bool { return e.word.Load() == e.value }

// walkKind is what the statistics count of a walk.
type walkKind struct {
	kind   mmu.WalkerKind
	levels uint8
}

// sitesOn reports whether the path keeps sites.
func (p *Path) sitesOn() bool {
	return p.cfg.Trace == nil && (p.cfg.Verify == VerifyWarn || p.cfg.Verify == VerifyStrict)
}

// noteSregs gives the site memo the special registers a full load built
// the exit state from: sites made under others no longer apply. CR2, CR8
// and the APIC base place no access, so a page fault or a TPR write
// between two exits leaves the sites alone.
func (m *siteMemo) noteSregs(s *kvm.Sregs2) {
	k := *s
	k.CR2, k.CR8, k.APICBase = 0, 0, 0
	if m.sregsOK && k == m.sregs {
		return
	}
	m.gen++
	m.sregs, m.sregsOK = k, true
}

// siteSlot is where the site of an exit at rip lives: read and write
// sites alternate, and RIP is hashed (Fibonacci hashing) so that nearby
// sites of one loop, a few bytes apart, take different slots.
func siteSlot(rip uint64, write bool) int {
	i := int(rip*0x9E3779B97F4A7C15>>(64-siteSlotBits)) * 2
	if write {
		i++
	}
	return i
}

// siteSlotBits is log2 of the slots of each kind (read, write).
const siteSlotBits = 4

// lookupSite returns the kept site of this exit when its register, flag,
// exit and walk inputs are unchanged, r being the exit's registers; the
// caller checks the code bytes.
func (p *Path) lookupSite(write bool, r *kvm.Regs, exit *kvm.MMIOExit, n int) *site {
	s := &p.sites.e[siteSlot(r.RIP, write)]
	if !s.valid || s.write != write || s.rip != r.RIP {
		return nil
	}
	if p.sameInputs(s, r, exit, n) {
		return s
	}
	return nil
}

// sameInputs reports whether the exit's inputs are site s's, but for the
// code bytes.
func (p *Path) sameInputs(s *site, r *kvm.Regs, exit *kvm.MMIOExit, n int) bool {
	if s.gpa != exit.PhysAddr || int(s.n) != n || s.gen != p.sites.gen || s.walkerGen != p.mem.ctx.Gen() ||
		s.flags != r.RFLAGS&emulate.AddressFlags {
		return false
	}
	if s.write && s.data != x86.Value(exit.Data[:n]) {
		return false
	}
	for m := s.regs; m != 0; m &= m - 1 {
		i := bits.TrailingZeros16(m)
		if s.gpr[i] != gprOf(r, i) {
			return false
		}
	}
	for i := range s.ent[:s.nent] {
		if !s.ent[i].holds() {
			return false
		}
	}
	return true
}

// Keeping a site costs a few hundred instructions, repaid by its first
// hit. A site whose inputs change at every exit (a store walking an
// array, a REP string instruction) is never hit: after siteMissLimit kept
// sites in a row at one slot went without a hit, the slot keeps only
// every siteRetry-th site, so that such a site costs little and one that
// settles is kept again soon.
const (
	siteMissLimit = 2
	siteRetry     = 32
)

// wantSite reports whether the site of the exit that missed its slot is
// to be kept there, should it agree (see siteMissLimit): the exit then
// records what keeping needs on its way.
func (p *Path) wantSite(write bool) bool {
	return p.sitesOn() && p.sites.want(&p.sites.e[siteSlot(p.exit.st.RIP, write)])
}

// want reports whether a site is to be kept in slot s now, in place of
// the one there (see siteMissLimit).
func (m *siteMemo) want(s *site) bool {
	if s.valid && !s.hit && s.misses < siteMissLimit {
		s.misses++
		s.valid = false // counted once
	}
	if s.misses < siteMissLimit {
		return true
	}
	s.skipped++
	return s.skipped%siteRetry == 0
}

// siteHit gives the exit site s's verdict: agreement, with its walks
// counted as the whole path would have counted them, and a read site's
// pending read-modify-write.
func (p *Path) siteHit(s *site) {
	for i := range s.nkinds {
		p.stats.CountWalkOf(s.kinds[i].kind, s.kinds[i].levels)
	}
	p.stats.Translate.Checks += uint64(s.checked)
	s.hit, s.misses = true, 0
	if s.pend.valid {
		p.memo.pending = s.pend
	}
	p.stats.MMIO.Remembered++
	p.agree()
}

// keptSite returns the kept site that answers an exit at registers r:
// its inputs (lookupSite) and its code bytes unchanged, a read site's
// instruction or a write site's window.
func (p *Path) keptSite(write bool, r *kvm.Regs, exit *kvm.MMIOExit, n int) *site {
	s := p.lookupSite(write, r, exit, n)
	if s == nil {
		return nil
	}
	if !write {
		if string(s.codeHost) != string(s.code[:s.ncode]) {
			return nil
		}
		return s
	}
	for i := range s.nruns {
		run := &s.runs[i]
		if string(run.host) != string(s.win.b[run.at:run.at+uint8(len(run.host))]) {
			return nil
		}
	}
	return s
}

// siteExit answers MMIO exit e from a kept site where one holds, and
// otherwise loads the exit's state (begin) for the whole path. Where KVM
// synced the registers it looks before loading: special registers that
// build the state the last load built (sameSregs) and no protection keys
// (PKRU changes without an exit, and only a load reads it) leave the
// exit's state the last load's but for the general registers, RIP and
// RFLAGS, which the site compares in kvm_run. The site's walker
// generation being the walker's then says the last load had the site's
// RFLAGS.AC and VM (the walker's state holds them), so the mode that load
// classified is the exit's. An exit answered so is not loaded; whatever
// reads its state next loads it. A write exit with a read-modify-write
// pending takes the whole path, which checks it against that. siteExit
// reports whether it answered the exit, and the error of the load or the
// device.
func (p *Path) siteExit(e *kvm.Exit, write bool) (bool, error) {
	k, x := &p.kvm, &p.exit
	r := p.syncedSame()
	if r == nil {
		if err := p.begin(e); err != nil {
			return false, err
		}
		r = &k.regs
	}
	m := e.MMIO
	data := m.Bytes()
	var s *site
	if !write || !p.memo.pending.valid {
		s = p.keptSite(write, r, m, len(data))
	}
	if s == nil {
		if r != &k.regs {
			// The special registers were compared above.
			k.sregsChecked = true
			err := p.begin(e)
			k.sregsChecked = false
			return false, err
		}
		return false, nil
	}
	if r != &k.regs {
		x.loaded = false
		p.stats.ObserveMode(x.mode, k.synced.CS.Selector, r.RIP)
		x.observed, x.observedSeq = true, e.Seq
	}
	if write {
		p.stats.MMIO.Writes++
	} else {
		p.stats.MMIO.Reads++
		p.memo.pending.valid = false
	}
	p.siteHit(s)
	return true, p.mem.phys.device(m.PhysAddr, data, write)
}

// syncedSame returns kvm_run's registers when an exit may be answered
// from them without a load (siteExit), else nil.
func (p *Path) syncedSame() *kvm.Regs {
	k := &p.kvm
	if !p.cfg.SyncRegs || !p.memo.sregs || !k.syncedOK {
		return nil
	}
	cpu := p.cfg.CPU
	r, s := cpu.SyncedRegs(), cpu.SyncedSregs()
	if s.CR4&x86.CR4PKE != 0 || !sameSregs(s, &k.synced) {
		return nil
	}
	return r
}

// newSite starts keeping the site of the exit being verified: its
// registers (those in regs), flags, KVM's exit and the exit's own walks.
// It returns nil when a walk cannot be kept (a fault, or more walks than a
// site holds).
func (p *Path) newSite(write bool, exit *kvm.MMIOExit, n int, regs uint16) *site {
	x := &p.exit.st
	s := &p.sites.e[siteSlot(x.RIP, write)]
	s.valid, s.hit = false, false
	walks, info := p.mem.Walks(), p.mem.WalkInfo()
	if len(walks) == maxWalks {
		return nil // the record may have overflowed
	}
	s.nkinds, s.checked, s.nent = 0, 0, 0
	var sw siteWalk
	for i := range walks {
		if info[i].Err != nil || info[i].Commit || !sw.keep(&walks[i]) || !s.addEntries(&sw, p.cfg.RAM, p.mem.ctx.EntryBytes()) {
			return nil
		}
		s.kinds[i] = walkKind{walks[i].Walker, walks[i].Levels}
		s.nkinds++
		if info[i].KVM.Checked {
			s.checked++
		}
	}
	s.write, s.gen, s.walkerGen, s.rip = write, p.sites.gen, p.mem.ctx.Gen(), x.RIP
	s.flags, s.regs, s.gpr = x.RFLAGS&emulate.AddressFlags, regs, x.GPR
	s.gpa, s.n, s.data = exit.PhysAddr, uint8(n), 0
	if write {
		s.data = x86.Value(exit.Data[:n])
	}
	return s
}

// addEntries adds the entries of sw the site does not have yet, with
// their words of ram (entries of size bytes); it reports false when the
// site is full or an entry is not a word of RAM.
func (s *site) addEntries(sw *siteWalk, ram *memory.RAM, size int) bool {
next:
	for _, e := range sw.entries[:sw.n] {
		for _, have := range s.ent[:s.nent] {
			if have.gpa == e.gpa {
				if have.value != e.value {
					return false // the entry changed during the exit
				}
				continue next
			}
		}
		if int(s.nent) == len(s.ent) {
			return false
		}
		w, err := ram.Word(e.gpa, size)
		if err != nil {
			return false
		}
		s.ent[s.nent] = siteEntry{gpa: e.gpa, value: e.value, word: w}
		s.nent++
	}
	return true
}

// keep fills sw from w; it reports false when w set accessed or dirty
// flags, which a re-read cannot check.
func (sw *siteWalk) keep(w *mmu.Walk) bool {
	sw.n = 0
	for i := range w.N {
		e := &w.Entries[i]
		if e.SetFlags != 0 {
			return false
		}
		if e.FromRegister {
			continue
		}
		sw.entries[sw.n].gpa, sw.entries[sw.n].value = e.EntryGPA, e.Value
		sw.n++
	}
	return true
}

// keepReadSite keeps the site of a read exit that agreed: inst, fetched
// with one walk from RAM, and the read-modify-write it left pending.
func (p *Path) keepReadSite(exit *kvm.MMIOExit, n int, inst *decode.Inst) {
	regs, ok := emulate.AddressRegs(inst)
	if !ok {
		return
	}
	walks := p.mem.Walks()
	fetches := 0
	for i := range walks {
		if walks[i].Access == x86.AccessFetch {
			fetches++
		}
	}
	if fetches != 1 || walks[0].Access != x86.AccessFetch {
		return // an instruction across pages, or not fetched first
	}
	code := p.emu.InstBytes()
	host, err := p.cfg.RAM.Slice(walks[0].GPA, uint64(len(code)))
	if err != nil {
		return // code outside RAM is not re-read: a device may answer it
	}
	s := p.newSite(false, exit, n, regs)
	if s == nil {
		return
	}
	s.codeHost, s.ncode = host, uint8(copy(s.code[:], code))
	s.pend = p.memo.pending
	s.valid = true
}

// keepWriteSite keeps the site of a write exit that agreed, whose
// instruction the search found ending at RIP, alone or with readings that
// agree on the access: the window, the registers every candidate's
// accesses and data depend on, and the search's walks. (An ambiguous
// search is settled by executing the readings, which reads memory a site
// does not keep.)
func (p *Path) keepWriteSite(exit *kvm.MMIOExit, n int) {
	sr, runs := &p.search, &p.memo.winRuns
	if sr.failed || sr.nrec > maxSearchWalks || !runs.ok || runs.n == 0 {
		return
	}
	set := p.candidates(&p.memo.win, p.exit.st.DecodeMode(), p.exit.st.RIP)
	var regs uint16
	for i := range set.n {
		inst := &set.insts[i]
		r, ok := emulate.AddressRegs(inst)
		if !ok || inst.Op == decode.INS {
			return // a REP INS batch depends on the batch seen before
		}
		regs |= r
		if src := dataSource(inst); src != nil && src.Kind == decode.ArgReg {
			regs |= 1 << (src.Reg & 15)
		}
	}
	s := p.newSite(true, exit, n, regs)
	if s == nil {
		return
	}
	for i := range sr.nrec {
		if !s.addEntries(&sr.rec[i], p.cfg.RAM, p.mem.ctx.EntryBytes()) {
			return
		}
	}
	for i := range runs.n {
		if !s.addEntries(&runs.r[i].walk, p.cfg.RAM, p.mem.ctx.EntryBytes()) {
			return
		}
	}
	for i := range runs.n {
		s.runs[i] = siteRun{at: runs.r[i].at, host: runs.r[i].host}
	}
	s.nruns = uint8(runs.n)
	s.win = p.memo.win
	s.valid = true
}

// windowRuns are where fetchWindow found the bytes of a window: a run per
// page (and per wrap of the code offset), with its host bytes and its
// walk's entries. ok says every run was fetched and its walk kept.
type windowRuns struct {
	n  int
	r  [4]windowRun
	ok bool
}

type windowRun struct {
	at   uint8  // the run's first byte in the window
	host []byte // its bytes in guest RAM
	walk siteWalk
}
