package decode

import (
	"fmt"
	"strings"

	"walkvm/x86"
)

var (
	gpr8  = [...]string{"al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"}
	gpr8h = [...]string{"ah", "ch", "dh", "bh"}
	gpr16 = [...]string{"ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"}
	gpr32 = [...]string{"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"}
)

// gprName names register r at size bytes ("eax", "r9w", "ah").
func gprName(r x86.Reg, size uint8, high bool) string {
	if int(r) >= len(gpr8) {
		return fmt.Sprintf("reg%d", r)
	}
	switch size {
	case 1:
		if high && int(r) < len(gpr8h) {
			return gpr8h[r]
		}
		return gpr8[r]
	case 2:
		return gpr16[r]
	case 4:
		return gpr32[r]
	}
	return r.String()
}

// String renders the decoded instruction in an Intel-like syntax, from
// walkvm's own decode (no x86asm): prefixes, mnemonic, operands, with
// memory operands spelled out as segment:[base+index*scale+disp] and their
// access size. RIP-relative operands show "rip+disp".
func (i *Inst) String() string {
	var sb strings.Builder
	p := &i.Prefix
	if p.Lock {
		sb.WriteString("lock ")
	}
	if p.Rep && i.isString() {
		sb.WriteString("rep ")
	}
	if p.Repne && i.isString() {
		sb.WriteString("repne ")
	}
	if i.Op == VEXOTHER {
		fmt.Fprintf(&sb, "(vex %v %02x)", i.Map, i.Opcode)
	} else {
		sb.WriteString(i.Op.String())
	}
	for n := range i.Args {
		a := &i.Args[n]
		if a.Kind == ArgNone {
			break
		}
		if n == 0 {
			sb.WriteByte(' ')
		} else {
			sb.WriteString(", ")
		}
		sb.WriteString(a.String())
	}
	return sb.String()
}

func (i *Inst) isString() bool {
	switch i.Op {
	case MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS:
		return true
	}
	return false
}

// String renders one operand.
func (a *Arg) String() string {
	switch a.Kind {
	case ArgReg:
		return gprName(a.Reg, a.Size, a.High)
	case ArgSeg:
		return a.Seg.String()
	case ArgXMM:
		if a.Size == 32 {
			return fmt.Sprintf("ymm%d", a.Reg)
		}
		return fmt.Sprintf("xmm%d", a.Reg)
	case ArgMMX:
		return fmt.Sprintf("mm%d", a.Reg)
	case ArgST:
		return fmt.Sprintf("st(%d)", a.Reg)
	case ArgCR:
		return fmt.Sprintf("cr%d", a.Reg)
	case ArgDR:
		return fmt.Sprintf("dr%d", a.Reg)
	case ArgImm:
		return fmt.Sprintf("%#x", uint64(a.Imm)&sizeMask(a.Size))
	case ArgRel:
		return fmt.Sprintf(".%+#x", a.Imm)
	case ArgMem:
		return a.Mem.String()
	}
	return "?"
}

func sizeMask(n uint8) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(n)) - 1
}

var ptrNames = map[uint16]string{1: "byte", 2: "word", 4: "dword", 8: "qword", 10: "tbyte", 16: "xmmword", 32: "ymmword"}

// String renders a memory operand: "dword ptr ds:[rbx+rcx*4+0x10]".
func (m *Mem) String() string {
	var sb strings.Builder
	if n, ok := ptrNames[m.Size]; ok {
		sb.WriteString(n + " ptr ")
	} else if m.Size != 0 {
		fmt.Fprintf(&sb, "m%d ptr ", m.Size)
	}
	sb.WriteString(m.Seg.String())
	sb.WriteString(":[")
	sep := ""
	if m.RIPRel {
		if m.AddrSize == 4 {
			sb.WriteString("eip")
		} else {
			sb.WriteString("rip")
		}
		sep = "+"
	}
	if m.Base != RegNone {
		sb.WriteString(gprName(m.Base, m.AddrSize, false))
		sep = "+"
	}
	if m.Index != RegNone {
		sb.WriteString(sep)
		if m.VSIB {
			fmt.Fprintf(&sb, "vec%d", m.Index)
		} else {
			sb.WriteString(gprName(m.Index, m.AddrSize, false))
		}
		if m.Scale > 1 {
			fmt.Fprintf(&sb, "*%d", m.Scale)
		}
		sep = "+"
	}
	switch {
	case sep == "":
		fmt.Fprintf(&sb, "%#x", uint64(m.Disp)&sizeMask(m.AddrSize))
	case m.Disp > 0:
		fmt.Fprintf(&sb, "+%#x", m.Disp)
	case m.Disp < 0:
		fmt.Fprintf(&sb, "-%#x", -m.Disp)
	}
	sb.WriteByte(']')
	return sb.String()
}
