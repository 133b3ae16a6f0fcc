package kvm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// Register and state structs, as KVM lays them out.
type (
	Regs        = gokvm.Regs
	Sregs       = gokvm.Sregs
	Sregs2      = gokvm.SRegs2
	Segment     = gokvm.Segment
	Descriptor  = gokvm.Descriptor
	VCPUEvents  = gokvm.VCPUEvents
	Translation = gokvm.Translation
)

// FPU is struct kvm_fpu (KVM_GET_FPU): x87 registers in 80-bit form, the
// abridged (FXSAVE) tag byte, and the SSE registers.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// XSave is struct kvm_xsave: the XSAVE area KVM_GET_XSAVE returns (legacy
// region, header, then components at their standard offsets).
type XSave struct {
	Region [1024]uint32
}

// Bytes views the XSAVE area as bytes.
func (x *XSave) Bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&x.Region[0])), len(x.Region)*4)
}

const (
	ioctlGetFPU        = 0x8c
	ioctlSetFPU        = 0x8d
	ioctlGetXSave      = 0xa4
	ioctlSetXSave      = 0xa5
	ioctlRun           = 0x80
	ioctlGetRegs       = 0x81
	ioctlSetRegs       = 0x82
	ioctlGetSregs      = 0x83
	ioctlSetSregs      = 0x84
	ioctlGetSregs2     = 0xcc
	ioctlSetSregs2     = 0xcd
	ioctlEnableCapVCPU = 0xa3
	ioctlGetVCPUEvents = 0x9f
	ioctlSetVCPUEvents = 0xa0
	ioctlTranslate     = 0x85
)

// VCPU is one virtual CPU and its kvm_run area.
type VCPU struct {
	f      *os.File
	sysfd  uintptr // f's descriptor, read once (os.File.Fd is a call)
	ID     int
	runMem []byte
	run    *runHeader
	entry  entryPolicy
}

func (c *VCPU) fd() uintptr { return c.sysfd }

// Close unmaps kvm_run and closes the vCPU.
func (c *VCPU) Close() error {
	err := unix.Munmap(c.runMem)
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (c *VCPU) ioctl(name string, op uintptr, arg unsafe.Pointer) error {
	if _, err := gokvm.Ioctl(c.fd(), op, uintptr(arg)); err != nil {
		return &IoctlError{Name: name, Err: err}
	}
	return nil
}

// IoctlError is a failed ioctl, named as KVM names it.
type IoctlError struct {
	Name string
	Err  error
}

func (e *IoctlError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *IoctlError) Unwrap() error { return e.Err }

// ErrInterrupted is KVM_RUN returning EINTR or EAGAIN: a signal or
// immediate_exit stopped the vCPU before or after an exit.
var ErrInterrupted = errors.New("KVM_RUN interrupted")

// Run enters the guest (KVM_RUN) until the next exit. It returns
// ErrInterrupted for EINTR/EAGAIN, which gokvm's Run would hide.
//
// A guest that exits often enters through syscall.RawSyscall: the
// goroutine keeps its P while the guest runs, so an exit costs no
// entersyscall/exitsyscall and no P hand-off. To the scheduler the
// goroutine then looks busy, and after about 10 ms the runtime preempts it
// with a signal (SIGURG), which ends KVM_RUN with EINTR: an exit to user
// space that only Go's scheduler wanted. A guest that idles inside KVM (an
// in-kernel HLT) would take one every 10 ms, so after such an interruption
// the next entries go through syscall.Syscall (entryPolicy): a goroutine
// in a system call is not signalled, and with a P to spare (vcpu.Group
// keeps one per vCPU plus one) sysmon leaves its P alone for 10 ms and
// then takes it without a signal. The caller must run on a locked OS
// thread (runtime.LockOSThread) and treat ErrInterrupted as "re-enter
// unless asked to stop" (the runtime also interrupts KVM_RUN to stop the
// world for the GC, and a Group's kick does).
func (c *VCPU) Run() error {
	var errno syscall.Errno
	raw := c.entry.raw()
	if raw {
		_, _, errno = syscall.RawSyscall6(syscall.SYS_IOCTL, c.fd(), gokvm.IIO(ioctlRun), 0, 0, 0, 0)
	} else {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, c.fd(), gokvm.IIO(ioctlRun), 0)
	}
	switch errno {
	case 0:
		return nil
	case syscall.EINTR, syscall.EAGAIN:
		if raw {
			c.entry.interrupted()
		}
		return ErrInterrupted
	}
	return &IoctlError{Name: "KVM_RUN", Err: errno}
}

// entryPolicy chooses how Run enters KVM_RUN: through RawSyscall while the
// guest exits often, through Syscall for the next syscallEntries entries
// after a raw entry was interrupted (by Go's preemption signal, mostly).
type entryPolicy struct{ syscalls int }

// syscallEntries is how many entries go through Syscall after an
// interrupted raw entry: a busy guest spends them in microseconds and is
// back on the raw path, an idle one takes at most one preemption signal
// per this many exits instead of one per 10 ms.
const syscallEntries = 64

func (p *entryPolicy) raw() bool {
	if p.syscalls > 0 {
		p.syscalls--
		return false
	}
	return true
}

func (p *entryPolicy) interrupted() { p.syscalls = syscallEntries }

// SetImmediateExit sets kvm_run.immediate_exit: the next KVM_RUN returns
// EINTR at once. A signal handler-free way to stop a vCPU from another thread.
func (c *VCPU) SetImmediateExit(on bool) {
	var v uint8
	if on {
		v = 1
	}
	c.run.ImmediateExit = v
}

// GetRegs fills r (KVM_GET_REGS).
func (c *VCPU) GetRegs(r *Regs) error {
	return c.ioctl("KVM_GET_REGS", gokvm.IIOR(ioctlGetRegs, unsafe.Sizeof(*r)), unsafe.Pointer(r))
}

// SetRegs writes r (KVM_SET_REGS).
func (c *VCPU) SetRegs(r *Regs) error {
	return c.ioctl("KVM_SET_REGS", gokvm.IIOW(ioctlSetRegs, unsafe.Sizeof(*r)), unsafe.Pointer(r))
}

// GetSregs fills s (KVM_GET_SREGS).
func (c *VCPU) GetSregs(s *Sregs) error {
	return c.ioctl("KVM_GET_SREGS", gokvm.IIOR(ioctlGetSregs, unsafe.Sizeof(*s)), unsafe.Pointer(s))
}

// SetSregs writes s (KVM_SET_SREGS).
func (c *VCPU) SetSregs(s *Sregs) error {
	return c.ioctl("KVM_SET_SREGS", gokvm.IIOW(ioctlSetSregs, unsafe.Sizeof(*s)), unsafe.Pointer(s))
}

// Sregs2 flag: PDPTEs are valid (KVM_SREGS2_FLAGS_PDPTRS_VALID).
const Sregs2PDPTRsValid = 1

// GetSregs2 fills s (KVM_GET_SREGS2), which adds the PAE PDPTE registers.
func (c *VCPU) GetSregs2(s *Sregs2) error {
	return c.ioctl("KVM_GET_SREGS2", gokvm.IIOR(ioctlGetSregs2, unsafe.Sizeof(*s)), unsafe.Pointer(s))
}

// SetSregs2 writes s (KVM_SET_SREGS2).
func (c *VCPU) SetSregs2(s *Sregs2) error {
	return c.ioctl("KVM_SET_SREGS2", gokvm.IIOW(ioctlSetSregs2, unsafe.Sizeof(*s)), unsafe.Pointer(s))
}

// GetFPU fills f (KVM_GET_FPU).
func (c *VCPU) GetFPU(f *FPU) error {
	return c.ioctl("KVM_GET_FPU", gokvm.IIOR(ioctlGetFPU, unsafe.Sizeof(*f)), unsafe.Pointer(f))
}

// SetFPU writes f (KVM_SET_FPU).
func (c *VCPU) SetFPU(f *FPU) error {
	return c.ioctl("KVM_SET_FPU", gokvm.IIOW(ioctlSetFPU, unsafe.Sizeof(*f)), unsafe.Pointer(f))
}

// GetXSave fills x (KVM_GET_XSAVE).
func (c *VCPU) GetXSave(x *XSave) error {
	return c.ioctl("KVM_GET_XSAVE", gokvm.IIOR(ioctlGetXSave, unsafe.Sizeof(*x)), unsafe.Pointer(x))
}

// SetXSave writes x (KVM_SET_XSAVE).
func (c *VCPU) SetXSave(x *XSave) error {
	return c.ioctl("KVM_SET_XSAVE", gokvm.IIOW(ioctlSetXSave, unsafe.Sizeof(*x)), unsafe.Pointer(x))
}

// GetVCPUEvents fills e (KVM_GET_VCPU_EVENTS).
func (c *VCPU) GetVCPUEvents(e *VCPUEvents) error {
	return c.ioctl("KVM_GET_VCPU_EVENTS", gokvm.IIOR(ioctlGetVCPUEvents, unsafe.Sizeof(*e)), unsafe.Pointer(e))
}

// SetVCPUEvents writes e (KVM_SET_VCPU_EVENTS).
func (c *VCPU) SetVCPUEvents(e *VCPUEvents) error {
	return c.ioctl("KVM_SET_VCPU_EVENTS", gokvm.IIOW(ioctlSetVCPUEvents, unsafe.Sizeof(*e)), unsafe.Pointer(e))
}

// InjectException queues exception vector for delivery at the next
// KVM_RUN, with its error code when hasErr. For a #PF the caller sets CR2
// first (KVM_SET_SREGS), as the CPU does before delivery.
func (c *VCPU) InjectException(vector uint8, hasErr bool, code uint32) error {
	var ev VCPUEvents
	if err := c.GetVCPUEvents(&ev); err != nil {
		return err
	}
	ev.E.Inject = 1
	ev.E.Nr = vector
	ev.E.HadErrorCode = 0
	if hasErr {
		ev.E.HadErrorCode = 1
	}
	ev.E.ErrorCode = code
	ev.E.Pending = 0
	ev.Flags = 0 // change nothing else (no KVM_VCPUEVENT_VALID_* bits)
	return c.SetVCPUEvents(&ev)
}

// Translate asks KVM to translate linear address la for the vCPU's current
// mode (KVM_TRANSLATE). KVM walks for a supervisor read; its writeable and
// usermode answers are hard-coded, so only valid and the GPA mean anything.
func (c *VCPU) Translate(la uint64) (gpa uint64, valid bool, err error) {
	t := Translation{LinearAddress: la}
	if err := c.ioctl("KVM_TRANSLATE", gokvm.IIOWR(ioctlTranslate, unsafe.Sizeof(t)), unsafe.Pointer(&t)); err != nil {
		return 0, false, err
	}
	return t.PhysicalAddress, t.Valid != 0, nil
}

// XCR0 reads the guest's extended control register 0 (KVM_GET_XCRS).
func (c *VCPU) XCR0() (uint64, error) {
	var x gokvm.XCRS
	if err := gokvm.GetXCRS(c.fd(), &x); err != nil {
		return 0, &IoctlError{Name: "KVM_GET_XCRS", Err: err}
	}
	for i := range min(int(x.NrXRCS), len(x.Registers)) {
		if x.Registers[i].XRC == 0 {
			return x.Registers[i].Value, nil
		}
	}
	return 1, nil // x87 only: XCR0's reset value
}

// EnableCap enables a vCPU capability (KVM_ENABLE_CAP on the vCPU fd).
func (c *VCPU) EnableCap(cp Capability, args ...uint64) error {
	ec := kvmEnableCap{Cap: uint32(cp)}
	copy(ec.Args[:], args)
	return c.ioctl(fmt.Sprintf("KVM_ENABLE_CAP %v", cp), gokvm.IIOW(ioctlEnableCapVCPU, unsafe.Sizeof(ec)), unsafe.Pointer(&ec))
}

// SetCPUID sets the vCPU's CPUID (KVM_SET_CPUID2).
func (c *VCPU) SetCPUID(id *CPUID) error {
	entries := id.Entries()
	if len(entries) > maxCPUIDEntries {
		return fmt.Errorf("KVM_SET_CPUID2: %d entries, KVM takes at most %d", len(entries), maxCPUIDEntries)
	}
	b := &cpuid2{Nent: uint32(len(entries))}
	copy(b.Entries[:], entries)
	err := c.ioctl("KVM_SET_CPUID2", gokvm.IIOW(ioctlSetCPUID2, cpuid2Header), unsafe.Pointer(b))
	runtime.KeepAlive(b)
	return err
}

// MSR reads one model-specific register (KVM_GET_MSRS).
func (c *VCPU) MSR(index uint32) (uint64, error) {
	m := &gokvm.MSRS{NMSRs: 1, Entries: []gokvm.MSREntry{{Index: index}}}
	if err := gokvm.GetMSRs(c.fd(), m); err != nil {
		return 0, fmt.Errorf("KVM_GET_MSRS %#x: %w", index, err)
	}
	return m.Entries[0].Data, nil
}

// SetMSR writes one model-specific register (KVM_SET_MSRS).
func (c *VCPU) SetMSR(index uint32, v uint64) error {
	m := &gokvm.MSRS{NMSRs: 1, Entries: []gokvm.MSREntry{{Index: index, Data: v}}}
	if err := gokvm.SetMSRs(c.fd(), m); err != nil {
		return fmt.Errorf("KVM_SET_MSRS %#x: %w", index, err)
	}
	return nil
}
