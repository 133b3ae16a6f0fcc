package decode

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"walkvm/x86"
)

// Operand builders for the expectations below.

func reg(r x86.Reg, size uint8) Arg { return Arg{Kind: ArgReg, Reg: r, Size: size} }
func hreg(r x86.Reg) Arg            { return Arg{Kind: ArgReg, Reg: r, Size: 1, High: true} }
func imm(v int64, size uint8) Arg   { return Arg{Kind: ArgImm, Imm: v, Size: size} }
func xmm(r x86.Reg, size uint8) Arg { return Arg{Kind: ArgXMM, Reg: r, Size: size} }
func st(i x86.Reg) Arg              { return Arg{Kind: ArgST, Reg: i, Size: 10} }
func sreg(s x86.SegReg) Arg         { return Arg{Kind: ArgSeg, Seg: s, Size: 2} }

// mem builds a memory operand with its default segment and no override.
func mem(seg x86.SegReg, base, index x86.Reg, scale uint8, disp int64, as uint8, size uint16, acc Use) Arg {
	return Arg{Kind: ArgMem, Mem: Mem{Seg: seg, DefaultSeg: seg, Base: base, Index: index, Scale: scale,
		Disp: disp, AddrSize: as, Size: size, Use: acc}}
}

// override sets a segment override on a memory operand.
func override(a Arg, s x86.SegReg) Arg {
	a.Mem.Seg, a.Mem.SegOverride = s, true
	return a
}

func rip(a Arg) Arg { a.Mem.RIPRel = true; return a }

const (
	N  = RegNone
	R  = UseRead
	W  = UseWrite
	RW = UseRead | UseWrite
)

type decodeCase struct {
	name string
	mode Mode
	hex  string
	op   Op
	len  int
	osz  int   // 0: not checked
	asz  int   // 0: not checked
	args []Arg // nil: not checked; else Args must equal these, rest ArgNone
}

var decodeCases = []decodeCase{
	// 16-bit addressing, SDM Vol. 2A Table 2-1: all eight r/m forms.
	{"16/bx+si", Mode16, "8b4008", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, x86.RSI, 1, 8, 2, 2, R)}},
	{"16/bx+di", Mode16, "8b4108", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, x86.RDI, 1, 8, 2, 2, R)}},
	{"16/bp+si=ss", Mode16, "8b4208", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.SS, x86.RBP, x86.RSI, 1, 8, 2, 2, R)}},
	{"16/bp+di=ss", Mode16, "8b4308", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.SS, x86.RBP, x86.RDI, 1, 8, 2, 2, R)}},
	{"16/si", Mode16, "8b4408", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RSI, N, 1, 8, 2, 2, R)}},
	{"16/di", Mode16, "8b4508", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RDI, N, 1, 8, 2, 2, R)}},
	{"16/bp=ss", Mode16, "8b4608", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.SS, x86.RBP, N, 1, 8, 2, 2, R)}},
	{"16/bx", Mode16, "8b4708", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, N, 1, 8, 2, 2, R)}},
	{"16/disp16 mod=00 rm=110", Mode16, "8b063412", MOV, 4, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, N, N, 1, 0x1234, 2, 2, R)}},
	{"16/mod=00 bx+si no disp", Mode16, "8900", MOV, 2, 2, 2, []Arg{mem(x86.DS, x86.RBX, x86.RSI, 1, 0, 2, 2, W), reg(x86.RAX, 2)}},
	{"16/disp16 sign-extended", Mode16, "8b800080", MOV, 4, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, x86.RSI, 1, -0x8000, 2, 2, R)}},
	{"16/bp with es override", Mode16, "268b4608", MOV, 4, 2, 2, []Arg{reg(x86.RAX, 2), override(mem(x86.SS, x86.RBP, N, 1, 8, 2, 2, R), x86.ES)}},
	{"16/66 67: 32-bit operand and addressing", Mode16, "66678b0424", MOV, 5, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.SS, x86.RSP, N, 1, 0, 4, 4, R)}},

	// 32/64-bit addressing, Tables 2-2 and 2-3.
	{"32/mov eax,0x10(ebx,ecx,4)", Mode32, "89448b10", MOV, 4, 4, 4, []Arg{mem(x86.DS, x86.RBX, x86.RCX, 4, 0x10, 4, 4, W), reg(x86.RAX, 4)}},
	{"32/[esp]=ss", Mode32, "8b0424", MOV, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.SS, x86.RSP, N, 1, 0, 4, 4, R)}},
	{"32/[ebp+0]=ss", Mode32, "8b4500", MOV, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.SS, x86.RBP, N, 1, 0, 4, 4, R)}},
	{"32/[disp32] mod=00 rm=101", Mode32, "8b0578563412", MOV, 6, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, N, N, 1, 0x12345678, 4, 4, R)}},
	{"32/SIB no base [disp32+ebp*1]", Mode32, "8b042d00100000", MOV, 7, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, N, x86.RBP, 1, 0x1000, 4, 4, R)}},
	{"32/SIB index=100 is none", Mode32, "8b0420", MOV, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RAX, N, 1, 0, 4, 4, R)}},
	{"32/67: 16-bit addressing", Mode32, "678b4608", MOV, 4, 4, 2, []Arg{reg(x86.RAX, 4), mem(x86.SS, x86.RBP, N, 1, 8, 2, 4, R)}},
	{"64/[r13+0]=ds", Mode64, "418b4500", MOV, 4, 4, 8, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.R13, N, 1, 0, 8, 4, R)}},
	{"64/[r12]=ds via SIB", Mode64, "418b0424", MOV, 4, 4, 8, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.R12, N, 1, 0, 8, 4, R)}},
	{"64/REX.X: r12 as index", Mode64, "428b0420", MOV, 4, 4, 8, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RAX, x86.R12, 1, 0, 8, 4, R)}},
	{"64/mov rax,(rdx)", Mode64, "488902", MOV, 3, 8, 8, []Arg{mem(x86.DS, x86.RDX, N, 1, 0, 8, 8, W), reg(x86.RAX, 8)}},
	{"64/rip-relative", Mode64, "8b0510000000", MOV, 6, 4, 8, []Arg{reg(x86.RAX, 4), rip(mem(x86.DS, N, N, 1, 0x10, 8, 4, R))}},
	{"64/rip-relative then imm32", Mode64, "c7051000000078563412", MOV, 10, 4, 8, []Arg{rip(mem(x86.DS, N, N, 1, 0x10, 8, 4, W)), imm(0x12345678, 4)}},
	{"64/67 rip-relative is eip-relative", Mode64, "678b05f0ffffff", MOV, 7, 4, 4, []Arg{reg(x86.RAX, 4), rip(mem(x86.DS, N, N, 1, -0x10, 4, 4, R))}},
	{"64/SIB no base is absolute, not rip", Mode64, "8b042500100000", MOV, 7, 4, 8, []Arg{reg(x86.RAX, 4), mem(x86.DS, N, N, 1, 0x1000, 8, 4, R)}},
	{"64/67: 32-bit addressing", Mode64, "678b00", MOV, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RAX, N, 1, 0, 4, 4, R)}},
	{"64/cs override ignored", Mode64, "2e8b00", MOV, 3, 4, 8, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RAX, N, 1, 0, 8, 4, R)}},
	{"64/fs override", Mode64, "648b00", MOV, 3, 4, 8, []Arg{reg(x86.RAX, 4), override(mem(x86.DS, x86.RAX, N, 1, 0, 8, 4, R), x86.FS)}},
	{"64/fs then cs: cs is a null prefix", Mode64, "642e8b00", MOV, 4, 4, 8, []Arg{reg(x86.RAX, 4), override(mem(x86.DS, x86.RAX, N, 1, 0, 8, 4, R), x86.FS)}},
	{"32/last segment override wins", Mode32, "64268b00", MOV, 4, 4, 4, []Arg{reg(x86.RAX, 4), override(mem(x86.DS, x86.RAX, N, 1, 0, 4, 4, R), x86.ES)}},

	// Byte registers: AH..BH without REX, SPL..DIL with any REX.
	{"32/mov al,ah", Mode32, "88e0", MOV, 2, 1, 4, []Arg{reg(x86.RAX, 1), hreg(x86.RAX)}},
	{"32/mov bh,ch", Mode32, "88ef", MOV, 2, 1, 4, []Arg{hreg(x86.RBX), hreg(x86.RCX)}},
	{"64/REX 40: mov al,spl", Mode64, "4088e0", MOV, 3, 1, 8, []Arg{reg(x86.RAX, 1), reg(x86.RSP, 1)}},
	{"64/REX.B: mov r15b,dil", Mode64, "4188ff", MOV, 3, 1, 8, []Arg{reg(x86.R15, 1), reg(x86.RDI, 1)}},
	{"64/mov dh,imm without REX", Mode64, "b612", MOV, 2, 1, 8, []Arg{hreg(x86.RDX), imm(0x12, 1)}},

	// REX placement and precedence (SDM Vol. 2A §2.2.1).
	{"64/REX before 66 is ignored", Mode64, "486689c0", MOV, 4, 2, 8, []Arg{reg(x86.RAX, 2), reg(x86.RAX, 2)}},
	{"64/REX before 26 is ignored: ah again", Mode64, "402688e0", MOV, 4, 1, 8, []Arg{reg(x86.RAX, 1), hreg(x86.RAX)}},
	{"64/two REX: the last counts", Mode64, "414889c0", MOV, 4, 8, 8, []Arg{reg(x86.RAX, 8), reg(x86.RAX, 8)}},
	{"64/66 and REX.W: REX.W wins", Mode64, "664889c0", MOV, 4, 8, 8, []Arg{reg(x86.RAX, 8), reg(x86.RAX, 8)}},
	{"64/mov r64,imm64", Mode64, "48b88877665544332211", MOV, 10, 8, 8, []Arg{reg(x86.RAX, 8), imm(0x1122334455667788, 8)}},
	{"64/push defaults to 64-bit", Mode64, "ff30", PUSH, 2, 8, 8, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 8, 8, R)}},
	{"64/66 push is 16-bit", Mode64, "66ff30", PUSH, 3, 2, 8, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 8, 2, R)}},
	{"64/pop r/m", Mode64, "8f00", POP, 2, 8, 8, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 8, 8, W)}},
	{"32/push r/m", Mode32, "ff7504", PUSH, 3, 4, 4, []Arg{mem(x86.SS, x86.RBP, N, 1, 4, 4, 4, R)}},
	{"64/xchg r8,rax (90 with REX.B)", Mode64, "4990", XCHG, 2, 8, 8, []Arg{reg(x86.R8, 8), reg(x86.RAX, 8)}},
	{"64/nop", Mode64, "90", NOP, 1, 0, 0, []Arg{}},
	{"32/pause", Mode32, "f390", PAUSE, 2, 0, 0, []Arg{}},

	// moffs (A0-A3): address-size-wide absolute offsets.
	{"64/mov eax,moffs64", Mode64, "a1efcdab8967452301", MOV, 9, 4, 8, []Arg{reg(x86.RAX, 4), mem(x86.DS, N, N, 1, 0x0123456789abcdef, 8, 4, R)}},
	{"64/67 mov moffs32,al", Mode64, "67a2f0debc9a", MOV, 6, 1, 4, []Arg{mem(x86.DS, N, N, 1, 0x9abcdef0, 4, 1, W), reg(x86.RAX, 1)}},
	{"16/mov ax,moffs16", Mode16, "a1fe80", MOV, 3, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, N, N, 1, 0x80fe, 2, 2, R)}},
	{"32/gs mov moffs32,eax", Mode32, "65a378563412", MOV, 6, 4, 4, []Arg{override(mem(x86.DS, N, N, 1, 0x12345678, 4, 4, W), x86.GS), reg(x86.RAX, 4)}},

	// MOV forms the emulator executes.
	{"32/mov r/m8,r8", Mode32, "8803", MOV, 2, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, W), reg(x86.RAX, 1)}},
	{"32/mov r8,r/m8", Mode32, "8a03", MOV, 2, 1, 4, []Arg{reg(x86.RAX, 1), mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, R)}},
	{"32/mov r/m16,sreg stores 16 bits", Mode32, "8c18", MOV, 2, 2, 4, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 4, 2, W), sreg(x86.DS)}},
	{"32/mov r32,sreg", Mode32, "8cd8", MOV, 2, 4, 4, []Arg{reg(x86.RAX, 4), sreg(x86.DS)}},
	{"32/mov sreg,r/m16", Mode32, "8e18", MOV, 2, 2, 4, []Arg{sreg(x86.DS), mem(x86.DS, x86.RAX, N, 1, 0, 4, 2, R)}},
	{"32/mov r/m8,imm8", Mode32, "c60012", MOV, 3, 1, 4, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 4, 1, W), imm(0x12, 1)}},
	{"64/mov r/m64,imm32 sign-extended", Mode64, "48c700ffffffff", MOV, 7, 8, 8, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 8, 8, W), imm(-1, 4)}},
	{"16/mov r/m16,imm16", Mode16, "c7063412cdab", MOV, 6, 2, 2, []Arg{mem(x86.DS, N, N, 1, 0x1234, 2, 2, W), imm(-0x5433, 2)}},
	{"32/movzx r32,r/m8", Mode32, "0fb603", MOVZX, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, R)}},
	{"64/movzx r64,r/m16", Mode64, "480fb703", MOVZX, 4, 8, 8, []Arg{reg(x86.RAX, 8), mem(x86.DS, x86.RBX, N, 1, 0, 8, 2, R)}},
	{"32/movsx r16,r/m8", Mode32, "660fbe03", MOVSX, 4, 2, 4, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, R)}},
	{"32/movsx r32,r/m16", Mode32, "0fbf03", MOVSX, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RBX, N, 1, 0, 4, 2, R)}},
	{"64/movsxd r64,r/m32", Mode64, "486303", MOVSXD, 3, 8, 8, []Arg{reg(x86.RAX, 8), mem(x86.DS, x86.RBX, N, 1, 0, 8, 4, R)}},
	{"64/movsxd r16,r/m16", Mode64, "666303", MOVSXD, 3, 2, 8, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, N, 1, 0, 8, 2, R)}},
	{"32/arpl", Mode32, "6303", ARPL, 2, 2, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 2, RW), reg(x86.RAX, 2)}},

	// ALU, TEST, INC/DEC/NOT/NEG, XCHG, CMPXCHG, XADD, BT*, SETcc.
	{"32/add r/m32,r32", Mode32, "0103", ADD, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), reg(x86.RAX, 4)}},
	{"32/lock or r/m8,r8", Mode32, "f00803", OR, 3, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, RW), reg(x86.RAX, 1)}},
	{"32/sub r32,r/m32", Mode32, "2b03", SUB, 2, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R)}},
	{"32/cmp r/m32,r32 reads", Mode32, "3903", CMP, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R), reg(x86.RAX, 4)}},
	{"32/and al,imm8", Mode32, "2412", AND, 2, 1, 4, []Arg{reg(x86.RAX, 1), imm(0x12, 1)}},
	{"16/xor ax,imm16", Mode16, "353412", XOR, 3, 2, 2, []Arg{reg(x86.RAX, 2), imm(0x1234, 2)}},
	{"64/adc rax,imm32", Mode64, "481578563412", ADC, 6, 8, 8, []Arg{reg(x86.RAX, 8), imm(0x12345678, 4)}},
	{"32/80 /7 cmp r/m8,imm8", Mode32, "803b12", CMP, 3, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, R), imm(0x12, 1)}},
	{"32/81 /5 sub r/m32,imm32", Mode32, "812b78563412", SUB, 6, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), imm(0x12345678, 4)}},
	{"32/83 /0 add r/m32,imm8 sign-extended", Mode32, "8303ff", ADD, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), imm(-1, 1)}},
	{"32/lock 83 /1 or", Mode32, "f0830b01", OR, 4, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), imm(1, 1)}},
	{"32/test r/m8,r8", Mode32, "8403", TEST, 2, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, R), reg(x86.RAX, 1)}},
	{"32/test r/m32,r32", Mode32, "8503", TEST, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R), reg(x86.RAX, 4)}},
	{"32/test r/m8,imm8", Mode32, "f60312", TEST, 3, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, R), imm(0x12, 1)}},
	{"32/test r/m32,imm32", Mode32, "f70378563412", TEST, 6, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R), imm(0x12345678, 4)}},
	{"32/not r/m8", Mode32, "f613", NOT, 2, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, RW)}},
	{"32/neg r/m32", Mode32, "f71b", NEG, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW)}},
	{"32/inc r/m8", Mode32, "fe03", INC, 2, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, RW)}},
	{"64/dec r/m64", Mode64, "48ff0b", DEC, 3, 8, 8, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 8, 8, RW)}},
	{"32/xchg r/m8,r8", Mode32, "8603", XCHG, 2, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, RW), reg(x86.RAX, 1)}},
	{"32/lock xchg r/m32,r32", Mode32, "f08703", XCHG, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), reg(x86.RAX, 4)}},
	{"32/cmpxchg r/m8,r8", Mode32, "0fb00b", CMPXCHG, 3, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, RW), reg(x86.RCX, 1)}},
	{"32/lock cmpxchg r/m32,r32", Mode32, "f00fb10b", CMPXCHG, 4, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), reg(x86.RCX, 4)}},
	{"64/cmpxchg16b", Mode64, "f0480fc70b", CMPXCHG16B, 5, 16, 8, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 8, 16, RW)}},
	{"32/cmpxchg8b", Mode32, "0fc70b", CMPXCHG8B, 3, 8, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 8, RW)}},
	{"32/xadd r/m8,r8", Mode32, "0fc00b", XADD, 3, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, RW), reg(x86.RCX, 1)}},
	{"32/xadd r/m32,r32", Mode32, "0fc10b", XADD, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), reg(x86.RCX, 4)}},
	{"32/bt r/m32,r32 reads", Mode32, "0fa30b", BT, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R), reg(x86.RCX, 4)}},
	{"32/bts r/m32,r32", Mode32, "0fab0b", BTS, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), reg(x86.RCX, 4)}},
	{"32/btr r/m16,r16", Mode32, "660fb30b", BTR, 4, 2, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 2, RW), reg(x86.RCX, 2)}},
	{"32/btc r/m32,r32", Mode32, "0fbb0b", BTC, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), reg(x86.RCX, 4)}},
	{"32/bt r/m32,imm8", Mode32, "0fba2305", BT, 4, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R), imm(5, 1)}},
	{"32/lock btc r/m32,imm8", Mode32, "f00fba3b05", BTC, 5, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, RW), imm(5, 1)}},
	{"32/sete r/m8 writes", Mode32, "0f9403", SETE, 3, 1, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 1, W)}},
	{"32/setg r8", Mode32, "0f9fc4", SETG, 3, 1, 4, []Arg{hreg(x86.RAX)}},
	{"32/movnti m32,r32", Mode32, "0fc303", MOVNTI, 3, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, W), reg(x86.RAX, 4)}},
	{"64/movnti m64,r64", Mode64, "480fc303", MOVNTI, 4, 8, 8, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 8, 8, W), reg(x86.RAX, 8)}},
	{"32/movbe r32,m32", Mode32, "0f38f003", MOVBE, 4, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R)}},
	{"32/movbe m16,r16", Mode32, "660f38f103", MOVBE, 5, 2, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 2, W), reg(x86.RAX, 2)}},
	{"64/movdiri m64,r64", Mode64, "480f38f903", MOVDIRI, 5, 8, 8, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 8, 8, W), reg(x86.RAX, 8)}},
	{"64/movdir64b: es:[reg] from m512", Mode64, "660f38f803", MOVDIR64B, 5, 0, 8,
		[]Arg{mem(x86.ES, x86.RAX, N, 1, 0, 8, 64, W), mem(x86.DS, x86.RBX, N, 1, 0, 8, 64, R)}},
	{"64/movdir64b with 67: a 32-bit address", Mode64, "67660f38f83b", MOVDIR64B, 6, 0, 4,
		[]Arg{mem(x86.ES, x86.RDI, N, 1, 0, 4, 64, W), mem(x86.DS, x86.RBX, N, 1, 0, 4, 64, R)}},
	{"32/crc32 (F2 wins over 66)", Mode32, "66f20f38f103", CRC32, 6, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RBX, N, 1, 0, 4, 2, R)}},
	{"32/lea is not an access", Mode32, "8d4304", LEA, 3, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RBX, N, 1, 4, 4, 0, 0)}},

	// String instructions: DS:rSI source (overridable), ES:rDI destination.
	{"32/movsb", Mode32, "a4", MOVS, 1, 1, 4, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 4, 1, W), mem(x86.DS, x86.RSI, N, 1, 0, 4, 1, R)}},
	{"32/es: movsb overrides the source only", Mode32, "26a4", MOVS, 2, 1, 4, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 4, 1, W), override(mem(x86.DS, x86.RSI, N, 1, 0, 4, 1, R), x86.ES)}},
	{"32/rep movsw", Mode32, "f366a5", MOVS, 3, 2, 4, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 4, 2, W), mem(x86.DS, x86.RSI, N, 1, 0, 4, 2, R)}},
	{"64/rep movsq", Mode64, "f348a5", MOVS, 3, 8, 8, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 8, 8, W), mem(x86.DS, x86.RSI, N, 1, 0, 8, 8, R)}},
	{"32/67 movsd: 16-bit si/di", Mode32, "67a5", MOVS, 2, 4, 2, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 2, 4, W), mem(x86.DS, x86.RSI, N, 1, 0, 2, 4, R)}},
	{"32/repe cmpsb", Mode32, "f3a6", CMPS, 2, 1, 4, []Arg{mem(x86.DS, x86.RSI, N, 1, 0, 4, 1, R), mem(x86.ES, x86.RDI, N, 1, 0, 4, 1, R)}},
	{"32/repne scasd", Mode32, "f2af", SCAS, 2, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.ES, x86.RDI, N, 1, 0, 4, 4, R)}},
	{"16/rep stosw", Mode16, "f3ab", STOS, 2, 2, 2, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 2, 2, W), reg(x86.RAX, 2)}},
	{"64/fs lodsb", Mode64, "64ac", LODS, 2, 1, 8, []Arg{reg(x86.RAX, 1), override(mem(x86.DS, x86.RSI, N, 1, 0, 8, 1, R), x86.FS)}},
	{"32/insb", Mode32, "6c", INS, 1, 1, 4, []Arg{mem(x86.ES, x86.RDI, N, 1, 0, 4, 1, W), reg(x86.RDX, 2)}},
	{"32/outsd", Mode32, "6f", OUTS, 1, 4, 4, []Arg{reg(x86.RDX, 2), mem(x86.DS, x86.RSI, N, 1, 0, 4, 4, R)}},

	// SSE moves.
	{"32/movd xmm,r/m32", Mode32, "660f6e03", MOVD, 4, 4, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R)}},
	{"64/movq xmm,r/m64", Mode64, "66480f6e03", MOVQ, 5, 8, 8, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 8, 8, R)}},
	{"64/movd r/m32,xmm", Mode64, "66440f7e03", MOVD, 5, 4, 8, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 8, 4, W), xmm(8, 16)}},
	{"32/movq xmm,m64 (F3 0F 7E)", Mode32, "f30f7e03", MOVQ, 4, 8, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 8, R)}},
	{"32/movq m64,xmm (66 0F D6)", Mode32, "660fd603", MOVQ, 4, 8, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 8, W), xmm(0, 16)}},
	{"32/movdqu xmm,m128", Mode32, "f30f6f03", MOVDQU, 4, 16, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, R)}},
	{"32/movdqu m128,xmm", Mode32, "f30f7f03", MOVDQU, 4, 16, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, W), xmm(0, 16)}},
	{"32/movdqa xmm,m128", Mode32, "660f6f03", MOVDQA, 4, 16, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, R)}},
	{"64/movdqa m128,xmm9", Mode64, "66440f7f0b", MOVDQA, 5, 16, 8, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 8, 16, W), xmm(9, 16)}},
	{"32/movups xmm,m128", Mode32, "0f1003", MOVUPS, 3, 16, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, R)}},
	{"32/movups m128,xmm", Mode32, "0f1103", MOVUPS, 3, 16, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, W), xmm(0, 16)}},
	{"32/movaps xmm,m128", Mode32, "0f2803", MOVAPS, 3, 16, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, R)}},
	{"32/movaps m128,xmm", Mode32, "0f2903", MOVAPS, 3, 16, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, W), xmm(0, 16)}},
	{"32/movupd", Mode32, "660f1003", MOVUPD, 4, 16, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, R)}},
	{"32/movapd store", Mode32, "660f2903", MOVAPD, 4, 16, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, W), xmm(0, 16)}},
	{"32/movss xmm,m32", Mode32, "f30f1003", MOVSS, 4, 4, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R)}},
	{"32/movsd m64,xmm", Mode32, "f20f1103", MOVSD, 4, 8, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 8, W), xmm(0, 16)}},
	{"32/66 F3: F3 is the mandatory prefix", Mode32, "66f30f6f03", MOVDQU, 5, 16, 4, []Arg{xmm(0, 16), mem(x86.DS, x86.RBX, N, 1, 0, 4, 16, R)}},
	{"32/F2 then F3: the last wins", Mode32, "f2f30f6f03", MOVDQU, 5, 16, 4, nil},
	{"32/pextrb r32/m8 register form is r32", Mode32, "660f3a14c401", PEXTRB, 6, 16, 4, []Arg{reg(x86.RSP, 4), xmm(0, 16), imm(1, 1)}},

	// AVX moves (VEX.128 and VEX.256), SDM Vol. 2A §2.3.
	{"64/vmovdqu ymm0,(rdi)", Mode64, "c5fe6f07", VMOVDQU, 4, 32, 8, []Arg{xmm(0, 32), mem(x86.DS, x86.RDI, N, 1, 0, 8, 32, R)}},
	{"64/vmovdqu xmm0,(rdi)", Mode64, "c5fa6f07", VMOVDQU, 4, 16, 8, []Arg{xmm(0, 16), mem(x86.DS, x86.RDI, N, 1, 0, 8, 16, R)}},
	{"64/vmovdqu (r8),ymm15 3-byte", Mode64, "c4417e7f38", VMOVDQU, 5, 32, 8, []Arg{mem(x86.DS, x86.R8, N, 1, 0, 8, 32, W), xmm(15, 32)}},
	{"64/vmovdqa ymm1,(rax)", Mode64, "c5fd6f08", VMOVDQA, 4, 32, 8, []Arg{xmm(1, 32), mem(x86.DS, x86.RAX, N, 1, 0, 8, 32, R)}},
	{"64/vmovdqa (rax),xmm1", Mode64, "c5f97f08", VMOVDQA, 4, 16, 8, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 8, 16, W), xmm(1, 16)}},
	{"32/vmovdqu: C5 with mod=11 bits is VEX", Mode32, "c5fe6f07", VMOVDQU, 4, 32, 4, []Arg{xmm(0, 32), mem(x86.DS, x86.RDI, N, 1, 0, 4, 32, R)}},
	{"32/VEX.B ignored outside 64-bit mode", Mode32, "c4c17e6f07", VMOVDQU, 5, 32, 4, []Arg{xmm(0, 32), mem(x86.DS, x86.RDI, N, 1, 0, 4, 32, R)}},
	{"32/C5 with a memory ModRM is LDS", Mode32, "c506", LDS, 2, 4, 4, []Arg{reg(x86.RAX, 4), mem(x86.DS, x86.RSI, N, 1, 0, 4, 6, R)}},
	{"16/C4 with a memory ModRM is LES", Mode16, "c407", LES, 2, 2, 2, []Arg{reg(x86.RAX, 2), mem(x86.DS, x86.RBX, N, 1, 0, 2, 4, R)}},
	{"64/vmovd xmm1,eax", Mode64, "c5f96ec8", VMOVD, 4, 4, 8, []Arg{xmm(1, 16), reg(x86.RAX, 4)}},
	{"64/vmovq (rax),xmm1", Mode64, "c4e1f97e08", VMOVQ, 5, 8, 8, []Arg{mem(x86.DS, x86.RAX, N, 1, 0, 8, 8, W), xmm(1, 16)}},
	{"64/vzeroupper", Mode64, "c5f877", VZEROUPPER, 3, 0, 0, []Arg{}},
	{"64/vaddps nds", Mode64, "c5f45800", VEXOTHER, 4, 32, 8, []Arg{xmm(0, 32), xmm(1, 32), mem(x86.DS, x86.RAX, N, 1, 0, 8, 32, R)}},
	{"64/vpgatherdd vsib", Mode64, "c4e2759004a8", VEXOTHER, 6, 0, 8, []Arg{xmm(0, 32),
		{Kind: ArgMem, Mem: Mem{Seg: x86.DS, DefaultSeg: x86.DS, Base: x86.RAX, Index: 5, Scale: 4, VSIB: true, AddrSize: 8, Size: 32, Use: R}}, xmm(1, 32)}},

	// x87 loads and stores with m32/m64/m80.
	{"32/fld m32", Mode32, "d903", FLD, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, R)}},
	{"32/fst m32", Mode32, "d913", FST, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, W)}},
	{"32/fstp m32", Mode32, "d91b", FSTP, 2, 4, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 4, W)}},
	{"32/fld m64", Mode32, "dd03", FLD, 2, 8, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 8, R)}},
	{"32/fst m64", Mode32, "dd13", FST, 2, 8, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 8, W)}},
	{"64/fstp m64 rip", Mode64, "dd1d00010000", FSTP, 6, 8, 8, []Arg{rip(mem(x86.DS, N, N, 1, 0x100, 8, 8, W))}},
	{"32/fld m80", Mode32, "db2b", FLD, 2, 10, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 10, R)}},
	{"32/fadd st0,st3", Mode32, "d8c3", FADD, 2, 10, 4, []Arg{st(0), st(3)}},
	{"16/fnstenv m14", Mode16, "d933", FNSTENV, 2, 14, 2, []Arg{mem(x86.SS, x86.RBP, x86.RDI, 1, 0, 2, 14, W)}},
	{"32/fnsave m108", Mode32, "dd33", FNSAVE, 2, 108, 4, []Arg{mem(x86.DS, x86.RBX, N, 1, 0, 4, 108, W)}},

	// Branches and immediates.
	{"64/jmp rel32 ignores 66", Mode64, "66e910000000", JMP, 6, 8, 8, []Arg{{Kind: ArgRel, Imm: 0x10, Size: 4}}},
	{"32/66 jmp rel16", Mode32, "66e91000", JMP, 4, 2, 4, []Arg{{Kind: ArgRel, Imm: 0x10, Size: 2}}},
	{"32/jne rel8", Mode32, "75fe", JNE, 2, 4, 4, []Arg{{Kind: ArgRel, Imm: -2, Size: 1}}},
	{"32/enter imm16,imm8", Mode32, "c8100002", ENTER, 4, 4, 4, []Arg{imm(0x10, 2), imm(2, 1)}},
	{"16/far jmp ptr16:16", Mode16, "ea34127856", JMPF, 5, 2, 2, []Arg{imm(0x5678, 2), imm(0x1234, 2)}},
	{"64/mov cr3,rax", Mode64, "0f22d8", MOV, 3, 8, 8, []Arg{{Kind: ArgCR, Reg: 3, Size: 8}, reg(x86.RAX, 8)}},
	{"64/mov rax,cr8", Mode64, "440f20c0", MOV, 4, 8, 8, []Arg{reg(x86.RAX, 8), {Kind: ArgCR, Reg: 8, Size: 8}}},
	{"32/mov cr: mod bits ignored", Mode32, "0f2000", MOV, 3, 4, 4, []Arg{reg(x86.RAX, 4), {Kind: ArgCR, Reg: 0, Size: 4}}},

	// Prefix counting and the 15-byte limit (SDM Vol. 2A §2.3.11).
	{"32/14 prefixes + nop is 15 bytes", Mode32, strings.Repeat("66", 14) + "90", NOP, 15, 0, 0, nil},
}

func TestDecodeTable(t *testing.T) {
	for _, tc := range decodeCases {
		if tc.op == Invalid {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			var in Inst
			if err := Decode(b, tc.mode, &in); err != nil {
				t.Fatalf("Decode(% x): %v", b, err)
			}
			if in.Op != tc.op || int(in.Len) != tc.len {
				t.Errorf("op %v len %d, want %v len %d", in.Op, in.Len, tc.op, tc.len)
			}
			if tc.osz != 0 && int(in.OpSize) != tc.osz {
				t.Errorf("OpSize %d, want %d", in.OpSize, tc.osz)
			}
			if tc.asz != 0 && int(in.AddrSize) != tc.asz {
				t.Errorf("AddrSize %d, want %d", in.AddrSize, tc.asz)
			}
			if tc.args != nil {
				var want [NumArgs]Arg
				copy(want[:], tc.args)
				for i := range want {
					if in.Args[i] != want[i] {
						t.Errorf("Args[%d] = %+v\n          want %+v", i, in.Args[i], want[i])
					}
				}
			}
			if in.Mode != tc.mode {
				t.Errorf("Mode %v, want %v", in.Mode, tc.mode)
			}
		})
	}
}

// Errors: #UD, #GP(0) past 15 bytes, ErrTruncated.
var decodeErrors = []struct {
	name   string
	mode   Mode
	hex    string
	vector int // -1: ErrTruncated
}{
	{"lock with register destination", Mode32, "f001c0", x86.VectorUD},
	{"lock mov", Mode32, "f08b00", x86.VectorUD},
	{"lock bt (not lockable)", Mode32, "f00fa303", x86.VectorUD},
	{"lock cmp", Mode32, "f03903", x86.VectorUD},
	{"lock add r32,r/m32 (memory is the source)", Mode32, "f00303", x86.VectorUD},
	{"movbe with a register operand (0F 38 F0 mod=11)", Mode32, "0f38f0c0", x86.VectorUD},
	{"F3 0F 38 F0 is blank (not MOVBE)", Mode64, "f30f38f003", x86.VectorUD},
	{"movdir64b with a register source", Mode64, "660f38f8c3", x86.VectorUD},
	{"movbe store with a register operand", Mode64, "0f38f1c0", x86.VectorUD},
	{"mov cs,r/m", Mode32, "8ec8", x86.VectorUD},
	{"mov sreg 6", Mode32, "8ef0", x86.VectorUD},
	{"lea with a register operand", Mode32, "8dc0", x86.VectorUD},
	{"push es in 64-bit mode", Mode64, "06", x86.VectorUD},
	{"aaa in 64-bit mode", Mode64, "37", x86.VectorUD},
	{"EVEX in 64-bit mode", Mode64, "62f17c48100000", x86.VectorUD},
	{"VEX after REX", Mode64, "48c5fe6f07", x86.VectorUD},
	{"VEX after 66", Mode64, "66c5fe6f07", x86.VectorUD},
	{"VEX.vvvv not 1111b on vmovdqu", Mode64, "c5f66f07", x86.VectorUD},
	{"reserved VEX map", Mode64, "c4e47c1000", x86.VectorUD},
	{"0F 24 (mov from tr)", Mode32, "0f24c0", x86.VectorUD},
	{"0F 0F 3DNow!", Mode32, "0f0fc0b4", x86.VectorUD},
	{"D6 SALC is blank", Mode32, "d6", x86.VectorUD},
	{"FF /7", Mode32, "ff38", x86.VectorUD},
	{"8F /1 (XOP on AMD)", Mode32, "8fc8", x86.VectorUD},
	{"NP instruction with 66 (movnti)", Mode32, "660fc303", x86.VectorUD},
	{"mov to cr5", Mode32, "0f22e8", x86.VectorUD},
	{"cmpxchg8b with a register operand", Mode32, "0fc7c8", x86.VectorUD},
	{"syscall outside 64-bit mode", Mode32, "0f05", x86.VectorUD},
	{"16 bytes: 15 prefixes + nop", Mode32, strings.Repeat("66", 15) + "90", x86.VectorGP},
	{"imm16 crosses byte 15", Mode32, "2e3e263664656681848478563412" + "7856", x86.VectorGP},
	{"truncated: empty", Mode32, "", -1},
	{"truncated: prefixes only", Mode32, "6666", -1},
	{"truncated: no ModRM", Mode32, "8b", -1},
	{"truncated: no SIB", Mode32, "8b04", -1},
	{"truncated: disp32 cut", Mode32, "8b8000", -1},
	{"truncated: imm cut", Mode64, "c705100000007856", -1},
	{"truncated: 0F only", Mode64, "0f", -1},
	{"truncated: VEX cut", Mode64, "c4e2", -1},
	{"truncated: C4 needs the next byte to choose LES or VEX", Mode32, "c4", -1},
	{"truncated: moffs64", Mode64, "a1efcdab89", -1},
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range decodeErrors {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			var in Inst
			err = Decode(b, tc.mode, &in)
			if tc.vector < 0 {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("Decode(% x) = %v, want ErrTruncated", b, err)
				}
				return
			}
			var e *x86.Exception
			if !errors.As(err, &e) || int(e.Vector) != tc.vector {
				t.Fatalf("Decode(% x) = %v, want %s", b, err, x86.VectorName(uint8(tc.vector)))
			}
			if e.Vector == x86.VectorGP && (!e.HasErrorCode || e.ErrorCode != 0) {
				t.Errorf("want #GP(0), got %v", e)
			}
			if e.Vector == x86.VectorUD && !strings.Contains(e.Reason, "opcode") && !strings.Contains(e.Reason, "VEX") {
				t.Errorf("#UD reason %q does not name the opcode", e.Reason)
			}
		})
	}
}

func TestDecodeMode(t *testing.T) {
	var in Inst
	if err := Decode([]byte{0x90}, 0, &in); !errors.Is(err, ErrMode) {
		t.Fatalf("mode 0: %v, want ErrMode", err)
	}
}

// TestDecodeReuse checks that every field is reset between decodes.
func TestDecodeReuse(t *testing.T) {
	var a, b Inst
	if err := Decode([]byte{0xF0, 0x48, 0x0F, 0xC7, 0x0C, 0x8B}, Mode64, &a); err != nil {
		t.Fatal(err)
	}
	if err := Decode([]byte{0x90}, Mode32, &a); err != nil {
		t.Fatal(err)
	}
	if err := Decode([]byte{0x90}, Mode32, &b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("reused Inst differs from a fresh one:\n%+v\n%+v", a, b)
	}
}

// TestDecodeLongest decodes a valid 15-byte instruction.
func TestDecodeLongest(t *testing.T) {
	// 7 prefixes, opcode, ModRM, SIB, disp32, imm16: 16 bytes.
	b, _ := hex.DecodeString("2e3e263664656681848478563412" + "7856")
	var in Inst
	err := Decode(b, Mode32, &in)
	var e *x86.Exception
	if !errors.As(err, &e) || e.Vector != x86.VectorGP {
		t.Fatalf("16-byte add: %v, want #GP", err)
	}
	// Drop one prefix: 15 bytes exactly.
	b = b[1:]
	if err := Decode(b, Mode32, &in); err != nil || in.Len != 15 {
		t.Fatalf("15-byte add: len %d, %v", in.Len, err)
	}
	if in.Prefix.Count != 6 || in.Args[0].Mem.Seg != x86.GS || in.AddrSize != 4 || in.OpSize != 2 ||
		in.Args[1] != imm(0x5678, 2) || in.DispOffset != 9 || in.DispLen != 4 || in.ImmOffset != 13 || in.ImmLen != 2 {
		t.Errorf("prefixes %+v seg %v addrsize %d", in.Prefix, in.Args[0].Mem.Seg, in.AddrSize)
	}
}

func TestMemAccess(t *testing.T) {
	cases := []struct {
		hex  string
		mode Mode
		want Use
		arg  int
	}{
		{"8903", Mode32, UseWrite, 0},
		{"8b03", Mode32, UseRead, 1},
		{"0103", Mode32, UseRead | UseWrite, 0},
		{"a4", Mode32, UseRead | UseWrite, 0}, // MOVS: one of each
		{"90", Mode32, 0, -1},
		{"8d03", Mode32, 0, 1}, // LEA: an address, no access
		{"0f1803", Mode32, 0, 0},
	}
	for _, c := range cases {
		b, _ := hex.DecodeString(c.hex)
		var in Inst
		if err := Decode(b, c.mode, &in); err != nil {
			t.Fatalf("% x: %v", b, err)
		}
		if got := in.MemUse(); got != c.want {
			t.Errorf("% x: MemUse %v, want %v", b, got, c.want)
		}
		if got := in.MemArg(); got != c.arg {
			t.Errorf("% x: MemArg %d, want %d", b, got, c.arg)
		}
	}
}

// The undocumented aliases CPUs execute: shift group /6 is SAL (= SHL), and
// F6/F7 /1 is TEST. Decoding them as #UD would make walkvm inject a fault
// the CPU never raises.
func TestUndocumentedAliases(t *testing.T) {
	for _, c := range []struct {
		hex  string
		mode Mode
		op   Op
		len  uint8
	}{
		{"d1f0", Mode32, SHL, 2},          // sal %eax (D1 /6)
		{"c1300a", Mode32, SHL, 3},        // sal $10,(%eax) (C1 /6)
		{"48d3f3", Mode64, SHL, 3},        // sal %cl,%rbx
		{"f6c85a", Mode32, TEST, 3},       // test $0x5a,%al (F6 /1)
		{"f70878563412", Mode32, TEST, 6}, // testl $0x12345678,(%eax) (F7 /1)
	} {
		var inst Inst
		b, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		if err := Decode(b, c.mode, &inst); err != nil {
			t.Errorf("%s: %v", c.hex, err)
			continue
		}
		if inst.Op != c.op || inst.Len != c.len {
			t.Errorf("%s: %v len %d, want %v len %d", c.hex, inst.Op, inst.Len, c.op, c.len)
		}
	}
}
