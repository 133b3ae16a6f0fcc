package kvm

import (
	"fmt"
	"unsafe"
)

// ExitReason is kvm_run.exit_reason.
type ExitReason uint32

// Exit reasons (include/uapi/linux/kvm.h).
const (
	ExitUnknown       ExitReason = 0
	ExitException     ExitReason = 1
	ExitIO            ExitReason = 2
	ExitHypercall     ExitReason = 3
	ExitDebug         ExitReason = 4
	ExitHLT           ExitReason = 5
	ExitMMIO          ExitReason = 6
	ExitIRQWindowOpen ExitReason = 7
	ExitShutdown      ExitReason = 8
	ExitFailEntry     ExitReason = 9
	ExitIntr          ExitReason = 10
	ExitInternalError ExitReason = 17
	ExitSystemEvent   ExitReason = 24
	ExitMemoryFault   ExitReason = 39
)

var exitNames = map[ExitReason]string{
	ExitUnknown: "unknown", ExitException: "exception", ExitIO: "io", ExitHypercall: "hypercall",
	ExitDebug: "debug", ExitHLT: "hlt", ExitMMIO: "mmio", ExitIRQWindowOpen: "irq_window_open",
	ExitShutdown: "shutdown", ExitFailEntry: "fail_entry", ExitIntr: "intr",
	ExitInternalError: "internal_error", ExitSystemEvent: "system_event", ExitMemoryFault: "memory_fault",
}

func (r ExitReason) String() string {
	if n, ok := exitNames[r]; ok {
		return n
	}
	return fmt.Sprintf("exit_reason_%d", uint32(r))
}

// runHeader is the fixed head of struct kvm_run; the exit union follows.
type runHeader struct {
	RequestInterruptWindow     uint8
	ImmediateExit              uint8
	_                          [6]uint8
	ExitReason                 ExitReason
	ReadyForInterruptInjection uint8
	IfFlag                     uint8
	Flags                      uint16
	CR8                        uint64
	APICBase                   uint64
	Exit                       [256]byte
	ValidRegs                  uint64 // kvm_valid_regs: what KVM copies out at each exit
	DirtyRegs                  uint64 // kvm_dirty_regs: what KVM copies in at KVM_RUN
	Sync                       syncRegs
}

// syncRegs is struct kvm_sync_regs (x86), inside kvm_run's 2 KiB union.
type syncRegs struct {
	Regs   Regs
	Sregs  Sregs
	Events VCPUEvents
}

// Register sets KVM_CAP_SYNC_REGS can copy out (KVM_SYNC_X86_*).
const (
	SyncRegs  = 1 << 0
	SyncSregs = 1 << 1
)

// EnableSyncRegs asks KVM to copy the register sets in mask into kvm_run at
// every exit (KVM_CAP_SYNC_REGS), sparing a KVM_GET_REGS and KVM_GET_SREGS
// per exit. Writes still go through KVM_SET_REGS/SREGS.
func (c *VCPU) EnableSyncRegs(mask uint64) { c.run.ValidRegs = mask }

// SyncedRegs are the registers KVM copied out at the last exit; valid only
// after EnableSyncRegs(SyncRegs).
func (c *VCPU) SyncedRegs() *Regs { return &c.run.Sync.Regs }

// SyncedSregs are the special registers KVM copied out at the last exit;
// valid only after EnableSyncRegs(SyncSregs).
func (c *VCPU) SyncedSregs() *Sregs { return &c.run.Sync.Sregs }

// ExitReason is the reason of the last exit.
func (c *VCPU) ExitReason() ExitReason { return c.run.ExitReason }

// IO directions.
const (
	IOIn  = 0
	IOOut = 1
)

// IOExit is kvm_run.io: a port access of Size bytes, repeated Count times for
// string I/O, with the data at DataOffset inside kvm_run.
type IOExit struct {
	Direction  uint8
	Size       uint8
	Port       uint16
	Count      uint32
	DataOffset uint64
}

// IO views the exit as port I/O (valid when ExitReason is ExitIO).
func (c *VCPU) IO() *IOExit { return (*IOExit)(unsafe.Pointer(&c.run.Exit[0])) }

// MMIOExit is kvm_run.mmio: an access to a GPA outside every memslot. For a
// read, the VMM fills Data and KVM completes the instruction on re-entry.
type MMIOExit struct {
	PhysAddr uint64
	Data     [8]uint8
	Len      uint32
	IsWrite  uint8
}

// MMIO views the exit as MMIO (valid when ExitReason is ExitMMIO).
func (c *VCPU) MMIO() *MMIOExit { return (*MMIOExit)(unsafe.Pointer(&c.run.Exit[0])) }

// Internal error suberrors (KVM_INTERNAL_ERROR_*).
const (
	InternalErrorEmulation      = 1
	InternalErrorSimulEx        = 2
	InternalErrorDeliveryEv     = 3
	InternalErrorUnexpectedExit = 4

	// EmulationFlagInstructionBytes says InsnSize/InsnBytes are valid
	// (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES).
	EmulationFlagInstructionBytes = 1
)

// InternalErrorExit is kvm_run.internal.
type InternalErrorExit struct {
	Suberror uint32
	NData    uint32
	Data     [16]uint64
}

// InternalError views the exit as an internal error.
func (c *VCPU) InternalError() *InternalErrorExit {
	return (*InternalErrorExit)(unsafe.Pointer(&c.run.Exit[0]))
}

// EmulationFailure is kvm_run.emulation_failure, the layout of an internal
// error with suberror InternalErrorEmulation once
// KVM_CAP_EXIT_ON_EMULATION_FAILURE is enabled.
type EmulationFailure struct {
	Suberror  uint32
	NData     uint32
	Flags     uint64
	InsnSize  uint8
	InsnBytes [15]uint8
}

// Instruction returns the bytes KVM could not emulate, if it reported them.
func (e *EmulationFailure) Instruction() []byte {
	if e.Flags&EmulationFlagInstructionBytes == 0 {
		return nil
	}
	n := int(e.InsnSize)
	if n > len(e.InsnBytes) {
		n = len(e.InsnBytes)
	}
	return e.InsnBytes[:n]
}

// EmulationFailure views the exit as an emulation failure.
func (c *VCPU) EmulationFailure() *EmulationFailure {
	return (*EmulationFailure)(unsafe.Pointer(&c.run.Exit[0]))
}

// FailEntryExit is kvm_run.fail_entry.
type FailEntryExit struct {
	HardwareEntryFailureReason uint64
	CPU                        uint32
}

// FailEntry views the exit as a failed VM entry.
func (c *VCPU) FailEntry() *FailEntryExit { return (*FailEntryExit)(unsafe.Pointer(&c.run.Exit[0])) }

// DebugExit is kvm_run.debug.arch.
type DebugExit struct {
	Exception uint32
	_         uint32
	PC        uint64
	DR6       uint64
	DR7       uint64
}

// Debug views the exit as a debug exit.
func (c *VCPU) Debug() *DebugExit { return (*DebugExit)(unsafe.Pointer(&c.run.Exit[0])) }

// ExceptionExit is kvm_run.ex.
type ExceptionExit struct {
	Exception uint32
	ErrorCode uint32
}

// Exception views the exit as an exception exit.
func (c *VCPU) Exception() *ExceptionExit {
	return (*ExceptionExit)(unsafe.Pointer(&c.run.Exit[0]))
}
