package vcpu

import (
	"testing"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
)

// The plain MMIO path, driven with made-up exits.
func TestServeMMIO(t *testing.T) {
	bus := memory.NewBus("mmio")
	w := devices.NewTestWindow(0xff000000, 0x1000)
	if err := bus.Register("w", 0xff000000, 0x1000, w); err != nil {
		t.Fatal(err)
	}
	write := &kvm.MMIOExit{PhysAddr: 0xff000010, Len: 4, IsWrite: 1, Data: [8]byte{1, 2, 3, 4}}
	if err := ServeMMIO(bus, write, nil); err != nil {
		t.Fatal(err)
	}
	read := &kvm.MMIOExit{PhysAddr: 0xff000012, Len: 2}
	if err := ServeMMIO(bus, read, nil); err != nil {
		t.Fatal(err)
	}
	if read.Data[0] != 3 || read.Data[1] != 4 {
		t.Fatalf("read back % x", read.Data[:2])
	}
	unassigned := &kvm.MMIOExit{PhysAddr: 0xfe000000, Len: 4}
	if err := ServeMMIO(bus, unassigned, nil); err != nil {
		t.Fatal(err)
	}
	if unassigned.Data != [8]byte{0xff, 0xff, 0xff, 0xff} {
		t.Fatalf("unassigned read % x, want all ones", unassigned.Data)
	}
	// A length KVM should never send is clamped to the data array.
	huge := &kvm.MMIOExit{PhysAddr: 0xff000000, Len: 1 << 20}
	if err := ServeMMIO(bus, huge, nil); err != nil {
		t.Fatal(err)
	}
}
