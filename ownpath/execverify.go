package ownpath

import (
	"errors"
	"fmt"
	"strings"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/x86"
)

// -verify exec: result equality on every MMIO exit.
//
// At a read exit KVM waits for the data; the path serves it, then lets KVM
// complete the instruction without running anything further (KVM_RUN with
// kvm_run.immediate_exit set: KVM finishes the pending MMIO operation and
// returns EINTR before entering the guest, Documentation/virt/kvm/api.rst,
// "immediate_exit"). Exits KVM makes while completing (further fragments,
// a read-modify-write's write, the next element of a REP string
// instruction) are served on the spot and their data kept. walkvm then
// executes the instruction itself on a copy of the state before it
// (emulate.ExecuteOnCopy) with the data KVM was given, and compares its
// result with KVM's: every GPR, RIP, RFLAGS (the flags the SDM leaves
// undefined for that execution masked), the segment registers and, where
// the instruction can change them, CR0, GDTR and IDTR, the x87/SSE/AVX
// state for instructions that use it, the fault raised, and every byte
// written to RAM and to MMIO.
//
// At a write exit KVM has already finished the instruction: the path
// executes the instruction it found behind RIP from the rewound state and
// compares with the registers at the exit and the bytes KVM wrote.

// Completer is what -verify exec needs of the vCPU beyond CPU: running it
// with immediate_exit set to complete a pending MMIO operation, reading
// the exits that completion makes, and the exception KVM queued.
// *kvm.VCPU implements it.
type Completer interface {
	Run() error
	ReadExit(e *kvm.Exit) error
	SetImmediateExit(on bool)
	GetVCPUEvents(e *kvm.VCPUEvents) error
}

// Capacity of the data one completion may collect: MMIO pieces of at most
// 8 bytes each (KVM exits 8 bytes at a time), enough for FXRSTOR's 512
// bytes or 64 elements of a REP string instruction.
const (
	maxExecPieces = 128
	maxExecBytes  = 8 * maxExecPieces
)

// execVerify is the state of -verify exec for one vCPU, preallocated.
type execVerify struct {
	cpu Completer // nil when the vCPU cannot complete: exec checks nothing
	mem execMem
	emu emulate.Emulator
	fx  emulate.Effects

	armed bool // a read exit agreed: its result is to be checked
	inst  decode.Inst
	accs  emulate.MemRefs // the read exit's accesses
	pre   emulate.State
	// handedOver says KVM's emulator gave up while completing the
	// instruction and EmulationFailure took it over.
	handedOver bool

	// What KVM read and wrote while completing the instruction.
	reads     [maxExecPieces]emulate.MMIOData
	nreads    int
	readData  [maxExecBytes]byte
	readUsed  int
	writes    [maxExecPieces]kvmWrite
	nwrites   int
	writeData [maxExecBytes]byte
	writeUsed int
	overflow  bool // more than the buffers hold: the result is not checked
	inline    int  // exits served during the completion

	exit  kvm.Exit // an exit made during the completion
	regs  kvm.Regs
	sregs kvm.Sregs2
	ev    kvm.VCPUEvents
	xsave kvm.XSave
	fpu   kvm.FPU
	vec   emulate.FPUState // KVM's vector state after the instruction
	ram   [64]byte         // RAM bytes read back for a comparison

	diffs diffList
}

// kvmWrite is one MMIO write KVM made, its bytes in writeData.
type kvmWrite struct {
	gpa      uint64
	off, len uint16
}

func (p *Path) initExec() {
	xv := &p.xv
	xv.cpu, _ = p.cfg.CPU.(Completer)
	xv.mem = execMem{ram: p.cfg.RAM, ctx: &p.mem.ctx}
	xv.emu.Mem = &xv.mem
}

// execMem is the guest as an execution on a copy sees it: the path's
// walker (nothing recorded, no accessed or dirty flags) and RAM only. A
// read of anything else was not part of KVM's exits and is refused.
type execMem struct {
	ram *memory.RAM
	ctx *mmu.Context
	w   mmu.Walk
}

// NotKVMDataError is a read of guest-physical memory outside RAM for
// which KVM's exits gave no data: walkvm's execution reads a device KVM
// did not read.
type NotKVMDataError struct {
	GPA uint64
	Len int
}

func (e *NotKVMDataError) Error() string {
	return fmt.Sprintf("reads %d bytes at GPA %#x, outside RAM, which KVM did not read", e.Len, e.GPA)
}

func (m *execMem) Translate(la uint64, in emulate.Intent) (uint64, error) {
	if err := walk(m.ctx, m.ram, la, in, &m.w); err != nil {
		return 0, err
	}
	return m.w.GPA, nil
}

func (m *execMem) ReadPhys(gpa uint64, b []byte) error {
	if !m.ram.Contains(gpa, uint64(len(b))) {
		return &NotKVMDataError{GPA: gpa, Len: len(b)}
	}
	return m.ram.Read(gpa, b)
}

func (m *execMem) WritePhys(gpa uint64, b []byte) error {
	return errors.New("ownpath: an execution on a copy wrote memory") // ExecuteOnCopy records writes instead
}

func (xv *execVerify) resetData() {
	xv.nreads, xv.readUsed, xv.nwrites, xv.writeUsed = 0, 0, 0, 0
	xv.overflow, xv.inline, xv.handedOver = false, 0, false
}

func (xv *execVerify) addRead(gpa uint64, b []byte) {
	if xv.nreads == len(xv.reads) || xv.readUsed+len(b) > len(xv.readData) {
		xv.overflow = true
		return
	}
	n := copy(xv.readData[xv.readUsed:], b)
	xv.reads[xv.nreads] = emulate.MMIOData{GPA: gpa, Data: xv.readData[xv.readUsed : xv.readUsed+n]}
	xv.nreads++
	xv.readUsed += n
}

func (xv *execVerify) addWrite(gpa uint64, b []byte) {
	if xv.nwrites == len(xv.writes) || xv.writeUsed+len(b) > len(xv.writeData) {
		xv.overflow = true
		return
	}
	n := copy(xv.writeData[xv.writeUsed:], b)
	xv.writes[xv.nwrites] = kvmWrite{gpa: gpa, off: uint16(xv.writeUsed), len: uint16(n)}
	xv.nwrites++
	xv.writeUsed += n
}

func (xv *execVerify) writeBytes(i int) []byte {
	w := &xv.writes[i]
	return xv.writeData[w.off : w.off+w.len]
}

// armRead records the instruction of a read exit whose access agreed, and
// its accesses: its result is checked once the device has served the data
// (execRead).
func (p *Path) armRead(inst *decode.Inst, accs *emulate.MemRefs) {
	if p.cfg.Verify != VerifyExec {
		return
	}
	p.xv.armed, p.xv.inst, p.xv.accs = true, *inst, *accs
}

// snapshotRAM keeps the RAM bytes the instruction reads as they are before
// KVM completes it: an instruction that reads and writes the same RAM (a
// read-modify-write across a RAM/MMIO page boundary) finds KVM's result
// there afterwards. The bytes join the exit's data, which ExecuteOnCopy
// reads before RAM.
func (p *Path) snapshotRAM() {
	xv := &p.xv
	for i := range xv.accs.N {
		a := &xv.accs.A[i]
		if !a.Read {
			continue
		}
		for j := range int(a.N) {
			pc := &a.Pieces[j]
			if !p.cfg.RAM.Contains(pc.GPA, uint64(pc.Size)) || xv.readUsed+int(pc.Size) > len(xv.readData) || xv.nreads == len(xv.reads) {
				continue
			}
			b := xv.readData[xv.readUsed : xv.readUsed+int(pc.Size)]
			if p.cfg.RAM.Read(pc.GPA, b) != nil {
				continue
			}
			xv.reads[xv.nreads] = emulate.MMIOData{GPA: pc.GPA, Data: b}
			xv.nreads++
			xv.readUsed += len(b)
		}
	}
}

// execRead checks the result of the instruction of a read exit (see the
// top of this file); e's data is the device's answer, already served.
func (p *Path) execRead(e *kvm.Exit) error {
	xv := &p.xv
	if !xv.armed {
		return nil
	}
	xv.armed = false
	if xv.cpu == nil {
		p.stats.Results.Unchecked++
		return nil
	}
	f := emulate.FactsOf(xv.inst.Op)
	xv.pre = p.exit.st
	xv.pre.Vec = nil
	vector := f.Flags&(emulate.FX87|emulate.FVector) != 0 || f.Class == emulate.ClassXState
	if vector {
		// The vector state before the instruction: completing it changes
		// KVM's.
		if v, err := p.cfg.CPU.XCR0(); err == nil {
			xv.pre.XCR0 = v
		}
		if _, err := p.vec.State(); err == nil {
			xv.pre.Vec = &p.vec
		}
	}
	xv.resetData()
	p.snapshotRAM()
	xv.addRead(e.MMIO.PhysAddr, e.MMIO.Bytes())
	if err := p.complete(); err != nil {
		return err
	}
	if xv.handedOver {
		// KVM gave up while completing: EmulationFailure has completed
		// the instruction instead; there is no result of KVM's to compare.
		p.stats.Results.Unchecked++
		return nil
	}
	p.memo.pending.valid = false // a read-modify-write's write exit was served above
	if err := p.kvmAfter(f, vector, false); err != nil {
		return err
	}
	xv.emu.MaxRep = 0
	if f.Flags&emulate.FString != 0 && (xv.inst.Prefix.Rep || xv.inst.Prefix.Repne) {
		// KVM may stop a REP loop between iterations (as an interrupt
		// would); walkvm runs as many as KVM's count register says.
		mask := addrMaskOf(xv.inst.AddrSize)
		xv.emu.MaxRep = max((xv.pre.GPR[x86.RCX]-xv.regs.RCX)&mask, 1)
	}
	if xv.overflow {
		p.stats.Results.Unchecked++
		return nil
	}
	err := xv.emu.ExecuteOnCopy(&xv.pre, &xv.inst, xv.reads[:xv.nreads], &xv.fx)
	return p.judge(f, err, vector, p.emu.InstBytes(), nil)
}

// complete runs the vCPU with immediate_exit set until KVM has finished
// the pending instruction, serving the MMIO exits it makes meanwhile.
func (p *Path) complete() error {
	xv, cpu := &p.xv, p.xv.cpu
	for {
		cpu.SetImmediateExit(true)
		err := cpu.Run()
		cpu.SetImmediateExit(false)
		if errors.Is(err, kvm.ErrInterrupted) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("completing the instruction at %s: %w", p.csrip(), err)
		}
		xv.exit.Seq = p.exit.seq
		if err := cpu.ReadExit(&xv.exit); err != nil {
			return err
		}
		if xv.exit.Kind == kvm.KindIO && p.cfg.PIO != nil {
			// String I/O between a port and MMIO (OUTS from it, INS
			// into it): the port's side.
			if err := p.servePorts(&xv.exit.IO); err != nil {
				return err
			}
			p.stats.CountExit(kvm.KindIO)
			continue
		}
		if xv.exit.Kind == kvm.KindEmulationFailure {
			// KVM's emulator gave up on the instruction after its MMIO
			// read (the registers are still those before it): walkvm
			// completes it, as at any emulation failure.
			p.stats.CountExit(kvm.KindEmulationFailure)
			xv.handedOver = true
			return p.EmulationFailure(&xv.exit)
		}
		if xv.exit.Kind != kvm.KindMMIO {
			if xv.exit.Kind == kvm.KindInternalError {
				return fmt.Errorf("completing the instruction at %s, KVM made an internal-error exit, suberror %d, data % x",
					p.csrip(), xv.exit.Internal.Suberror, xv.exit.Internal.Data)
			}
			return fmt.Errorf("completing the instruction at %s, KVM made a %v exit", p.csrip(), xv.exit.Reason)
		}
		m := xv.exit.MMIO
		write := m.IsWrite != 0
		p.stats.CountExit(kvm.KindMMIO)
		p.stats.ObserveMode(p.exit.mode, p.exit.cs, p.exit.rip)
		if write {
			p.stats.MMIO.Writes++
		} else {
			p.stats.MMIO.Reads++
		}
		if err := p.mem.phys.access(m.PhysAddr, m.Bytes(), write); err != nil {
			return err
		}
		if write {
			xv.addWrite(m.PhysAddr, m.Bytes())
		} else {
			xv.addRead(m.PhysAddr, m.Bytes())
		}
		xv.inline++
	}
}

// kvmAfter reads KVM's state after the instruction into xv: registers, the
// special registers where they can have changed (always with synced
// registers, which cost nothing), the vector state for an instruction that
// uses it. A write exit already holds KVM's registers (exitState).
func (p *Path) kvmAfter(f *emulate.Facts, vector, atExit bool) error {
	xv, cpu := &p.xv, p.cfg.CPU
	switch {
	case atExit:
		xv.regs, xv.sregs = p.kvm.regs, p.kvm.sregs
	case p.cfg.SyncRegs:
		xv.regs = *cpu.SyncedRegs()
		sregs2From(&xv.sregs, cpu.SyncedSregs())
	default:
		if err := cpu.GetRegs(&xv.regs); err != nil {
			return err
		}
		xv.sregs = p.kvm.sregs
		if sregsChange(f) {
			var s kvm.Sregs
			if err := cpu.GetSregs(&s); err != nil {
				return err
			}
			sregs2From(&xv.sregs, &s)
		}
	}
	if !vector {
		return nil
	}
	if atExit {
		// A store leaves the vector state as it was: KVM's is the one
		// loaded for the instruction.
		v, err := p.vec.State()
		if err != nil {
			return err
		}
		xv.vec = *v
		return nil
	}
	if err := cpu.GetXSave(&xv.xsave); err == nil {
		if err := xv.vec.UnmarshalXSAVE(xv.xsave.Bytes()); err != nil {
			return err
		}
		xv.vec.HasYMM = xv.pre.XCR0&xcr0AVX != 0
		return nil
	}
	if err := cpu.GetFPU(&xv.fpu); err != nil {
		return err
	}
	return xv.vec.UnmarshalKVMFPU(fpuBytes(&xv.fpu))
}

// sregsChange reports whether an instruction can change segment, control
// or descriptor-table registers.
func sregsChange(f *emulate.Facts) bool {
	switch f.Class {
	case emulate.ClassSegment, emulate.ClassBranch, emulate.ClassSystem:
		return true
	}
	return f.Flags&emulate.FDescriptor != 0
}

// execWrite checks the result of the instruction m found behind a write
// exit: executed from the rewound state, it must leave KVM's registers and
// write KVM's bytes.
func (p *Path) execWrite(m *writeMatch, exit *kvm.MMIOExit, n int) error {
	xv := &p.xv
	f := emulate.FactsOf(m.inst.Op)
	xv.pre = p.exit.st
	xv.pre.RIP = m.start
	if m.undo {
		emulate.Rewind(&xv.pre, m.inst)
	}
	vector := f.Flags&(emulate.FX87|emulate.FVector) != 0 || f.Class == emulate.ClassXState
	xv.pre.Vec = nil
	if vector {
		if v, err := p.cfg.CPU.XCR0(); err == nil {
			xv.pre.XCR0 = v
		}
		if _, err := p.vec.State(); err == nil {
			xv.pre.Vec = &p.vec
		}
	}
	xv.resetData()
	xv.addWrite(exit.PhysAddr, exit.Data[:n])
	if err := p.kvmAfter(f, vector, true); err != nil {
		return err
	}
	// One element of a REP string instruction per write exit. (The
	// instruction is copied into xv: a pointer into m would make the
	// caller's match escape.)
	xv.emu.MaxRep = 1
	xv.inst = *m.inst
	err := xv.emu.ExecuteOnCopy(&xv.pre, &xv.inst, nil, &xv.fx)
	return p.judge(f, err, vector, p.exit.rec.Insn(), m)
}

func addrMaskOf(n uint8) uint64 {
	switch n {
	case 2:
		return 0xffff
	case 4:
		return 0xffffffff
	}
	return ^uint64(0)
}

// judge compares walkvm's execution (xv.fx, err) with KVM's result (xv's
// registers, vector state, exits, RAM) and records the verdict. wm is the
// write exit's match, nil at a read exit.
func (p *Path) judge(f *emulate.Facts, err error, vector bool, insn []byte, wm *writeMatch) error {
	xv := &p.xv
	xv.diffs.reset()
	var ex *x86.Exception
	if err != nil {
		if notEmulated(err) {
			p.stats.Results.Unchecked++
			return nil
		}
		if ex = exceptionOf(err); ex == nil {
			// walkvm's execution needed data KVM's exits did not
			// give, or failed otherwise: that is the difference.
			xv.diffs.add("execution", err.Error(), "completed")
		}
	}
	if xv.diffs.n == 0 {
		if err := p.compareFault(ex, wm != nil); err != nil {
			return err
		}
		p.compareRegs(f)
		if vector && xv.pre.Vec != nil {
			p.compareVector()
		}
		p.compareWrites(wm != nil)
	}
	p.stats.Results.Checked++
	if xv.diffs.n == 0 {
		if wm == nil {
			p.stats.MMIO.Agreed += uint64(xv.inline)
		}
		return nil
	}
	p.stats.Results.Disagreed++
	d := p.disagree("result", insn, "%s", xv.diffs.String())
	if dd, ok := d.(*Disagreement); ok {
		dd.Fields = xv.diffs.names()
	}
	return d
}

// compareFault compares the fault walkvm's execution raised (nil for none)
// with the exception KVM queued. KVM is asked only when either side shows
// a fault: walkvm's did, or KVM left RIP where it was.
func (p *Path) compareFault(ex *x86.Exception, atWrite bool) error {
	xv := &p.xv
	if atWrite {
		// KVM wrote: the instruction completed there.
		if ex != nil {
			xv.diffs.add("fault", ex.Error(), "none")
		}
		return nil
	}
	stuck := xv.regs.RIP == xv.pre.RIP && xv.fx.Result.Done
	if ex == nil && !stuck {
		return nil
	}
	if err := xv.cpu.GetVCPUEvents(&xv.ev); err != nil {
		return err
	}
	e := &xv.ev.E
	kvmFault := e.Inject != 0 || e.Pending != 0
	switch {
	case ex == nil && !kvmFault:
		return nil // a jump to itself, say: compareRegs judges RIP
	case ex == nil:
		xv.diffs.add("fault", "none", excString(e.Nr, e.HadErrorCode != 0, e.ErrorCode))
		return nil
	case !kvmFault:
		xv.diffs.add("fault", ex.Error(), "none")
		return nil
	}
	code := uint32(0)
	if ex.HasErrorCode {
		code = ex.ErrorCode
	}
	if e.Nr != ex.Vector || (e.HadErrorCode != 0) != ex.HasErrorCode || e.ErrorCode != code {
		xv.diffs.add("fault", excString(ex.Vector, ex.HasErrorCode, code), excString(e.Nr, e.HadErrorCode != 0, e.ErrorCode))
		return nil
	}
	if ex.Vector == x86.VectorPF {
		// KVM sets CR2 when it delivers the fault's payload, which
		// KVM_GET_VCPU_EVENTS does.
		var s kvm.Sregs
		if err := p.cfg.CPU.GetSregs(&s); err != nil {
			return err
		}
		if s.CR2 != ex.Addr {
			xv.diffs.addHex("cr2", ex.Addr, s.CR2)
		}
	}
	return nil
}

func excString(vec uint8, hasCode bool, code uint32) string {
	if hasCode {
		return fmt.Sprintf("%s(%#x)", x86.VectorName(vec), code)
	}
	return x86.VectorName(vec)
}

// compareRegs compares GPRs, RIP, RFLAGS, segment registers and, for an
// instruction that can change them, CR0, GDTR and IDTR.
func (p *Path) compareRegs(f *emulate.Facts) {
	xv := &p.xv
	own, k := &xv.fx.State, &xv.regs
	var kg [x86.NumGPR]uint64
	gprsOf(&kg, k)
	skip := -1
	if xv.fx.Result.DestUndefined {
		if a := &xv.inst.Args[0]; a.Kind == decode.ArgReg {
			skip = int(a.Reg & 15)
		}
	}
	for r := range own.GPR {
		if r != skip && own.GPR[r] != kg[r] {
			xv.diffs.addHex(x86.Reg(r).String(), own.GPR[r], kg[r])
		}
	}
	mask := ^xv.fx.Result.Undefined
	if !xv.fx.Result.Done && xv.fx.Result.Iterations > 0 {
		// A REP string instruction stopped between iterations: KVM sets
		// RF for the instruction's re-execution (as the CPU does in the
		// RFLAGS image an interrupt between iterations saves, SDM Vol. 3A
		// §17.3.1.1); the executor leaves it.
		mask &^= x86.FlagRF
	}
	if own.RIP != k.RIP {
		if p.repDoneAtRIP(f) {
			mask &^= x86.FlagRF
		} else {
			xv.diffs.addHex("rip", own.RIP, k.RIP)
		}
	}
	if own.RFLAGS&mask != k.RFLAGS&mask {
		xv.diffs.addHex("rflags", own.RFLAGS, k.RFLAGS)
	}
	ks := &xv.sregs
	for i, seg := range [...]*kvm.Segment{&ks.ES, &ks.CS, &ks.SS, &ks.DS, &ks.FS, &ks.GS} {
		o, kv := own.Seg[i], segFromKVM(seg)
		if !sameSegment(&o, &kv) {
			xv.diffs.add(x86.SegReg(i).String(), segString(&o), segString(&kv))
		}
	}
	if !sregsChange(f) {
		return
	}
	if own.CR0 != ks.CR0 {
		xv.diffs.addHex("cr0", own.CR0, ks.CR0)
	}
	if own.GDTR.Base != ks.GDT.Base || own.GDTR.Limit != ks.GDT.Limit {
		xv.diffs.add("gdtr", fmt.Sprintf("%#x/%#x", own.GDTR.Base, own.GDTR.Limit), fmt.Sprintf("%#x/%#x", ks.GDT.Base, ks.GDT.Limit))
	}
	if own.IDTR.Base != ks.IDT.Base || own.IDTR.Limit != ks.IDT.Limit {
		xv.diffs.add("idtr", fmt.Sprintf("%#x/%#x", own.IDTR.Base, own.IDTR.Limit), fmt.Sprintf("%#x/%#x", ks.IDT.Base, ks.IDT.Limit))
	}
}

// repDoneAtRIP: at the write exit of a REP string instruction's last
// element KVM leaves the count at 0 with RIP still at the instruction and
// RFLAGS.RF set, as after an interrupted iteration (measured; the README
// lists it among the KVM behaviours that differ from the SDM). The
// next execution does nothing and moves on, so that state is taken as the
// finished one, RF aside.
func (p *Path) repDoneAtRIP(f *emulate.Facts) bool {
	xv := &p.xv
	inst := &xv.inst
	return f.Flags&emulate.FString != 0 && (inst.Prefix.Rep || inst.Prefix.Repne) &&
		xv.regs.RIP == xv.pre.RIP && xv.regs.RCX&addrMaskOf(inst.AddrSize) == 0
}

// sameSegment compares the visible and hidden parts of two segment
// registers; an unusable segment's hidden part means nothing.
func sameSegment(a, b *x86.Segment) bool {
	if a.Unusable && b.Unusable {
		return a.Selector == b.Selector
	}
	return *a == *b
}

func segString(s *x86.Segment) string {
	return fmt.Sprintf("sel=%#x base=%#x limit=%#x type=%d s=%v dpl=%d p=%v db=%v l=%v g=%v unusable=%v",
		s.Selector, s.Base, s.Limit, s.Type, s.S, s.DPL, s.Present, s.DB, s.L, s.G, s.Unusable)
}

// compareVector compares the x87, SSE and AVX registers. FOP, FIP and FDP
// are not compared: AMD's FXSAVE stores them only with an x87 exception
// pending, so KVM's image need not hold them.
func (p *Path) compareVector() {
	xv := &p.xv
	own, err := xv.fx.Vec.State()
	if err != nil {
		xv.diffs.add("vector state", err.Error(), "loaded")
		return
	}
	k := &xv.vec
	if own.FCW != k.FCW {
		xv.diffs.addHex("fcw", uint64(own.FCW), uint64(k.FCW))
	}
	if own.FSW != k.FSW {
		xv.diffs.addHex("fsw", uint64(own.FSW), uint64(k.FSW))
	}
	if own.FTWX != k.FTWX {
		xv.diffs.addHex("ftw", uint64(own.FTWX), uint64(k.FTWX))
	}
	for i := range own.FPR {
		if [10]byte(own.FPR[i][:10]) != [10]byte(k.FPR[i][:10]) {
			xv.diffs.add(fmt.Sprintf("st%d", i), fmt.Sprintf("% x", own.FPR[i][:10]), fmt.Sprintf("% x", k.FPR[i][:10]))
		}
	}
	if own.MXCSR != k.MXCSR {
		xv.diffs.addHex("mxcsr", uint64(own.MXCSR), uint64(k.MXCSR))
	}
	for i := range own.XMM {
		if own.XMM[i] != k.XMM[i] {
			xv.diffs.add(fmt.Sprintf("xmm%d", i), fmt.Sprintf("% x", own.XMM[i]), fmt.Sprintf("% x", k.XMM[i]))
		}
		if own.HasYMM && k.HasYMM && own.YMMH[i] != k.YMMH[i] {
			xv.diffs.add(fmt.Sprintf("ymm%d[255:128]", i), fmt.Sprintf("% x", own.YMMH[i]), fmt.Sprintf("% x", k.YMMH[i]))
		}
	}
}

// compareWrites compares the bytes walkvm's execution wrote with what KVM
// wrote: RAM as it is now, MMIO as KVM's exits wrote it. At a write exit
// only the exit's bytes are KVM's so far (its later fragments come with
// later exits), so only they are required of walkvm.
func (p *Path) compareWrites(atWrite bool) {
	xv := &p.xv
	fx := &xv.fx
	for i := range fx.Writes {
		w := &fx.Writes[i]
		data := fx.WriteData(i)
		if p.cfg.RAM.Contains(w.GPA, uint64(len(data))) {
			p.compareRAM(w.GPA, data)
			continue
		}
		if atWrite {
			continue
		}
		for j := range data {
			v, ok := xv.kvmWrote(w.GPA + uint64(j))
			if !ok || v != data[j] {
				xv.diffs.add(fmt.Sprintf("mmio %#x", w.GPA), fmt.Sprintf("% x", data), xv.kvmWroteString(w.GPA, len(data)))
				break
			}
		}
	}
	// Every byte KVM wrote to MMIO must be one walkvm wrote.
	for i := range xv.nwrites {
		kw := &xv.writes[i]
		b := xv.writeBytes(i)
		for j := range b {
			v, ok := effectsWrote(fx, kw.gpa+uint64(j))
			if !ok || v != b[j] {
				xv.diffs.add(fmt.Sprintf("kvm write %#x", kw.gpa), xv.ownWroteString(kw.gpa, len(b)), fmt.Sprintf("% x", b))
				break
			}
		}
	}
}

// compareRAM compares walkvm's write of data at gpa with RAM now.
func (p *Path) compareRAM(gpa uint64, data []byte) {
	xv := &p.xv
	for off := 0; off < len(data); off += len(xv.ram) {
		n := min(len(xv.ram), len(data)-off)
		got := xv.ram[:n]
		if err := p.cfg.RAM.Read(gpa+uint64(off), got); err != nil {
			xv.diffs.add(fmt.Sprintf("ram %#x", gpa), fmt.Sprintf("% x", data), err.Error())
			return
		}
		if string(got) != string(data[off:off+n]) {
			xv.diffs.add(fmt.Sprintf("ram %#x", gpa+uint64(off)), fmt.Sprintf("% x", data[off:off+n]), fmt.Sprintf("% x", got))
			return
		}
	}
}

// kvmWrote returns the last byte KVM's exits wrote at gpa.
func (xv *execVerify) kvmWrote(gpa uint64) (byte, bool) {
	for i := xv.nwrites - 1; i >= 0; i-- {
		w := &xv.writes[i]
		if gpa >= w.gpa && gpa-w.gpa < uint64(w.len) {
			return xv.writeData[uint64(w.off)+gpa-w.gpa], true
		}
	}
	return 0, false
}

func (xv *execVerify) kvmWroteString(gpa uint64, n int) string {
	var b strings.Builder
	for i := range n {
		if v, ok := xv.kvmWrote(gpa + uint64(i)); ok {
			fmt.Fprintf(&b, "%02x ", v)
		} else {
			b.WriteString("-- ")
		}
	}
	return strings.TrimSpace(b.String()) + " (-- not written)"
}

func (xv *execVerify) ownWroteString(gpa uint64, n int) string {
	var b strings.Builder
	for i := range n {
		if v, ok := effectsWrote(&xv.fx, gpa+uint64(i)); ok {
			fmt.Fprintf(&b, "%02x ", v)
		} else {
			b.WriteString("-- ")
		}
	}
	return strings.TrimSpace(b.String()) + " (-- not written)"
}

// diffList collects the fields where walkvm's result differs from KVM's;
// it allocates only when there is a difference to report.
type diffList struct {
	n     int
	items []fieldDiff
}

type fieldDiff struct{ field, own, kvm string }

func (d *diffList) reset() { d.n, d.items = 0, d.items[:0] }

func (d *diffList) add(field, own, kvm string) {
	d.items = append(d.items, fieldDiff{field, own, kvm})
	d.n++
}

func (d *diffList) addHex(field string, own, kvm uint64) {
	d.add(field, fmt.Sprintf("%#x", own), fmt.Sprintf("%#x", kvm))
}

func (d *diffList) names() []string {
	out := make([]string, len(d.items))
	for i, it := range d.items {
		out[i] = it.field
	}
	return out
}

func (d *diffList) String() string {
	var b strings.Builder
	b.WriteString("the result differs: ")
	for i, it := range d.items {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: walkvm %s, KVM %s", it.field, it.own, it.kvm)
	}
	return b.String()
}

// effectsWrote returns the last byte an execution on a copy wrote at gpa.
func effectsWrote(fx *emulate.Effects, gpa uint64) (byte, bool) {
	for i := len(fx.Writes) - 1; i >= 0; i-- {
		w := &fx.Writes[i]
		if d := fx.WriteData(i); gpa >= w.GPA && gpa-w.GPA < uint64(len(d)) {
			return d[gpa-w.GPA], true
		}
	}
	return 0, false
}

// notEmulated and exceptionOf match an execution's error; in functions of
// their own because the pointer handed to errors.As escapes, which would
// make every call of the caller allocate.
func notEmulated(err error) bool {
	var ne *emulate.NotEmulatedError
	return errors.As(err, &ne)
}

func exceptionOf(err error) *x86.Exception {
	var ex *x86.Exception
	if errors.As(err, &ex) {
		return ex
	}
	return nil
}

// servePorts serves a port-I/O exit made while completing an instruction,
// element by element, as the run loop serves the others.
func (p *Path) servePorts(a *kvm.IOAccess) error {
	size := int(a.Size)
	for off := 0; off+size <= len(a.Data); off += size {
		mapped, err := p.cfg.PIO.Serve(uint64(a.Port), a.Data[off:off+size], a.Out)
		if !mapped {
			p.stats.CountUnassigned(true, a.Out)
		}
		if err != nil {
			return fmt.Errorf("port %#x while completing the instruction at %s: %w", a.Port, p.csrip(), err)
		}
	}
	return nil
}

// readInParts reports the instructions whose memory operand KVM's emulator
// reads in several parts, each with an exit of its own: a pseudo-
// descriptor's limit and then its base (LGDT, LIDT), the slots of POPA,
// far RET and IRET, a far pointer's offset and selector (LDS ... LSS, far
// JMP and CALL), BOUND's two bounds. Any exit inside such an access is one
// of its parts.
func readInParts(inst *decode.Inst) bool {
	switch inst.Op {
	case decode.LGDT, decode.LIDT, decode.BOUND, decode.IRET, decode.RETF, decode.JMPF, decode.CALLF,
		decode.LDS, decode.LES, decode.LFS, decode.LGS, decode.LSS:
		return true
	}
	return emulate.FactsOf(inst.Op).Stack == emulate.StackPopAll
}

// insideAccess reports whether [gpa, gpa+n) lies inside one piece of a.
func insideAccess(a *emulate.MemRef, gpa uint64, n int) bool {
	for i := range int(a.N) {
		pc := &a.Pieces[i]
		if gpa >= pc.GPA && gpa+uint64(n) <= pc.GPA+uint64(pc.Size) {
			return true
		}
	}
	return false
}
