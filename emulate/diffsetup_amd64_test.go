//go:build amd64 && linux

package emulate

import (
	"encoding/binary"
	"math/bits"

	"walkvm/emulate/decode"
	"walkvm/emulate/internal/hostcpu"
	"walkvm/x86"
)

// Forms without a ModRM memory operand whose memory is implicit: string
// instructions, stack instructions, XLAT. Each is the opcode bytes after
// the legacy prefixes and REX, and the length of its immediate.
var implicitForms = []struct {
	opcode []byte
	immLen int
	pfx    [][]byte
	rexW   bool
}{
	{[]byte{0xa4}, 0, stringPrefixes, false}, {[]byte{0xa5}, 0, stringPrefixes, true},
	{[]byte{0xa6}, 0, stringPrefixes, false}, {[]byte{0xa7}, 0, stringPrefixes, true},
	{[]byte{0xaa}, 0, stringPrefixes, false}, {[]byte{0xab}, 0, stringPrefixes, true},
	{[]byte{0xac}, 0, stringPrefixes, false}, {[]byte{0xad}, 0, stringPrefixes, true},
	{[]byte{0xae}, 0, stringPrefixes, false}, {[]byte{0xaf}, 0, stringPrefixes, true},
	{[]byte{0x9c}, 0, opsizePrefixes, false}, {[]byte{0x9d}, 0, opsizePrefixes, false},
	{[]byte{0x50}, 0, opsizePrefixes, false}, {[]byte{0x53}, 0, opsizePrefixes, false},
	{[]byte{0x5b}, 0, opsizePrefixes, false}, {[]byte{0x58}, 0, opsizePrefixes, false},
	{[]byte{0x68}, 4, opsizePrefixes, false}, {[]byte{0x6a}, 1, opsizePrefixes, false},
	{[]byte{0x0f, 0xa8}, 0, opsizePrefixes, false}, {[]byte{0x0f, 0xa9}, 0, opsizePrefixes, false},
	{[]byte{0xc8}, 3, opsizePrefixes, false}, {[]byte{0xc9}, 0, opsizePrefixes, false},
	{[]byte{0xc3}, 0, [][]byte{nil}, false}, {[]byte{0xc2}, 2, [][]byte{nil}, false},
	{[]byte{0xcb}, 0, opsizePrefixes, true}, {[]byte{0xca}, 2, opsizePrefixes, true},
	{[]byte{0xd7}, 0, [][]byte{nil}, false},
}

var (
	stringPrefixes = [][]byte{nil, {0x66}, {0xf3}, {0xf2}, {0x66, 0xf3}, {0xf2, 0x66}}
	opsizePrefixes = [][]byte{nil, {0x66}}
)

// addImplicitForms appends the implicit-memory forms.
func addImplicitForms(forms []diffForm, env *hostEnv) []diffForm {
	inst := &decode.Inst{}
	for _, im := range implicitForms {
		for _, p := range im.pfx {
			for w := 0; w < 2; w++ {
				if w == 1 && !im.rexW {
					continue
				}
				b := append([]byte{}, p...)
				if w == 1 {
					b = append(b, 0x48)
				}
				b = append(b, im.opcode...)
				b = append(b, make([]byte, im.immLen)...)
				if decode.Decode(b, decode.Mode64, inst) != nil {
					continue
				}
				imm := int(inst.Len) - (len(b) - im.immLen) // 66 shortens PUSH imm
				f := diffForm{op: inst.Op, class: FactsOf(inst.Op).Class, legacy: p, rexW: w == 1,
					opcode: im.opcode, reg: -1, immLen: imm, implicit: true}
				f.name = inst.Op.String() + " " + hexs(b[:len(b)-im.immLen])
				f.avoid = avoidNative(&f, env)
				forms = append(forms, f)
			}
		}
	}
	return forms
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, d[c>>4], d[c&15])
	}
	return string(s)
}

// memArgReg reports whether GPR r feeds the address of inst's memory
// operand.
func memArgReg(inst *decode.Inst, r x86.Reg) bool {
	mi := inst.MemArg()
	if mi < 0 {
		return false
	}
	m := &inst.Args[mi].Mem
	return m.Base == r || m.Index == r
}

// setLow sets the low n bytes of GPR r.
func setLow(c *diffCase, r x86.Reg, n uint8, v uint64) {
	m := sizeMask(n)
	c.regs.GPR[r&15] = c.regs.GPR[r&15]&^m | v&m
}

func readLE(b []byte, n int) uint64 {
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func init() {
	bitString := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		src := &inst.Args[1]
		if src.Kind != decode.ArgReg || memArgReg(inst, src.Reg) {
			return
		}
		n := int64(inst.OpSize)
		off := int64(g.rng.IntN(0x1000)) - 0x800
		setLow(c, src.Reg, inst.OpSize, uint64(off))
		a := uint64(int64(c.target) + (off>>(3+log2(uint8(n))))*n)
		g.window(a-16, 32+int(n), native, emu)
	}
	for _, op := range []decode.Op{decode.BT, decode.BTS, decode.BTR, decode.BTC} {
		classSetups[op] = bitString
	}
	classSetups[decode.CMPXCHG] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		if g.rng.IntN(2) == 0 || inst.MemArg() != 0 || memArgReg(inst, x86.RAX) {
			return
		}
		setLow(c, x86.RAX, inst.OpSize, readLE(native[c.target-nBase:], int(inst.OpSize)))
	}
	classSetups[decode.CMPXCHG8B] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		if g.rng.IntN(2) == 0 || memArgReg(inst, x86.RAX) || memArgReg(inst, x86.RDX) {
			return
		}
		n := int(inst.Args[0].Mem.Size) / 2
		setLow(c, x86.RAX, uint8(n), readLE(native[c.target-nBase:], n))
		setLow(c, x86.RDX, uint8(n), readLE(native[c.target-nBase+uint64(n):], n))
	}
	classSetups[decode.CMPXCHG16B] = classSetups[decode.CMPXCHG8B]
	divide := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		// Mostly dividends whose quotient fits, some that overflow or
		// divide by zero (#DE).
		if inst.MemArg() != 0 || memArgReg(inst, x86.RAX) || memArgReg(inst, x86.RDX) {
			return
		}
		n := inst.OpSize
		d := readLE(native[c.target-nBase:], int(n))
		r := g.rng.IntN(10)
		switch {
		case r == 0:
			return // as random
		case r == 1 && d == 0:
			return
		}
		if d == 0 {
			d = 1 + uint64(g.rng.IntN(1000))&sizeMask(n)>>1
			for i := range int(n) {
				native[c.target-nBase+uint64(i)] = byte(d >> (8 * i))
				emu[c.target-nBase+uint64(i)] = byte(d >> (8 * i))
			}
		}
		signed := inst.Op == decode.IDIV
		lo := c.regs.GPR[x86.RAX] & sizeMask(n)
		var hi uint64
		switch {
		case signed:
			// The sign extension of the low half: a quotient that fits
			// unless the divisor is -1 and the dividend the minimum.
			if lo>>(8*n-1)&1 != 0 {
				hi = sizeMask(n)
			}
		default:
			hi = g.rng.Uint64() % (d & sizeMask(n))
		}
		if n == 1 {
			setLow(c, x86.RAX, 2, hi<<8|lo)
			return
		}
		setLow(c, x86.RDX, n, hi)
	}
	classSetups[decode.DIV] = divide
	classSetups[decode.IDIV] = divide
	branch := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		if inst.MemArg() < 0 {
			return
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], hostcpu.BranchTarget)
		copy(native[c.target-nBase:], b[:])
		copy(emu[c.target-nBase:], b[:])
	}
	classSetups[decode.CALL] = branch
	classSetups[decode.JMP] = branch
	classSetups[decode.RET] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], hostcpu.BranchTarget)
		sp := c.regs.GPR[x86.RSP] - nBase
		copy(native[sp:], b[:])
		copy(emu[sp:], b[:])
	}
	stackFrame := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		c.regs.GPR[x86.RBP] = nStackAddr + 0x400 + uint64(g.rng.IntN(0x800))&^7
		if g.rng.IntN(4) == 0 {
			c.regs.GPR[x86.RBP] += uint64(g.rng.IntN(8))
		}
		g.window(c.regs.GPR[x86.RBP]-0x100, 0x110, native, emu)
	}
	classSetups[decode.ENTER] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		stackFrame(g, c, inst, native, emu)
		// The allocation keeps the final rSP in the stack and data pages,
		// or takes it below the region (a fault on both sides), never
		// onto the control page.
		room := c.regs.GPR[x86.RSP] - nDataAddr - 33*8
		alloc := uint64(g.rng.IntN(int(room)))
		if g.rng.IntN(8) == 0 {
			alloc = 0xFFFF
		}
		k := c.n - 3
		c.code[k], c.code[k+1] = byte(alloc), byte(alloc>>8)
	}
	classSetups[decode.LEAVE] = stackFrame
	classSetups[decode.XLAT] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		t := g.dataTarget(1)
		c.regs.GPR[x86.RBX] = t - c.regs.GPR[x86.RAX]&0xFF
		if inst.AddrSize == 4 {
			c.regs.GPR[x86.RBX] = c.regs.GPR[x86.RBX]&0xFFFFFFFF | g.rng.Uint64()<<32
		}
		g.window(t-8, 16, native, emu)
	}
	str := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		n := uint64(inst.OpSize)
		rep := inst.Prefix.Rep || inst.Prefix.Repne
		cnt := uint64(1)
		if rep {
			cnt = uint64(g.rng.IntN(40))
			c.regs.GPR[x86.RCX] = c.regs.GPR[x86.RCX]&^addrMask(inst.AddrSize) | cnt
		}
		down := c.regs.RFLAGS&x86.FlagDF != 0
		span := cnt * n
		ptr := func() uint64 {
			a := nDataAddr + 0x600 + uint64(g.rng.IntN(nDataSize-0xC00))
			if g.rng.IntN(2) == 0 {
				a &^= n - 1
			}
			return a
		}
		si, di := ptr(), ptr()
		if g.rng.IntN(4) == 0 { // overlapping source and destination
			di = si + uint64(g.rng.IntN(16)) - 8
		}
		lo := func(p uint64) uint64 {
			if down {
				return p - span
			}
			return p
		}
		g.window(lo(si)-8, int(span)+16, native, emu)
		g.window(lo(di)-8, int(span)+16, native, emu)
		// REPE/REPNE comparisons: equal runs so that loops go on.
		if inst.Op == decode.CMPS && g.rng.IntN(2) == 0 {
			k := uint64(g.rng.IntN(int(span) + 1))
			copy(native[lo(di)-nBase:lo(di)-nBase+k], native[lo(si)-nBase:])
			copy(emu[lo(di)-nBase:], native[lo(di)-nBase:lo(di)-nBase+k])
		}
		if inst.Op == decode.SCAS && g.rng.IntN(2) == 0 {
			k := uint64(g.rng.IntN(int(cnt) + 1))
			for i := uint64(0); i < k; i++ {
				for j := uint64(0); j < n; j++ {
					v := byte(c.regs.GPR[x86.RAX] >> (8 * j))
					a := di + i*n + j - nBase
					if down {
						a = di - i*n + j - nBase
					}
					native[a], emu[a] = v, v
				}
			}
		}
		am := addrMask(inst.AddrSize)
		garbage := func() uint64 {
			if inst.AddrSize == 4 {
				return g.rng.Uint64() &^ 0xFFFFFFFF
			}
			return 0
		}
		c.regs.GPR[x86.RSI] = si&am | garbage()
		c.regs.GPR[x86.RDI] = di&am | garbage()
	}
	for _, op := range []decode.Op{decode.MOVS, decode.STOS, decode.LODS, decode.CMPS, decode.SCAS} {
		classSetups[op] = str
	}
	classSetups[decode.POPF] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		// TF would trap after the instruction (SIGTRAP); AC is fine.
		a := c.regs.GPR[x86.RSP] - nBase + 1
		native[a] &^= 1
		emu[a] = native[a]
	}
	sel := func(g *diffGen, c *diffCase, at uint64, native, emu []byte) {
		v := g.selector()
		native[at-nBase], native[at-nBase+1] = byte(v), byte(v>>8)
		copy(emu[at-nBase:], native[at-nBase:at-nBase+2])
	}
	classSetups[decode.MOV] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		if inst.Args[0].Kind == decode.ArgSeg && inst.Args[1].Kind == decode.ArgMem {
			sel(g, c, c.target, native, emu)
		}
	}
	for _, op := range []decode.Op{decode.LSS, decode.LGS, decode.LFS} {
		classSetups[op] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
			sel(g, c, c.target+uint64(inst.OpSize), native, emu)
		}
	}
	for _, op := range []decode.Op{decode.LAR, decode.LSL, decode.VERR, decode.VERW} {
		classSetups[op] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
			sel(g, c, c.target, native, emu)
		}
	}
	classSetups[decode.POP] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		if inst.Args[0].Kind == decode.ArgSeg {
			sel(g, c, c.regs.GPR[x86.RSP], native, emu)
		}
	}
}

// selector is a segment selector for a load: mostly the user ones, also
// null, kernel, system, beyond the GDT, in the LDT, and random.
func (g *diffGen) selector() uint16 {
	r := g.rng
	switch r.IntN(4) {
	case 0, 1:
		return []uint16{0x2b, 0x2b, 0x23, 0x33, 0x7b, 0, 3}[r.IntN(7)] | uint16(r.IntN(4))
	case 2:
		return uint16(r.IntN(0x90))
	}
	return uint16(r.Uint32())
}

// randExt80 is an extended-precision value with a bias to the special
// encodings: zeros, denormals, pseudo-denormals, unnormals, infinities,
// NaNs (quiet, signalling, indefinite), and values near the binary32 and
// binary64 limits.
func (g *diffGen) randExt80() [10]byte {
	r := g.rng
	var mant uint64
	var exp uint16
	switch r.IntN(10) {
	case 0: // zero
	case 1: // denormal or pseudo-denormal
		mant = r.Uint64() >> 1
		if r.IntN(2) == 0 {
			mant |= 1 << 63
		}
	case 2: // infinity or NaN
		exp = 0x7FFF
		mant = 1<<63 | []uint64{0, 1 << 62, r.Uint64() >> 2, 1, r.Uint64() >> 1}[r.IntN(5)]
	case 3: // unnormal or pseudo-NaN/infinity
		exp = uint16(r.IntN(0x8000))
		mant = r.Uint64() >> 1
	case 4: // near the edges of binary32 and binary64
		exp = uint16(16383 + []int{127, 128, -126, -127, -149, -150, 1023, 1024, -1022, -1023, -1074, -1075, 63, 31, 15}[r.IntN(15)])
		mant = 1<<63 | r.Uint64()>>r.IntN(64)
	case 5: // small integers
		v := uint64(r.IntN(1 << 20))
		if v != 0 {
			lz := bits.LeadingZeros64(v)
			mant = v << lz
			exp = uint16(16383 + 63 - lz)
		}
	default:
		exp = uint16(16383 + r.IntN(200) - 100)
		mant = 1<<63 | r.Uint64()
	}
	if r.IntN(2) == 0 {
		exp |= 0x8000
	}
	var b [10]byte
	binary.LittleEndian.PutUint64(b[:], mant)
	binary.LittleEndian.PutUint16(b[8:], exp)
	return b
}

// randX87 fills the x87 part of f: control word (precision, rounding,
// masks, mostly masked), stack depth and tags, register contents, status
// flags (with ES consistent with them, mostly) and pointers.
func (g *diffGen) randX87(f *FPUState) {
	r := g.rng
	f.FCW = 0x037F
	f.FCW = f.FCW&^0xF00 | uint16(r.IntN(16))<<8 // PC and RC
	if r.IntN(3) == 0 {
		f.FCW &^= uint16(r.IntN(64)) // some exceptions unmasked
	}
	if r.IntN(8) == 0 {
		f.FCW ^= uint16(r.Uint32()) & 0x1000 // the legacy infinity control
	}
	f.FCW = fcwLoad(f.FCW) // as the CPU holds it
	top := uint(r.IntN(8))
	depth := uint(r.IntN(9))
	f.FTWX = 0
	for i := range depth {
		f.FTWX |= 1 << ((top + i) & 7)
	}
	if r.IntN(6) == 0 {
		f.FTWX = uint8(r.Uint32()) // holes in the stack
	}
	for i := range f.FPR {
		f.FPR[i] = [16]byte{}
		v := g.randExt80()
		copy(f.FPR[i][:10], v[:])
	}
	f.FSW = uint16(top) << 11
	if r.IntN(3) == 0 {
		f.FSW |= uint16(r.Uint32()) & 0x477F // flags, SF, C0-C3
	}
	// ES and B follow the flags and masks, as the CPU holds them: mostly
	// no pending exception, sometimes one.
	if r.IntN(10) != 0 {
		f.FSW &^= (f.FSW &^ f.FCW) & fswExc
	}
	f.setSummary()
	// Pointers a CPU holds: addresses (the host keeps 56 bits).
	f.LastOpcode = uint16(r.IntN(0x800))
	f.LastIP = r.Uint64() >> (17 + r.IntN(47))
	f.LastDP = r.Uint64() >> (17 + r.IntN(47))
}

func init() {
	x87 := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		g.randX87(&c.fpu)
		mi := inst.MemArg()
		if mi < 0 || g.rng.IntN(3) == 0 {
			return
		}
		// A float operand worth loading: a converted extended value.
		a := &inst.Args[mi]
		if !a.Mem.Use.Reads() {
			return
		}
		v := g.randExt80()
		var b []byte
		switch {
		case a.Mem.Size == 10 && inst.Op != decode.FBLD && inst.Op != decode.FRSTOR:
			b = v[:]
		case a.Mem.Size == 8 && inst.Opcode == 0xDC || inst.Op == decode.FLD && a.Mem.Size == 8:
			e, _ := Ext80FromBytes(v[:]), 0
			d, _, _ := Ext80ToFloat64(e, 0)
			b = binary.LittleEndian.AppendUint64(nil, d)
		case a.Mem.Size == 4 && (inst.Opcode == 0xD8 || inst.Opcode == 0xD9):
			e := Ext80FromBytes(v[:])
			d, _, _ := Ext80ToFloat32(e, 0)
			b = binary.LittleEndian.AppendUint32(nil, d)
		}
		copy(native[c.target-nBase:], b)
		copy(emu[c.target-nBase:], b)
	}
	for _, op := range []decode.Op{decode.FADD, decode.FMUL, decode.FCOM, decode.FCOMP, decode.FSUB, decode.FSUBR, decode.FDIV, decode.FDIVR,
		decode.FIADD, decode.FIMUL, decode.FICOM, decode.FICOMP, decode.FISUB, decode.FISUBR, decode.FIDIV, decode.FIDIVR,
		decode.FLD, decode.FST, decode.FSTP, decode.FILD, decode.FIST, decode.FISTP, decode.FISTTP, decode.FBLD, decode.FBSTP,
		decode.FLDENV, decode.FLDCW, decode.FNSTENV, decode.FNSTCW, decode.FRSTOR, decode.FNSAVE, decode.FNSTSW} {
		classSetups[op] = x87
	}
}

// randSSE fills the SSE and AVX part of f: XMM and YMM upper halves with
// float-like and random lanes, and an MXCSR with random rounding, DAZ,
// FTZ, flags and mostly masked exceptions.
func (g *diffGen) randSSE(f *FPUState) {
	r := g.rng
	for i := range f.XMM {
		for j := 0; j < 16; j += 4 {
			v := r.Uint32()
			switch r.IntN(6) {
			case 0:
				v = 0
			case 1:
				v = []uint32{0x3f800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000, 0x00000001, 0x007fffff, 0x80000000, 0x7f7fffff, 0x00800000}[r.IntN(10)]
			}
			binary.LittleEndian.PutUint32(f.XMM[i][j:], v)
			binary.LittleEndian.PutUint32(f.YMMH[i][j:], r.Uint32()&uint32(-r.IntN(2)))
		}
	}
	f.MXCSR = 0x1F80 | uint32(r.IntN(4))<<13 // RC
	if r.IntN(4) == 0 {
		f.MXCSR |= 0x8040 &^ (uint32(r.IntN(4)) << 6) // FTZ, DAZ
	}
	if r.IntN(3) == 0 {
		f.MXCSR |= uint32(r.IntN(64)) // flags
	}
	if r.IntN(4) == 0 {
		f.MXCSR &^= uint32(r.IntN(64)) << 7 // unmasked exceptions
	}
	f.MXCSRMask = g.env.mxcsrMask
}

func init() {
	xstate := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		g.randX87(&c.fpu)
		g.randSSE(&c.fpu)
		r := g.rng
		// RFBM within the three components the emulator holds (the
		// host's XCR0 has AVX-512's too; the emulator's state says 7).
		if !memArgReg(inst, x86.RAX) {
			c.regs.GPR[x86.RAX] = c.regs.GPR[x86.RAX]&^0xFF | uint64(r.IntN(8))
		}
		if !memArgReg(inst, x86.RDX) && r.IntN(2) == 0 {
			c.regs.GPR[x86.RDX] = 0
		}

		at := c.target - nBase
		switch inst.Op {
		case decode.XRSTOR, decode.FXRSTOR, decode.LDMXCSR:
			// A valid image most of the time: an XSAVE of a random
			// state, header clean.
			if r.IntN(5) == 0 {
				return
			}
			f := FPUState{HasYMM: true}
			g.randX87(&f)
			g.randSSE(&f)
			if inst.Op == decode.LDMXCSR {
				binary.LittleEndian.PutUint32(native[at:], f.MXCSR)
				copy(emu[at:], native[at:at+4])
				return
			}
			n := uint64(XSAVEMinSize)
			if at+n > uint64(len(native)) || c.target+n > nHigh {
				return
			}
			img := make([]byte, n)
			_ = f.MarshalXSAVE(img)
			binary.LittleEndian.PutUint64(img[xsaveHeader:], uint64(r.IntN(8)))
			copy(native[at:], img)
			copy(emu[at:], img)
		}
	}
	for _, op := range []decode.Op{decode.LDMXCSR, decode.STMXCSR, decode.FXSAVE, decode.FXRSTOR, decode.XSAVE, decode.XSAVEOPT, decode.XRSTOR} {
		classSetups[op] = xstate
	}
}

func init() {
	classSetups[decode.MOVDIR64B] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		d := g.dataTarget(64)
		if g.rng.IntN(4) != 0 {
			d &^= 63
		}
		r := inst.Args[0].Mem.Base
		c.regs.GPR[r] = d&addrMask(inst.AddrSize) | c.regs.GPR[r]&^addrMask(inst.AddrSize)
		g.window(d-16, 96, native, emu)
	}
}

func init() {
	// Far branches: to 0x33 (the host's 64-bit user code) at the landing
	// pad half the time, else to a selector from the GDT mix.
	ptr := func(g *diffGen, at uint64, n int, native, emu []byte) {
		sel := uint16(0x33)
		if g.rng.IntN(2) == 0 {
			sel = g.selector()
		}
		b := make([]byte, n+2)
		putLE(b[:n], hostcpu.BranchTarget)
		putLE(b[n:], uint64(sel))
		copy(native[at-nBase:], b)
		copy(emu[at-nBase:], b)
	}
	far := func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		if inst.MemArg() >= 0 {
			ptr(g, c.target, int(inst.OpSize), native, emu)
		}
	}
	classSetups[decode.JMPF] = far
	classSetups[decode.CALLF] = far
	classSetups[decode.RETF] = func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte) {
		ptr(g, c.regs.GPR[x86.RSP], int(inst.OpSize), native, emu)
	}
}
