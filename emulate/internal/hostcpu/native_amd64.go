//go:build amd64 && linux

package hostcpu

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The native runner executes one instruction on the host CPU from a state
// the caller sets, and captures the state it leaves, for the emulator's
// differential test. Everything lives in one region at a fixed address
// below 4 GiB (so that 32-bit displacements reach it): the control block,
// the code page, data pages for memory operands, a stack, a scratch page
// and the XSAVE images in and out. The pages around the data, stack and
// scratch pages are inaccessible guards, so an access that strays off them
// faults.
//
// A fault (#DE, #GP, #PF, #UD, #MF, #XM, #AC ...) on the code page is
// caught by a signal handler that is installed only while a batch runs
// (Begin ... End): it records the signal and trap number and resumes at
// a landing pad that captures the registers as the fault left them.
// Faults elsewhere go to Go's own handler.
const (
	NativeBase = 0x6a000000
	nativeSize = 0x10000

	// CodeAddr is where the instruction is placed; BranchTarget is a
	// landing pad a branch under test may jump to.
	CodeAddr     = NativeBase + 0x1000
	BranchTarget = NativeBase + 0x1F00
	// DataAddr..DataAddr+DataSize is free for memory operands,
	// StackAddr..StackAddr+StackSize for the stack.
	DataAddr  = NativeBase + 0x3000
	DataSize  = 0x4000
	StackAddr = NativeBase + 0x7000
	StackSize = 0x2000
	// ScratchAddr is a free page the caller may use for anything.
	ScratchAddr = NativeBase + 0x9000
	// XSaveIn and XSaveOut are the standard-format XSAVE images (x87, SSE,
	// AVX: RFBM 7) loaded before and saved after the instruction.
	XSaveIn  = NativeBase + 0xB000
	XSaveOut = NativeBase + 0xC000

	ctlMXCSR   = 0x38
	ctlOld     = 0x40 // SEGV, FPE, ILL, BUS handlers
	ctlSig     = 0x60
	ctlTrapno  = 0x68
	ctlErr     = 0x70
	ctlCR2     = 0x78
	ctlRIP     = 0x80
	ctlLanding = 0x88
	ctlIn      = 0x100
	ctlOut     = 0x200
)

// Landing says how the instruction left the code page.
type Landing uint8

// Landings.
const (
	LandNone   Landing = iota
	LandFall           // fell through to the next instruction
	LandBranch         // jumped to BranchTarget
	LandFault          // faulted; Signal, Trap, ErrCode, CR2 say how
)

// NativeRegs is the integer state the instruction runs with.
type NativeRegs struct {
	GPR    [16]uint64 // RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15
	RFLAGS uint64
}

// NativeResult is what one run left.
type NativeResult struct {
	Regs NativeRegs
	// Sregs are the DS, ES, SS and GS selectors afterwards (the runner
	// restores Go's own; FS is never loaded).
	Sregs    [4]uint16
	Landing  Landing
	Signal   int
	Trap     uint64 // the CPU's vector (uc_mcontext trapno)
	ErrCode  uint64
	CR2      uint64
	FaultRIP uint64
}

func nativeRun()
func sigHandlerPC() uintptr

// kernel_sigaction for x86-64 rt_sigaction.
type sigaction struct {
	handler, flags, restorer, mask uint64
}

var nativeSignals = [4]int{int(syscall.SIGSEGV), int(syscall.SIGFPE), int(syscall.SIGILL), int(syscall.SIGBUS)}

// Native is the runner. There is one per process (the region has a fixed
// address); OpenNative returns it.
type Native struct {
	mu    sync.Mutex
	mem   []byte
	saved [4]sigaction
}

var (
	nativeOnce sync.Once
	native     *Native
	nativeErr  error
)

// OpenNative maps the region (once per process) and returns the runner.
func OpenNative() (*Native, error) {
	nativeOnce.Do(func() {
		// The hint is the address; MAP_FIXED_NOREPLACE fails rather than
		// move it or replace a mapping.
		hint := unsafe.Add(unsafe.Pointer(nil), NativeBase)
		p, err := unix.MmapPtr(-1, 0, hint, nativeSize, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE)
		if err != nil {
			nativeErr = fmt.Errorf("hostcpu: map %#x with write and execute: %w", NativeBase, err)
			return
		}
		if uintptr(p) != NativeBase {
			nativeErr = fmt.Errorf("hostcpu: mapped at %p, not %#x", p, NativeBase)
			return
		}
		n := &Native{mem: unsafe.Slice((*byte)(p), nativeSize)}
		for _, g := range [][2]int{{0x2000, 0x1000}, {0xA000, 0x1000}, {0xD000, 0x3000}} {
			if err := unix.Mprotect(n.mem[g[0]:g[0]+g[1]], unix.PROT_NONE); err != nil {
				nativeErr = fmt.Errorf("hostcpu: guard pages: %w", err)
				return
			}
		}
		le := func(off int, v uint64) {
			for i := range 8 {
				n.mem[off+i] = byte(v >> (8 * i))
			}
		}
		le(ctlMXCSR, 0x1F80)
		// The branch landing pad: jmp *(BASE+0x30) (exitBranch).
		copy(n.mem[BranchTarget-NativeBase:], []byte{0xFF, 0x24, 0x25, 0x30, 0x00, 0x00, 0x6a})
		native = n
	})
	return native, nativeErr
}

// Region returns the bytes of the region, indexed by address - NativeBase.
func (n *Native) Region() []byte { return n.mem }

// Begin takes the runner for a batch of Runs and installs the fault
// handler; End restores the previous handlers and releases it.
func (n *Native) Begin() error {
	n.mu.Lock()
	h := uint64(sigHandlerPC())
	for i, sig := range nativeSignals {
		var old sigaction
		if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
			n.restore(i)
			n.mu.Unlock()
			return fmt.Errorf("hostcpu: rt_sigaction(%d): %w", sig, e)
		}
		if old.handler <= 1 { // SIG_DFL, SIG_IGN: nothing to chain to
			n.restore(i)
			n.mu.Unlock()
			return errors.New("hostcpu: no Go signal handler to chain to")
		}
		n.saved[i] = old
		*(*uint64)(unsafe.Pointer(&n.mem[ctlOld+8*i])) = old.handler
		act := old
		act.handler = h
		if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
			n.restore(i)
			n.mu.Unlock()
			return fmt.Errorf("hostcpu: rt_sigaction(%d): %w", sig, e)
		}
	}
	return nil
}

// restore puts back the first k saved handlers.
func (n *Native) restore(k int) {
	for i := range k {
		_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(nativeSignals[i]), uintptr(unsafe.Pointer(&n.saved[i])), 0, 8, 0, 0)
	}
}

// End restores the signal handlers and releases the runner.
func (n *Native) End() {
	n.restore(len(nativeSignals))
	n.mu.Unlock()
}

// Run places code at CodeAddr followed by a jump to the fall-through pad,
// runs it with in and the XSAVE image at XSaveIn, and fills out. The XSAVE
// image it leaves is at XSaveOut; memory is wherever the instruction wrote
// it. Call it between Begin and End, on a goroutine locked to its thread
// is not needed: the run does not yield.
func (n *Native) Run(code []byte, in *NativeRegs, out *NativeResult) {
	c := n.mem[CodeAddr-NativeBase:]
	k := copy(c[:BranchTarget-CodeAddr-8], code)
	// jmp *(BASE+0x28): exitFall, then UD2s: a CPU that decodes the
	// instruction longer than the caller did stops at a #UD on the page.
	k += copy(c[k:], []byte{0xFF, 0x24, 0x25, 0x28, 0x00, 0x00, 0x6a})
	for i := 0; i < 16; i += 2 {
		c[k+i], c[k+i+1] = 0x0F, 0x0B
	}
	for i, v := range in.GPR {
		*(*uint64)(unsafe.Pointer(&n.mem[ctlIn+8*i])) = v
	}
	*(*uint64)(unsafe.Pointer(&n.mem[ctlIn+0x80])) = in.RFLAGS
	nativeRun()
	u := func(off int) uint64 { return *(*uint64)(unsafe.Pointer(&n.mem[off])) }
	for i := range out.Regs.GPR {
		out.Regs.GPR[i] = u(ctlOut + 8*i)
	}
	out.Regs.RFLAGS = u(ctlOut + 0x80)
	for i := range out.Sregs {
		out.Sregs[i] = uint16(u(ctlOut + 0x88 + 8*i))
	}
	out.Landing = Landing(u(ctlLanding))
	out.Signal, out.Trap, out.ErrCode, out.CR2, out.FaultRIP = 0, 0, 0, 0, 0
	if out.Landing == LandFault {
		out.Signal = int(u(ctlSig))
		out.Trap, out.ErrCode, out.CR2, out.FaultRIP = u(ctlTrapno), u(ctlErr), u(ctlCR2), u(ctlRIP)
	}
}
