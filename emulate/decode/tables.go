package decode

import "sync"

// Opcode tables for the legacy (non-VEX) maps, after SDM Vol. 2D App. A
// (Tables ..A-22 for x87). They are built once
// by the functions below and never written afterwards.

func buildTables() {
	tablesOnce.Do(func() {
		oneByte, twoByte, three38, three3A = mkOneByte(), mk0F(), mk0F38(), mk0F3A()
		vex0F, vex0F38, vex0F3A = mkVEX0F(), mkVEX0F38(), mkVEX0F3A()
	})
}

var (
	oneByte, twoByte, three38, three3A [256]entry
	tablesOnce                         sync.Once
	jccOps                             = [16]Op{JO, JNO, JB, JAE, JE, JNE, JBE, JA, JS, JNS, JP, JNP, JL, JGE, JLE, JG}
	setccOps                           = [16]Op{SETO, SETNO, SETB, SETAE, SETE, SETNE, SETBE, SETA, SETS, SETNS, SETP, SETNP, SETL, SETGE, SETLE, SETG}
	cmovOps                            = [16]Op{CMOVO, CMOVNO, CMOVB, CMOVAE, CMOVE, CMOVNE, CMOVBE, CMOVA, CMOVS, CMOVNS, CMOVP, CMOVNP, CMOVL, CMOVGE, CMOVLE, CMOVG}
)

func mkOneByte() (t [256]entry) {
	// 00-3F: the eight ALU operations in six forms each (Table A-2 rows 0-3).
	alu := [8]Op{ADD, OR, ADC, SBB, AND, SUB, XOR, CMP}
	for i, op := range alu {
		b := i * 8
		var wr uint32 = fLock
		if op == CMP {
			wr = fMR
		}
		t[b+0] = lo(op, z1, wr, oEb, oGb)
		t[b+1] = l(op, wr, oEv, oGv)
		t[b+2] = lo(op, z1, 0, oGb, oEb)
		t[b+3] = l(op, 0, oGv, oEv)
		t[b+4] = lo(op, z1, 0, oAL, oIb)
		t[b+5] = l(op, 0, oRAX, oIz)
	}
	t[0x06] = l(PUSH, fI64, oES)
	t[0x07] = l(POP, fI64, oES)
	t[0x0E] = l(PUSH, fI64, oCS)
	t[0x16] = l(PUSH, fI64, oSS)
	t[0x17] = l(POP, fI64, oSS)
	t[0x1E] = l(PUSH, fI64, oDS)
	t[0x1F] = l(POP, fI64, oDS)
	t[0x27] = lo(DAA, z1, fI64)
	t[0x2F] = lo(DAS, z1, fI64)
	t[0x37] = lo(AAA, z1, fI64)
	t[0x3F] = lo(AAS, z1, fI64)
	for r := 0; r < 8; r++ {
		t[0x40+r] = l(INC, fI64, oZv) // REX in 64-bit mode
		t[0x48+r] = l(DEC, fI64, oZv)
		t[0x50+r] = l(PUSH, fD64, oZv)
		t[0x58+r] = l(POP, fD64, oZv)
		t[0x90+r] = l(XCHG, 0, oZv, oRAX) // 90 without REX.B is NOP/PAUSE, fixed up in decode
		t[0xB0+r] = lo(MOV, z1, 0, oZb, oIb)
		t[0xB8+r] = l(MOV, 0, oZv, oIv)
	}
	t[0x60] = l(PUSHA, fI64)
	t[0x61] = l(POPA, fI64)
	t[0x62] = l(BOUND, fI64|fMR, oGv, oMa) // EVEX when mod=11 or in 64-bit mode: decode
	t[0x63] = m64(lo(ARPL, z2, 0, oEw, oGw), l(MOVSXD, 0, oGv, oEz))
	t[0x68] = l(PUSH, fD64, oIz)
	t[0x69] = l(IMUL, 0, oGv, oEv, oIz)
	t[0x6A] = l(PUSH, fD64, oIb)
	t[0x6B] = l(IMUL, 0, oGv, oEv, oIb)
	t[0x6C] = lo(INS, z1, fMW, oYb, oDX)
	t[0x6D] = lo(INS, zZ, fMW, oYz, oDX)
	t[0x6E] = lo(OUTS, z1, 0, oDX, oXb)
	t[0x6F] = lo(OUTS, zZ, 0, oDX, oXz)
	for c := 0; c < 16; c++ {
		t[0x70+c] = l(jccOps[c], fF64, oJb)
	}
	grp1 := func(f uint32, osize uint8, a, b spec) entry {
		var s [8]entry
		for i, op := range alu {
			fl := f | fLock
			if op == CMP {
				fl = f | fMR
			}
			s[i] = lo(op, osize, fl, a, b)
		}
		return grp(s[:]...)
	}
	t[0x80] = grp1(0, z1, oEb, oIb)
	t[0x81] = grp1(0, zV, oEv, oIz)
	t[0x82] = grp1(fI64, z1, oEb, oIb)
	t[0x83] = grp1(0, zV, oEv, oIb)
	t[0x84] = lo(TEST, z1, fMR, oEb, oGb)
	t[0x85] = l(TEST, fMR, oEv, oGv)
	t[0x86] = lo(XCHG, z1, fLock, oEb, oGb)
	t[0x87] = l(XCHG, fLock, oEv, oGv)
	t[0x88] = lo(MOV, z1, fMW, oEb, oGb)
	t[0x89] = l(MOV, fMW, oEv, oGv)
	t[0x8A] = lo(MOV, z1, 0, oGb, oEb)
	t[0x8B] = l(MOV, 0, oGv, oEv)
	// MOV r/m16, Sreg stores 16 bits to memory; a register destination
	// takes the operand size (SDM MOV, "Operation").
	t[0x8C] = mr(lo(MOV, z2, fMW, oMw, oSw), l(MOV, 0, oRv, oSw))
	t[0x8D] = l(LEA, fMN, oGv, oM0)
	t[0x8E] = lo(MOV, z2, 0, oSw, oEw)
	t[0x8F] = grp(l(POP, fD64|fMW, oEv)) // /1-/7: XOP on AMD, #UD here
	t[0x98] = l(CBW, 0)
	t[0x99] = l(CWD, 0)
	t[0x9A] = l(CALLF, fI64, oAp)
	t[0x9B] = l(WAIT, 0)
	t[0x9C] = l(PUSHF, fD64)
	t[0x9D] = l(POPF, fD64)
	t[0x9E] = l(SAHF, 0)
	t[0x9F] = l(LAHF, 0)
	t[0xA0] = lo(MOV, z1, 0, oAL, oOb)
	t[0xA1] = l(MOV, 0, oRAX, oOv)
	t[0xA2] = lo(MOV, z1, fMW, oOb, oAL)
	t[0xA3] = l(MOV, fMW, oOv, oRAX)
	t[0xA4] = lo(MOVS, z1, fMW, oYb, oXb)
	t[0xA5] = l(MOVS, fMW, oYv, oXv)
	t[0xA6] = lo(CMPS, z1, fMR, oXb, oYb)
	t[0xA7] = l(CMPS, fMR, oXv, oYv)
	t[0xA8] = lo(TEST, z1, 0, oAL, oIb)
	t[0xA9] = l(TEST, 0, oRAX, oIz)
	t[0xAA] = lo(STOS, z1, fMW, oYb, oAL)
	t[0xAB] = l(STOS, fMW, oYv, oRAX)
	t[0xAC] = lo(LODS, z1, 0, oAL, oXb)
	t[0xAD] = l(LODS, 0, oRAX, oXv)
	t[0xAE] = lo(SCAS, z1, 0, oAL, oYb)
	t[0xAF] = l(SCAS, 0, oRAX, oYv)
	grp2 := func(osize uint8, a, b spec) entry {
		// /6 is blank in SDM Table A-6, but Intel and AMD CPUs execute it
		// as SAL (= SHL), and so does KVM's emulator (group2's em_shl):
		// decoding it as #UD would inject a fault the CPU never raises.
		ops := [8]Op{ROL, ROR, RCL, RCR, SHL, SHR, SHL, SAR}
		var s [8]entry
		for i, op := range ops {
			if op != Invalid {
				s[i] = lo(op, osize, 0, a, b)
			}
		}
		return grp(s[:]...)
	}
	t[0xC0] = grp2(z1, oEb, oIb)
	t[0xC1] = grp2(zV, oEv, oIb)
	t[0xC2] = l(RET, fF64, oIw)
	t[0xC3] = l(RET, fF64)
	t[0xC4] = l(LES, fI64|fMR, oGz, oMp) // VEX when mod=11 or in 64-bit mode: decode
	t[0xC5] = l(LDS, fI64|fMR, oGz, oMp)
	t[0xC6] = grp(lo(MOV, z1, fMW, oEb, oIb), ud, ud, ud, ud, ud, ud, mr(ud, rmg(l(XABORT, 0, oIb))))
	t[0xC7] = grp(l(MOV, fMW, oEv, oIz), ud, ud, ud, ud, ud, ud, mr(ud, rmg(l(XBEGIN, 0, oJz))))
	t[0xC8] = l(ENTER, fD64, oIw, oIb)
	t[0xC9] = l(LEAVE, fD64)
	t[0xCA] = l(RETF, 0, oIw)
	t[0xCB] = l(RETF, 0)
	t[0xCC] = l(INT3, 0)
	t[0xCD] = l(INT, 0, oIb)
	t[0xCE] = l(INTO, fI64)
	t[0xCF] = l(IRET, 0)
	t[0xD0] = grp2(z1, oEb, oI1)
	t[0xD1] = grp2(zV, oEv, oI1)
	t[0xD2] = grp2(z1, oEb, oCL)
	t[0xD3] = grp2(zV, oEv, oCL)
	t[0xD4] = lo(AAM, z1, fI64, oIb)
	t[0xD5] = lo(AAD, z1, fI64, oIb)
	t[0xD7] = lo(XLAT, z1, fMR, oXlat) // reads DS:[rBX + AL]
	t[0xD8] = x87D8()
	t[0xD9] = x87D9()
	t[0xDA] = x87DA()
	t[0xDB] = x87DB()
	t[0xDC] = x87DC()
	t[0xDD] = x87DD()
	t[0xDE] = x87DE()
	t[0xDF] = x87DF()
	t[0xE0] = l(LOOPNE, fF64, oJb)
	t[0xE1] = l(LOOPE, fF64, oJb)
	t[0xE2] = l(LOOP, fF64, oJb)
	t[0xE3] = l(JCXZ, fF64, oJb)
	t[0xE4] = lo(IN, z1, 0, oAL, oIb)
	t[0xE5] = lo(IN, zZ, 0, oEAX, oIb)
	t[0xE6] = lo(OUT, z1, 0, oIb, oAL)
	t[0xE7] = lo(OUT, zZ, 0, oIb, oEAX)
	t[0xE8] = l(CALL, fF64, oJz)
	t[0xE9] = l(JMP, fF64, oJz)
	t[0xEA] = l(JMPF, fI64, oAp)
	t[0xEB] = l(JMP, fF64, oJb)
	t[0xEC] = lo(IN, z1, 0, oAL, oDX)
	t[0xED] = lo(IN, zZ, 0, oEAX, oDX)
	t[0xEE] = lo(OUT, z1, 0, oDX, oAL)
	t[0xEF] = lo(OUT, zZ, 0, oDX, oEAX)
	t[0xF1] = l(INT1, 0)
	t[0xF4] = l(HLT, 0)
	t[0xF5] = l(CMC, 0)
	grp3 := func(osize uint8, e, imm spec) entry {
		return grp(
			lo(TEST, osize, fMR, e, imm),
			// /1 is blank in SDM Table A-6; CPUs and KVM's emulator
			// (group3) execute it as TEST.
			lo(TEST, osize, fMR, e, imm),
			lo(NOT, osize, fLock, e),
			lo(NEG, osize, fLock, e),
			lo(MUL, osize, fMR, e),
			lo(IMUL, osize, fMR, e),
			lo(DIV, osize, fMR, e),
			lo(IDIV, osize, fMR, e))
	}
	t[0xF6] = grp3(z1, oEb, oIb)
	t[0xF7] = grp3(zV, oEv, oIz)
	t[0xF8] = l(CLC, 0)
	t[0xF9] = l(STC, 0)
	t[0xFA] = l(CLI, 0)
	t[0xFB] = l(STI, 0)
	t[0xFC] = l(CLD, 0)
	t[0xFD] = l(STD, 0)
	t[0xFE] = grp(lo(INC, z1, fLock, oEb), lo(DEC, z1, fLock, oEb))
	t[0xFF] = grp(
		l(INC, fLock, oEv),
		l(DEC, fLock, oEv),
		l(CALL, fF64|fMR, oEv),
		l(CALLF, fMR, oMp),
		l(JMP, fF64|fMR, oEv),
		l(JMPF, fMR, oMp),
		l(PUSH, fD64|fMR, oEv))
	return t
}

// x87 escapes (SDM Vol. 2D App. A.4). Memory forms select on ModRM.reg;
// register forms on ModRM.reg and, for some rows, ModRM.rm.

func x87Arith(osize uint8, m spec) entry {
	ops := [8]Op{FADD, FMUL, FCOM, FCOMP, FSUB, FSUBR, FDIV, FDIVR}
	var s [8]entry
	for i, op := range ops {
		s[i] = lo(op, osize, fMR, m)
	}
	return grp(s[:]...)
}

func x87IArith(osize uint8, m spec) entry {
	ops := [8]Op{FIADD, FIMUL, FICOM, FICOMP, FISUB, FISUBR, FIDIV, FIDIVR}
	var s [8]entry
	for i, op := range ops {
		s[i] = lo(op, osize, fMR, m)
	}
	return grp(s[:]...)
}

func fr(op Op, args ...spec) entry { return lo(op, z10, 0, args...) }

func x87D8() entry {
	return mr(x87Arith(z4, oMd), grp(
		fr(FADD, oST0, oSTi), fr(FMUL, oST0, oSTi), fr(FCOM, oSTi), fr(FCOMP, oSTi),
		fr(FSUB, oST0, oSTi), fr(FSUBR, oST0, oSTi), fr(FDIV, oST0, oSTi), fr(FDIVR, oST0, oSTi)))
}

func x87D9() entry {
	return mr(grp(
		lo(FLD, z4, fMR, oMd), ud, lo(FST, z4, fMW, oMd), lo(FSTP, z4, fMW, oMd),
		lo(FLDENV, zEnv, fMR, oMe), lo(FLDCW, z2, fMR, oMw), lo(FNSTENV, zEnv, fMW, oMe), lo(FNSTCW, z2, fMW, oMw)),
		grp(
			fr(FLD, oSTi), fr(FXCH, oSTi), rmg(fr(FNOP)), ud, // D9 D8+i: undocumented FSTP alias
			rmg(fr(FCHS), fr(FABS), ud, ud, fr(FTST), fr(FXAM)),
			rmg(fr(FLD1), fr(FLDL2T), fr(FLDL2E), fr(FLDPI), fr(FLDLG2), fr(FLDLN2), fr(FLDZ)),
			rmg(fr(F2XM1), fr(FYL2X), fr(FPTAN), fr(FPATAN), fr(FXTRACT), fr(FPREM1), fr(FDECSTP), fr(FINCSTP)),
			rmg(fr(FPREM), fr(FYL2XP1), fr(FSQRT), fr(FSINCOS), fr(FRNDINT), fr(FSCALE), fr(FSIN), fr(FCOS))))
}

func x87DA() entry {
	return mr(x87IArith(z4, oMd), grp(
		fr(FCMOVB, oST0, oSTi), fr(FCMOVE, oST0, oSTi), fr(FCMOVBE, oST0, oSTi), fr(FCMOVU, oST0, oSTi),
		ud, rmg(ud, fr(FUCOMPP))))
}

func x87DB() entry {
	return mr(grp(
		lo(FILD, z4, fMR, oMd), lo(FISTTP, z4, fMW, oMd), lo(FIST, z4, fMW, oMd), lo(FISTP, z4, fMW, oMd),
		ud, lo(FLD, z10, fMR, oMt), ud, lo(FSTP, z10, fMW, oMt)),
		grp(
			fr(FCMOVNB, oST0, oSTi), fr(FCMOVNE, oST0, oSTi), fr(FCMOVNBE, oST0, oSTi), fr(FCMOVNU, oST0, oSTi),
			// DB E0/E1/E4 (FENI, FDISI, FSETPM: 8087/287 leftovers) are
			// blank in SDM Table A-18.
			rmg(ud, ud, fr(FNCLEX), fr(FNINIT)),
			fr(FUCOMI, oST0, oSTi), fr(FCOMI, oST0, oSTi)))
}

func x87DC() entry {
	return mr(x87Arith(z8, oMq), grp(
		fr(FADD, oSTi, oST0), fr(FMUL, oSTi, oST0), ud, ud, // /2 /3: undocumented aliases
		fr(FSUBR, oSTi, oST0), fr(FSUB, oSTi, oST0), fr(FDIVR, oSTi, oST0), fr(FDIV, oSTi, oST0)))
}

func x87DD() entry {
	return mr(grp(
		lo(FLD, z8, fMR, oMq), lo(FISTTP, z8, fMW, oMq), lo(FST, z8, fMW, oMq), lo(FSTP, z8, fMW, oMq),
		lo(FRSTOR, zSave, fMR, oMst), ud, lo(FNSAVE, zSave, fMW, oMst), lo(FNSTSW, z2, fMW, oMw)),
		grp(
			fr(FFREE, oSTi), ud, fr(FST, oSTi), fr(FSTP, oSTi), // /1: undocumented FXCH alias
			fr(FUCOM, oSTi), fr(FUCOMP, oSTi)))
}

func x87DE() entry {
	return mr(x87IArith(z2, oMw), grp(
		fr(FADDP, oSTi, oST0), fr(FMULP, oSTi, oST0), ud, rmg(ud, fr(FCOMPP)), // /2: undocumented alias
		fr(FSUBRP, oSTi, oST0), fr(FSUBP, oSTi, oST0), fr(FDIVRP, oSTi, oST0), fr(FDIVP, oSTi, oST0)))
}

func x87DF() entry {
	return mr(grp(
		lo(FILD, z2, fMR, oMw), lo(FISTTP, z2, fMW, oMw), lo(FIST, z2, fMW, oMw), lo(FISTP, z2, fMW, oMw),
		lo(FBLD, z10, fMR, oMt), lo(FILD, z8, fMR, oMq), lo(FBSTP, z10, fMW, oMt), lo(FISTP, z8, fMW, oMq)),
		grp(
			ud, ud, ud, ud, // /0-/3: undocumented FFREEP/FXCH/FSTP aliases
			rmg(lo(FNSTSW, z2, 0, oAX)),
			fr(FUCOMIP, oST0, oSTi), fr(FCOMIP, oST0, oSTi)))
}

// mmxsse is an instruction with an MMX form (no prefix: Pq, Qq) and an SSE2
// form (66: Vx, Wx).
func mmxsse(op Op, extra ...spec) entry {
	return pfx(lo(op, z8, 0, append([]spec{oPq, oQq}, extra...)...),
		lo(op, zX, 0, append([]spec{oVx, oWx}, extra...)...), ud, ud)
}

// sse4 is a packed-single/packed-double/scalar-single/scalar-double row.
func sse4(ps, pd, ss, sd Op) entry {
	return pfx(lo(ps, zX, 0, oVx, oWx), lo(pd, zX, 0, oVx, oWx), lo(ss, z4, 0, oVx, oWd), lo(sd, z8, 0, oVx, oWq))
}

// sse2p is a packed-single/packed-double row without scalar forms.
func sse2p(ps, pd Op) entry {
	return pfx(lo(ps, zX, 0, oVx, oWx), lo(pd, zX, 0, oVx, oWx), ud, ud)
}

// only66 is an SSE instruction defined only with the 66 prefix.
func only66(op Op, osize uint8, flags uint32, args ...spec) entry {
	return pfx(ud, lo(op, osize, flags, args...), ud, ud)
}

// shiftImm builds the 0F 71-73 register-only shift-by-immediate groups.
func shiftImm(ops [8]Op, sseOnly [8]bool) entry {
	var s [8]entry
	for i, op := range ops {
		if op == Invalid {
			continue
		}
		mmx := lo(op, z8, 0, oNq, oIb)
		if sseOnly[i] {
			mmx = ud
		}
		s[i] = mr(ud, pfx(mmx, lo(op, z16, 0, oUdq, oIb), ud, ud))
	}
	return grp(s[:]...)
}

func mk0F() (t [256]entry) {
	t[0x00] = grp(
		mr(lo(SLDT, z2, fMW, oMw), l(SLDT, 0, oRv)),
		mr(lo(STR, z2, fMW, oMw), l(STR, 0, oRv)),
		lo(LLDT, z2, fMR, oEw), lo(LTR, z2, fMR, oEw),
		lo(VERR, z2, fMR, oEw), lo(VERW, z2, fMR, oEw))
	t[0x01] = grp(
		mr(lo(SGDT, zS, fMW, oMs), rmg(ud, l(VMCALL, 0), l(VMLAUNCH, 0), l(VMRESUME, 0), l(VMXOFF, 0))),
		mr(lo(SIDT, zS, fMW, oMs), rmg(l(MONITOR, 0), l(MWAIT, 0), l(CLAC, 0), l(STAC, 0), ud, ud, ud, l(ENCLS, 0))),
		mr(lo(LGDT, zS, fMR, oMs), rmg(l(XGETBV, 0), l(XSETBV, 0), ud, ud, l(VMFUNC, 0), l(XEND, 0), l(XTEST, 0), l(ENCLU, 0))),
		mr(lo(LIDT, zS, fMR, oMs), ud), // reg forms: AMD SVM
		mr(lo(SMSW, z2, fMW, oMw), l(SMSW, 0, oRv)),
		ud,
		lo(LMSW, z2, fMR, oEw),
		mr(lo(INVLPG, z1, fMN, oMb), rmg(m64(ud, l(SWAPGS, 0)), l(RDTSCP, 0))))
	t[0x02] = l(LAR, fMR, oGv, oEw)
	t[0x03] = l(LSL, fMR, oGv, oEw)
	t[0x05] = l(SYSCALL, fO64) // #UD outside 64-bit mode (Intel)
	t[0x06] = l(CLTS, 0)
	t[0x07] = l(SYSRET, fO64)
	t[0x08] = l(INVD, 0)
	t[0x09] = l(WBINVD, 0)
	t[0x0B] = l(UD2, 0)
	// 0F 0D is "NOP Ev" in SDM Table A-3; /1 is PREFETCHW.
	t[0x0D] = mr(grp(l(NOP, fMN, oEv), lo(PREFETCHW, z1, fMN, oMb), l(NOP, fMN, oEv), l(NOP, fMN, oEv),
		l(NOP, fMN, oEv), l(NOP, fMN, oEv), l(NOP, fMN, oEv), l(NOP, fMN, oEv)), l(NOP, fMN, oEv))
	t[0x10] = pfx(lo(MOVUPS, zX, 0, oVx, oWx), lo(MOVUPD, zX, 0, oVx, oWx), lo(MOVSS, z4, 0, oVx, oWd), lo(MOVSD, z8, 0, oVx, oWq))
	t[0x11] = pfx(lo(MOVUPS, zX, fMW, oWx, oVx), lo(MOVUPD, zX, fMW, oWx, oVx), lo(MOVSS, z4, fMW, oWd, oVx), lo(MOVSD, z8, fMW, oWq, oVx))
	t[0x12] = pfx(mr(lo(MOVLPS, z8, 0, oVx, oMq), lo(MOVHLPS, z8, 0, oVx, oUx)), mr(lo(MOVLPD, z8, 0, oVx, oMq), ud),
		lo(MOVSLDUP, zX, 0, oVx, oWx), lo(MOVDDUP, z8, 0, oVx, oWq))
	t[0x13] = pfx(mr(lo(MOVLPS, z8, fMW, oMq, oVx), ud), mr(lo(MOVLPD, z8, fMW, oMq, oVx), ud), ud, ud)
	t[0x14] = sse2p(UNPCKLPS, UNPCKLPD)
	t[0x15] = sse2p(UNPCKHPS, UNPCKHPD)
	t[0x16] = pfx(mr(lo(MOVHPS, z8, 0, oVx, oMq), lo(MOVLHPS, z8, 0, oVx, oUx)), mr(lo(MOVHPD, z8, 0, oVx, oMq), ud),
		lo(MOVSHDUP, zX, 0, oVx, oWx), ud)
	t[0x17] = pfx(mr(lo(MOVHPS, z8, fMW, oMq, oVx), ud), mr(lo(MOVHPD, z8, fMW, oMq, oVx), ud), ud, ud)
	hint := l(NOP, fMN, oEv)
	t[0x18] = mr(grp(lo(PREFETCHNTA, z1, fMN, oMb), lo(PREFETCHT0, z1, fMN, oMb), lo(PREFETCHT1, z1, fMN, oMb), lo(PREFETCHT2, z1, fMN, oMb),
		hint, hint, hint, hint), hint)
	for op := 0x19; op <= 0x1F; op++ {
		t[op] = hint // reserved-NOP hint space (SDM NOP: 0F 1F /0; 0F 19-1E reserved NOPs)
	}
	t[0x1E] = pfx(hint, hint, mr(hint, grp(hint, l(RDSSP, 0, oRy), hint, hint, hint, hint, hint,
		rmg(hint, hint, l(ENDBR64, 0), l(ENDBR32, 0), hint, hint, hint, hint))), hint)
	t[0x20] = lo(MOV, zMd, 0, oRCy, oCy)
	t[0x21] = lo(MOV, zMd, 0, oRCy, oDy)
	t[0x22] = lo(MOV, zMd, 0, oCy, oRCy)
	t[0x23] = lo(MOV, zMd, 0, oDy, oRCy)
	t[0x28] = pfx(lo(MOVAPS, zX, 0, oVx, oWx), lo(MOVAPD, zX, 0, oVx, oWx), ud, ud)
	t[0x29] = pfx(lo(MOVAPS, zX, fMW, oWx, oVx), lo(MOVAPD, zX, fMW, oWx, oVx), ud, ud)
	t[0x2A] = pfx(lo(CVTPI2PS, z16, 0, oVx, oQq), lo(CVTPI2PD, z16, 0, oVx, oQq), lo(CVTSI2SS, z4, 0, oVx, oEy), lo(CVTSI2SD, z8, 0, oVx, oEy))
	t[0x2B] = pfx(mr(lo(MOVNTPS, zX, fMW, oMx, oVx), ud), mr(lo(MOVNTPD, zX, fMW, oMx, oVx), ud), ud, ud)
	t[0x2C] = pfx(lo(CVTTPS2PI, z8, 0, oPq, oWq), lo(CVTTPD2PI, z16, 0, oPq, oWdq), lo(CVTTSS2SI, z4, 0, oGy, oWd), lo(CVTTSD2SI, z8, 0, oGy, oWq))
	t[0x2D] = pfx(lo(CVTPS2PI, z8, 0, oPq, oWq), lo(CVTPD2PI, z16, 0, oPq, oWdq), lo(CVTSS2SI, z4, 0, oGy, oWd), lo(CVTSD2SI, z8, 0, oGy, oWq))
	t[0x2E] = pfx(lo(UCOMISS, z4, 0, oVx, oWd), lo(UCOMISD, z8, 0, oVx, oWq), ud, ud)
	t[0x2F] = pfx(lo(COMISS, z4, 0, oVx, oWd), lo(COMISD, z8, 0, oVx, oWq), ud, ud)
	t[0x30] = l(WRMSR, 0)
	t[0x31] = l(RDTSC, 0)
	t[0x32] = l(RDMSR, 0)
	t[0x33] = l(RDPMC, 0)
	t[0x34] = l(SYSENTER, 0)
	t[0x35] = l(SYSEXIT, 0)
	for c := 0; c < 16; c++ {
		t[0x40+c] = l(cmovOps[c], 0, oGv, oEv)
		t[0x80+c] = l(jccOps[c], fF64, oJz)
		t[0x90+c] = lo(setccOps[c], z1, fMW, oEb)
	}
	t[0x50] = pfx(mr(ud, lo(MOVMSKPS, z4, 0, oGy, oUx)), mr(ud, lo(MOVMSKPD, z4, 0, oGy, oUx)), ud, ud)
	t[0x51] = sse4(SQRTPS, SQRTPD, SQRTSS, SQRTSD)
	t[0x52] = pfx(lo(RSQRTPS, zX, 0, oVx, oWx), ud, lo(RSQRTSS, z4, 0, oVx, oWd), ud)
	t[0x53] = pfx(lo(RCPPS, zX, 0, oVx, oWx), ud, lo(RCPSS, z4, 0, oVx, oWd), ud)
	t[0x54] = sse2p(ANDPS, ANDPD)
	t[0x55] = sse2p(ANDNPS, ANDNPD)
	t[0x56] = sse2p(ORPS, ORPD)
	t[0x57] = sse2p(XORPS, XORPD)
	t[0x58] = sse4(ADDPS, ADDPD, ADDSS, ADDSD)
	t[0x59] = sse4(MULPS, MULPD, MULSS, MULSD)
	t[0x5A] = pfx(lo(CVTPS2PD, z8, 0, oVx, oWq), lo(CVTPD2PS, z16, 0, oVx, oWdq), lo(CVTSS2SD, z4, 0, oVx, oWd), lo(CVTSD2SS, z8, 0, oVx, oWq))
	t[0x5B] = pfx(lo(CVTDQ2PS, z16, 0, oVx, oWx), lo(CVTPS2DQ, z16, 0, oVx, oWx), lo(CVTTPS2DQ, z16, 0, oVx, oWx), ud)
	t[0x5C] = sse4(SUBPS, SUBPD, SUBSS, SUBSD)
	t[0x5D] = sse4(MINPS, MINPD, MINSS, MINSD)
	t[0x5E] = sse4(DIVPS, DIVPD, DIVSS, DIVSD)
	t[0x5F] = sse4(MAXPS, MAXPD, MAXSS, MAXSD)
	// 60-62: the MMX forms read only 32 bits of memory.
	for i, op := range [3]Op{PUNPCKLBW, PUNPCKLWD, PUNPCKLDQ} {
		t[0x60+i] = pfx(lo(op, z8, 0, oPq, oQd), lo(op, zX, 0, oVx, oWx), ud, ud)
	}
	for i, op := range [9]Op{PACKSSWB, PCMPGTB, PCMPGTW, PCMPGTD, PACKUSWB, PUNPCKHBW, PUNPCKHWD, PUNPCKHDQ, PACKSSDW} {
		t[0x63+i] = mmxsse(op)
	}
	t[0x6C] = only66(PUNPCKLQDQ, zX, 0, oVx, oWx)
	t[0x6D] = only66(PUNPCKHQDQ, zX, 0, oVx, oWx)
	t[0x6E] = pfx(lo(MOVD, zY, 0, oPq, oEy).w(MOVQ), lo(MOVD, zY, 0, oVx, oEy).w(MOVQ), ud, ud)
	t[0x6F] = pfx(lo(MOVQ, z8, 0, oPq, oQq), lo(MOVDQA, zX, 0, oVx, oWx), lo(MOVDQU, zX, 0, oVx, oWx), ud)
	t[0x70] = pfx(lo(PSHUFW, z8, 0, oPq, oQq, oIb), lo(PSHUFD, zX, 0, oVx, oWx, oIb),
		lo(PSHUFHW, zX, 0, oVx, oWx, oIb), lo(PSHUFLW, zX, 0, oVx, oWx, oIb))
	t[0x71] = shiftImm([8]Op{2: PSRLW, 4: PSRAW, 6: PSLLW}, [8]bool{})
	t[0x72] = shiftImm([8]Op{2: PSRLD, 4: PSRAD, 6: PSLLD}, [8]bool{})
	t[0x73] = shiftImm([8]Op{2: PSRLQ, 3: PSRLDQ, 6: PSLLQ, 7: PSLLDQ}, [8]bool{3: true, 7: true})
	t[0x74] = mmxsse(PCMPEQB)
	t[0x75] = mmxsse(PCMPEQW)
	t[0x76] = mmxsse(PCMPEQD)
	t[0x77] = l(EMMS, 0)
	t[0x78] = pfx(lo(VMREAD, zMd, fMW, oEMd, oGMd), ud, ud, ud)
	t[0x79] = pfx(lo(VMWRITE, zMd, 0, oGMd, oEMd), ud, ud, ud)
	t[0x7C] = pfx(ud, lo(HADDPD, zX, 0, oVx, oWx), ud, lo(HADDPS, zX, 0, oVx, oWx))
	t[0x7D] = pfx(ud, lo(HSUBPD, zX, 0, oVx, oWx), ud, lo(HSUBPS, zX, 0, oVx, oWx))
	t[0x7E] = pfx(lo(MOVD, zY, fMW, oEy, oPq).w(MOVQ), lo(MOVD, zY, fMW, oEy, oVx).w(MOVQ), lo(MOVQ, z8, 0, oVx, oWq), ud)
	t[0x7F] = pfx(lo(MOVQ, z8, fMW, oQq, oPq), lo(MOVDQA, zX, fMW, oWx, oVx), lo(MOVDQU, zX, fMW, oWx, oVx), ud)
	t[0xA0] = l(PUSH, fD64, oFS)
	t[0xA1] = l(POP, fD64, oFS)
	t[0xA2] = l(CPUID, 0)
	t[0xA3] = l(BT, fMR, oEv, oGv)
	t[0xA4] = l(SHLD, 0, oEv, oGv, oIb)
	t[0xA5] = l(SHLD, 0, oEv, oGv, oCL)
	t[0xA8] = l(PUSH, fD64, oGS)
	t[0xA9] = l(POP, fD64, oGS)
	t[0xAA] = l(RSM, 0)
	t[0xAB] = l(BTS, fLock, oEv, oGv)
	t[0xAC] = l(SHRD, 0, oEv, oGv, oIb)
	t[0xAD] = l(SHRD, 0, oEv, oGv, oCL)
	t[0xAE] = grp(
		mr(pfx(lo(FXSAVE, z512, fMW, oMfx), ud, ud, ud), pfx(ud, ud, lo(RDFSBASE, zY, fO64, oRy), ud)),
		mr(pfx(lo(FXRSTOR, z512, fMR, oMfx), ud, ud, ud), pfx(ud, ud, lo(RDGSBASE, zY, fO64, oRy), ud)),
		mr(pfx(lo(LDMXCSR, z4, fMR, oMd), ud, ud, ud), pfx(ud, ud, lo(WRFSBASE, zY, fO64, oRy), ud)),
		mr(pfx(lo(STMXCSR, z4, fMW, oMd), ud, ud, ud), pfx(ud, ud, lo(WRGSBASE, zY, fO64, oRy), ud)),
		mr(pfx(lo(XSAVE, zVar, fMW, oMvr), ud, lo(PTWRITE, zY, fMR, oEy), ud), pfx(ud, ud, lo(PTWRITE, zY, 0, oEy), ud)),
		mr(pfx(lo(XRSTOR, zVar, fMR, oMvr), ud, ud, ud), pfx(rmg(l(LFENCE, 0)), ud, lo(INCSSP, zY, 0, oRy), ud)),
		mr(pfx(lo(XSAVEOPT, zVar, fMW, oMvr), lo(CLWB, z1, fMN, oMb), lo(CLRSSBSY, z8, 0, oMq), ud),
			pfx(rmg(l(MFENCE, 0)), lo(TPAUSE, z4, 0, oRd), lo(UMONITOR, zAddr, 0, oRa), lo(UMWAIT, z4, 0, oRd))),
		mr(pfx(lo(CLFLUSH, z1, fMN, oMb), lo(CLFLUSHOPT, z1, fMN, oMb), ud, ud), pfx(rmg(l(SFENCE, 0)), ud, ud, ud)))
	t[0xAF] = l(IMUL, 0, oGv, oEv)
	t[0xB0] = lo(CMPXCHG, z1, fLock, oEb, oGb)
	t[0xB1] = l(CMPXCHG, fLock, oEv, oGv)
	t[0xB2] = l(LSS, fMR, oGv, oMp)
	t[0xB3] = l(BTR, fLock, oEv, oGv)
	t[0xB4] = l(LFS, fMR, oGv, oMp)
	t[0xB5] = l(LGS, fMR, oGv, oMp)
	t[0xB6] = l(MOVZX, 0, oGv, oEb)
	t[0xB7] = l(MOVZX, 0, oGv, oEw)
	t[0xB8] = pfx(ud, ud, l(POPCNT, 0, oGv, oEv), ud) // no prefix: JMPE (IA-64), #UD
	t[0xB9] = l(UD1, fMN, oGv, oEv)
	t[0xBA] = grp(ud, ud, ud, ud, l(BT, fMR, oEv, oIb), l(BTS, fLock, oEv, oIb), l(BTR, fLock, oEv, oIb), l(BTC, fLock, oEv, oIb))
	t[0xBB] = l(BTC, fLock, oEv, oGv)
	bsf, bsr := l(BSF, 0, oGv, oEv), l(BSR, 0, oGv, oEv)
	t[0xBC] = pfx(bsf, bsf, l(TZCNT, 0, oGv, oEv), bsf)
	t[0xBD] = pfx(bsr, bsr, l(LZCNT, 0, oGv, oEv), bsr)
	t[0xBE] = l(MOVSX, 0, oGv, oEb)
	t[0xBF] = l(MOVSX, 0, oGv, oEw)
	t[0xC0] = lo(XADD, z1, fLock, oEb, oGb)
	t[0xC1] = l(XADD, fLock, oEv, oGv)
	t[0xC2] = pfx(lo(CMPPS, zX, 0, oVx, oWx, oIb), lo(CMPPD, zX, 0, oVx, oWx, oIb), lo(CMPSS, z4, 0, oVx, oWd, oIb), lo(CMPSD, z8, 0, oVx, oWq, oIb))
	t[0xC3] = pfx(lo(MOVNTI, zY, fMW, oMy, oGy), ud, ud, ud)
	t[0xC4] = pfx(lo(PINSRW, z8, 0, oPq, oEwR, oIb), lo(PINSRW, z16, 0, oVx, oEwR, oIb), ud, ud)
	t[0xC5] = pfx(mr(ud, lo(PEXTRW, z8, 0, oGd, oNq, oIb)), mr(ud, lo(PEXTRW, z16, 0, oGd, oUdq, oIb)), ud, ud)
	t[0xC6] = sse2pImm(SHUFPS, SHUFPD)
	t[0xC7] = grp(ud,
		mr(ww(lo(CMPXCHG8B, z8, fLock, oMq), lo(CMPXCHG16B, z16, fLock, oMdq)), ud),
		ud,
		mr(lo(XRSTORS, zVar, fMR, oMvr), ud),
		mr(lo(XSAVEC, zVar, fMW, oMvr), ud),
		mr(lo(XSAVES, zVar, fMW, oMvr), ud),
		mr(pfx(lo(VMPTRLD, z8, fMR, oMq), lo(VMCLEAR, z8, fMR, oMq), lo(VMXON, z8, fMR, oMq), ud),
			pfx(l(RDRAND, 0, oRv), l(RDRAND, 0, oRv), ud, ud)),
		mr(pfx(lo(VMPTRST, z8, fMW, oMq), ud, ud, ud),
			pfx(l(RDSEED, 0, oRv), l(RDSEED, 0, oRv), lo(RDPID, zMd, 0, oRMd), ud)))
	for r := 0; r < 8; r++ {
		t[0xC8+r] = lo(BSWAP, zY, 0, oZy)
	}
	t[0xD0] = pfx(ud, lo(ADDSUBPD, zX, 0, oVx, oWx), ud, lo(ADDSUBPS, zX, 0, oVx, oWx))
	for i, op := range [5]Op{PSRLW, PSRLD, PSRLQ, PADDQ, PMULLW} {
		t[0xD1+i] = mmxsse(op)
	}
	t[0xD6] = pfx(ud, lo(MOVQ, z8, fMW, oWq, oVx), mr(ud, lo(MOVQ2DQ, z16, 0, oVdq, oNq)), mr(ud, lo(MOVDQ2Q, z8, 0, oPq, oUdq)))
	t[0xD7] = pfx(mr(ud, lo(PMOVMSKB, z8, 0, oGd, oNq)), mr(ud, lo(PMOVMSKB, zX, 0, oGd, oUx)), ud, ud)
	for i, op := range [8]Op{PSUBUSB, PSUBUSW, PMINUB, PAND, PADDUSB, PADDUSW, PMAXUB, PANDN} {
		t[0xD8+i] = mmxsse(op)
	}
	for i, op := range [6]Op{PAVGB, PSRAW, PSRAD, PAVGW, PMULHUW, PMULHW} {
		t[0xE0+i] = mmxsse(op)
	}
	t[0xE6] = pfx(ud, lo(CVTTPD2DQ, z16, 0, oVx, oWdq), lo(CVTDQ2PD, z16, 0, oVx, oWq), lo(CVTPD2DQ, z16, 0, oVx, oWdq))
	t[0xE7] = pfx(mr(lo(MOVNTQ, z8, fMW, oMq, oPq), ud), mr(lo(MOVNTDQ, zX, fMW, oMx, oVx), ud), ud, ud)
	for i, op := range [8]Op{PSUBSB, PSUBSW, PMINSW, POR, PADDSB, PADDSW, PMAXSW, PXOR} {
		t[0xE8+i] = mmxsse(op)
	}
	t[0xF0] = pfx(ud, ud, ud, mr(lo(LDDQU, zX, 0, oVx, oMx), ud))
	for i, op := range [6]Op{PSLLW, PSLLD, PSLLQ, PMULUDQ, PMADDWD, PSADBW} {
		t[0xF1+i] = mmxsse(op)
	}
	// MASKMOVQ/MASKMOVDQU store to DS:rDI (segment overridable).
	t[0xF7] = pfx(mr(ud, lo(MASKMOVQ, z8, fMW, oXdiq, oPq, oNq)), mr(ud, lo(MASKMOVDQU, z16, fMW, oXdidq, oVdq, oUdq)), ud, ud)
	for i, op := range [7]Op{PSUBB, PSUBW, PSUBD, PSUBQ, PADDB, PADDW, PADDD} {
		t[0xF8+i] = mmxsse(op)
	}
	t[0xFF] = l(UD0, fMN, oGv, oEv)
	return t
}

func sse2pImm(ps, pd Op) entry {
	return pfx(lo(ps, zX, 0, oVx, oWx, oIb), lo(pd, zX, 0, oVx, oWx, oIb), ud, ud)
}

func mk0F38() (t [256]entry) {
	ssse3 := [16]Op{PSHUFB, PHADDW, PHADDD, PHADDSW, PMADDUBSW, PHSUBW, PHSUBD, PHSUBSW, PSIGNB, PSIGNW, PSIGND, PMULHRSW}
	for i, op := range ssse3 {
		if op != Invalid {
			t[i] = mmxsse(op)
		}
	}
	t[0x1C] = mmxsse(PABSB)
	t[0x1D] = mmxsse(PABSW)
	t[0x1E] = mmxsse(PABSD)
	x := func(op Op) entry { return only66(op, z16, 0, oVx, oWx) }
	t[0x10] = x(PBLENDVB)
	t[0x14] = x(BLENDVPS)
	t[0x15] = x(BLENDVPD)
	t[0x17] = x(PTEST)
	// PMOVSX/PMOVZX read half, quarter or eighth of a vector.
	ext := [6]spec{oWq, oWd, oWw, oWq, oWd, oWq}
	for i, op := range [6]Op{PMOVSXBW, PMOVSXBD, PMOVSXBQ, PMOVSXWD, PMOVSXWQ, PMOVSXDQ} {
		t[0x20+i] = only66(op, z16, 0, oVx, ext[i])
	}
	for i, op := range [6]Op{PMOVZXBW, PMOVZXBD, PMOVZXBQ, PMOVZXWD, PMOVZXWQ, PMOVZXDQ} {
		t[0x30+i] = only66(op, z16, 0, oVx, ext[i])
	}
	t[0x28] = x(PMULDQ)
	t[0x29] = x(PCMPEQQ)
	t[0x2A] = pfx(ud, mr(lo(MOVNTDQA, z16, 0, oVx, oMdq), ud), ud, ud)
	t[0x2B] = x(PACKUSDW)
	t[0x37] = x(PCMPGTQ)
	for i, op := range [10]Op{PMINSB, PMINSD, PMINUW, PMINUD, PMAXSB, PMAXSD, PMAXUW, PMAXUD, PMULLD, PHMINPOSUW} {
		t[0x38+i] = x(op)
	}
	t[0x80] = pfx(ud, mr(lo(INVEPT, zMd, fMR, oGMd, oMdq), ud), ud, ud)
	t[0x81] = pfx(ud, mr(lo(INVVPID, zMd, fMR, oGMd, oMdq), ud), ud, ud)
	t[0x82] = pfx(ud, mr(lo(INVPCID, zMd, fMR, oGMd, oMdq), ud), ud, ud)
	for i, op := range [6]Op{SHA1NEXTE, SHA1MSG1, SHA1MSG2, SHA256RNDS2, SHA256MSG1, SHA256MSG2} {
		t[0xC8+i] = pfx(lo(op, z16, 0, oVx, oWx), ud, ud, ud)
	}
	t[0xDB] = x(AESIMC)
	t[0xDC] = x(AESENC)
	t[0xDD] = x(AESENCLAST)
	t[0xDE] = x(AESDEC)
	t[0xDF] = x(AESDECLAST)
	// MOVBE has no register form (SDM MOVBE: #UD if mod=11), and F3 is a
	// blank cell of its row (SDM Table A-4; the CPU raises #UD).
	movbeLoad := mr(l(MOVBE, 0, oGv, oMv), ud)
	movbeStore := mr(l(MOVBE, fMW, oMv, oGv), ud)
	t[0xF0] = pfx(movbeLoad, movbeLoad, ud, lo(CRC32, zY, 0, oGy, oEb))
	t[0xF1] = pfx(movbeStore, movbeStore, ud, lo(CRC32, zY, 0, oGy, oEv))
	t[0xF6] = pfx(ud, lo(ADCX, zY, 0, oGy, oEy), lo(ADOX, zY, 0, oGy, oEy), ud)
	// Direct stores: MOVDIRI m32/m64, r32/r64; MOVDIR64B writes 64 bytes
	// from m512 to ES:[r] (the register is an address of the address size;
	// F3 and F2 are ENQCMDS and ENQCMD, not modelled).
	t[0xF8] = pfx(ud, mr(lo(MOVDIR64B, z64B, fMW, oYr, oM64B), ud), ud, ud)
	t[0xF9] = pfx(mr(lo(MOVDIRI, zY, fMW, oMy, oGy), ud), ud, ud, ud)
	return t
}

func mk0F3A() (t [256]entry) {
	x := func(op Op, a ...spec) entry { return only66(op, z16, 0, a...) }
	t[0x08] = x(ROUNDPS, oVx, oWx, oIb)
	t[0x09] = x(ROUNDPD, oVx, oWx, oIb)
	t[0x0A] = x(ROUNDSS, oVx, oWd, oIb)
	t[0x0B] = x(ROUNDSD, oVx, oWq, oIb)
	t[0x0C] = x(BLENDPS, oVx, oWx, oIb)
	t[0x0D] = x(BLENDPD, oVx, oWx, oIb)
	t[0x0E] = x(PBLENDW, oVx, oWx, oIb)
	t[0x0F] = mmxsse(PALIGNR, oIb)
	t[0x14] = only66(PEXTRB, z16, fMW, oEbR, oVdq, oIb)
	t[0x15] = only66(PEXTRW, z16, fMW, oEwR, oVdq, oIb)
	t[0x16] = pfx(ud, lo(PEXTRD, z16, fMW, oEy, oVdq, oIb).w(PEXTRQ), ud, ud)
	t[0x17] = only66(EXTRACTPS, z16, fMW, oEd, oVdq, oIb)
	t[0x20] = x(PINSRB, oVdq, oEbR, oIb)
	t[0x21] = x(INSERTPS, oVdq, oWd, oIb)
	t[0x22] = pfx(ud, lo(PINSRD, z16, 0, oVdq, oEy, oIb).w(PINSRQ), ud, ud)
	t[0x40] = x(DPPS, oVx, oWx, oIb)
	t[0x41] = x(DPPD, oVx, oWx, oIb)
	t[0x42] = x(MPSADBW, oVx, oWx, oIb)
	t[0x44] = x(PCLMULQDQ, oVx, oWx, oIb)
	t[0x60] = x(PCMPESTRM, oVx, oWx, oIb)
	t[0x61] = x(PCMPESTRI, oVx, oWx, oIb)
	t[0x62] = x(PCMPISTRM, oVx, oWx, oIb)
	t[0x63] = x(PCMPISTRI, oVx, oWx, oIb)
	t[0xCC] = pfx(lo(SHA1RNDS4, z16, 0, oVx, oWx, oIb), ud, ud, ud)
	t[0xDF] = x(AESKEYGENASSIST, oVx, oWx, oIb)
	return t
}
