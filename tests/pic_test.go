package tests

import (
	"testing"

	"walkvm/guest"
	"walkvm/internal/kvmtest"
	"walkvm/machine"
	"walkvm/suite"
)

// A machine with the in-kernel irqchip starts with its 8259s as a PC BIOS
// leaves them: IRQ 0-7 at vectors 0x08-0x0f, IRQ 8-15 at 0x70-0x77.
func TestPICsStartAsBIOSLeavesThem(t *testing.T) {
	kvmtest.Require(t)
	g, err := guest.Lookup("pcdev")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := suite.MachineConfig(g, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	m, err := machine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.IRQChip() {
		t.Fatalf("guest %s: no in-kernel irqchip", g.Name)
	}
	master, slave, err := m.PICBases()
	if err != nil {
		t.Fatal(err)
	}
	if master != machine.BIOSPICMasterBase || slave != machine.BIOSPICSlaveBase {
		t.Errorf("PIC vector bases %#x and %#x, want %#x and %#x", master, slave, machine.BIOSPICMasterBase, machine.BIOSPICSlaveBase)
	}
}
