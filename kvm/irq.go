package kvm

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
)

// Interrupt-controller and timer capabilities.
const (
	CapIRQChip          Capability = gokvm.CapIRQChip
	CapPIT2             Capability = gokvm.CapPIT2
	CapTSCDeadlineTimer Capability = gokvm.CapTSCDeadlineTimer
)

const (
	ioctlCreatePIT2 = 0x77
	ioctlIRQLine    = 0x61
	// pitSpeakerDummy is KVM_PIT_SPEAKER_DUMMY: KVM answers the PC
	// speaker port 0x61 itself, so its PIT-gate polls never exit.
	pitSpeakerDummy = 1
)

// retryEINTR runs op until it does not fail with EINTR: VM-wide setup ioctls
// can be interrupted by a signal (Go's preemption signal included).
func retryEINTR(op func() error) error {
	var err error
	for range 100 {
		if err = op(); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	return err
}

// CreateIRQChip creates KVM's in-kernel interrupt controllers: the two 8259
// PICs, the IOAPIC at 0xfec00000 and a local APIC per vCPU at 0xfee00000
// (KVM_CREATE_IRQCHIP). It must precede every KVM_CREATE_VCPU. With it, HLT
// no longer exits to userspace.
func (vm *VM) CreateIRQChip() error {
	if err := retryEINTR(func() error { return gokvm.CreateIRQChip(vm.fd()) }); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// pitConfig is struct kvm_pit_config.
type pitConfig struct {
	Flags uint32
	_     [15]uint32
}

// CreatePIT2 creates KVM's in-kernel 8254 PIT on ports 0x40–0x43, wired to
// IRQ 0, with the speaker port 0x61 kept in the kernel (KVM_CREATE_PIT2 with
// KVM_PIT_SPEAKER_DUMMY). It needs the in-kernel irqchip.
func (vm *VM) CreatePIT2() error {
	cfg := pitConfig{Flags: pitSpeakerDummy}
	err := retryEINTR(func() error {
		_, err := gokvm.Ioctl(vm.fd(), gokvm.IIOW(ioctlCreatePIT2, unsafe.Sizeof(cfg)), uintptr(unsafe.Pointer(&cfg)))
		return err
	})
	if err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// irqLevel is struct kvm_irq_level.
type irqLevel struct {
	IRQ   uint32
	Level uint32
}

// SetIRQLine sets GSI irq of the in-kernel irqchip to level (KVM_IRQ_LINE):
// ISA IRQs 0–15 reach both the PICs and the IOAPIC, 16–23 the IOAPIC.
// It is safe to call from any thread.
func (vm *VM) SetIRQLine(irq uint32, high bool) error {
	l := irqLevel{IRQ: irq}
	if high {
		l.Level = 1
	}
	if _, err := gokvm.Ioctl(vm.fd(), gokvm.IIOW(ioctlIRQLine, unsafe.Sizeof(l)), uintptr(unsafe.Pointer(&l))); err != nil {
		return fmt.Errorf("KVM_IRQ_LINE %d=%d: %w", irq, l.Level, err)
	}
	return nil
}

// MPState is a vCPU's multiprocessing state (KVM_GET_MP_STATE).
type MPState uint32

// The x86 MP states.
const (
	MPRunnable      MPState = MPState(gokvm.MPStateRunnable)
	MPUninitialized MPState = MPState(gokvm.MPStateUninitialized)
	MPInitReceived  MPState = MPState(gokvm.MPStateInitReceived)
	MPHalted        MPState = MPState(gokvm.MPStateHalted)
	MPSIPIReceived  MPState = MPState(gokvm.MPStateSipiReceived)
)

var mpStateNames = [...]string{
	MPRunnable:      "runnable",
	MPUninitialized: "waiting for INIT/SIPI",
	MPInitReceived:  "INIT received",
	MPHalted:        "halted",
	MPSIPIReceived:  "SIPI received",
}

func (s MPState) String() string {
	if int(s) < len(mpStateNames) && mpStateNames[s] != "" {
		return mpStateNames[s]
	}
	return fmt.Sprintf("mp_state(%d)", uint32(s))
}

// MPState returns the vCPU's multiprocessing state (KVM_GET_MP_STATE).
func (c *VCPU) MPState() (MPState, error) {
	var s gokvm.MPState
	if err := gokvm.GetMPState(c.fd(), &s); err != nil {
		return 0, fmt.Errorf("KVM_GET_MP_STATE: %w", err)
	}
	return MPState(s.State), nil
}

// SetMPState sets the vCPU's multiprocessing state (KVM_SET_MP_STATE): an
// application processor starts in MPUninitialized, waiting for INIT/SIPI
// from the BSP's local APIC.
func (c *VCPU) SetMPState(s MPState) error {
	st := gokvm.MPState{State: uint32(s)}
	if err := gokvm.SetMPState(c.fd(), &st); err != nil {
		return fmt.Errorf("KVM_SET_MP_STATE %v: %w", s, err)
	}
	return nil
}

// PICState is struct kvm_pic_state: one 8259's registers as KVM's model
// keeps them (KVM_GET_IRQCHIP/KVM_SET_IRQCHIP, chips 0 and 1).
type PICState = gokvm.PICState

// The PIC chips of KVM_GET_IRQCHIP.
const (
	PICMaster uint32 = 0 // ports 0x20-0x21, IRQ 0-7
	PICSlave  uint32 = 1 // ports 0xa0-0xa1, IRQ 8-15, on the master's IRQ 2
)

// PIC returns the state of the in-kernel 8259 chip (PICMaster or PICSlave).
func (vm *VM) PIC(chip uint32) (PICState, error) {
	if chip != PICMaster && chip != PICSlave {
		return PICState{}, fmt.Errorf("KVM_GET_IRQCHIP: chip %d is not a PIC", chip)
	}
	irqc := gokvm.IRQChip{ChipID: chip}
	if err := gokvm.GetIRQChip(vm.fd(), &irqc); err != nil {
		return PICState{}, fmt.Errorf("KVM_GET_IRQCHIP %d: %w", chip, err)
	}
	return *(*PICState)(unsafe.Pointer(&irqc.Chip[0])), nil
}

// SetPIC sets the state of the in-kernel 8259 chip (PICMaster or PICSlave).
func (vm *VM) SetPIC(chip uint32, s PICState) error {
	if chip != PICMaster && chip != PICSlave {
		return fmt.Errorf("KVM_SET_IRQCHIP: chip %d is not a PIC", chip)
	}
	irqc := gokvm.IRQChip{ChipID: chip}
	*(*PICState)(unsafe.Pointer(&irqc.Chip[0])) = s
	if err := gokvm.SetIRQChip(vm.fd(), &irqc); err != nil {
		return fmt.Errorf("KVM_SET_IRQCHIP %d: %w", chip, err)
	}
	return nil
}
