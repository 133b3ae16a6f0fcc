package machine

import (
	"fmt"

	"walkvm/kvm"
)

// The vector bases a PC BIOS programs into the 8259s (ICW2): IRQ 0-7 at
// real-mode vectors 0x08-0x0f, IRQ 8-15 at 0x70-0x77. Real-mode guests
// install their handlers there: kvm-unit-tests' realmode test puts its
// IRQ 11 handler at vector 0x73 and waits for it in HLT.
const (
	BIOSPICMasterBase = 0x08
	BIOSPICSlaveBase  = 0x70
)

// biosPIC is an 8259's state after the initialisation a PC BIOS sends it
// (ICW1 with ICW4 to follow, ICW2 base, ICW3 cascade, ICW4 8086 mode), from
// the state s KVM holds: the vector base set, initialisation done, 8086
// mode, no automatic EOI, IMR clear (every line open, as KVM's model leaves
// it after ICW1: walkvm installs no handlers, so the guest masks what it
// does not serve). What ICW1 does not touch is kept, the ELCR and its mask
// among it.
func biosPIC(s kvm.PICState, base uint8) kvm.PICState {
	s.IRQBase = base
	s.InitState = 0
	s.Init4 = 1
	s.AutoEOI = 0
	s.RotateOnAutoEOI = 0
	s.SpecialFullyNestedMode = 0
	s.IMR = 0
	s.ISR = 0
	s.PriorityAdd = 0
	s.ReadRegSelect = 0
	s.Poll = 0
	s.SpecialMask = 0
	return s
}

// initPICs leaves KVM's two in-kernel 8259s as a PC BIOS does (biosPIC).
// KVM creates them uninitialised, with vector base 0: an ISA interrupt then
// arrives on a CPU exception's vector.
func initPICs(vm *kvm.VM) error {
	for _, p := range []struct {
		chip uint32
		base uint8
	}{{kvm.PICMaster, BIOSPICMasterBase}, {kvm.PICSlave, BIOSPICSlaveBase}} {
		s, err := vm.PIC(p.chip)
		if err != nil {
			return err
		}
		if err := vm.SetPIC(p.chip, biosPIC(s, p.base)); err != nil {
			return err
		}
	}
	return nil
}

// PICBases returns the vector bases (ICW2) of the in-kernel master and
// slave 8259; an error without the irqchip.
func (m *Machine) PICBases() (master, slave uint8, err error) {
	if !m.irqchip {
		return 0, 0, fmt.Errorf("no in-kernel irqchip")
	}
	if m.VM == nil {
		return 0, 0, fmt.Errorf("PIC bases: the machine has no VM (not created yet, or closed)")
	}
	ms, err := m.VM.PIC(kvm.PICMaster)
	if err != nil {
		return 0, 0, err
	}
	ss, err := m.VM.PIC(kvm.PICSlave)
	if err != nil {
		return 0, 0, err
	}
	return ms.IRQBase, ss.IRQBase, nil
}
