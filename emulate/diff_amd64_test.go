//go:build amd64 && linux

package emulate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"walkvm/emulate/decode"
	"walkvm/emulate/internal/hostcpu"
	"walkvm/emulate/internal/hostfpu"
	"walkvm/x86"
)

// pinCPU locks the goroutine to its thread and the thread to one CPU (the
// GDT's address differs between CPUs, and SGDT reports it), and returns
// the undo.
func pinCPU() func() {
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if unix.SchedGetaffinity(0, &old) != nil {
		return runtime.UnlockOSThread
	}
	for c := 0; c < 1024; c++ {
		if old.IsSet(c) {
			one.Set(c)
			break
		}
	}
	_ = unix.SchedSetaffinity(0, &one)
	return func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

// The executor's differential test against the CPU (TestExecNative): every
// form walkvm decodes that has a memory operand and runs at CPL 3 is run on
// the host CPU (hostcpu.Native: an executable page, every GPR, RFLAGS and
// the x87/SSE/AVX state set before and captured after, faults caught) and
// through Step from the same state, memory and operand, and the two results
// must agree: GPRs, RIP (fall-through or branch), RFLAGS with the flags the
// instruction's row leaves undefined masked, the x87/SSE/AVX state, every
// byte of the data and stack pages, and the fault (vector, and CR2 for #PF)
// when there is one. Natively faulting cases (#DE, #GP for misaligned
// vector operands, #UD, #MF, #XM, #PF, #AC) are run natively: the runner
// catches the signal and compares the fault.

var (
	execCases = flag.Int("exec.cases", 0, "random cases per class in TestExecNative (0: $WALKVM_EXEC_CASES, else 3000)")
	execSeed  = flag.Uint64("exec.seed", 1, "seed of TestExecNative's generator")
	execClass = flag.String("exec.class", "", "run only these classes of TestExecNative (comma-separated)")
	execShow  = flag.Int("exec.show", 5, "differences TestExecNative prints per class")
	execTable = flag.Bool("exec.table", false, "print TestExecNative's per-class table (markdown)")
)

func execCaseCount() int {
	if *execCases > 0 {
		return *execCases
	}
	if v, err := strconv.Atoi(os.Getenv("WALKVM_EXEC_CASES")); err == nil && v > 0 {
		return v
	}
	return 3000
}

const (
	nBase      = hostcpu.NativeBase
	nCodeAddr  = hostcpu.CodeAddr
	nDataAddr  = hostcpu.DataAddr
	nDataSize  = hostcpu.DataSize
	nStackAddr = hostcpu.StackAddr
	nStackSize = hostcpu.StackSize
	// nLow..nHigh is what the emulator sees as data memory (the data,
	// stack and scratch pages), and the code page besides.
	nLow  = nDataAddr
	nHigh = hostcpu.ScratchAddr + 0x1000
)

// diffMem is the emulator's view of the region: identity-mapped, RAM only.
// The page of the host's GDT (a kernel address SGDT reports) maps onto the
// copy the test keeps in the scratch page.
type diffMem struct {
	b   []byte // b[i] is address nBase+i
	gdt uint64 // linear address of the host's GDT, 0 if unknown
}

func (m *diffMem) Translate(la uint64, in Intent) (uint64, error) {
	if la >= nLow && la < nHigh || la>>12 == nCodeAddr>>12 {
		return la, nil
	}
	if m.gdt != 0 && la >= m.gdt && la < m.gdt+0x80 {
		return gdtAddr + la - m.gdt, nil
	}
	code := uint32(x86.PFErrUser)
	if in.Access.Write() {
		code |= x86.PFErrWrite
	}
	if in.Access.Fetch() {
		code |= x86.PFErrFetch
	}
	return 0, x86.PageFault(la, code, "outside the differential region")
}

func (m *diffMem) ReadPhys(gpa uint64, b []byte) error {
	copy(b, m.b[gpa-nBase:])
	return nil
}

func (m *diffMem) WritePhys(gpa uint64, b []byte) error {
	copy(m.b[gpa-nBase:], b)
	return nil
}

// hostEnv is what the emulator's state needs to know about the host.
type hostEnv struct {
	feat  hostcpu.Features
	umip  bool      // SGDT and friends fault at CPL 3
	sregs [4]uint16 // DS, ES, SS, GS as the host's user mode has them
	gdt   [16]uint64
	// What SGDT, SIDT, SLDT, STR and SMSW report at CPL 3 (without
	// UMIP): the emulator's state holds the same.
	gdtr, idtr TableReg
	ldtr, tr   uint16
	cr0        uint64
	mxcsrMask  uint32 // what FXSAVE stores as MXCSR_MASK
}

// linuxGDT is the x86-64 Linux GDT as user mode sees it (arch/x86/include/
// asm/segment.h, cpu/common.c): kernel code and data at DPL 0, 32- and
// 64-bit user code and user data at DPL 3, the TSS at 0x40, empty TLS
// slots, and the CPUNODE read-only expand-down data segment at 0x78 (its
// limit, the CPU number, does not matter in 64-bit mode). Every descriptor
// has its accessed bit set, as the kernel's do once used. probeHost
// replaces the user-visible entries with what LAR and LSL report.
var linuxGDT = [16]uint64{
	1:  0x00cf9b000000ffff, // 0x08 kernel 32-bit code
	2:  0x00af9b000000ffff, // 0x10 kernel code
	3:  0x00cf93000000ffff, // 0x18 kernel data
	4:  0x00cffb000000ffff, // 0x23 user 32-bit code
	5:  0x00cff3000000ffff, // 0x2b user data
	6:  0x00affb000000ffff, // 0x33 user code
	8:  0x00008b0000000067, // 0x40 TSS (busy), low half
	15: 0x0040f50000000000, // 0x7b CPUNODE
}

// gdtAddr is where the emulator's copy of the GDT lives (the scratch page).
const gdtAddr = hostcpu.ScratchAddr

// diffState is the host's user mode as the emulator sees it: 64-bit code
// at CPL 3, flat segments, SSE and AVX enabled.
func diffState(env *hostEnv) *State {
	s := &State{RFLAGS: 0x202}
	s.CR0 = env.cr0
	s.CR4 = x86.CR4PAE | x86.CR4OSFXSR | x86.CR4OSXMMEXCPT | x86.CR4OSXSAVE
	if env.umip {
		s.CR4 |= x86.CR4UMIP
	}
	s.EFER = x86.EFERSCE | x86.EFERLME | x86.EFERLMA | x86.EFERNXE
	s.XCR0 = 7
	for i := range s.Seg {
		s.Seg[i] = x86.Segment{Limit: 0xFFFFFFFF, Type: 3, S: true, DPL: 3, Present: true, DB: true, G: true}
	}
	s.Seg[x86.CS] = x86.Segment{Selector: 0x33, Limit: 0xFFFFFFFF, Type: 0xB, S: true, DPL: 3, Present: true, L: true, G: true}
	for i, r := range diffSregs {
		s.Seg[r].Selector = env.sregs[i]
	}
	s.GDTR, s.IDTR = env.gdtr, env.idtr
	if s.GDTR.Limit == 0 {
		s.GDTR = TableReg{Base: gdtAddr, Limit: 0x7F}
	}
	s.LDTR = x86.Segment{Selector: env.ldtr, Unusable: env.ldtr == 0}
	s.TR = x86.Segment{Selector: env.tr, Type: 0xB, Present: true, Limit: 0x67}
	return s
}

// diffSregs are the segment registers the runner reports.
var diffSregs = [4]x86.SegReg{x86.DS, x86.ES, x86.SS, x86.GS}

// diffForm is one encoding of an instruction with a ModRM memory operand
// (or, for implicit-memory forms, complete bytes).
type diffForm struct {
	name     string
	class    Class
	op       decode.Op
	legacy   []byte // legacy prefixes
	rexW     bool
	opcode   []byte // escape and opcode bytes
	reg      int    // ModRM.reg, or -1 when it names a register operand
	immLen   int
	implicit bool // opcode is the whole instruction after the prefixes
	// vex is a VEX form's mmmmm, W, L and pp (nil for legacy forms);
	// vvvvFree says VEX.vvvv names a register (else it must be 1111b).
	vex      []byte
	vvvvFree bool
	memSize  int    // the memory operand's size
	avoid    string // why the form is not run natively (empty: it is)
}

// diffCase is one generated case.
type diffCase struct {
	form   *diffForm
	code   [decode.MaxLen]byte
	n      int
	regs   hostcpu.NativeRegs
	fpu    FPUState
	target uint64 // the memory operand's address
	// avoid is the GPRs the address must not use (a BT bit offset, the
	// RFBM of XSAVE), a bit each.
	avoid uint16
	mem   [16]byte // the operand's first bytes before the run
}

// diffGen generates cases.
type diffGen struct {
	rng  *rand.Rand
	env  *hostEnv
	data []byte // the region, both sides write windows into it
}

// randVal is a random register value with a bias to edges.
func (g *diffGen) randVal() uint64 {
	r := g.rng
	switch r.IntN(8) {
	case 0:
		return uint64(r.IntN(5)) - 2
	case 1:
		return 1 << r.IntN(64)
	case 2:
		return uint64(r.IntN(256))
	case 3:
		v := uint64(1)<<(8<<r.IntN(4)-1) - uint64(r.IntN(3)) // around 0x7F, 0x7FFF, ...
		return v
	case 4:
		return r.Uint64() >> r.IntN(64)
	}
	return r.Uint64()
}

// randBytes fills b with random bytes biased to runs of 00 and FF.
func (g *diffGen) randBytes(b []byte) {
	r := g.rng
	switch r.IntN(6) {
	case 0:
		clear(b)
	case 1:
		for i := range b {
			b[i] = 0xFF
		}
	default:
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(3) == 0 {
			for i := range b {
				if r.IntN(2) == 0 {
					b[i] = 0
				}
			}
		}
	}
}

// dataTarget picks an address for a memory operand of n bytes in the data
// pages, sometimes crossing a page boundary, sometimes aligned.
func (g *diffGen) dataTarget(n int) uint64 {
	r := g.rng
	var off int
	switch r.IntN(4) {
	case 0: // across a page boundary
		off = 0x1000*(1+r.IntN(2)) - 1 - r.IntN(max(n, 1))
	case 1: // aligned
		al := 1
		for al < n && al < 64 {
			al <<= 1
		}
		off = (0x200 + r.IntN(nDataSize-0x400)) &^ (al - 1)
	default:
		off = 0x200 + r.IntN(nDataSize-0x400)
	}
	return nDataAddr + uint64(off)
}

// gprName names GPR i for messages.
func gprName(i int) string { return x86.Reg(i).String() }

// modrmMem appends a ModRM/SIB/displacement addressing target with the
// registers of c (which it sets) and returns the new length, the REX bits
// it needs (X, B) and whether the address size is 32 bits.
func (g *diffGen) modrmMem(c *diffCase, b []byte, reg int, target uint64, nextLen int, addr32 bool) ([]byte, uint8) {
	r := g.rng
	var rex uint8
	reg &= 7
	pick := func(avoid ...int) int {
		for {
			x := r.IntN(16)
			ok := x != 4 && c.avoid>>x&1 == 0 // rSP stays the stack pointer
			for _, a := range avoid {
				if x == a {
					ok = false
				}
			}
			if ok {
				return x
			}
		}
	}
	mask := ^uint64(0)
	if addr32 {
		mask = 0xFFFFFFFF
	}
	garbage := func() uint64 {
		if addr32 {
			return g.rng.Uint64() &^ 0xFFFFFFFF
		}
		return 0
	}
	switch r.IntN(7) {
	case 0: // RIP-relative (not with 67: the sum would be truncated)
		if !addr32 {
			b = append(b, byte(reg<<3|5))
			disp := int64(target) - int64(nCodeAddr+uint64(len(b)+4+nextLen))
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(disp)))
			return b, rex
		}
		fallthrough
	case 1: // [disp32], SIB without base or index
		b = append(b, byte(reg<<3|4), 0x25)
		b = binary.LittleEndian.AppendUint32(b, uint32(target))
		return b, rex
	case 2, 3: // [base + disp8/disp32]
		base := pick(12) // r12 needs a SIB
		if base >= 8 {
			rex |= 1
		}
		var disp int64
		mod := 1 + r.IntN(2)
		if mod == 1 {
			disp = int64(int8(r.Uint32()))
		} else {
			disp = int64(int32(r.Uint32()>>r.IntN(32))) - 0x800
		}
		c.regs.GPR[base] = (target-uint64(disp))&mask | garbage()
		b = append(b, byte(mod<<6|reg<<3|base&7))
		if mod == 1 {
			b = append(b, byte(disp))
		} else {
			b = binary.LittleEndian.AppendUint32(b, uint32(disp))
		}
		return b, rex
	case 4: // [base] without displacement
		base := pick(12, 5, 13) // r12 needs a SIB, rBP and r13 a displacement
		if base >= 8 {
			rex |= 1
		}
		c.regs.GPR[base] = target&mask | garbage()
		b = append(b, byte(reg<<3|base&7))
		return b, rex
	}
	// [base + index*scale + disp8]
	base := pick()
	idx := pick(base)
	if base >= 8 {
		rex |= 1
	}
	if idx >= 8 {
		rex |= 2
	}
	sc := r.IntN(4)
	iv := g.randVal() & 0xFFFF
	if r.IntN(2) == 0 {
		iv = -iv // negative index
	}
	disp := int64(int8(r.Uint32()))
	mod := 1
	if base&7 == 5 && r.IntN(2) == 0 {
		mod = 1
	}
	c.regs.GPR[idx] = iv&mask | garbage()
	c.regs.GPR[base] = (target-iv<<sc-uint64(disp))&mask | garbage()
	b = append(b, byte(mod<<6|reg<<3|4), byte(sc<<6|(idx&7)<<3|base&7), byte(disp))
	return b, rex
}

// diffResult is one side's result.
type diffResult struct {
	sregs  [4]uint16
	gpr    [16]uint64
	rip    uint64
	rflags uint64
	vec    int // fault vector, -1 for none
	cr2    uint64
	fpu    FPUState
}

// diffReport collects a class's outcome.
type diffReport struct {
	class               Class
	forms, notRun       int
	cases, faults, diff int
	explained           map[string]int
	shown               int
	skipped             []string
}

// TestExecNative is the differential test; see the comment at the top.
func TestExecNative(t *testing.T) {
	nat, err := hostcpu.OpenNative()
	if err != nil {
		t.Skipf("no native runner: %v", err)
	}
	env := &hostEnv{feat: hostcpu.HostFeatures()}
	if !env.feat.OSXSAVE {
		t.Skip("the host has no XSAVE: the runner loads state with XRSTOR")
	}
	probeHost(nat, env)
	forms := enumerateForms(env)
	want := map[Class]bool{}
	if *execClass != "" {
		for _, c := range strings.Split(*execClass, ",") {
			for k := Class(1); k < NumClasses; k++ {
				if k.String() == c {
					want[k] = true
				}
			}
		}
	}
	byClass := map[Class][]*diffForm{}
	for i := range forms {
		f := &forms[i]
		byClass[f.class] = append(byClass[f.class], f)
	}
	var reports []*diffReport
	n := execCaseCount()
	for c := Class(0); c < NumClasses; c++ {
		if len(want) > 0 && !want[c] {
			continue
		}
		fs := byClass[c]
		rep := &diffReport{class: c, explained: map[string]int{}}
		reports = append(reports, rep)
		var run []*diffForm
		skip := map[string]int{}
		for _, f := range fs {
			rep.forms++
			if f.avoid != "" {
				rep.notRun++
				skip[f.avoid]++
				continue
			}
			run = append(run, f)
		}
		for why, k := range skip {
			rep.skipped = append(rep.skipped, fmt.Sprintf("%d forms: %s", k, why))
		}
		sort.Strings(rep.skipped)
		if len(run) == 0 {
			continue
		}
		t.Run(c.String(), func(t *testing.T) {
			runClass(t, nat, env, rep, run, n)
		})
	}
	if *execTable || testing.Verbose() {
		fmt.Println("| class | forms | run natively | cases | faults | differences | explained |")
		fmt.Println("|---|---|---|---|---|---|---|")
		for _, r := range reports {
			var ex []string
			for k, v := range r.explained {
				ex = append(ex, fmt.Sprintf("%s (%d)", k, v))
			}
			sort.Strings(ex)
			ex = append(ex, r.skipped...)
			fmt.Printf("| %s | %d | %d | %d | %d | %d | %s |\n", r.class, r.forms, r.forms-r.notRun, r.cases, r.faults, r.diff, strings.Join(ex, "; "))
		}
	}
}

// runClass runs n random cases over forms.
func runClass(t *testing.T, nat *hostcpu.Native, env *hostEnv, rep *diffReport, forms []*diffForm, n int) {
	seed := *execSeed
	defer pinCPU()()
	// The GDT and IDT live at per-CPU addresses: probe on this CPU.
	envc := *env
	env = &envc
	probeHost(nat, env)
	g := &diffGen{rng: rand.New(rand.NewPCG(seed, uint64(rep.class))), env: env, data: nat.Region()}
	for i, d := range env.gdt {
		binary.LittleEndian.PutUint64(nat.Region()[gdtAddr-nBase+8*uint64(i):], d)
	}
	emuMem := &diffMem{b: make([]byte, len(nat.Region())), gdt: env.gdtr.Base}
	syncRegion(emuMem.b, nat.Region())
	e := &Emulator{Mem: emuMem, MaxRep: 1 << 20}
	vec := &Vector{}
	if err := nat.Begin(); err != nil {
		t.Fatal(err)
	}
	ended := false
	end := func() {
		if !ended {
			nat.End()
			ended = true
		}
	}
	defer end()
	var c diffCase
	var out hostcpu.NativeResult
	region := nat.Region()
	for i := 0; i < n; i++ {
		f := forms[g.rng.IntN(len(forms))]
		g.newCase(&c, f, region, emuMem.b)
		// Native.
		writeXSave(region[hostcpu.XSaveIn-nBase:], &c.fpu)
		if os.Getenv("WALKVM_EXEC_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "%s % x %s mxcsr=%x fcw=%x\n", f.name, c.code[:c.n], fmtRegs(c.regs.GPR, c.regs.RFLAGS), c.fpu.MXCSR, c.fpu.FCW)
		}
		nat.Run(c.code[:c.n], &c.regs, &out)
		// Emulated.
		s := diffState(env)
		s.GPR = c.regs.GPR
		s.RFLAGS = c.regs.RFLAGS
		s.RIP = nCodeAddr
		vec.Set(&c.fpu)
		s.Vec = vec
		res, err := e.Step(s)
		nr := nativeSide(&out, region)
		er := diffResult{gpr: s.GPR, rip: s.RIP, rflags: s.RFLAGS, vec: -1}
		for i, sr := range diffSregs {
			er.sregs[i] = s.Seg[sr].Selector
		}
		if f, lerr := vec.State(); lerr == nil {
			er.fpu = *f
		}
		var x *x86.Exception
		var ne *NotEmulatedError
		switch {
		case errors.As(err, &x):
			er.vec, er.cr2 = int(x.Vector), x.Addr
		case errors.As(err, &ne):
			rep.cases++
			rep.diff++
			if rep.shown < *execShow {
				rep.shown++
				t.Errorf("%s % x: %v", f.name, c.code[:c.n], err)
			}
			syncRegion(emuMem.b, region)
			continue
		case err != nil:
			t.Fatalf("%s % x: %v", f.name, c.code[:c.n], err)
		}
		rep.cases++
		if nr.vec >= 0 {
			rep.faults++
		}
		why := compareDiff(&c, &nr, &er, &res, region, emuMem.b)
		if why != "" {
			if ex := explain(&c, &nr, &er, &res, region, emuMem.b); ex != "" {
				rep.explained[ex]++
			} else {
				rep.diff++
				if rep.shown < *execShow {
					rep.shown++
					inst := &decode.Inst{}
					_ = decode.Decode(c.code[:c.n], decode.Mode64, inst)
					t.Errorf("%s % x (%v): %s\n  in:  %s\n  mem: % x (at %#x, before)\n  cpu: %s\n  emu: %s%s", f.name, c.code[:c.n], inst, why,
						fmtRegs(c.regs.GPR, c.regs.RFLAGS), c.mem[:], c.target, fmtRegs(nr.gpr, nr.rflags), fmtRegs(er.gpr, er.rflags),
						fmtFPU(f.class, &c.fpu, &nr.fpu, &er.fpu))
				}
			}
			syncRegion(emuMem.b, region)
		}
	}
	end()
	if rep.diff > 0 {
		t.Errorf("%s: %d unexplained differences in %d cases", rep.class, rep.diff, rep.cases)
	}
}

// fmtFPU prints the x87 or SSE state of a vector class's failure.
func fmtFPU(c Class, in, n, e *FPUState) string {
	x := func(f *FPUState) string {
		return fmt.Sprintf("fcw=%04x fsw=%04x ftw=%02x fop=%x fip=%x fdp=%x st0=% x", f.FCW, f.FSW, f.FTWX, f.LastOpcode, f.LastIP, f.LastDP, f.FPR[0][:10])
	}
	switch c {
	case ClassX87:
		return "\n  fpu in:  " + x(in) + "\n  fpu cpu: " + x(n) + "\n  fpu emu: " + x(e)
	case ClassSSE, ClassAVX, ClassXState:
		return fmt.Sprintf("\n  mxcsr in %x cpu %x emu %x", in.MXCSR, n.MXCSR, e.MXCSR) +
			"\n  fpu in:  " + x(in) + "\n  fpu cpu: " + x(n) + "\n  fpu emu: " + x(e)
	}
	return ""
}

func fmtRegs(g [16]uint64, fl uint64) string {
	var sb strings.Builder
	for i, v := range g {
		fmt.Fprintf(&sb, "%s=%x ", gprName(i), v)
	}
	fmt.Fprintf(&sb, "fl=%x", fl)
	return sb.String()
}

// nativeSide converts the runner's result.
func nativeSide(out *hostcpu.NativeResult, region []byte) diffResult {
	r := diffResult{gpr: out.Regs.GPR, rflags: out.Regs.RFLAGS, vec: -1, sregs: out.Sregs}
	switch out.Landing {
	case hostcpu.LandFall:
		r.rip = 0 // filled by compareDiff from the instruction length
	case hostcpu.LandBranch:
		r.rip = hostcpu.BranchTarget
	case hostcpu.LandFault:
		r.vec = int(out.Trap)
		r.cr2 = out.CR2
		r.rip = nCodeAddr
	}
	_ = r.fpu.UnmarshalXSAVE(region[hostcpu.XSaveOut-nBase:])
	return r
}

// syncRegion copies the accessible pages of the region (the guard pages
// between them fault).
func syncRegion(dst, src []byte) {
	copy(dst[:0x2000], src[:0x2000])
	copy(dst[nLow-nBase:nHigh-nBase], src[nLow-nBase:nHigh-nBase])
}

// writeXSave writes f as a standard-format XSAVE image with a clean
// header (XCOMP_BV and the reserved bytes zero).
func writeXSave(b []byte, f *FPUState) {
	if f.MXCSR > 0xFFFF {
		panic(fmt.Sprintf("differential: MXCSR %#x has reserved bits; XRSTOR would fault in the runner", f.MXCSR))
	}
	clear(b[:XSAVEMinSize])
	_ = f.MarshalXSAVE(b)
}

// compareDiff returns why the two sides differ, or "".
func compareDiff(c *diffCase, nr, er *diffResult, res *Result, native, emu []byte) string {
	if nr.vec != er.vec {
		return fmt.Sprintf("fault: cpu %s (cr2 %#x), emulator %s (addr %#x)", vecName(nr.vec), nr.cr2, vecName(er.vec), er.cr2)
	}
	if nr.vec == x86.VectorPF && nr.cr2 != er.cr2 {
		return fmt.Sprintf("#PF address: cpu %#x, emulator %#x", nr.cr2, er.cr2)
	}
	if nr.vec < 0 && nr.rip == 0 {
		nr.rip = nCodeAddr + uint64(c.n)
	}
	if nr.rip != er.rip {
		return fmt.Sprintf("rip: cpu %#x, emulator %#x", nr.rip, er.rip)
	}
	if res.DestUndefined && nr.vec < 0 {
		maskDest(c, nr, er, native, emu)
	}
	for i := range nr.gpr {
		if nr.gpr[i] != er.gpr[i] {
			return fmt.Sprintf("%s: cpu %#x, emulator %#x", gprName(i), nr.gpr[i], er.gpr[i])
		}
	}
	if nr.sregs != er.sregs {
		return fmt.Sprintf("ds/es/ss/gs: cpu %x, emulator %x", nr.sregs, er.sregs)
	}
	mask := ^uint64(x86.FlagRF)
	if nr.vec < 0 {
		mask &^= res.Undefined
	}
	if nr.rflags&mask != er.rflags&mask {
		return fmt.Sprintf("rflags: cpu %#x, emulator %#x (undefined %#x)", nr.rflags, er.rflags, res.Undefined)
	}
	lo, hi := nDataAddr-nBase, nStackAddr+nStackSize-nBase
	if !bytes.Equal(native[lo:hi], emu[lo:hi]) {
		for i := lo; i < hi; i++ {
			if native[i] != emu[i] {
				a := i &^ 7
				return fmt.Sprintf("memory at %#x: cpu % x, emulator % x", nBase+uint64(a), native[a:a+16], emu[a:a+16])
			}
		}
	}
	if w := compareFPU(&nr.fpu, &er.fpu, nr.vec >= 0); w != "" {
		return w
	}
	return ""
}

// maskDest copies the CPU's destination into the emulator's result where
// the SDM leaves it undefined.
func maskDest(c *diffCase, nr, er *diffResult, native, emu []byte) {
	inst := &decode.Inst{}
	if decode.Decode(c.code[:c.n], decode.Mode64, inst) != nil {
		return
	}
	a := &inst.Args[0]
	switch a.Kind {
	case decode.ArgReg:
		er.gpr[a.Reg&15] = nr.gpr[a.Reg&15]
	case decode.ArgMem:
		off := c.target - nBase
		copy(emu[off:off+uint64(a.Mem.Size)], native[off:])
	}
}

// hostZeroesPointers says the host's XSAVE stores FOP, FIP and FDP as zero
// unless an unmasked x87 exception is pending: AMD processors do (the
// reason for Linux's X86_BUG_FXSAVE_LEAK workaround).
var hostZeroesPointers = hostcpu.HostFeatures().AMD

// compareFPU compares the vector state.
func compareFPU(n, e *FPUState, fault bool) string {
	switch {
	case n.FCW != e.FCW:
		return fmt.Sprintf("fcw: cpu %#x, emulator %#x", n.FCW, e.FCW)
	case n.FSW != e.FSW:
		return fmt.Sprintf("fsw: cpu %#x, emulator %#x", n.FSW, e.FSW)
	case n.FTWX != e.FTWX:
		return fmt.Sprintf("ftw: cpu %#x, emulator %#x", n.FTWX, e.FTWX)
	case n.MXCSR != e.MXCSR:
		return fmt.Sprintf("mxcsr: cpu %#x, emulator %#x", n.MXCSR, e.MXCSR)
	case n.FSW&FSWES == 0 && n.LastOpcode|uint16(n.LastIP)|uint16(n.LastDP) == 0 && hostZeroesPointers:
		// AMD saves the pointers only while ES is set.
	case fault:
		// The kernel's signal delivery saved and restored the state in
		// its own format: the pointers come back truncated.
	case n.LastOpcode != e.LastOpcode || n.LastIP != e.LastIP || n.LastDP != e.LastDP:
		return fmt.Sprintf("fop/fip/fdp: cpu %#x/%#x/%#x, emulator %#x/%#x/%#x", n.LastOpcode, n.LastIP, n.LastDP, e.LastOpcode, e.LastIP, e.LastDP)
	}
	for i := range n.FPR {
		if !bytes.Equal(n.FPR[i][:10], e.FPR[i][:10]) {
			return fmt.Sprintf("st(%d): cpu % x, emulator % x", i, n.FPR[i][:10], e.FPR[i][:10])
		}
	}
	for i := range n.XMM {
		if n.XMM[i] != e.XMM[i] || n.YMMH[i] != e.YMMH[i] {
			return fmt.Sprintf("ymm%d: cpu % x|% x, emulator % x|% x", i, n.YMMH[i], n.XMM[i], e.YMMH[i], e.XMM[i])
		}
	}
	return ""
}

func vecName(v int) string {
	if v < 0 {
		return "none"
	}
	return x86.VectorName(uint8(v))
}

// explain names a documented reason for a difference, or "".
func explain(c *diffCase, nr, er *diffResult, res *Result, native, emu []byte) string {
	inst := &decode.Inst{}
	if decode.Decode(c.code[:c.n], decode.Mode64, inst) != nil {
		return ""
	}
	// The kernel clears NT before it returns to user mode (an IRET with
	// NT set faults in IA-32e mode): an interrupt between a POPF that set
	// it and the capture leaves it clear.
	if nr.vec < 0 && er.rflags^nr.rflags == x86.FlagNT && er.rflags&x86.FlagNT != 0 {
		e := *er
		e.rflags = nr.rflags
		if compareDiff(c, nr, &e, res, native, emu) == "" {
			return "NT read back as 0 after an interrupt before the capture (the kernel clears it)"
		}
	}
	// On AMD, XSAVE keeps no FOP, FIP or FDP without a pending exception:
	// a context switch between the runner's XRSTOR and the instruction
	// zeroes them, which an instruction that does not set them (a
	// control instruction) leaves so.
	if hostZeroesPointers && c.fpu.FSW&^c.fpu.FCW&fswExc == 0 && nr.fpu.LastOpcode == 0 && nr.fpu.LastIP == 0 && nr.fpu.LastDP == 0 &&
		er.fpu.LastOpcode|uint16(er.fpu.LastIP)|uint16(er.fpu.LastDP) != 0 &&
		er.fpu.LastOpcode == c.fpu.LastOpcode && er.fpu.LastIP == c.fpu.LastIP && er.fpu.LastDP == c.fpu.LastDP {
		e := *er
		e.fpu.LastOpcode, e.fpu.LastIP, e.fpu.LastDP = 0, 0, 0
		if compareDiff(c, nr, &e, res, native, emu) == "" {
			return "AMD: a context switch before the instruction zeroed FOP/FIP/FDP (XSAVE keeps them only with a pending exception)"
		}
	}
	// A signal during the run (the Go runtime's preemption signal) makes
	// the kernel save and restore the x87 state through its signal frame,
	// which keeps FIP and FDP as 32-bit offsets.
	if (nr.fpu.LastIP != er.fpu.LastIP || nr.fpu.LastDP != er.fpu.LastDP) &&
		nr.fpu.LastIP == er.fpu.LastIP&0xFFFFFFFF && nr.fpu.LastDP == er.fpu.LastDP&0xFFFFFFFF {
		e := *er
		e.fpu.LastIP, e.fpu.LastDP = nr.fpu.LastIP, nr.fpu.LastDP
		if compareDiff(c, nr, &e, res, native, emu) == "" {
			return "a signal during the run truncated FIP/FDP to 32 bits (the kernel's signal frame)"
		}
	}
	// A null selector with RPL 1-3 in DS, ES or GS reads back as 0 when
	// an interrupt came between the instruction and the capture (the
	// return to user mode reloads it).
	if nr.sregs != er.sregs {
		same := true
		for i := range nr.sregs {
			if nr.sregs[i] != er.sregs[i] && !(nr.sregs[i] == 0 && er.sregs[i] <= 3) {
				same = false
			}
		}
		if same {
			e := *er
			e.sregs = nr.sregs
			if compareDiff(c, nr, &e, res, native, emu) == "" {
				return "a null selector with RPL > 0 read back as 0 after an interrupt before the capture"
			}
		}
	}
	// FXRSTOR64/XRSTOR64 of a non-canonical FIP or FDP (random image
	// bytes; no instruction address is one): AMD keeps neither the 64
	// bits the SDM loads nor a fixed extension of them.
	canon := func(v uint64) bool { return uint64(int64(v<<16)>>16) == v }
	if nr.vec < 0 && (!canon(er.fpu.LastIP) || !canon(er.fpu.LastDP)) {
		e := *er
		e.fpu.LastIP, e.fpu.LastDP = nr.fpu.LastIP, nr.fpu.LastDP
		if compareDiff(c, nr, &e, res, native, emu) == "" {
			return "AMD loads a non-canonical FIP/FDP from an FXRSTOR64/XRSTOR64 image its own way"
		}
	}
	if nr.vec == x86.VectorXM && er.vec == x86.VectorXM && nr.fpu.MXCSR^er.fpu.MXCSR == 1<<5 &&
		c.fpu.MXCSR>>7&(nr.fpu.MXCSR&(1<<3|1<<4)) != nr.fpu.MXCSR&(1<<3|1<<4) {
		e := *er
		e.fpu.MXCSR = nr.fpu.MXCSR
		if compareDiff(c, nr, &e, res, native, emu) == "" {
			return "unmasked overflow/underflow in a packed instruction: the CPU sets PE only for other inexact elements, which walkvm's masked run cannot tell apart"
		}
	}
	if inst.Op == decode.DPPS || inst.Op == decode.DPPD || inst.Op == decode.VEXOTHER && inst.Map == decode.Map0F3A && (inst.Opcode == 0x40 || inst.Opcode == 0x41) {
		if nr.vec == x86.VectorXM && er.vec == x86.VectorXM {
			e := *er
			e.fpu.MXCSR = nr.fpu.MXCSR
			if compareDiff(c, nr, &e, res, native, emu) == "" {
				return "DPPS/DPPD with an unmasked exception: the CPU reports the flags of the stage it stopped at"
			}
		}
	}
	switch inst.Op {
	case decode.RETF:
		// AMD's far return reads the two slots past the released bytes
		// (where an outer-privilege return's rSP and SS lie: SS first)
		// before it loads CS; the SDM reads nothing there for a
		// same-privilege return.
		n := uint64(inst.OpSize)
		probe := c.regs.GPR[x86.RSP] + 2*n + uint64(inst.Args[0].Imm)&0xFFFF
		if hostcpu.HostFeatures().AMD && nr.vec == x86.VectorPF && nr.cr2 >= probe && nr.cr2 < probe+2*n && er.vec != x86.VectorPF {
			return "AMD's far return reads the outer-return rSP/SS slots past imm16 before loading CS: a #PF there"
		}
	case decode.SHA1NEXTE, decode.SHA1MSG1, decode.SHA1MSG2, decode.SHA256RNDS2, decode.SHA256MSG1, decode.SHA256MSG2, decode.SHA1RNDS4:
		// The SDM gives the SHA instructions exception type 4: a
		// misaligned 16-byte operand is #GP(0). AMD does not check.
		if hostcpu.HostFeatures().AMD && nr.vec < 0 && er.vec == x86.VectorGP && c.target%16 != 0 {
			return "AMD does not check the alignment of SHA instruction operands (SDM: #GP(0), exception type 4)"
		}
	case decode.FXSAVE, decode.XSAVE, decode.XSAVEOPT:
		// AMD's FXSAVE and XSAVE store FOP, FIP and FDP as 0 unless an
		// unmasked exception is pending; the SDM (and walkvm) store
		// them.
		if !hostZeroesPointers || c.fpu.FSW&^c.fpu.FCW&fswExc != 0 {
			return ""
		}
		lo := c.target - nBase + 6
		if !allZero(native[lo : lo+18]) {
			return ""
		}
		var saved [18]byte
		copy(saved[:], emu[lo:])
		copy(emu[lo:lo+18], native[lo:])
		why := compareDiff(c, nr, er, res, native, emu)
		copy(emu[lo:], saved[:])
		if why == "" {
			return "AMD stores FOP, FIP and FDP as 0 in FXSAVE/XSAVE without a pending exception"
		}
	case decode.FNSTENV, decode.FNSAVE:
		// On AMD, XSAVE keeps no FOP, FIP or FDP without a pending
		// exception: a context switch between the runner's XRSTOR and
		// the instruction zeroes them, and FNSTENV stores the zeros.
		if !hostZeroesPointers || c.fpu.FSW&^c.fpu.FCW&fswExc != 0 {
			return ""
		}
		lo, n := c.target-nBase+12, uint64(12) // 28-byte layout: FIP, FCS/FOP, FDP
		if inst.Args[0].Mem.Size == 14 || inst.Args[0].Mem.Size == 94 {
			lo, n = c.target-nBase+6, 6
		}
		var saved [12]byte
		copy(saved[:], emu[lo:lo+n])
		for i := range n {
			if native[lo+i] != 0 && native[lo+i] != emu[lo+i] {
				return ""
			}
		}
		copy(emu[lo:lo+n], native[lo:])
		why := compareDiff(c, nr, er, res, native, emu)
		copy(emu[lo:], saved[:n])
		if why == "" {
			return "AMD: a context switch before the instruction zeroed FOP/FIP/FDP (XSAVE keeps them only with a pending exception)"
		}
	}
	return ""
}

// probeHost runs SGDT at CPL 3 natively (with CR4.UMIP it faults) and
// reads the selectors user mode runs with.
func probeHost(nat *hostcpu.Native, env *hostEnv) {
	gdt := linuxGDT
	env.cr0 = x86.CR0PE | x86.CR0MP | x86.CR0ET | x86.CR0NE | x86.CR0WP | x86.CR0AM | x86.CR0PG
	if err := nat.Begin(); err != nil {
		env.gdt = gdt
		return
	}
	defer nat.End()
	var in hostcpu.NativeRegs
	var out hostcpu.NativeResult
	in.RFLAGS = 0x202
	in.GPR[x86.RSP] = nStackAddr + 0x1000
	in.GPR[x86.RBX] = hostcpu.ScratchAddr
	writeXSave(nat.Region()[hostcpu.XSaveIn-nBase:], &FPUState{FCW: fcwInit, MXCSR: 0x1F80, HasYMM: true})
	r := nat.Region()
	nat.Run([]byte{0x0f, 0x01, 0x03}, &in, &out) // sgdt (%rbx)
	env.umip = out.Landing == hostcpu.LandFault
	if !env.umip {
		sc := hostcpu.ScratchAddr - nBase
		env.gdtr = TableReg{Limit: binary.LittleEndian.Uint16(r[sc:]), Base: binary.LittleEndian.Uint64(r[sc+2:])}
		nat.Run([]byte{0x0f, 0x01, 0x0b}, &in, &out) // sidt (%rbx)
		env.idtr = TableReg{Limit: binary.LittleEndian.Uint16(r[sc:]), Base: binary.LittleEndian.Uint64(r[sc+2:])}
		nat.Run([]byte{0x0f, 0x00, 0xc0}, &in, &out) // sldt %eax
		env.ldtr = uint16(out.Regs.GPR[x86.RAX])
		nat.Run([]byte{0x0f, 0x00, 0xc8}, &in, &out) // str %eax
		env.tr = uint16(out.Regs.GPR[x86.RAX])
		nat.Run([]byte{0x48, 0x0f, 0x01, 0xe0}, &in, &out) // smsw %rax
		env.cr0 = out.Regs.GPR[x86.RAX]
	}
	nat.Run([]byte{0x0f, 0xae, 0x03}, &in, &out) // fxsave (%rbx)
	env.mxcsrMask = binary.LittleEndian.Uint32(r[hostcpu.ScratchAddr-nBase+28:])
	nat.Run([]byte{0x90}, &in, &out)
	env.sregs = out.Sregs
	// The GDT as CPL 3 sees it: LAR and LSL of every selector. A
	// descriptor they cannot read (kernel, system, absent, beyond the
	// limit) becomes a DPL-0 data descriptor, which a load at CPL 3
	// refuses with the same #GP(selector).
	for i := 1; i < len(gdt); i++ {
		in.GPR[x86.RCX] = uint64(i<<3 | 3)
		nat.Run([]byte{0x0f, 0x02, 0xc1}, &in, &out) // lar %ecx, %eax
		ar, ok := out.Regs.GPR[x86.RAX], out.Regs.RFLAGS&x86.FlagZF != 0
		nat.Run([]byte{0x0f, 0x03, 0xc1}, &in, &out) // lsl %ecx, %eax
		lim := out.Regs.GPR[x86.RAX] & 0xFFFFFFFF
		if !ok || ar>>12&1 == 0 {
			gdt[i] = 0x00cf93000000ffff
			continue
		}
		if ar>>23&1 != 0 {
			lim >>= 12
		}
		gdt[i] = lim&0xFFFF | (lim>>16&0xF)<<48 | (ar>>8&0xFFFF)<<40
	}
	env.gdt = gdt
}

// newCase builds a random case of form f and writes its memory windows into
// both regions.
func (g *diffGen) newCase(c *diffCase, f *diffForm, native, emu []byte) {
	r := g.rng
	*c = diffCase{form: f}
	for i := range c.regs.GPR {
		c.regs.GPR[i] = g.randVal()
	}
	c.regs.GPR[x86.RSP] = nStackAddr + 0x800 + uint64(r.IntN(0x800))&^7
	c.regs.RFLAGS = 0x202 | r.Uint64()&(x86.FlagsArith|x86.FlagDF)
	c.fpu = FPUState{FCW: fcwInit, MXCSR: 0x1F80, MXCSRMask: g.env.mxcsrMask, HasYMM: true}
	if f.class == ClassSSE || f.class == ClassAVX {
		g.randX87(&c.fpu) // MMX registers
		g.randSSE(&c.fpu)
	}
	b := c.code[:0]
	b = append(b, f.legacy...)
	addr32 := r.IntN(6) == 0
	if addr32 {
		b = append(b, 0x67)
	}
	if r.IntN(8) == 0 { // a null segment prefix (ES/CS/SS/DS) or GS, whose base is 0
		b = append(b, []byte{0x26, 0x2e, 0x36, 0x3e, 0x65}[r.IntN(5)])
	}
	rexAt := len(b)
	b = append(b, 0) // REX placeholder (three bytes of VEX)
	if f.vex != nil {
		b = append(b, 0, 0)
	}
	b = append(b, f.opcode...)
	var rex uint8
	if f.rexW && f.vex == nil {
		rex |= 8
	}
	var mb []byte
	if !f.implicit {
		reg := f.reg
		if reg < 0 {
			reg = r.IntN(16)
			if reg >= 8 {
				rex |= 4
			}
		}
		c.target = g.dataTarget(g.operandSize(f))
		if f.class == ClassXState && r.IntN(5) != 0 {
			c.target &^= 63 // FXSAVE and XSAVE want 16- and 64-byte alignment
		}
		if (FactsOf(f.op).Flags&FBitString != 0 || f.op == decode.MOVDIR64B) && f.reg < 0 {
			c.avoid |= 1 << reg // a bit offset, or MOVDIR64B's destination
		}
		if FactsOf(f.op).Class == ClassXState {
			c.avoid |= 1<<x86.RAX | 1<<x86.RDX
		}
		var xb uint8
		mb, xb = g.modrmMem(c, nil, reg, c.target, f.immLen, addr32)
		rex |= xb
	}
	switch {
	case f.vex != nil:
		vvvv := uint8(0)
		if f.vvvvFree {
			vvvv = uint8(r.IntN(16))
		}
		b[rexAt] = 0xC4
		b[rexAt+1] = (^rex&7)<<5 | f.vex[0]
		b[rexAt+2] = f.vex[1]<<7 | (^vvvv&15)<<3 | f.vex[2]<<2 | f.vex[3]
	case rex != 0 || r.IntN(4) == 0:
		b[rexAt] = 0x40 | rex
	default:
		b = append(b[:rexAt], b[rexAt+1:]...)
	}
	if len(mb) > 0 && mb[0]&0xC7 == 5 { // RIP-relative: count from the end of the instruction
		end := len(b) + len(mb) + f.immLen
		disp := int64(c.target) - int64(nCodeAddr+uint64(end))
		binary.LittleEndian.PutUint32(mb[1:], uint32(int32(disp)))
	}
	b = append(b, mb...)
	for range f.immLen {
		b = append(b, byte(r.Uint32()))
	}
	c.n = copy(c.code[:], b)
	// The operand's window and some bytes around it, in both memories.
	if c.target != 0 {
		g.window(c.target-32, 64+g.operandSize(f), native, emu)
	}
	g.window(c.regs.GPR[x86.RSP]-64, 128, native, emu)
	if setup := classSetups[f.op]; setup != nil {
		inst := &decode.Inst{}
		if decode.Decode(c.code[:c.n], decode.Mode64, inst) == nil {
			setup(g, c, inst, native, emu)
		}
	}
	copy(emu[nCodeAddr-nBase:], c.code[:c.n])
	if c.target != 0 {
		copy(c.mem[:], native[c.target-nBase:])
	}
}

// operandSize is the size of f's memory operand (8 when the encoding does
// not fix it).
func (g *diffGen) operandSize(f *diffForm) int {
	if f.memSize > 0 {
		return f.memSize
	}
	return 8
}

// classSetups adjusts the registers and memory of a case for instructions
// whose operands need more than random values (diffsetup_amd64_test.go).
var classSetups = map[decode.Op]func(g *diffGen, c *diffCase, inst *decode.Inst, native, emu []byte){}

// window fills n random bytes at address a in both memories.
func (g *diffGen) window(a uint64, n int, native, emu []byte) {
	if a < nLow || a+uint64(n) > nHigh {
		return
	}
	w := native[a-nBase : a-nBase+uint64(n)]
	g.randBytes(w)
	copy(emu[a-nBase:], w)
}

// enumerateForms finds every form walkvm decodes with a ModRM memory
// operand in 64-bit mode, by decoding every opcode with every mandatory
// prefix, REX.W and ModRM.reg, and classifies it by its row.
func enumerateForms(env *hostEnv) []diffForm {
	var forms []diffForm
	seen := map[string]bool{}
	maps := [][]byte{nil, {0x0f}, {0x0f, 0x38}, {0x0f, 0x3a}}
	prefixes := [][]byte{nil, {0x66}, {0xf3}, {0xf2}, {0xf0}, {0x66, 0xf0}}
	inst := &decode.Inst{}
	for _, esc := range maps {
		for op := 0; op < 256; op++ {
			if len(esc) == 0 && (op == 0x0f || op == 0xc4 || op == 0xc5 || op == 0x62 || op&0xF0 == 0x40 ||
				op == 0x26 || op == 0x2e || op == 0x36 || op == 0x3e || op == 0x64 || op == 0x65 ||
				op == 0x66 || op == 0x67 || op == 0xf0 || op == 0xf2 || op == 0xf3) {
				continue
			}
			if len(esc) == 1 && (op == 0x38 || op == 0x3a) {
				continue
			}
			for _, pfx := range prefixes {
				for w := 0; w < 2; w++ {
					var ops [8]decode.Op
					var lens, sizes [8]int
					group := false
					for reg := 0; reg < 8; reg++ {
						b := append([]byte{}, pfx...)
						if w == 1 {
							b = append(b, 0x48)
						}
						b = append(b, esc...)
						b = append(b, byte(op), byte(0x80|reg<<3|3), 0, 0, 0, 0)
						b = append(b, make([]byte, 8)...)
						if decode.Decode(b, decode.Mode64, inst) != nil || inst.MemArg() < 0 ||
							!inst.HasModRM || inst.ModRM != byte(0x80|reg<<3|3) {
							continue // no ModRM memory operand (moffs, string and stack forms are implicit)
						}
						mi := inst.MemArg()
						if inst.Args[mi].Mem.Size == 0 && inst.Args[mi].Mem.Use == 0 {
							continue // an address, not an access (LEA, hints)
						}
						if w == 1 && !inst.Prefix.W() {
							continue
						}
						ops[reg] = inst.Op
						lens[reg] = int(inst.Len) - len(pfx) - w - len(esc) - 1 - 5
						sizes[reg] = int(inst.Args[mi].Mem.Size)
						for _, a := range inst.Args {
							if a.Kind == decode.ArgSeg || a.Kind == decode.ArgCR || a.Kind == decode.ArgDR {
								group = true // ModRM.reg names a special register
							}
						}
					}
					for reg := 1; reg < 8; reg++ {
						if ops[reg] != ops[0] {
							group = true
						}
					}
					for reg := 0; reg < 8; reg++ {
						o := ops[reg]
						if o == decode.Invalid || (!group && reg > 0) {
							continue
						}
						class := FactsOf(o).Class
						if o == decode.MOV && op == 0x8e && len(esc) == 0 {
							class = ClassSegment // MOV Sreg, r/m16
						}
						f := diffForm{op: o, class: class, legacy: pfx, rexW: w == 1,
							opcode: append(append([]byte{}, esc...), byte(op)), reg: reg, immLen: lens[reg], memSize: sizes[reg]}
						if !group {
							f.reg = -1
						}
						f.name = fmt.Sprintf("%v %x%s%x/%d", o, pfx, map[bool]string{true: " w "}[w == 1], f.opcode, f.reg)
						if seen[f.name] {
							continue
						}
						seen[f.name] = true
						f.avoid = avoidNative(&f, env)
						forms = append(forms, f)
					}
				}
			}
		}
	}
	forms = addVEXForms(forms, env)
	return addImplicitForms(forms, env)
}

// addVEXForms appends the VEX forms with a ModRM memory operand: every map,
// pp, L, W, opcode and ModRM.reg walkvm decodes.
func addVEXForms(forms []diffForm, env *hostEnv) []diffForm {
	inst := &decode.Inst{}
	dec := func(mm, w, l, pp, vvvv, op, reg int) bool {
		b := []byte{0xC4, byte(0xE0 | mm), byte(w<<7 | (^vvvv&15)<<3 | l<<2 | pp), byte(op), byte(0x80 | reg<<3 | 3), 0, 0, 0, 0, 0, 0, 0, 0}
		if decode.Decode(b, decode.Mode64, inst) != nil || inst.MemArg() < 0 || inst.ModRM != byte(0x80|reg<<3|3) {
			return false
		}
		mi := inst.MemArg()
		return inst.Args[mi].Mem.Size != 0 || inst.Args[mi].Mem.Use != 0
	}
	for mm := 1; mm <= 3; mm++ {
		for pp := 0; pp < 4; pp++ {
			for l := 0; l < 2; l++ {
				for w := 0; w < 2; w++ {
					for op := 0; op < 256; op++ {
						var ops [8]decode.Op
						var lens, sizes [8]int
						for reg := 0; reg < 8; reg++ {
							if !dec(mm, w, l, pp, 0, op, reg) {
								continue
							}
							ops[reg] = inst.Op
							lens[reg] = int(inst.Len) - 3 - 1 - 5
							sizes[reg] = int(inst.Args[inst.MemArg()].Mem.Size)
						}
						group := false
						for reg := 1; reg < 8; reg++ {
							group = group || (ops[reg] == decode.Invalid) != (ops[0] == decode.Invalid)
						}
						for reg := 0; reg < 8; reg++ {
							if ops[reg] == decode.Invalid || (!group && reg > 0) {
								continue
							}
							f := diffForm{op: ops[reg], class: FactsOf(ops[reg]).Class, opcode: []byte{byte(op)}, reg: reg,
								immLen: lens[reg], memSize: sizes[reg], vex: []byte{byte(mm), byte(w), byte(l), byte(pp)}}
							if !group {
								f.reg = -1
							}
							f.vvvvFree = dec(mm, w, l, pp, 5, op, reg)
							f.name = fmt.Sprintf("%v vex.m%d.w%d.l%d.pp%d %02x/%d", f.op, mm, w, l, pp, op, f.reg)
							f.avoid = avoidNative(&f, env)
							forms = append(forms, f)
						}
					}
				}
			}
		}
	}
	return forms
}

// segLoad is the segment register form f loads, or x86.NumSeg.
func segLoad(f *diffForm) x86.SegReg {
	inst := &decode.Inst{}
	reg := max(f.reg, 0)
	b := append(append(append([]byte{}, f.legacy...), f.opcode...), byte(reg<<3|3), 0, 0, 0, 0, 0, 0, 0, 0)
	if f.rexW {
		b = append(append(append([]byte{}, f.legacy...), 0x48), b[len(f.legacy):]...)
	}
	if decode.Decode(b, decode.Mode64, inst) != nil {
		return x86.NumSeg
	}
	switch inst.Op {
	case decode.LFS:
		return x86.FS
	case decode.LGS:
		return x86.GS
	case decode.LSS:
		return x86.SS
	case decode.MOV, decode.POP:
		if inst.Args[0].Kind == decode.ArgSeg {
			return inst.Args[0].Seg
		}
	}
	return x86.NumSeg
}

func hasPrefix(p []byte, b byte) bool {
	for _, c := range p {
		if c == b {
			return true
		}
	}
	return false
}

// hostLacks names the CPUID feature f needs that the host lacks, or "".
func hostLacks(f *diffForm, env *hostEnv) string {
	h := &env.feat
	need := func(ok bool, name string) string {
		if ok {
			return ""
		}
		return name
	}
	switch f.op {
	case decode.MOVBE:
		return need(h.MOVBE, "MOVBE")
	case decode.MOVDIRI:
		return need(h.MOVDIRI, "MOVDIRI")
	case decode.MOVDIR64B:
		return need(h.MOVDIR64B, "MOVDIR64B")
	case decode.ANDN, decode.BEXTR, decode.BLSI, decode.BLSMSK, decode.BLSR, decode.TZCNT:
		return need(h.BMI1, "BMI1")
	case decode.BZHI, decode.MULX, decode.PDEP, decode.PEXT, decode.RORX, decode.SARX, decode.SHLX, decode.SHRX:
		return need(h.BMI2, "BMI2")
	case decode.ADCX, decode.ADOX:
		return need(h.ADX, "ADX")
	case decode.LZCNT:
		return need(h.LZCNT, "LZCNT")
	case decode.POPCNT:
		return need(h.POPCNT, "POPCNT")
	case decode.CRC32:
		return need(h.SSE42, "SSE4.2")
	case decode.XSAVEOPT:
		return need(h.XSAVEOPT, "XSAVEOPT")
	}
	if c := FactsOf(f.op).Class; c == ClassSSE || c == ClassAVX {
		hf := hostfpu.HostFeatures()
		inst := &decode.Inst{}
		if f.vex != nil {
			b := []byte{0xC4, 0xE0 | f.vex[0], f.vex[1]<<7 | 0x78 | f.vex[2]<<2 | f.vex[3]}
			b = append(append(b, f.opcode...), byte(max(f.reg, 0)<<3|3), 0, 0, 0, 0, 0, 0, 0, 0)
			if decode.Decode(b, decode.Mode64, inst) != nil {
				return ""
			}
		} else {
			b := append(append(append([]byte{}, f.legacy...), f.opcode...), byte(max(f.reg, 0)<<3|3), 0, 0, 0, 0, 0, 0, 0, 0)
			if decode.Decode(b, decode.Mode64, inst) != nil {
				return ""
			}
		}
		if FactsOf(f.op).exec != nil && inst.Op == f.op && !vecHostSupported(&hf, inst) {
			return "its SSE/AVX group"
		}
	}
	return ""
}

// avoidNative says why a form is not run natively, or "".
func avoidNative(f *diffForm, env *hostEnv) string {
	row := FactsOf(f.op)
	if lack := hostLacks(f, env); lack != "" {
		return "the host lacks " + lack
	}
	switch {
	case row.Class == ClassNone:
		return "not executed by walkvm (no row in the table of facts)"
	case row.exec == nil:
		return "not executed by walkvm"
	case segLoad(f) == x86.FS:
		return "loads FS, which Go's runtime uses for thread-local storage"
	case (f.op == decode.JMPF || f.op == decode.CALLF || f.op == decode.RETF) && hasPrefix(f.legacy, 0x66):
		return "a 16-bit far target lies outside the runner's region"
	case (f.op == decode.CALL || f.op == decode.JMP) && hasPrefix(f.legacy, 0x66) && env.feat.AMD:
		return "66 on a near branch: AMD uses a 16-bit target, Intel (and walkvm's decoder) ignore 66 in 64-bit mode"
	case (f.op == decode.JMPF || f.op == decode.CALLF) && f.rexW && env.feat.AMD:
		return "REX.W far branch through memory: AMD reads m16:32 (ignores REX.W), Intel (and walkvm) m16:64"
	case (f.op == decode.LSS || f.op == decode.LFS || f.op == decode.LGS) && f.rexW && env.feat.AMD:
		return "REX.W far-pointer load: AMD reads m16:32 (ignores REX.W), Intel (and walkvm) m16:64"
	}
	return ""
}

var _ = bits.Len
