package machine

import (
	"errors"
	"os"
	"strings"
	"testing"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/vcpu"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(ents)
}

// hlt is a flat real-mode guest: HLT.
var hlt = boot.Image{Data: []byte{0xf4}, Load: 0x1000, Mode: boot.Real}

// Prepare leaves nothing open when it fails midway: the guest RAM it
// mapped is unmapped and /dev/kvm, when it opened it, closed.
func TestPrepareFailureReleases(t *testing.T) {
	notKVM := os.DevNull // opens, but answers no KVM ioctl
	for _, c := range []struct {
		name    string
		fail    error // the extra device's New fails with it
		kvmPath string
		want    string
	}{
		{"a device fails", errors.New("broken"), notKVM, "device extra: broken"},
		{"the device node is no KVM", nil, notKVM, "KVM_GET_API_VERSION"},
		{"no device node", nil, "/nonexistent/kvm", "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ram *memory.RAM
			extra := Device{Name: "extra", Ports: []Span{{0x1510, 2}}, New: func(env DeviceEnv) (memory.Device, error) {
				ram = env.RAM
				return devices.NewTestWindow(0, 2), c.fail
			}}
			before := openFDs(t)
			m, err := Prepare(Config{MemSize: 16 << 20, Image: hlt, Devices: []Device{extra}, KVMPath: c.kvmPath})
			if err == nil {
				m.Close()
				t.Fatalf("Prepare succeeded with %s", c.kvmPath)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want one mentioning %q", err, c.want)
			}
			if ram == nil {
				t.Fatal("the devices were not built with the RAM")
			}
			if n := ram.Size(); n != 0 {
				t.Errorf("%d bytes of guest RAM still mapped", n)
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d files open after the failed Prepare, %d before", after, before)
			}
		})
	}
}

// Close releases every file of Prepare and Create, also when Prepare fails
// with the VM's creation under way; a second Close does nothing, and a
// closed machine creates no VM.
func TestCreateClose(t *testing.T) {
	if _, err := os.Stat(kvm.DevicePath); err != nil {
		t.Skipf("needs KVM: %v", err)
	}
	before := openFDs(t)
	// A device failing while KVM_CREATE_VM is under way: the VM is
	// waited for and closed.
	broken := Device{Name: "broken", Ports: []Span{{0x1510, 2}}, New: func(DeviceEnv) (memory.Device, error) {
		return nil, errors.New("broken")
	}}
	if _, err := Prepare(Config{MemSize: 16 << 20, Image: hlt, Devices: []Device{broken}}); err == nil {
		t.Fatal("Prepare with a broken device succeeded")
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d files open after a failed Prepare, %d before", after, before)
	}
	m, err := Prepare(Config{MemSize: 16 << 20, Image: hlt})
	if err != nil {
		t.Fatal(err)
	}
	if m.VM != nil || m.CPUs != nil || m.UART == nil || m.PIO == nil {
		t.Errorf("prepared: VM %v, %d vCPUs, UART %v, PIO bus %v", m.VM, len(m.CPUs), m.UART, m.PIO)
	}
	if _, err := m.OwnPath(0, nil); err == nil {
		t.Error("own path built before the VM")
	}
	if err := m.Create(); err != nil {
		m.Close()
		t.Fatal(err)
	}
	if m.VM == nil || len(m.CPUs) != 1 || m.CPU != m.CPUs[0] {
		t.Errorf("created: VM %v, %d vCPUs", m.VM, len(m.CPUs))
	}
	if err := m.Create(); err == nil {
		t.Error("a second Create succeeded")
	}
	if end := m.Run(0); end.Kind != vcpu.EndHalted || end.Err != nil {
		t.Errorf("run ended %v (%v)", end.Kind, end.Err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d files open after Close, %d before", after, before)
	}
	if err := m.Create(); err == nil {
		t.Error("Create on a closed machine succeeded")
	}
}

// A device that drives its interrupt line, or a caller that reads the
// PICs, while the machine has no VM (before Create, after Close) gets an
// error, not a panic.
func TestIRQLineWithoutVM(t *testing.T) {
	m := &Machine{irqchip: true}
	if err := m.irqLine(4).SetLevel(true); err == nil || !strings.Contains(err.Error(), "no VM") {
		t.Errorf("UART line without a VM: %v", err)
	}
	if err := m.setIRQ()(14, true); err == nil || !strings.Contains(err.Error(), "no VM") {
		t.Errorf("pc-testdev's line without a VM: %v", err)
	}
	if _, _, err := m.PICBases(); err == nil || !strings.Contains(err.Error(), "no VM") {
		t.Errorf("PIC bases without a VM: %v", err)
	}
}
