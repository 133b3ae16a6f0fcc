package vcpu

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
	"walkvm/x86"
)

// Verify says how the own MMIO path checks itself against KVM.
type Verify uint8

// Verification levels of `vmm run -verify`.
const (
	// VerifyOff skips the cross-checks; the own path still fetches and
	// decodes read exits and completes what KVM cannot emulate.
	VerifyOff Verify = iota
	// VerifyWarn logs every disagreement and goes on.
	VerifyWarn
	// VerifyStrict stops the VM at the first disagreement.
	VerifyStrict
)

var verifyNames = []string{"off", "warn", "strict"}

func (v Verify) String() string {
	if int(v) < len(verifyNames) {
		return verifyNames[v]
	}
	return fmt.Sprintf("verify(%d)", uint8(v))
}

// ParseVerify reads "off", "warn" or "strict".
func ParseVerify(s string) (Verify, error) {
	for i, n := range verifyNames {
		if s == n {
			return Verify(i), nil
		}
	}
	return 0, fmt.Errorf("verify level %q: want off, warn or strict", s)
}

// OwnPath is walkvm's own MMIO path: at every exit it reads the vCPU state
// and classifies the mode; at MMIO exits it fetches and decodes the
// instruction with its own page walks, resolves the access and checks it
// against KVM's; at emulation failures it executes the instruction itself
// and resumes the guest, or injects the fault the CPU would raise.
//
// It implements MMIOHandler and Observer. Everything the hot path needs is
// preallocated: an MMIO exit allocates nothing unless there is a
// disagreement to report or a trace to write.
type OwnPath struct {
	CPU    *kvm.VCPU
	RAM    *memory.RAM
	Bus    *memory.Bus
	Verify Verify
	Log    logrus.FieldLogger
	Stats  *Stats
	Trace  *Tracer
	// Features are the paging features of the guest's CPUID.
	Features mmu.Features
	// SyncRegs says KVM copies registers and special registers into
	// kvm_run at every exit (kvm.VCPU.EnableSyncRegs), so an exit reads
	// them without two ioctls.
	SyncRegs bool
	// PKRUOffset is where XSAVE keeps PKRU (CPUID 0xd.9 EBX); 0 when the
	// guest has no protection keys.
	PKRUOffset uint32

	mem    guestMem
	emu    emulate.Emulator
	vec    emulate.Vector
	st     emulate.State
	mst    mmu.State
	ctxOK  bool
	regs   kvm.Regs
	sregs  kvm.Sregs2
	sregs2 bool // KVM_GET_SREGS2 works
	mode   Mode
	seq    uint64
	// exitCS and exitRIP are CS:RIP as the exit found them.
	exitCS  uint16
	exitRIP uint64
	loaded  bool

	xsave        kvm.XSave
	fpu          kvm.FPU
	vecFromXSave bool // the vector state came from KVM_GET_XSAVE

	pending  pendingRMW
	candMemo [candidateMemoSize]candidateMemo
	winWalk  mmu.Walk
	rec      TraceRecord
	inited   bool
}

// pendingRMW is the instruction decoded at a read exit whose write exit is
// still to come (read-modify-write, MOVS between MMIO windows).
type pendingRMW struct {
	valid bool
	rip   uint64
	len   uint8
	accs  emulate.MemRefs
}

func (p *OwnPath) init() {
	if p.inited {
		return
	}
	p.inited = true
	p.mem.ram, p.mem.bus = p.RAM, p.Bus
	p.emu.Mem = &p.mem
	p.vec.Source = p
	p.st.Vec = &p.vec
	if p.Stats == nil {
		p.Stats = NewStats()
	}
	p.sregs2 = p.CPU != nil
}

// BeginExit implements Observer: it loads the vCPU state for this exit.
func (p *OwnPath) BeginExit(reason kvm.ExitReason) error {
	p.init()
	p.seq++
	p.mem.reset()
	p.vec.Invalidate()
	if err := p.load(); err != nil {
		return err
	}
	p.Stats.Modes.Observe(p.mode, p.exitCS, p.exitRIP)
	return nil
}

// load reads registers and special registers and rebuilds the emulator and
// walker state from them.
func (p *OwnPath) load() error {
	if err := p.loadRegs(); err != nil {
		return err
	}
	stateFromKVM(&p.st, &p.regs, &p.sregs)
	p.st.PKRU = p.pkru()
	p.exitCS, p.exitRIP = p.sregs.CS.Selector, p.regs.RIP
	p.mode = ClassifyMode(&p.sregs, p.regs.RFLAGS)
	ms := p.st.WalkerState()
	if !p.ctxOK || ms != p.mst {
		if err := p.mem.ctx.Reset(&ms, p.Features); err != nil {
			p.ctxOK = false
			return fmt.Errorf("mode %v at %s: %w", p.mode, p.csrip(), err)
		}
		p.mst, p.ctxOK = ms, true
		p.mem.memoGen++
	}
	p.mem.kvm = nil
	if p.Verify != VerifyOff {
		p.mem.kvm = p.CPU
	}
	return nil
}

// loadRegs reads the registers and special registers: from kvm_run where
// KVM syncs them, else with ioctls. The PAE PDPTE registers come only with
// KVM_GET_SREGS2, which PAE paging therefore still pays for.
func (p *OwnPath) loadRegs() error {
	if p.SyncRegs {
		p.regs = *p.CPU.SyncedRegs()
		s := p.CPU.SyncedSregs()
		pae := s.CR0&x86.CR0PG != 0 && s.CR4&x86.CR4PAE != 0 && s.EFER&x86.EFERLMA == 0
		if !pae || !p.sregs2 {
			sregs2From(&p.sregs, s)
			return nil
		}
	} else if err := p.CPU.GetRegs(&p.regs); err != nil {
		return err
	}
	if p.sregs2 {
		if err := p.CPU.GetSregs2(&p.sregs); err == nil {
			return nil
		}
		p.sregs2 = false
	}
	var s kvm.Sregs
	if err := p.CPU.GetSregs(&s); err != nil {
		return err
	}
	sregs2From(&p.sregs, &s)
	return nil
}

// pkru reads PKRU from the XSAVE area; it matters only with CR4.PKE, so
// only then does an exit pay for KVM_GET_XSAVE.
func (p *OwnPath) pkru() uint32 {
	if p.sregs.CR4&x86.CR4PKE == 0 || p.PKRUOffset == 0 {
		return 0
	}
	if err := p.CPU.GetXSave(&p.xsave); err != nil {
		return 0
	}
	b := p.xsave.Bytes()
	if int(p.PKRUOffset)+4 > len(b) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[p.PKRUOffset:])
}

func (p *OwnPath) csrip() string { return FormatCSRIP(p.exitCS, p.exitRIP) }

// EndExit implements Observer: it counts the exit and the walks, and writes
// the trace record.
func (p *OwnPath) EndExit(reason kvm.ExitReason, emulationFailure bool) {
	p.Stats.CountExit(reason, emulationFailure)
	for i := range p.mem.Walks() {
		p.Stats.CountWalk(&p.mem.walks[i])
	}
	p.Stats.Translate.Checks += p.mem.checks
	p.Stats.Translate.Ioctls += p.mem.ioctls
	p.Stats.Translate.Mismatches += p.mem.mismatches
	p.mem.checks, p.mem.ioctls, p.mem.mismatches = 0, 0, 0
	if p.Trace != nil {
		p.rec.Seq, p.rec.Reason, p.rec.Mode = p.seq, reason, p.mode
		p.rec.CS, p.rec.RIP, p.rec.CodeMode = p.exitCS, p.exitRIP, p.st.DecodeMode()
		p.rec.Walks = p.mem.Walks()
		p.Trace.Write(&p.rec)
	}
	p.rec.reset()
}

// xcr0AVX is XCR0 bit 2: AVX state enabled.
const xcr0AVX = 1 << 2

// LoadFPU implements emulate.FPUSource with KVM_GET_XSAVE, or KVM_GET_FPU
// where XSAVE is unavailable.
func (p *OwnPath) LoadFPU(f *emulate.FPUState) error {
	if err := p.CPU.GetXSave(&p.xsave); err == nil {
		if err := f.UnmarshalXSAVE(p.xsave.Bytes()); err != nil {
			return err
		}
		// The YMM halves exist only where the guest enabled AVX state in
		// XCR0; writing them back elsewhere is refused (KVM_SET_XSAVE
		// checks XSTATE_BV against what the vCPU supports).
		f.HasYMM = p.st.XCR0&xcr0AVX != 0
		p.vecFromXSave = true
		return nil
	}
	p.vecFromXSave = false
	if err := p.CPU.GetFPU(&p.fpu); err != nil {
		return err
	}
	return f.UnmarshalKVMFPU(fpuBytes(&p.fpu))
}

// Disagreement is a difference between walkvm's own MMIO path and KVM.
type Disagreement struct {
	What   string // "read", "write", "fetch", "translate"
	Mode   Mode
	CSRIP  string
	Bytes  []byte
	Disasm string
	Detail string
	Walks  string
	Regs   string
}

func (d *Disagreement) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "own MMIO path disagrees with KVM on a %s in %v mode at %s", d.What, d.Mode, d.CSRIP)
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
func (p *OwnPath) disagree(what string, insn []byte, format string, args ...any) error {
	p.Stats.MMIO.Disagreed++
	p.rec.Verdict = "disagree"
	if p.Verify == VerifyOff {
		return nil
	}
	d := &Disagreement{What: what, Mode: p.mode, CSRIP: p.csrip(), Bytes: append([]byte(nil), insn...),
		Disasm: emulate.Disasm(insn, p.st.DecodeMode(), p.exitRIP), Detail: fmt.Sprintf(format, args...)}
	var wb strings.Builder
	for i := range p.mem.Walks() {
		fmt.Fprintf(&wb, "  %s\n", p.mem.walks[i].String())
	}
	d.Walks = strings.TrimRight(wb.String(), "\n")
	d.Regs = fmt.Sprintf("rax=%#x rbx=%#x rcx=%#x rdx=%#x rsi=%#x rdi=%#x rsp=%#x rbp=%#x rflags=%#x cr0=%#x cr3=%#x cr4=%#x efer=%#x",
		p.regs.RAX, p.regs.RBX, p.regs.RCX, p.regs.RDX, p.regs.RSI, p.regs.RDI, p.regs.RSP, p.regs.RBP, p.regs.RFLAGS,
		p.sregs.CR0, p.sregs.CR3, p.sregs.CR4, p.sregs.EFER)
	p.rec.Detail = d.Detail
	if p.Verify == VerifyStrict {
		return d
	}
	if p.Log != nil {
		p.Log.Warn(d.Error())
	}
	return nil
}

// checkTranslate turns a KVM_TRANSLATE mismatch of this exit into a
// disagreement.
func (p *OwnPath) checkTranslate(insn []byte) error {
	m := &p.mem.mismatch
	if !m.seen || p.Verify == VerifyOff {
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

// MMIO implements MMIOHandler.
func (p *OwnPath) MMIO(exit *kvm.MMIOExit) error {
	p.init()
	n := min(int(exit.Len), len(exit.Data))
	p.rec.setMMIO(exit, n)
	var err error
	if exit.IsWrite != 0 {
		p.Stats.MMIO.Writes++
		err = p.writeExit(exit, n)
	} else {
		p.Stats.MMIO.Reads++
		err = p.readExit(exit, n)
	}
	if err != nil {
		return err
	}
	// The device always sees KVM's access: it is what the guest did.
	if err := ServeMMIO(p.Bus, exit, p.Log); err != nil {
		return err
	}
	if exit.IsWrite == 0 {
		p.rec.Data = le64(exit.Data[:n])
	}
	return nil
}

// readExit: RIP is at the instruction. Fetch and decode it with walkvm's
// own walks and check that one of its accesses is KVM's.
func (p *OwnPath) readExit(exit *kvm.MMIOExit, n int) error {
	p.pending.valid = false
	inst, err := p.emu.Fetch(&p.st)
	insn := p.emu.InstBytes()
	p.rec.setInsn(insn)
	if err != nil {
		if p.Verify == VerifyOff {
			return nil
		}
		return p.disagree("fetch", insn, "walkvm cannot fetch the instruction KVM read MMIO for: %v", err)
	}
	var accs emulate.MemRefs
	if err := p.emu.Resolve(&p.st, inst, &accs); err != nil {
		if p.Verify == VerifyOff {
			return nil
		}
		return p.disagree("read", insn, "resolving the operand failed: %v", err)
	}
	p.rec.setAccess(&accs)
	for i := range accs.N {
		if accs.A[i].Write {
			p.pending = pendingRMW{valid: true, rip: p.regs.RIP, len: inst.Len, accs: accs}
			break
		}
	}
	if p.Verify == VerifyOff {
		return nil
	}
	if err := p.checkTranslate(insn); err != nil {
		return err
	}
	for i := range accs.N {
		a := &accs.A[i]
		if a.Read && isKVMFragment(a, exit.PhysAddr, n) {
			p.Stats.MMIO.Agreed++
			p.rec.Verdict = "agree"
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

// EmulationFailure implements MMIOHandler: KVM's emulator gave up, so walkvm
// executes the instruction itself (with its own walks, setting accessed and
// dirty bits), writes the state back and resumes; an architectural fault is
// injected as the CPU would deliver it.
func (p *OwnPath) EmulationFailure(f *kvm.EmulationFailure) error {
	p.init()
	// AVX needs XCR0, which only a completion reads.
	if x, err := p.CPU.XCR0(); err == nil {
		p.st.XCR0 = x
	}
	_, err := p.emu.Step(&p.st)
	insn := p.emu.InstBytes()
	p.rec.setInsn(insn)
	// KVM reports as many bytes as it could fetch (up to 15): fewer than
	// the instruction when the rest lies where KVM cannot fetch (MMIO), so
	// only the bytes both have are compared.
	if kb := f.Instruction(); len(kb) > 0 && len(insn) > 0 && p.Verify != VerifyOff {
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
		p.Stats.MMIO.CompletedInUserspace++
		p.rec.Verdict = "completed"
		return p.writeBack()
	case errors.As(err, &ex):
		// Completed iterations of a REP instruction stay done.
		if werr := p.writeBack(); werr != nil {
			return werr
		}
		p.rec.Verdict = "injected " + x86.VectorName(ex.Vector)
		return p.inject(ex)
	}
	var ne *emulate.NotEmulatedError
	if errors.As(err, &ne) {
		return fmt.Errorf("walkvm cannot complete the instruction KVM gave up on in %v mode at %s: % x (%s): %w",
			p.mode, p.csrip(), insn, emulate.Disasm(insn, p.st.DecodeMode(), p.exitRIP), err)
	}
	return fmt.Errorf("completing the instruction at %s (% x) in %v mode: %w", p.csrip(), insn, p.mode, err)
}

// writeBack stores general registers, RIP, RFLAGS and, if an instruction
// changed it, the vector state.
func (p *OwnPath) writeBack() error {
	regsFromState(&p.regs, &p.st)
	if err := p.CPU.SetRegs(&p.regs); err != nil {
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
		if p.vecFromXSave {
			if err := f.MarshalXSAVE(p.xsave.Bytes()); err != nil {
				return err
			}
			if err := p.CPU.SetXSave(&p.xsave); err != nil {
				return err
			}
		} else {
			if err := f.MarshalKVMFPU(fpuBytes(&p.fpu)); err != nil {
				return err
			}
			if err := p.CPU.SetFPU(&p.fpu); err != nil {
				return err
			}
		}
		p.vec.Clean()
	}
	return nil
}

// inject delivers ex to the guest at its next entry; a #PF first sets CR2.
func (p *OwnPath) inject(ex *x86.Exception) error {
	if ex.Vector == x86.VectorPF {
		var s kvm.Sregs
		if err := p.CPU.GetSregs(&s); err != nil {
			return err
		}
		s.CR2 = ex.Addr
		if err := p.CPU.SetSregs(&s); err != nil {
			return err
		}
	}
	if err := p.CPU.InjectException(ex.Vector, ex.HasErrorCode, ex.ErrorCode); err != nil {
		return err
	}
	p.Stats.MMIO.ExceptionsInjected++
	if p.Log != nil {
		p.Log.Debugf("injected %v at %s", ex, p.csrip())
	}
	return nil
}
