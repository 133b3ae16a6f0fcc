package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/emulate/internal/hostfpu"
	"walkvm/x86"
)

// Emulator fetches, decodes, resolves and executes guest instructions for
// one vCPU. It keeps the decoded instruction and scratch buffers between
// calls so that the hot path allocates nothing; it is not safe for
// concurrent use. The zero value plus Mem is ready.
type Emulator struct {
	Mem Memory
	// MaxRep caps the iterations one Step runs of a REP string
	// instruction; 0 means DefaultMaxRep. When the cap stops a loop that is
	// not finished, RIP stays at the instruction with rCX, rSI and rDI
	// advanced, so the guest re-executes it and continues where it stopped
	// (as the CPU does when an interrupt arrives between iterations, SDM
	// Vol. 2B "REP").
	MaxRep uint64

	inst decode.Inst
	ibuf [decode.MaxLen]byte
	ilen uint8
	// decoded says inst is the decode of the bytes in last (inst.Len of
	// them) in inst.Mode: a fetch that reads the same bytes again reuses
	// it. Decoding is a function of the bytes and the mode alone, and
	// reads no byte past the instruction's end.
	decoded bool
	last    [decode.MaxLen]byte
	buf     [64]byte   // data of the access in flight
	buf2    [1024]byte // second operand, MOVS staging, state images (FNSAVE, FXSAVE, XSAVE)
	accs    MemRefs
	res     Result  // of the instruction in flight
	copy    copyMem // the memory of ExecuteOnCopy
	// fpuSave is the vector state before a vector instruction, put back
	// when it faults.
	fpuSave  FPUState
	fpuDirty bool
	fx       fxScratch // a host x87 run
	// keepVec says the failing instruction's vector state stands (a
	// SIMD exception sets MXCSR flags as it faults).
	keepVec bool
	// A host vector run: the executable page, its context, the code.
	jit     hostfpu.JIT
	vctx    hostfpu.VecContext
	vctx2   hostfpu.VecContext // a second run (underflow detection)
	vmem    [64]byte           // the operand as the first run got it
	vcode   [32]byte
	vfeat   hostfpu.Features
	vfeatOK bool
}

// DefaultMaxRep is MaxRep's default.
const DefaultMaxRep = 1024

// MemRefs lists the memory accesses of one instruction in the order it
// makes them: string instructions list one iteration (source, then
// destination), PUSH m the operand then the stack slot, POP m the stack slot
// then the operand.
type MemRefs struct {
	N int
	A [2]MemRef
}

// Inst returns the instruction decoded by the last Fetch or Step.
func (e *Emulator) Inst() *decode.Inst { return &e.inst }

// InstBytes returns the bytes of the last fetched instruction (valid until
// the next call).
func (e *Emulator) InstBytes() []byte { return e.ibuf[:e.ilen] }

// ea computes the effective address of a memory operand with the registers
// of s (SDM Vol. 1 §3.7.5), truncated to the address size. RIP-relative
// addressing adds the address of the next instruction.
func ea(s *State, inst *decode.Inst, m *decode.Mem) uint64 {
	var a uint64
	if m.Base != decode.RegNone {
		a += s.GPR[m.Base&15]
	}
	if m.Index != decode.RegNone {
		a += s.GPR[m.Index&15] * uint64(m.Scale)
	}
	a += uint64(m.Disp)
	if m.RIPRel {
		a += s.RIP + uint64(inst.Len)
	}
	if FactsOf(inst.Op).Flags&FXlat != 0 {
		a += s.GPR[x86.RAX] & 0xFF // rBX + ZeroExtend(AL) (SDM Vol. 2B XLAT)
	}
	return a & addrMask(m.AddrSize)
}

// segLinear applies segmentation to an access of size bytes at offset off
// through seg: protection checks and limits in protected mode (SDM Vol. 3A
// §5.3, §5.5; Vol. 1 §3.4.5), the canonical check in 64-bit mode (Vol. 1
// §3.3.7.1), and returns the linear address.
func segLinear(s *State, m x86.Mode, seg x86.SegReg, off, size uint64, write, read bool) (uint64, error) {
	if int(seg) >= x86.NumSeg {
		return 0, gp0(m, "bad segment register")
	}
	sd := &s.Seg[seg]
	if m == x86.ModeLong64 {
		var la uint64
		if seg == x86.FS || seg == x86.GS {
			la = sd.Base
		}
		la += off
		bits := s.LinearBits()
		last := la + size - 1
		if size == 0 {
			last = la
		}
		if !x86.IsCanonical(la, bits) || !x86.IsCanonical(last, bits) {
			return 0, segFault(m, seg, "non-canonical address")
		}
		return la, nil
	}
	if m.Protected() {
		if sd.Unusable || (!sd.Present && seg != x86.CS) {
			return 0, segFault(m, seg, "access through null or unusable "+seg.String())
		}
		if sd.S {
			code := sd.Type&8 != 0
			switch {
			case code && write:
				return 0, segFault(m, seg, "write to code segment "+seg.String())
			case code && read && sd.Type&2 == 0:
				return 0, segFault(m, seg, "read of execute-only segment "+seg.String())
			case !code && write && sd.Type&2 == 0:
				return 0, segFault(m, seg, "write to read-only segment "+seg.String())
			}
		}
	}
	// Limit check, real mode included: the hidden limit applies there too
	// (it is 0FFFFH unless the guest set up "unreal" mode).
	last := off + size - 1
	if size == 0 {
		last = off
	}
	limit := uint64(sd.Limit)
	if m.Protected() && sd.S && sd.Type&8 == 0 && sd.Type&4 != 0 {
		// Expand-down data segment: valid offsets are limit+1 up to FFFFH
		// or FFFFFFFFH by the B flag (SDM Vol. 3A §5.3).
		upper := uint64(0xFFFF)
		if sd.DB {
			upper = 0xFFFFFFFF
		}
		if off <= limit || last > upper || last < off {
			return 0, segFault(m, seg, "offset outside expand-down "+seg.String()+" limit")
		}
	} else if last > limit || last < off {
		return 0, segFault(m, seg, "offset beyond "+seg.String()+" limit")
	}
	return (sd.Base + off) & 0xFFFFFFFF, nil
}

// translate fills the pieces of acc (Linear and Size set) with the
// guest-physical addresses, one translation per 4-KByte page.
func (e *Emulator) translate(acc *MemRef, in Intent, long bool) error {
	first := pageSize - acc.Linear%pageSize
	if uint64(acc.Size) <= first {
		gpa, err := e.Mem.Translate(acc.Linear, in)
		if err != nil {
			return err
		}
		acc.N = 1
		acc.Pieces[0] = Piece{GPA: gpa, Size: acc.Size}
		acc.Pieces[1] = Piece{}
		return nil
	}
	gpa0, err := e.Mem.Translate(acc.Linear, in)
	if err != nil {
		return err
	}
	la1 := acc.Linear + first
	if !long {
		la1 &= 0xFFFFFFFF // linear addresses are 32 bits outside IA-32e mode
	}
	gpa1, err := e.Mem.Translate(la1, in)
	if err != nil {
		return err
	}
	acc.N = 2
	acc.Pieces[0] = Piece{GPA: gpa0, Size: uint16(first)}
	acc.Pieces[1] = Piece{GPA: gpa1, Size: acc.Size - uint16(first)}
	return nil
}

// access resolves an access of size bytes at offset off through seg.
func (e *Emulator) access(s *State, m x86.Mode, seg x86.SegReg, off uint64, size uint16, read, write, commit bool, acc *MemRef) error {
	return e.accessAligned(s, m, seg, off, size, 0, read, write, commit, acc)
}

// accessAligned is access for an operand that must be aligned on align
// bytes (MOVDQA and friends): #GP(0) otherwise, before any translation.
func (e *Emulator) accessAligned(s *State, m x86.Mode, seg x86.SegReg, off uint64, size, align uint16, read, write, commit bool, acc *MemRef) error {
	la, err := segLinear(s, m, seg, off, uint64(size), write, read)
	if err != nil {
		return err
	}
	acc.Seg, acc.Offset, acc.Linear, acc.Size, acc.Read, acc.Write, acc.N = seg, off, la, size, read, write, 0
	if align > 1 && la%uint64(align) != 0 {
		return gp0(m, "misaligned vector operand")
	}
	if err := alignCheck(s, m, la, size); err != nil {
		return err
	}
	in := Intent{Access: x86.AccessRead, Commit: commit}
	if write {
		in.Access = x86.AccessWrite
	}
	if seg == x86.SS {
		in.Access |= x86.AccessStack
	}
	return e.translate(acc, in, m == x86.ModeLong64)
}

// alignCheck raises #AC(0) for a misaligned access at CPL 3 with CR0.AM and
// RFLAGS.AC set (SDM Vol. 3A §6.15, interrupt 17). Only the natural
// alignment of 2-, 4- and 8-byte operands is checked.
func alignCheck(s *State, m x86.Mode, la uint64, size uint16) error {
	if s.CR0&x86.CR0AM == 0 || s.RFLAGS&x86.FlagAC == 0 || m == x86.ModeReal || s.CPL() != 3 {
		return nil
	}
	switch size {
	case 2, 4, 8:
		if la&uint64(size-1) != 0 {
			return &x86.Exception{Vector: x86.VectorAC, HasErrorCode: true, Addr: la, Reason: "misaligned access with alignment checking on"}
		}
	}
	return nil
}

// memAccess resolves memory operand arg of inst with the registers of s.
func (e *Emulator) memAccess(s *State, m x86.Mode, inst *decode.Inst, mem *decode.Mem, size uint16, read, write, commit bool, acc *MemRef) error {
	return e.access(s, m, mem.Seg, ea(s, inst, mem), size, read, write, commit, acc)
}

// Resolve reports the memory accesses inst would make with the registers of
// s, without performing them or changing s: it applies segmentation, limit,
// canonical and alignment checks and translates (without setting accessed
// or dirty flags). Faults are returned as the *x86.Exception the
// instruction would raise. An instruction without memory operands gives
// acc.N == 0.
//
// For a write exit, which KVM reports after the instruction completed, call
// it with a copy of s whose registers are as they were before the
// instruction (see Rewind).
func (e *Emulator) Resolve(s *State, inst *decode.Inst, acc *MemRefs) error {
	acc.N = 0
	m := s.Mode()
	if err := e.listAccesses(s, m, inst, acc, false); err != nil {
		return err
	}
	return nil
}

// ResolveRange reports the access of size bytes at seg:off that an
// instruction makes other than through an operand of its own size: KVM's
// emulator, for one, stores a batch of REP INS elements as one write
// (ownpath). It applies the same checks as Resolve and changes nothing.
func (e *Emulator) ResolveRange(s *State, seg x86.SegReg, off uint64, size uint16, write bool, acc *MemRef) error {
	return e.access(s, s.Mode(), seg, off, size, !write, write, false, acc)
}

// listAccesses resolves every access of inst in order. Implicit stack
// accesses follow the row's Stack: an access of several slots (PUSHA, POPA,
// ENTER, far calls and returns) is listed as one range.
func (e *Emulator) listAccesses(s *State, m x86.Mode, inst *decode.Inst, acc *MemRefs, commit bool) error {
	acc.N = 0
	if f := FactsOf(inst.Op); f.Stack != StackNone {
		return e.stackAccesses(s, m, inst, f, acc, commit)
	}
	// Source (read-only) operands first, then the destination: the order of
	// MOVS's read and write.
	var idx [2]int
	k := 0
	for i := range inst.Args {
		a := &inst.Args[i]
		if a.Kind == decode.ArgMem && a.Mem.Use != 0 && a.Mem.Size != 0 && k < len(idx) {
			idx[k] = i
			k++
		}
	}
	if k == 2 && inst.Args[idx[0]].Mem.Use.Writes() && !inst.Args[idx[1]].Mem.Use.Writes() {
		idx[0], idx[1] = idx[1], idx[0]
	}
	for _, i := range idx[:k] {
		a := &inst.Args[i]
		off := operandOffset(s, inst, a)
		if err := e.accessAligned(s, m, a.Mem.Seg, off, a.Mem.Size, operandAlign(inst, a), a.Mem.Use.Reads(), a.Mem.Use.Writes(), commit, &acc.A[acc.N]); err != nil {
			return err
		}
		acc.N++
	}
	return nil
}

// stackAccesses is listAccesses for an instruction with an implicit stack
// access (f.Stack): the stack slots it reads or writes and its memory
// operand, in the order it accesses them.
func (e *Emulator) stackAccesses(s *State, m x86.Mode, inst *decode.Inst, f *Facts, acc *MemRefs, commit bool) error {
	sa := s.stackAddrSize(m)
	rsp := s.GPR[x86.RSP]
	n := uint64(stackOpSize(m, inst))
	// stack lists one stack access of size bytes at rSP + off.
	stack := func(off uint64, size uint64, read bool) error {
		if err := e.access(s, m, x86.SS, (rsp+off)&addrMask(sa), uint16(size), read, !read, commit, &acc.A[acc.N]); err != nil {
			return err
		}
		acc.N++
		return nil
	}
	mi := inst.MemArg()
	switch f.Stack {
	case StackRet:
		return stack(0, n, true)
	case StackLeave:
		// LEAVE pops rBP from where rBP points (SDM Vol. 2A LEAVE:
		// rSP <- rBP, then POP).
		rsp = s.GPR[x86.RBP]
		return stack(0, n, true)
	case StackRetFar:
		// A far return pops the offset, then the selector, each of the
		// operand size (SDM Vol. 2B RET; KVM's em_ret_far reads both).
		// Its operand size is 32 bits by default in 64-bit mode too.
		n = uint64(inst.OpSize)
		if err := stack(0, n, true); err != nil {
			return err
		}
		return stack(n, n, true)
	case StackPushAll:
		return stack(-(8 * n), 8*n, false)
	case StackPopAll:
		return stack(0, 8*n, true)
	case StackEnter:
		// ENTER pushes rBP, copies level-1 frame pointers from below
		// rBP, and pushes the new frame pointer (SDM Vol. 2A ENTER).
		level := enterLevel(inst)
		slots := uint64(1)
		if level > 0 {
			slots = level + 1
		}
		if err := stack(-slots*n, slots*n, false); err != nil {
			return err
		}
		if level > 1 {
			rsp = s.GPR[x86.RBP]
			return stack(-(level-1)*n, (level-1)*n, true)
		}
		return nil
	case StackPushFar:
		if mi >= 0 {
			a := &inst.Args[mi]
			if err := e.memAccess(s, m, inst, &a.Mem, a.Mem.Size, true, false, commit, &acc.A[0]); err != nil {
				return err
			}
			acc.N = 1
		}
		n = uint64(inst.OpSize)
		return stack(-(2 * n), 2*n, false)
	case StackPush, StackPop:
		if mi < 0 {
			return e.stackOnly(s, m, inst, acc, commit)
		}
		mem := &inst.Args[mi].Mem
		if f.Stack == StackPush { // PUSH m, CALL m: read the operand, then push
			if err := e.memAccess(s, m, inst, mem, uint16(n), true, false, commit, &acc.A[0]); err != nil {
				return err
			}
			acc.N = 1
			return stack(-n, n, false)
		}
		if err := stack(0, n, true); err != nil {
			return err
		}
		// The destination is computed with rSP already incremented (SDM
		// Vol. 2B POP: "If the destination operand uses ESP as the base
		// register, the address is computed after the POP").
		saved := s.GPR[x86.RSP]
		s.regWriteAddr(x86.RSP, sa, saved+n)
		err := e.memAccess(s, m, inst, mem, uint16(n), false, true, commit, &acc.A[1])
		s.GPR[x86.RSP] = saved
		if err != nil {
			return err
		}
		acc.N = 2
		return nil
	}
	return nil
}

// AddressFlags are the RFLAGS bits that Resolve and Rewind read: DF (the
// direction of string instructions), AC (alignment checks) and VM (the
// mode). See AddressRegs.
const AddressFlags = x86.FlagDF | x86.FlagAC | x86.FlagVM

// AddressRegs is the set of general registers (bit r for register r)
// whose values place inst's memory accesses as Resolve computes them, with
// or without Rewind first: base and index registers, AL for XLAT, the bit
// offset of BT* with a register source, rSP and rBP for stack accesses
// (Rewind moves only registers among these, and rCX, which places
// nothing). Besides them, Resolve and Rewind read only RIP, the RFLAGS
// bits in AddressFlags and the special registers, so two states that agree
// on all of those and on the registers in AddressRegs give inst the same
// accesses. ok is false where something other than a general register
// places an access: the vector index of a VSIB gather.
func AddressRegs(inst *decode.Inst) (regs uint16, ok bool) {
	for i := range inst.Args {
		a := &inst.Args[i]
		if a.Kind != decode.ArgMem {
			continue
		}
		if a.Mem.VSIB {
			return 0, false
		}
		if a.Mem.Base != decode.RegNone {
			regs |= 1 << (a.Mem.Base & 15)
		}
		if a.Mem.Index != decode.RegNone {
			regs |= 1 << (a.Mem.Index & 15)
		}
	}
	f := FactsOf(inst.Op)
	if f.Flags&FXlat != 0 {
		regs |= 1 << x86.RAX
	}
	if f.Flags&FBitString != 0 && inst.Args[1].Kind == decode.ArgReg {
		regs |= 1 << (inst.Args[1].Reg & 15)
	}
	switch f.Stack {
	case StackNone:
	case StackLeave, StackEnter:
		regs |= 1<<x86.RSP | 1<<x86.RBP
	default:
		regs |= 1 << x86.RSP
	}
	return regs, true
}

// operandOffset is the offset of memory operand a: its effective address,
// moved for BT/BTS/BTR/BTC with a register bit offset, which addresses a bit
// string beyond the operand (SDM Vol. 2A BT: the word at EA + size *
// (BitOffset DIV bits), BitOffset signed).
func operandOffset(s *State, inst *decode.Inst, a *decode.Arg) uint64 {
	off := ea(s, inst, &a.Mem)
	if d, ok := bitStringDisp(s, inst); ok {
		off = (off + uint64(d)) & addrMask(a.Mem.AddrSize)
	}
	return off
}

// bitStringDisp is the byte displacement of the word a BT* with a register
// bit offset and a memory operand accesses.
func bitStringDisp(s *State, inst *decode.Inst) (int64, bool) {
	if FactsOf(inst.Op).Flags&FBitString == 0 {
		return 0, false
	}
	src := &inst.Args[1]
	if inst.Args[0].Kind != decode.ArgMem || src.Kind != decode.ArgReg {
		return 0, false
	}
	n := inst.OpSize
	var bit int64
	switch n {
	case 2:
		bit = int64(int16(s.GPR[src.Reg&15]))
	case 4:
		bit = int64(int32(s.GPR[src.Reg&15]))
	default:
		bit = int64(s.GPR[src.Reg&15])
	}
	return (bit >> (3 + log2(n))) * int64(n), true
}

func log2(n uint8) uint {
	switch n {
	case 2:
		return 1
	case 4:
		return 2
	case 8:
		return 3
	case 16:
		return 4
	case 32:
		return 5
	}
	return 0
}

// stackOnly lists the stack access of PUSH/POP without a memory operand.
func (e *Emulator) stackOnly(s *State, m x86.Mode, inst *decode.Inst, acc *MemRefs, commit bool) error {
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	rsp := s.GPR[x86.RSP]
	// A segment register moves 16 bits through a 32-bit stack slot: PUSH
	// writes the selector's two bytes at the bottom of the slot and POP
	// reads two (the SDM leaves the upper half unspecified; KVM's
	// em_push_sreg and em_pop_sreg move two bytes, and so does walkvm).
	size := uint16(n)
	if inst.Args[0].Kind == decode.ArgSeg && n == 4 {
		size = 2
	}
	if FactsOf(inst.Op).Stack == StackPush {
		if err := e.access(s, m, x86.SS, (rsp-uint64(n))&addrMask(sa), size, false, true, commit, &acc.A[0]); err != nil {
			return err
		}
	} else if err := e.access(s, m, x86.SS, rsp&addrMask(sa), size, true, false, commit, &acc.A[0]); err != nil {
		return err
	}
	acc.N = 1
	return nil
}

// operandAlign is the alignment memory operand a of inst needs, from the
// row's Align, which is about the first memory operand.
func operandAlign(inst *decode.Inst, a *decode.Arg) uint16 {
	if mi := inst.MemArg(); mi < 0 || a != &inst.Args[mi] {
		return 0
	}
	al := FactsOf(inst.Op).Align
	if al == AlignOperand {
		return a.Mem.Size
	}
	return al
}

// enterLevel is ENTER's nesting level, its second immediate modulo 32.
func enterLevel(inst *decode.Inst) uint64 { return uint64(inst.Args[1].Imm) & 0x1F }

// stackOpSize is the size of a stack slot: in 64-bit mode 8, or 2 when the
// decoder gave a 16-bit operand size (66 without REX.W; near branches
// ignore 66 there); else the operand size (SDM Vol. 2B PUSH).
func stackOpSize(m x86.Mode, inst *decode.Inst) uint8 {
	if m == x86.ModeLong64 {
		if inst.OpSize == 2 {
			return 2
		}
		return 8
	}
	if inst.OpSize == 2 || inst.OpSize == 4 {
		return inst.OpSize
	}
	return 4
}
