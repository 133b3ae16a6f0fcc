package kvm

import (
	"fmt"
	"unsafe"
)

// ExitKind is what an exit asks of the run loop: the exit reason, with
// internal errors split into emulation failures and the rest, and EINTR
// from KVM_RUN folded into KindInterrupted.
type ExitKind uint8

// Exit kinds.
const (
	KindOther            ExitKind = iota // a reason walkvm does not handle
	KindMMIO                             // KVM_EXIT_MMIO
	KindIO                               // KVM_EXIT_IO
	KindHLT                              // KVM_EXIT_HLT
	KindShutdown                         // KVM_EXIT_SHUTDOWN: a triple fault
	KindInternalError                    // KVM_EXIT_INTERNAL_ERROR, not an emulation failure
	KindEmulationFailure                 // KVM_EXIT_INTERNAL_ERROR, KVM_INTERNAL_ERROR_EMULATION
	KindSystemEvent                      // KVM_EXIT_SYSTEM_EVENT: reset, shutdown, crash
	KindFailEntry                        // KVM_EXIT_FAIL_ENTRY
	KindInterrupted                      // KVM_EXIT_INTR, or KVM_RUN returned EINTR
	KindDebug                            // KVM_EXIT_DEBUG
)

var kindNames = [...]string{"other", "mmio", "io", "hlt", "shutdown", "internal_error", "emulation_failure",
	"system_event", "fail_entry", "interrupted", "debug"}

func (k ExitKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Exit is one exit as the run loop sees it: its kind and the fields of that
// kind. VCPU.ReadExit fills it from kvm_run; tests build it by hand. The
// slices and pointers point into kvm_run (or the test's buffers): a read's
// data is returned by filling them.
type Exit struct {
	Kind   ExitKind
	Reason ExitReason // kvm_run.exit_reason; 0 for an EINTR
	// Seq numbers one vCPU's exits from 1; the run loop sets it.
	Seq uint64
	// TimeNS is when KVM_RUN returned with the exit and DurNS how long
	// handling it took, in nanoseconds of the run's clock; the run loop
	// sets them (and Timed) when it times exits.
	TimeNS, DurNS int64
	Timed         bool

	MMIO             *MMIOExit         // KindMMIO
	IO               IOAccess          // KindIO
	EmulationFailure *EmulationFailure // KindEmulationFailure
	Internal         InternalError     // KindInternalError
	SystemEvent      SystemEvent       // KindSystemEvent
	FailEntry        FailEntryExit     // KindFailEntry
	Debug            DebugExit         // KindDebug
}

// IOAccess is a port-I/O exit: Count elements of Size bytes at Port, one
// after the other in Data (string I/O has Count > 1).
type IOAccess struct {
	Port  uint16
	Size  uint8
	Out   bool
	Count uint32
	Data  []byte
}

// InternalError is KVM_EXIT_INTERNAL_ERROR's suberror and data.
type InternalError struct {
	Suberror uint32
	Data     []uint64
}

// System event types (KVM_SYSTEM_EVENT_*).
const (
	SystemEventShutdown = 1
	SystemEventReset    = 2
	SystemEventCrash    = 3
)

// SystemEvent is kvm_run.system_event: the guest asked to shut down,
// reset or reported a crash (PSCI, Hyper-V, SEV...).
type SystemEvent struct {
	Type uint32
	Data []uint64
}

// systemEventExit is kvm_run.system_event's layout.
type systemEventExit struct {
	Type  uint32
	NData uint32
	Data  [16]uint64
}

// Bytes is the access's data: Len bytes, clamped to the 8 KVM has room for.
func (m *MMIOExit) Bytes() []byte { return m.Data[:min(int(m.Len), len(m.Data))] }

// ReadExit fills e from kvm_run after KVM_RUN returned; Seq, and the
// timing fields of an exit of the same kind as e held, are left as they
// are. The fields of other kinds than e's are zero. It is the one place
// walkvm reads an exit, and allocates nothing.
//
// An MMIO or port-I/O exit after one of the same kind (a guest's exits
// come in such runs) sets only its kind's fields: the others are zero
// already, so e is not cleared whole (it is about 200 bytes).
func (c *VCPU) ReadExit(e *Exit) error {
	r := c.run.ExitReason
	switch {
	case r == ExitMMIO && e.Kind == KindMMIO:
		e.MMIO = c.MMIO()
		return nil
	case r == ExitIO && e.Kind == KindIO:
		return c.readIO(&e.IO)
	}
	*e = Exit{Reason: r, Seq: e.Seq}
	switch r {
	case ExitMMIO:
		e.Kind, e.MMIO = KindMMIO, c.MMIO()
	case ExitIO:
		if err := c.readIO(&e.IO); err != nil {
			return err
		}
		e.Kind = KindIO
	case ExitHLT:
		e.Kind = KindHLT
	case ExitShutdown:
		e.Kind = KindShutdown
	case ExitInternalError:
		ie := c.InternalError()
		if ie.Suberror == InternalErrorEmulation {
			e.Kind, e.EmulationFailure = KindEmulationFailure, c.EmulationFailure()
			break
		}
		e.Kind = KindInternalError
		e.Internal = InternalError{Suberror: ie.Suberror, Data: ie.Data[:min(int(ie.NData), len(ie.Data))]}
	case ExitSystemEvent:
		se := (*systemEventExit)(unsafe.Pointer(&c.run.Exit[0]))
		e.Kind = KindSystemEvent
		e.SystemEvent = SystemEvent{Type: se.Type, Data: se.Data[:min(int(se.NData), len(se.Data))]}
	case ExitFailEntry:
		e.Kind, e.FailEntry = KindFailEntry, *c.FailEntry()
	case ExitIntr:
		e.Kind = KindInterrupted
	case ExitDebug:
		e.Kind, e.Debug = KindDebug, *c.Debug()
	default:
		e.Kind = KindOther
	}
	return nil
}

// readIO fills a from kvm_run.io: its data, Size*Count bytes, must lie
// inside kvm_run, and Size must not be 0.
func (c *VCPU) readIO(a *IOAccess) error {
	io := c.IO()
	n := uint64(io.Size) * uint64(io.Count)
	if io.Size == 0 || io.DataOffset > uint64(len(c.runMem)) || n > uint64(len(c.runMem))-io.DataOffset {
		return c.badIO(io, n)
	}
	a.Port, a.Size, a.Out, a.Count = io.Port, io.Size, io.Direction == IOOut, io.Count
	a.Data = c.runMem[io.DataOffset : io.DataOffset+n : io.DataOffset+n]
	return nil
}

func (c *VCPU) badIO(io *IOExit, n uint64) error {
	if io.Size == 0 {
		return fmt.Errorf("IO exit with size 0 at port %#x", io.Port)
	}
	return fmt.Errorf("IO exit data %d bytes at offset %#x lies outside kvm_run (%d bytes)", n, io.DataOffset, len(c.runMem))
}
