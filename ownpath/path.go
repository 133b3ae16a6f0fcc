// Package ownpath is walkvm's own MMIO path: at each MMIO exit it fetches
// the instruction at CS:RIP with its own page walks, decodes it, resolves
// the operand and checks the access against the one KVM reports (and every
// walk against KVM_TRANSLATE); at an emulation failure it completes the
// instruction itself or injects the fault the CPU would raise. Under
// -verify off without a trace it does only the latter, and MMIO exits go
// to the devices unchecked.
//
// It sits below the vCPU run loop, which calls one entry point per exit
// kind (MMIORead, MMIOWrite, EmulationFailure), and above package emulate.
package ownpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"walkvm/emulate"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/trace"
	"walkvm/x86"
)

// Verify says how the own MMIO path checks itself against KVM.
type Verify uint8

// Verification levels of `vmm run -verify`.
const (
	// VerifyOff skips the cross-checks: MMIO exits go to the devices as
	// KVM reports them (with a trace the own path still fetches and
	// decodes each read exit for the record), and the own path completes
	// what KVM cannot emulate.
	VerifyOff Verify = iota
	// VerifyWarn logs every disagreement and goes on.
	VerifyWarn
	// VerifyStrict stops the VM at the first disagreement.
	VerifyStrict
	// VerifyExec is VerifyStrict plus result equality: at every MMIO exit
	// walkvm also executes the instruction itself and compares its result
	// with KVM's (execverify.go).
	VerifyExec
)

var verifyNames = []string{"off", "warn", "strict", "exec"}

func (v Verify) String() string {
	if int(v) < len(verifyNames) {
		return verifyNames[v]
	}
	return fmt.Sprintf("verify(%d)", uint8(v))
}

// ParseVerify reads "off", "warn", "strict" or "exec".
func ParseVerify(s string) (Verify, error) {
	for i, n := range verifyNames {
		if s == n {
			return Verify(i), nil
		}
	}
	return 0, fmt.Errorf("verify level %q: want off, warn, strict or exec", s)
}

// CPU is the vCPU the path reads and writes; *kvm.VCPU implements it.
type CPU interface {
	SyncedRegs() *kvm.Regs
	SyncedSregs() *kvm.Sregs
	GetRegs(r *kvm.Regs) error
	SetRegs(r *kvm.Regs) error
	GetSregs(s *kvm.Sregs) error
	SetSregs(s *kvm.Sregs) error
	GetSregs2(s *kvm.Sregs2) error
	GetXSave(x *kvm.XSave) error
	SetXSave(x *kvm.XSave) error
	GetFPU(f *kvm.FPU) error
	SetFPU(f *kvm.FPU) error
	XCR0() (uint64, error)
	InjectException(vector uint8, hasErr bool, code uint32) error
	Translator
}

// Config says what a Path works on.
type Config struct {
	VCPU int // the vCPU's index, for statistics and traces
	CPU  CPU
	RAM  *memory.RAM
	Bus  *memory.Bus // the MMIO bus
	// PIO is the port-I/O bus: -verify exec serves the port side of a
	// string I/O instruction it completes.
	PIO    *memory.Bus
	Verify Verify
	Log    logrus.FieldLogger
	// Stats receives the path's counts; nil makes a fresh one.
	Stats *trace.Stats
	// Trace, when set, receives one record per exit (EndExit).
	Trace *trace.Tracer
	// Features are the paging features of the guest's CPUID.
	Features mmu.Features
	// SyncRegs says KVM copies registers and special registers into
	// kvm_run at every exit (kvm.VCPU.EnableSyncRegs), so an exit reads
	// them without two ioctls. KVM pays for the copy at every exit
	// (about 630 instructions in the nested KVM, mostly KVM_GET_SREGS'
	// eight segment reads), so it pays only where exits read the state.
	SyncRegs bool
	// PKRUOffset is where XSAVE keeps PKRU (CPUID 0xd.9 EBX); 0 when the
	// guest has no protection keys.
	PKRUOffset uint32
}

// Path is walkvm's own MMIO path for one vCPU: at an MMIO read exit it
// fetches and decodes the instruction with its own page walks, resolves
// the access and checks it against KVM's; at a write exit it finds the
// instruction that made it; at an emulation failure it executes the
// instruction itself and resumes the guest, or injects the fault the CPU
// would raise. Each entry point (MMIORead, MMIOWrite, EmulationFailure)
// loads the vCPU state it needs itself.
//
// As an observer of every exit (BeginExit, EndExit) it also logs the mode
// at each exit and writes the trace.
//
// Everything the hot path needs is preallocated: an MMIO exit allocates
// nothing unless there is a disagreement to report or a trace to write.
type Path struct {
	cfg   Config
	stats *trace.Stats

	mem    guestMem         // memory as the path's walks see it: recorded, checked with KVM_TRANSLATE
	search searchMem        // the same memory, unrecorded: the search behind a write exit
	emu    emulate.Emulator // fetches, resolves and executes over mem
	finder emulate.Emulator // resolves write-exit candidates over search
	vec    emulate.Vector

	kvm   kvmCache
	exit  exitState
	memo  memos
	sites siteMemo
	xv    execVerify // -verify exec
	ins   insBatch   // the REP INS batch KVM's write exits come from
}

// kvmCache is what the path reads from KVM, in buffers kept across exits.
type kvmCache struct {
	regs   kvm.Regs
	sregs  kvm.Sregs2
	sregs2 bool // KVM_GET_SREGS2 works

	xsave        kvm.XSave
	fpu          kvm.FPU
	vecFromXSave bool // the vector state came from KVM_GET_XSAVE

	// synced is the copy of kvm_run's special registers the last load
	// built the exit state from, when syncedOK (sameSregs: its CR8, APIC
	// base and interrupt bitmap may be older; sregs has the latest).
	synced   kvm.Sregs
	syncedOK bool
	// sregsChecked tells the load that siteExit makes that kvm_run's
	// special registers were just found to build synced's state
	// (sameSregs).
	sregsChecked bool
}

// exitState is the current exit: the emulator's view of the vCPU, the
// mode, CS:RIP as the exit found them, and the trace record being filled.
type exitState struct {
	seq    uint64 // the exit's kvm.Exit.Seq
	loaded bool
	// observed says the mode log has the exit observedSeq.
	observed    bool
	observedSeq uint64
	st          emulate.State
	mode        trace.Mode
	cs          uint16
	rip         uint64
	rec         trace.Record
}

// memos are what one exit leaves to spare work at the next ones.
type memos struct {
	// sregs says exit.st's segments, control and table registers are
	// those of kvm.synced, so that an exit whose special registers build
	// the same state (sameSregs) reloads only the general registers.
	// Whatever changes exit.st other than through load clears it.
	sregs bool
	// mode is the mode observeMode classified last, for modeKey.
	mode    trace.Mode
	modeKey modeKey
	modeOK  bool
	// walker is the state mem's walker context was built for.
	walker   mmu.State
	walkerOK bool
	// pending is the decode of a read exit whose write exit is to come.
	pending pendingRMW
	// cand holds the candidate sets of recent write sites.
	cand    [candidateMemoSize]candidateMemo
	winWalk mmu.Walk
	// The write exit's scratch: its code windows and matches, and the
	// state and accesses of the candidate being resolved.
	win, callWin writeWindow
	winRuns      windowRuns // where win's bytes lie
	matches      writeMatches
	cst          emulate.State
	caccs        emulate.MemRefs
}

// pendingRMW is the instruction decoded at a read exit whose write exit is
// still to come (read-modify-write, MOVS between MMIO windows).
type pendingRMW struct {
	valid bool
	rip   uint64
	len   uint8
	accs  emulate.MemRefs
}

// New builds the own MMIO path described by cfg.
func New(cfg Config) *Path {
	p := &Path{cfg: cfg, stats: cfg.Stats}
	if p.stats == nil {
		p.stats = trace.NewStats(cfg.VCPU)
	}
	phys := physMem{ram: cfg.RAM, bus: cfg.Bus, stats: p.stats}
	p.mem.phys, p.search.phys = phys, phys
	p.search.mem = &p.mem
	p.emu.Mem, p.finder.Mem = &p.mem, &p.search
	if cfg.Verify != VerifyOff {
		// The walks are checked against KVM_TRANSLATE.
		p.mem.kvm = cfg.CPU
	}
	p.vec.Source = p
	p.exit.st.Vec = &p.vec
	p.kvm.sregs2 = cfg.CPU != nil
	p.initExec()
	return p
}

// Stats are the path's statistics.
func (p *Path) Stats() *trace.Stats { return p.stats }

// Verify is the path's verification level.
func (p *Path) Verify() Verify { return p.cfg.Verify }

// begin loads the vCPU state for exit e, once per exit: every entry point
// and BeginExit call it.
func (p *Path) begin(e *kvm.Exit) error {
	if p.exit.loaded && p.exit.seq == e.Seq {
		return nil
	}
	p.exit.loaded, p.exit.seq = false, e.Seq
	if p.cfg.Trace != nil {
		p.exit.rec.Reset()
	} else {
		// Without a trace the record is read back only for the
		// instruction bytes a disagreement names.
		p.exit.rec.SetInsn(nil)
	}
	p.mem.reset()
	p.vec.Invalidate()
	if err := p.load(); err != nil {
		return err
	}
	p.exit.loaded = true
	if !p.exit.observed || p.exit.observedSeq != e.Seq {
		p.stats.ObserveMode(p.exit.mode, p.exit.cs, p.exit.rip)
		p.exit.observed, p.exit.observedSeq = true, e.Seq
	}
	return nil
}

// load reads registers and special registers and rebuilds the emulator and
// walker state from them. Special registers that build the state the
// last load's built (sameSregs: the steady state of a guest between mode
// changes) keep that state: only the general registers, RIP and RFLAGS are
// reloaded, and the mode is classified again only when RFLAGS.VM moved.
func (p *Path) load() error {
	k, x := &p.kvm, &p.exit
	same, err := p.loadRegs()
	if err != nil {
		return err
	}
	// The walker state is that of the special registers, RFLAGS.AC and
	// RFLAGS.VM, and PKRU.
	flags := (k.regs.RFLAGS ^ x.st.RFLAGS) & (x86.FlagVM | x86.FlagAC)
	pkru := x.st.PKRU
	walker := true
	if same && p.memo.sregs {
		gprsOf(&x.st.GPR, &k.regs)
		x.st.RIP, x.st.RFLAGS = k.regs.RIP, k.regs.RFLAGS
		if flags&x86.FlagVM != 0 {
			x.mode = trace.ClassifyMode(&k.sregs, k.regs.RFLAGS)
		}
		walker = flags != 0
	} else {
		stateFromKVM(&x.st, &k.regs, &k.sregs)
		x.mode = trace.ClassifyMode(&k.sregs, k.regs.RFLAGS)
		p.memo.sregs = k.syncedOK
		if p.sitesOn() {
			p.sites.noteSregs(&k.sregs)
		}
	}
	x.st.PKRU = 0
	if k.sregs.CR4&x86.CR4PKE != 0 && p.cfg.PKRUOffset != 0 {
		x.st.PKRU = p.pkru()
	}
	x.cs, x.rip = k.sregs.CS.Selector, k.regs.RIP
	if !walker && x.st.PKRU == pkru && p.memo.walkerOK {
		return nil
	}
	ms := x.st.WalkerState()
	if !p.memo.walkerOK || ms != p.memo.walker {
		if err := p.mem.ctx.Reset(&ms, p.cfg.Features); err != nil {
			p.memo.walkerOK = false
			return fmt.Errorf("mode %v at %s: %w", x.mode, p.csrip(), err)
		}
		p.memo.walker, p.memo.walkerOK = ms, true
		p.mem.memoGen++
	}
	return nil
}

// loadRegs reads the registers and special registers: from kvm_run where
// KVM syncs them, else with ioctls. The PAE PDPTE registers come only with
// KVM_GET_SREGS2, which PAE paging therefore still pays for. same says
// the special registers build the state those KVM synced at the last load
// built (sameSregs with kvm.synced), so k.sregs still holds them.
func (p *Path) loadRegs() (same bool, err error) {
	k, cpu := &p.kvm, p.cfg.CPU
	if p.cfg.SyncRegs {
		k.regs = *cpu.SyncedRegs()
		s := cpu.SyncedSregs()
		pae := s.CR0&x86.CR0PG != 0 && s.CR4&x86.CR4PAE != 0 && s.EFER&x86.EFERLMA == 0
		if !pae || !k.sregs2 {
			if k.syncedOK && (k.sregsChecked || sameSregs(s, &k.synced)) {
				k.sregs.CR8, k.sregs.APICBase = s.CR8, s.ApicBase
				return true, nil
			}
			k.synced, k.syncedOK = *s, true
			sregs2From(&k.sregs, s)
			return false, nil
		}
	} else if err := cpu.GetRegs(&k.regs); err != nil {
		return false, err
	}
	k.syncedOK = false
	if k.sregs2 {
		if err := cpu.GetSregs2(&k.sregs); err == nil {
			return false, nil
		}
		k.sregs2 = false
	}
	var s kvm.Sregs
	if err := cpu.GetSregs(&s); err != nil {
		return false, err
	}
	sregs2From(&k.sregs, &s)
	return false, nil
}

// pkru reads PKRU from the XSAVE area; it matters only with CR4.PKE, so
// only then does an exit pay for KVM_GET_XSAVE (load).
func (p *Path) pkru() uint32 {
	k := &p.kvm
	if err := p.cfg.CPU.GetXSave(&k.xsave); err != nil {
		return 0
	}
	b := k.xsave.Bytes()
	if int(p.cfg.PKRUOffset)+4 > len(b) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[p.cfg.PKRUOffset:])
}

func (p *Path) csrip() string { return trace.FormatCSRIP(p.exit.cs, p.exit.rip) }

// BeginExit implements vcpu.Observer: it logs the mode of every exit.
// The entry points (MMIORead, MMIOWrite, EmulationFailure) load the state
// of the exits they handle and log their mode. Of the other exits, where
// KVM syncs the registers, the mode comes from kvm_run's copy
// (observeMode); otherwise, or with a trace, every exit loads the state
// here. Under -verify off without a trace and without synced registers
// the mode log has only the exits whose state the path reads (emulation
// failures): reading the state at every exit would cost an exit two
// ioctls.
func (p *Path) BeginExit(e *kvm.Exit) error {
	if p.cfg.Verify != VerifyOff {
		p.ins.observe(e, false)
	}
	switch {
	case e.Kind == kvm.KindMMIO && p.cfg.Verify != VerifyOff, e.Kind == kvm.KindEmulationFailure:
		// The entry point loads the state.
	case p.cfg.Trace != nil:
		return p.begin(e)
	case p.cfg.SyncRegs:
		p.observeMode(e)
	case p.cfg.Verify != VerifyOff:
		return p.begin(e)
	}
	return nil
}

// Observes reports whether BeginExit and EndExit do anything: not under
// -verify off without a trace or synced registers, whose loops can leave
// the path out as their observer.
func (p *Path) Observes() bool {
	return p.cfg.Trace != nil || p.cfg.SyncRegs || p.cfg.Verify != VerifyOff
}

// modeKey is what trace.ClassifyMode reads: the mode of an exit.
type modeKey struct {
	cr0, cr4, efer uint64
	csL, csDB      uint8
	vm             bool
}

// observeMode logs the mode of exit e from the registers KVM synced,
// classifying it again only when what it depends on changed.
func (p *Path) observeMode(e *kvm.Exit) {
	s, r := p.cfg.CPU.SyncedSregs(), p.cfg.CPU.SyncedRegs()
	key := modeKey{cr0: s.CR0, cr4: s.CR4, efer: s.EFER, csL: s.CS.L, csDB: s.CS.DB, vm: r.RFLAGS&x86.FlagVM != 0}
	if !p.memo.modeOK || key != p.memo.modeKey {
		var ms kvm.Sregs2
		ms.CR0, ms.CR4, ms.EFER, ms.CS.L, ms.CS.DB = s.CR0, s.CR4, s.EFER, s.CS.L, s.CS.DB
		p.memo.mode, p.memo.modeKey, p.memo.modeOK = trace.ClassifyMode(&ms, r.RFLAGS), key, true
	}
	p.stats.ObserveMode(p.memo.mode, s.CS.Selector, r.RIP)
	p.exit.observed, p.exit.observedSeq = true, e.Seq
}

// EndExit implements vcpu.Observer: it writes the exit's trace record.
func (p *Path) EndExit(e *kvm.Exit) {
	if p.cfg.Verify != VerifyOff {
		p.ins.observe(e, true)
	}
	if p.cfg.Trace == nil {
		return
	}
	r, x := &p.exit.rec, &p.exit
	r.Seq, r.VCPU, r.Reason, r.Mode = e.Seq, p.cfg.VCPU, e.Reason, x.mode
	r.CS, r.RIP, r.CodeMode = x.cs, x.rip, x.st.DecodeMode()
	r.Walks, r.WalkInfo = p.mem.Walks(), p.mem.WalkInfo()
	r.Paging, r.HasPaging = p.memo.walker, p.memo.walkerOK
	r.TimeNS, r.DurNS, r.Timed = e.TimeNS, e.DurNS, e.Timed
	p.cfg.Trace.Write(r)
}

// countWalks adds the walks and KVM_TRANSLATE checks an entry point made
// to the statistics.
func (p *Path) countWalks() {
	for i := range p.mem.Walks() {
		p.stats.CountWalk(&p.mem.walks[i])
	}
	t := &p.stats.Translate
	t.Checks += p.mem.checks
	t.Ioctls += p.mem.ioctls
	t.Mismatches += p.mem.mismatches
	p.mem.checks, p.mem.ioctls, p.mem.mismatches = 0, 0, 0
}

// xcr0AVX is XCR0 bit 2: AVX state enabled.
const xcr0AVX = 1 << 2

// LoadFPU implements emulate.FPUSource with KVM_GET_XSAVE, or KVM_GET_FPU
// where XSAVE is unavailable.
func (p *Path) LoadFPU(f *emulate.FPUState) error {
	k := &p.kvm
	if err := p.cfg.CPU.GetXSave(&k.xsave); err == nil {
		if err := f.UnmarshalXSAVE(k.xsave.Bytes()); err != nil {
			return err
		}
		// The YMM halves exist only where the guest enabled AVX state in
		// XCR0; writing them back elsewhere is refused (KVM_SET_XSAVE
		// checks XSTATE_BV against what the vCPU supports).
		f.HasYMM = p.exit.st.XCR0&xcr0AVX != 0
		k.vecFromXSave = true
		return nil
	}
	k.vecFromXSave = false
	if err := p.cfg.CPU.GetFPU(&k.fpu); err != nil {
		return err
	}
	return f.UnmarshalKVMFPU(fpuBytes(&k.fpu))
}

// Disagreement is a difference between walkvm's own MMIO path and KVM.
type Disagreement struct {
	What   string // "read", "write", "fetch", "translate"
	VCPU   int
	Mode   trace.Mode
	CSRIP  string
	Bytes  []byte
	Disasm string
	Detail string
	Walks  string
	Regs   string
	// Fields names what differs in a result disagreement ("rax",
	// "rflags", "fault", "ram 0x1000", ...).
	Fields []string
}

func (d *Disagreement) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "own MMIO path disagrees with KVM on a %s on vCPU %d in %v mode at %s", d.What, d.VCPU, d.Mode, d.CSRIP)
	if len(d.Bytes) > 0 {
		fmt.Fprintf(&b, " (% x: %s)", d.Bytes, d.Disasm)
	}
	fmt.Fprintf(&b, ": %s", d.Detail)
	if d.Walks != "" {
		fmt.Fprintf(&b, "\nwalks:\n%s", d.Walks)
	}
	if d.Regs != "" {
		fmt.Fprintf(&b, "\nregisters: %s", d.Regs)
	}
	return b.String()
}

// disagree records a disagreement: counted, traced, logged (warn) or
// returned (strict).
func (p *Path) disagree(what string, insn []byte, format string, args ...any) error {
	p.stats.MMIO.Disagreed++
	p.exit.rec.Verdict = "disagree"
	if p.cfg.Verify == VerifyOff {
		return nil
	}
	x, k := &p.exit, &p.kvm
	d := &Disagreement{What: what, VCPU: p.cfg.VCPU, Mode: x.mode, CSRIP: p.csrip(), Bytes: append([]byte(nil), insn...),
		Disasm: emulate.Disasm(insn, x.st.DecodeMode(), x.rip), Detail: fmt.Sprintf(format, args...)}
	var wb strings.Builder
	for i := range p.mem.Walks() {
		fmt.Fprintf(&wb, "  %s\n", p.mem.walks[i].String())
	}
	d.Walks = strings.TrimRight(wb.String(), "\n")
	d.Regs = fmt.Sprintf("rax=%#x rbx=%#x rcx=%#x rdx=%#x rsi=%#x rdi=%#x rsp=%#x rbp=%#x rflags=%#x cr0=%#x cr3=%#x cr4=%#x efer=%#x",
		k.regs.RAX, k.regs.RBX, k.regs.RCX, k.regs.RDX, k.regs.RSI, k.regs.RDI, k.regs.RSP, k.regs.RBP, k.regs.RFLAGS,
		k.sregs.CR0, k.sregs.CR3, k.sregs.CR4, k.sregs.EFER)
	x.rec.Detail = d.Detail
	if p.cfg.Verify >= VerifyStrict {
		return d
	}
	if p.cfg.Log != nil {
		p.cfg.Log.Warn(d.Error())
	}
	return nil
}

// checkTranslate turns a KVM_TRANSLATE mismatch of this exit into a
// disagreement.
func (p *Path) checkTranslate(insn []byte) error {
	m := &p.mem.mismatch
	if !m.seen || p.cfg.Verify == VerifyOff {
		return nil
	}
	own := fmt.Sprintf("GPA %#x", m.own)
	if m.ownFault != nil {
		own = m.ownFault.Error()
	}
	kvmSays := "invalid"
	if m.kvmValid {
		kvmSays = fmt.Sprintf("GPA %#x", m.kvm)
	}
	m.seen = false
	return p.disagree("translate", insn, "linear %#x: walkvm walked to %s, KVM_TRANSLATE says %s", m.la, own, kvmSays)
}

// MMIORead implements vcpu.MMIOHandler for a read exit: RIP is at the
// instruction. The path checks it (readExit), then the device serves KVM's
// access.
func (p *Path) MMIORead(e *kvm.Exit) error {
	if p.unchecked() {
		return p.serve(e.MMIO, false)
	}
	return p.mmio(e, false)
}

// MMIOWrite implements vcpu.MMIOHandler for a write exit: KVM has finished
// the instruction. The path finds the instruction that wrote (writeExit),
// then the device serves KVM's access, which is what the guest did.
func (p *Path) MMIOWrite(e *kvm.Exit) error {
	if p.unchecked() {
		return p.serve(e.MMIO, true)
	}
	return p.mmio(e, true)
}

// unchecked says MMIO exits go to the devices as KVM reports them (serve):
// -verify off without a trace.
func (p *Path) unchecked() bool { return p.cfg.Verify == VerifyOff && p.cfg.Trace == nil }

// DirectMMIO implements vcpu.DirectMMIO: an unchecked path's MMIO exits
// may be served on its bus and counted in its statistics as serve does,
// without the path.
func (p *Path) DirectMMIO() (*memory.Bus, *trace.Stats) {
	if p.unchecked() {
		return p.cfg.Bus, p.stats
	}
	return nil, nil
}

func (p *Path) mmio(e *kvm.Exit, write bool) error {
	if p.sitesOn() {
		// siteExit loads the exit it does not answer.
		if done, err := p.siteExit(e, write); done || err != nil {
			return err
		}
	} else if err := p.begin(e); err != nil {
		return err
	}
	err := p.checkMMIO(e, write)
	p.countWalks()
	return err
}

// checkMMIO verifies MMIO exit e (readExit, writeExit), has the device
// serve it and, under -verify exec, executes a read's instruction.
func (p *Path) checkMMIO(e *kvm.Exit, write bool) error {
	m := e.MMIO
	data := m.Bytes()
	p.exit.rec.SetMMIO(m.PhysAddr, len(data), write, x86.Value(data))
	var err error
	if write {
		p.stats.MMIO.Writes++
		err = p.writeExit(m, len(data))
	} else {
		p.stats.MMIO.Reads++
		err = p.readExit(m, len(data))
	}
	if err != nil {
		return err
	}
	if err := p.mem.phys.device(m.PhysAddr, data, write); err != nil {
		return err
	}
	if !write {
		p.exit.rec.Data = x86.Value(data)
		if p.cfg.Verify == VerifyExec {
			return p.execRead(e)
		}
	}
	return nil
}

// serve lets the device serve KVM's access, unchecked, on the MMIO bus
// (as physMem.device, which says why not RAM) and counts it as
// vcpu.Loop counts the exits it serves for DirectMMIO.
func (p *Path) serve(m *kvm.MMIOExit, write bool) error {
	mapped, err := p.mem.phys.bus.Serve(m.PhysAddr, m.Bytes(), write)
	p.stats.CountMMIO(write, mapped)
	return err
}

// readExit: RIP is at the instruction. Fetch and decode it with walkvm's
// own walks and check that one of its accesses is KVM's.
func (p *Path) readExit(exit *kvm.MMIOExit, n int) error {
	x, off := &p.exit, p.cfg.Verify == VerifyOff
	p.memo.pending.valid = false
	keep := p.wantSite(false)
	inst, err := p.emu.Fetch(&x.st)
	insn := p.emu.InstBytes()
	x.rec.SetInsn(insn)
	if err != nil {
		if off {
			return nil
		}
		return p.disagree("fetch", insn, "walkvm cannot fetch the instruction KVM read MMIO for: %v", err)
	}
	var accs emulate.MemRefs
	if err := p.emu.Resolve(&x.st, inst, &accs); err != nil {
		if off {
			return nil
		}
		return p.disagree("read", insn, "resolving the operand failed: %v", err)
	}
	setAccess(&x.rec, &accs)
	for i := range accs.N {
		if accs.A[i].Write {
			p.memo.pending = pendingRMW{valid: true, rip: x.rip, len: inst.Len, accs: accs}
			break
		}
	}
	if off {
		return nil
	}
	if err := p.checkTranslate(insn); err != nil {
		return err
	}
	for i := range accs.N {
		a := &accs.A[i]
		if a.Read && (isKVMFragment(a, exit.PhysAddr, n) || readInParts(inst) && insideAccess(a, exit.PhysAddr, n)) {
			p.agree()
			p.armRead(inst, &accs)
			if keep {
				p.keepReadSite(exit, n, inst)
			}
			return nil
		}
	}
	return p.disagree("read", insn, "KVM read %d bytes at GPA %#x, walkvm resolved %s", n, exit.PhysAddr, accsString(&accs))
}

// isKVMFragment reports whether an MMIO exit (gpa, n) is one of the
// fragments KVM splits access a into: each page piece on its own, in
// chunks of at most 8 bytes (KVM's emulator_read_write_onepage and
// complete_emulated_mmio). A 2-byte exit is not a fragment of a 4-byte
// access at the same address.
func isKVMFragment(a *emulate.MemRef, gpa uint64, n int) bool {
	for i := range int(a.N) {
		p := &a.Pieces[i]
		end := p.GPA + uint64(p.Size)
		if gpa < p.GPA || gpa >= end || (gpa-p.GPA)%8 != 0 {
			continue
		}
		if uint64(n) == min(8, end-gpa) {
			return true
		}
	}
	return false
}

func accsString(a *emulate.MemRefs) string {
	if a.N == 0 {
		return "no memory access"
	}
	parts := make([]string, a.N)
	for i := range a.N {
		parts[i] = a.A[i].String()
	}
	return strings.Join(parts, "; ")
}

// EmulationFailure implements vcpu.MMIOHandler: KVM's emulator gave up, so
// walkvm executes the instruction itself (with its own walks, setting
// accessed and dirty bits), writes the state back and resumes; an
// architectural fault is injected as the CPU would deliver it.
func (p *Path) EmulationFailure(e *kvm.Exit) error {
	if err := p.begin(e); err != nil {
		return err
	}
	defer p.countWalks()
	x := &p.exit
	// Step may change any part of the state (segments, control
	// registers): the next load rebuilds it all.
	p.memo.sregs = false
	// AVX needs XCR0, which only a completion reads.
	if v, err := p.cfg.CPU.XCR0(); err == nil {
		x.st.XCR0 = v
	}
	_, err := p.emu.Step(&x.st)
	insn := p.emu.InstBytes()
	x.rec.SetInsn(insn)
	f := e.EmulationFailure
	// KVM reports as many bytes as it could fetch (up to 15): fewer than
	// the instruction when the rest lies where KVM cannot fetch (MMIO), so
	// only the bytes both have are compared.
	if kb := f.Instruction(); len(kb) > 0 && len(insn) > 0 && p.cfg.Verify != VerifyOff {
		if n := min(len(kb), len(insn)); string(kb[:n]) != string(insn[:n]) {
			if derr := p.disagree("fetch", insn, "KVM reports instruction bytes % x, walkvm fetched % x", kb, insn); derr != nil {
				return derr
			}
		}
	}
	if terr := p.checkTranslate(insn); terr != nil {
		return terr
	}
	var ex *x86.Exception
	switch {
	case err == nil:
		p.stats.MMIO.CompletedInUserspace++
		x.rec.Verdict = "completed"
		return p.writeBack()
	case errors.As(err, &ex):
		// Completed iterations of a REP instruction stay done.
		if werr := p.writeBack(); werr != nil {
			return werr
		}
		x.rec.Verdict = "injected " + x86.VectorName(ex.Vector)
		return p.inject(ex)
	}
	var ne *emulate.NotEmulatedError
	if errors.As(err, &ne) {
		return fmt.Errorf("walkvm cannot complete the instruction KVM gave up on in %v mode at %s: % x (%s): %w",
			x.mode, p.csrip(), insn, emulate.Disasm(insn, x.st.DecodeMode(), x.rip), err)
	}
	return fmt.Errorf("completing the instruction at %s (% x) in %v mode: %w", p.csrip(), insn, x.mode, err)
}

// writeBack stores general registers, RIP, RFLAGS and, if an instruction
// changed it, the vector state.
func (p *Path) writeBack() error {
	k, cpu := &p.kvm, p.cfg.CPU
	regsFromState(&k.regs, &p.exit.st)
	if err := cpu.SetRegs(&k.regs); err != nil {
		return err
	}
	if p.vec.Loaded() && p.vec.Dirty() {
		f, err := p.vec.State()
		if err != nil {
			return err
		}
		// Write back the way it was read: the XSAVE image keeps the
		// components the emulator does not model, and KVM_SET_FPU alone
		// does not mark the x87 state in use in XSTATE_BV, so an x87
		// state in its init configuration would stay there.
		if k.vecFromXSave {
			if err := f.MarshalXSAVE(k.xsave.Bytes()); err != nil {
				return err
			}
			if err := cpu.SetXSave(&k.xsave); err != nil {
				return err
			}
		} else {
			if err := f.MarshalKVMFPU(fpuBytes(&k.fpu)); err != nil {
				return err
			}
			if err := cpu.SetFPU(&k.fpu); err != nil {
				return err
			}
		}
		p.vec.Clean()
	}
	return nil
}

// inject delivers ex to the guest at its next entry; a #PF first sets CR2.
func (p *Path) inject(ex *x86.Exception) error {
	if ex.Vector == x86.VectorPF {
		var s kvm.Sregs
		if err := p.cfg.CPU.GetSregs(&s); err != nil {
			return err
		}
		s.CR2 = ex.Addr
		if err := p.cfg.CPU.SetSregs(&s); err != nil {
			return err
		}
	}
	if err := p.cfg.CPU.InjectException(ex.Vector, ex.HasErrorCode, ex.ErrorCode); err != nil {
		return err
	}
	p.stats.MMIO.ExceptionsInjected++
	if p.cfg.Log != nil {
		p.cfg.Log.Debugf("injected %v at %s", ex, p.csrip())
	}
	return nil
}

// setAccess records in r the access KVM's exit belongs to: the one written
// for a write exit, else the first.
func setAccess(r *trace.Record, a *emulate.MemRefs) {
	if a.N == 0 {
		return
	}
	acc := &a.A[0]
	for i := range a.N {
		if a.A[i].Write == r.Write {
			acc = &a.A[i]
			break
		}
	}
	r.SetAccess(acc.Linear, acc.Pieces[0].GPA, int(acc.Size))
}

// agree records that the path's access is KVM's.
func (p *Path) agree() {
	p.stats.MMIO.Agreed++
	p.exit.rec.Verdict = "agree"
}
