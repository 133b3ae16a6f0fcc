package ownpath

import (
	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/x86"
)

// A write exit arrives after KVM finished the instruction: RIP is past it
// (at it for a REP string instruction that has iterations left, and on this
// host for the last iteration too). walkvm finds the instruction again by
// decoding backwards: every start RIP-15 … RIP-1 whose decode ends exactly
// at RIP is a candidate, and so is RIP itself for string instructions. A
// candidate matches when, with the registers as they are at the exit and
// its own register effects undone, it writes KVM's GPA and size (and, for a
// register or immediate source, KVM's data).

// writeWindow holds the up to 15 code bytes before RIP and the 15 at it.
type writeWindow struct {
	b     [2 * decode.MaxLen]byte
	valid uint32 // bit i: b[i] could be fetched
}

// fetchWindow reads the code bytes around CS:end through walkvm's own
// walks (no accessed flags set), one walk per page. Bytes that cannot be
// fetched stay invalid. runs, when not nil, receives where the bytes lie
// (for the site memo).
func (p *Path) fetchWindow(w *writeWindow, end uint64, runs *windowRuns) {
	if runs != nil {
		runs.n, runs.ok = 0, true
	}
	mode := p.exit.st.DecodeMode()
	cs := p.exit.st.Seg[x86.CS].Base
	for i := 0; i < len(w.b); {
		off := end + uint64(i) - decode.MaxLen
		la := codeLinear(mode, cs, off)
		// The run of bytes up to the page's end or the offset's wrap.
		n := min(uint64(len(w.b)-i), 0x1000-la&0xfff)
		switch mode {
		case decode.Mode16:
			n = min(n, 0x10000-off&0xffff)
		case decode.Mode32:
			n = min(n, 0x100000000-off&0xffffffff)
		}
		var page []byte // host bytes of the linear page, nil if unmapped
		if err := p.mem.walkMemo.walk(&p.mem.ctx, p.cfg.RAM, la, emulate.Intent{Access: x86.AccessFetch}, &p.memo.winWalk); err == nil {
			page, _ = p.cfg.RAM.Slice(p.memo.winWalk.GPA&^0xfff, 4096)
		}
		run, bits := w.b[i:i+int(n)], uint32(1)<<n-1
		if runs != nil {
			if page == nil || runs.n == len(runs.r) || !runs.r[runs.n].walk.keep(&p.memo.winWalk) {
				runs.ok = false
			} else {
				r := &runs.r[runs.n]
				r.at, r.host = uint8(i), page[la&0xfff:la&0xfff+n]
				runs.n++
			}
		}
		if page != nil {
			copy(run, page[la&0xfff:])
			w.valid |= bits << i
		} else {
			clear(run)
			w.valid &^= bits << i
		}
		i += int(n)
	}
}

// writeMatch is a candidate that explains a write exit.
type writeMatch struct {
	start uint64
	end   uint64 // where the window ends: RIP, or a CALL's return address
	len   uint8
	acc   emulate.MemRef
	undo  bool // its register effects had to be undone
	batch bool // a REP INS batch of KVM's (insBatchWrite)
	// inst is the candidate's decode in its candidate set
	// (p.memo.cand), which stays as it is until the next search.
	inst *decode.Inst
}

// writeExit checks a write exit against the instruction that made it.
func (p *Path) writeExit(exit *kvm.MMIOExit, n int) error {
	pend := &p.memo.pending
	pending := pend.valid
	pend.valid = false
	if p.cfg.Verify == VerifyOff {
		return nil
	}
	// A read-modify-write or MOVS decoded at its read exit: the write
	// exit comes with RIP past it, or still at it for a REP iteration.
	if pending && (p.exit.st.RIP == pend.rip || p.exit.st.RIP == p.nextIP(pend.rip, pend.len)) {
		for i := range pend.accs.N {
			a := &pend.accs.A[i]
			if a.Write && isKVMFragment(a, exit.PhysAddr, n) {
				p.agree()
				setAccess(&p.exit.rec, &pend.accs)
				return nil
			}
		}
	}
	keep := p.wantSite(true)
	// The window and the matches live in the path: zeroing them at
	// every write exit would cost more than the search.
	win, ms := &p.memo.win, &p.memo.matches
	p.search.startRecord(keep)
	atRIP := p.findWrite(win, exit, n, ms)
	p.search.startRecord(false)
	if ms.ambiguous {
		p.resolveByData(ms, exit, n)
	}
	if ms.n > 0 {
		r := &p.exit.rec
		m := ms.chosen()
		r.SetInsn(m.bytes(win))
		r.SetAccess(m.acc.Linear, m.acc.Pieces[0].GPA, int(m.acc.Size))
		r.InsnRIP, r.HasInsnRIP = m.start, true
		for i := range ms.n {
			if i != ms.pick {
				r.AddAlternative(ms.m[i].start, ms.m[i].bytes(win))
			}
		}
		p.rewalk(m)
	}
	if err := p.checkTranslate(p.exit.rec.Insn()); err != nil {
		return err
	}
	switch {
	case ms.n == 0:
		return p.disagree("write", win.b[:decode.MaxLen], "no instruction ending at RIP %#x writes %d bytes of %#x at GPA %#x", p.exit.st.RIP, n, x86.Value(exit.Data[:n]), exit.PhysAddr)
	case ms.noData:
		return p.disagree("write", p.exit.rec.Insn(), "no reading ending at RIP %#x writes KVM's %d bytes of %#x at GPA %#x", p.exit.st.RIP, n, x86.Value(exit.Data[:n]), exit.PhysAddr)
	case ms.ambiguous:
		// Every reading explains KVM's write (address, size and, for a
		// register source, data): the code bytes decode into more than
		// one instruction ending at RIP and this exit cannot tell which
		// ran. A 66 prefix in front of a page-crossing store is one case:
		// 16- and 32-bit stores write the same first byte, and only the
		// next exit's size tells them apart, where one reading is left.
		// The pick is recorded with the others as alternatives; -verify
		// exec has no one instruction to execute.
		p.agree()
		p.exit.rec.Detail = "ambiguous: more than one instruction ending at RIP explains KVM's write"
		return nil
	}
	p.agree()
	if keep && atRIP {
		p.keepWriteSite(exit, n)
	}
	if p.cfg.Verify == VerifyExec {
		return p.execWrite(ms.chosen(), exit, n)
	}
	return nil
}

// findWrite looks for the instruction behind a write exit: first among
// those ending at RIP; then, since a CALL's write exit arrives with RIP at
// the call's target, among CALLs ending at the return address it pushed.
// win is left holding the window of the matches, or the one before RIP
// when nothing matched (for the disagreement's message); ms the matches.
// atRIP says the matches end at RIP: no CALL search was made.
func (p *Path) findWrite(win *writeWindow, exit *kvm.MMIOExit, n int, ms *writeMatches) (atRIP bool) {
	var runs *windowRuns // where the bytes lie, for the site memo
	if p.search.record {
		runs = &p.memo.winRuns
	}
	p.fetchWindow(win, p.exit.st.RIP, runs)
	p.matchWrite(win, p.exit.st.RIP, exit, n, false, ms)
	if ms.n > 0 {
		return true
	}
	if n == 2 || n == 4 || n == 8 {
		callWin := &p.memo.callWin
		ret := x86.Value(exit.Data[:n])
		p.fetchWindow(callWin, ret, nil)
		p.matchWrite(callWin, ret, exit, n, true, ms)
		if ms.n > 0 {
			*win = *callWin
		}
	}
	return false
}

// rewalk repeats the winning candidate's fetch and operand walks with
// recording and KVM_TRANSLATE checks on: they are the walks of the path.
// The instruction is already decoded; only its pages are walked again.
func (p *Path) rewalk(m *writeMatch) {
	// The candidates' state (matchWrite) but for what Rewind changes.
	s := &p.memo.cst
	s.GPR, s.RIP = p.exit.st.GPR, m.start
	first := p.codeLinear(m.start)
	last := p.codeLinear(m.start + uint64(m.len) - 1)
	if _, err := p.mem.Translate(first, emulate.Intent{Access: x86.AccessFetch}); err != nil {
		return
	}
	if last>>12 != first>>12 {
		if _, err := p.mem.Translate(last&^0xfff, emulate.Intent{Access: x86.AccessFetch}); err != nil {
			return
		}
	}
	if m.batch {
		var acc emulate.MemRef
		_ = p.emu.ResolveRange(s, m.acc.Seg, m.acc.Offset, m.acc.Size, true, &acc)
		return
	}
	if m.undo {
		emulate.Rewind(s, m.inst)
	}
	_ = p.emu.Resolve(s, m.inst, &p.memo.caccs)
}

// nextIP is the offset after an instruction of n bytes at ip, wrapped to
// the code size.
func (p *Path) nextIP(ip uint64, n uint8) uint64 {
	switch p.exit.st.DecodeMode() {
	case decode.Mode16:
		return (ip + uint64(n)) & 0xffff
	case decode.Mode32:
		return (ip + uint64(n)) & 0xffffffff
	}
	return ip + uint64(n)
}

// codeLinear is the linear address of code offset off in CS, wrapped to
// the code size (IP, EIP) as the CPU wraps it; CS's base is 0 in 64-bit
// mode.
func (p *Path) codeLinear(off uint64) uint64 {
	return codeLinear(p.exit.st.DecodeMode(), p.exit.st.Seg[x86.CS].Base, off)
}

// codeLinear is the linear address of offset off in code of mode m whose
// CS base is base.
func codeLinear(m decode.Mode, base, off uint64) uint64 {
	switch m {
	case decode.Mode64:
		return off
	case decode.Mode16:
		off &= 0xffff
	default:
		off &= 0xffffffff
	}
	return (base + off) & 0xffffffff
}

func (m *writeMatch) bytes(w *writeWindow) []byte {
	off := int(decode.MaxLen) - int(m.end-m.start)
	if off < 0 || off+int(m.len) > len(w.b) {
		return nil
	}
	return w.b[off : off+int(m.len)]
}

// maxCandidates is room for every start whose decode ends exactly at RIP
// (RIP-15 ... RIP). Real code has one or two, but prefix-like bytes in
// front (mov $0x66666666,%eax; mov %eax,(%edi)) make one more each, and
// the instruction that wrote is the shortest of them: a smaller bound
// would drop it.
const maxCandidates = decode.MaxLen + 1

// candidateSet is the decodes of one window of code bytes that end at RIP:
// a pure function of the bytes and the code size, so a loop that writes
// MMIO from the same place decodes its window once (candidateMemo).
type candidateSet struct {
	n     int
	k     [maxCandidates]uint8 // bytes before RIP the candidate starts
	insts [maxCandidates]decode.Inst
}

// candidateMemo remembers the candidate sets of recent write sites.
type candidateMemo struct {
	valid bool
	mode  decode.Mode
	win   writeWindow
	set   candidateSet
}

const candidateMemoSize = 8

// candidates decodes every start in w whose instruction ends at the
// window's end (and string instructions at it), or returns the set decoded
// last time for identical bytes.
func (p *Path) candidates(w *writeWindow, mode decode.Mode, end uint64) *candidateSet {
	m := &p.memo.cand[end%candidateMemoSize]
	if m.valid && m.mode == mode && m.win == *w {
		return &m.set
	}
	m.valid, m.mode, m.win, m.set.n = true, mode, *w, 0
	for k := decode.MaxLen; k >= 0 && m.set.n < maxCandidates; k-- {
		lo := decode.MaxLen - k
		hi := lo + decode.MaxLen
		end := lo
		for end < hi && w.valid&(1<<end) != 0 {
			end++
		}
		if end == lo {
			continue
		}
		inst := &m.set.insts[m.set.n]
		if err := decode.Decode(w.b[lo:end], mode, inst); err != nil {
			continue
		}
		if k > 0 && int(inst.Len) != k {
			continue
		}
		if k == 0 && !isString(inst.Op) {
			continue
		}
		m.set.k[m.set.n] = uint8(k)
		m.set.n++
	}
	return &m.set
}

// writeMatches are the candidates that explain a write exit, longest
// first, and the one the trace names (pick).
type writeMatches struct {
	n         int
	m         [maxCandidates]writeMatch
	pick      int
	ambiguous bool // matches disagree about the access
	// noData says every match was executed and none writes KVM's data
	// (resolveByData).
	noData bool
}

func (ms *writeMatches) chosen() *writeMatch { return &ms.m[ms.pick] }

// matchWrite resolves every candidate ending at end against KVM's exit
// (only CALLs when calls is set) and fills ms with those that match.
func (p *Path) matchWrite(w *writeWindow, end uint64, exit *kvm.MMIOExit, n int, calls bool, ms *writeMatches) {
	ms.n, ms.pick, ms.ambiguous, ms.noData = 0, 0, false, false
	set := p.candidates(w, p.exit.st.DecodeMode(), end)
	// The candidates' state, copied once: candidateWrites resets only
	// what Rewind changes.
	p.memo.cst = p.exit.st
	p.memo.cst.Vec = nil
	for i := range set.n {
		inst, k := &set.insts[i], uint64(set.k[i])
		if calls && (inst.Op != decode.CALL || k == 0 || !p.callTargets(inst, end)) {
			continue
		}
		acc, undo, ok := p.candidateWrites(inst, end-k, exit, n)
		batch := false
		if !ok {
			if acc, ok = p.insBatchWrite(inst, end-k, exit, n); !ok {
				continue
			}
			batch = true
		}
		if ms.n > 0 && (acc.Pieces != ms.m[0].acc.Pieces || acc.Size != ms.m[0].acc.Size) {
			ms.ambiguous = true
		}
		ms.m[ms.n] = writeMatch{start: end - k, end: end, len: inst.Len, acc: acc, undo: undo, batch: batch, inst: inst}
		ms.n++
	}
	ms.pick = pickWrite(ms.m[:ms.n])
}

// pickWrite chooses, among matches that end at the same place (longest
// first, so each shorter one is a suffix of every longer one), the
// instruction a CPU executed. The fetch of the previous instruction is not
// at hand, so where it ended is reasoned from the bytes:
//
//   - A longer match that is a shorter one behind prefixes the CPU ignores
//     (a REX that does not immediately precede the opcode, an ES/CS/SS/DS
//     override in 64-bit mode, a repeated prefix, an override naming the
//     operand's default segment; SDM Vol. 2A §2.1.1, §2.2.1) decodes to
//     the same instruction: its extra bytes are the end of the previous
//     instruction (an immediate or displacement that ends in a
//     prefix-like byte), and the shorter one is what ran.
//   - Otherwise the longest wins: every shorter match begins inside it
//     (in its ModRM, displacement or immediate bytes).
func pickWrite(ms []writeMatch) int {
	for i := range ms {
		ignored := false
		for j := i + 1; j < len(ms) && !ignored; j++ {
			ignored = sameInst(ms[i].inst, ms[j].inst)
		}
		if !ignored {
			return i
		}
	}
	return 0
}

// sameInst reports whether a and b, decoded from starts that end at the
// same byte, are the same instruction: the same opcode, ModRM, SIB,
// displacement and immediate with the same operands and sizes. Then the
// bytes by which the longer one begins earlier are prefixes that change
// nothing.
func sameInst(a, b *decode.Inst) bool {
	if a.Op != b.Op || a.Mode != b.Mode || a.Map != b.Map || a.Opcode != b.Opcode ||
		a.HasModRM != b.HasModRM || a.ModRM != b.ModRM || a.HasSIB != b.HasSIB || a.SIB != b.SIB ||
		a.OpSize != b.OpSize || a.AddrSize != b.AddrSize || a.DispLen != b.DispLen || a.ImmLen != b.ImmLen {
		return false
	}
	pa, pb := &a.Prefix, &b.Prefix
	if pa.Lock != pb.Lock || pa.REX != pb.REX || pa.VEX != pb.VEX {
		return false
	}
	// F2 and F3 are REP/REPNE for string instructions and mandatory
	// prefixes (part of the opcode, so Op differs) for SSE; elsewhere the
	// CPU ignores them.
	if isStringOp(a.Op) && (pa.Rep != pb.Rep || pa.Repne != pb.Repne) {
		return false
	}
	for i := range a.Args {
		x, y := a.Args[i], b.Args[i]
		// An override that names the default segment is redundant: what
		// matters is the segment used.
		x.Mem.SegOverride, y.Mem.SegOverride = false, false
		if x != y {
			return false
		}
	}
	return true
}

// isStringOp reports whether op is a string instruction, which REP and
// REPNE repeat.
func isStringOp(op decode.Op) bool {
	switch op {
	case decode.MOVS, decode.STOS, decode.LODS, decode.CMPS, decode.SCAS, decode.INS, decode.OUTS:
		return true
	}
	return false
}

func isString(op decode.Op) bool {
	switch op {
	case decode.MOVS, decode.STOS, decode.INS:
		return true
	}
	return false
}

// callTargets reports whether a CALL ending at end goes where the vCPU is
// now: for a relative CALL, end plus its displacement is RIP; an indirect
// CALL's target is not checked.
func (p *Path) callTargets(inst *decode.Inst, end uint64) bool {
	a := &inst.Args[0]
	if a.Kind != decode.ArgRel {
		return true
	}
	return p.nextIP(end+uint64(a.Imm), 0) == p.exit.st.RIP
}

// candidateWrites resolves inst as if it started at start, with its
// register effects undone, and reports the write access that covers KVM's
// exit. It resolves with the finder, whose walks are not walks of the path
// (searchMem): only the winner's are repeated for the record (rewalk).
func (p *Path) candidateWrites(inst *decode.Inst, start uint64, exit *kvm.MMIOExit, n int) (acc emulate.MemRef, undone, ok bool) {
	undos := [2]int{0, 1}
	nundo := 1
	switch inst.Op {
	case decode.MOVS, decode.STOS, decode.INS:
		nundo = 2 // with and without one element undone
	case decode.PUSH, decode.POP, decode.PUSHF, decode.CALL, decode.ENTER:
		undos[0] = 1
	}
	s, accs := &p.memo.cst, &p.memo.caccs
	for u := range nundo {
		// Rewind changes general registers alone: the rest of the
		// state was copied once (matchWrite).
		s.GPR, s.RIP = p.exit.st.GPR, start
		if undos[u] == 1 {
			emulate.Rewind(s, inst)
		}
		if err := p.finder.Resolve(s, inst, accs); err != nil {
			continue // a candidate that faults did not make the write
		}
		for i := range accs.N {
			a := &accs.A[i]
			if !a.Write || !isKVMFragment(a, exit.PhysAddr, n) {
				continue
			}
			if !dataMatches(s, inst, a, exit, n) {
				continue
			}
			return *a, undos[u] == 1, true
		}
	}
	return emulate.MemRef{}, false, false
}

// dataSource is the operand whose value inst stores unchanged (its row's
// emulate.Facts.DataArg: MOV, MOVNTI, STOS), or nil.
func dataSource(inst *decode.Inst) *decode.Arg {
	if i := emulate.FactsOf(inst.Op).DataArg; i >= 0 {
		return &inst.Args[i]
	}
	return nil
}

// dataMatches compares KVM's data with the value a register or immediate
// source would store; memory sources (MOVS, PUSH m) are not compared.
func dataMatches(s *emulate.State, inst *decode.Inst, a *emulate.MemRef, exit *kvm.MMIOExit, n int) bool {
	src := dataSource(inst)
	if src == nil {
		return true
	}
	var v uint64
	switch src.Kind {
	case decode.ArgReg:
		v = s.GPR[src.Reg&15]
		if src.High {
			v >>= 8
		}
	case decode.ArgImm:
		v = uint64(src.Imm)
	default:
		return true
	}
	// Offset of KVM's piece within the access.
	off := exit.PhysAddr - a.Pieces[0].GPA
	if a.N > 1 && !(exit.PhysAddr >= a.Pieces[0].GPA && exit.PhysAddr < a.Pieces[0].GPA+uint64(a.Pieces[0].Size)) {
		off = uint64(a.Pieces[0].Size) + exit.PhysAddr - a.Pieces[1].GPA
	}
	if off >= 8 {
		return true
	}
	want := v >> (8 * off)
	got := x86.Value(exit.Data[:n])
	mask := ^uint64(0)
	if n < 8 {
		mask = 1<<(8*uint(n)) - 1
	}
	return want&mask == got&mask
}
