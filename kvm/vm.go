package kvm

import (
	"fmt"
	"os"
	"unsafe"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine.
type VM struct {
	f   *os.File
	sys *System
}

func (vm *VM) fd() uintptr { return vm.f.Fd() }

// Close releases the VM. Its vCPUs must be closed first.
func (vm *VM) Close() error { return vm.f.Close() }

// CheckExtension asks the VM (KVM_CHECK_EXTENSION on the VM fd), which some
// capabilities (XSAVE2's area size) answer per VM.
func (vm *VM) CheckExtension(c Capability) (int, error) {
	n, err := gokvm.CheckExtension(vm.fd(), c)
	return int(n), err
}

// SetMemoryRegion maps host memory mem at guest-physical gpa as memslot slot
// (KVM_SET_USER_MEMORY_REGION). An empty mem deletes the slot.
func (vm *VM) SetMemoryRegion(slot uint32, gpa uint64, mem []byte, readonly bool) error {
	r := gokvm.UserspaceMemoryRegion{Slot: slot, GuestPhysAddr: gpa, MemorySize: uint64(len(mem))}
	if len(mem) > 0 {
		r.UserspaceAddr = uint64(uintptr(unsafe.Pointer(&mem[0])))
	}
	if readonly {
		r.SetMemReadonly()
	}
	if err := gokvm.SetUserMemoryRegion(vm.fd(), &r); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d at GPA %#x (+%#x): %w", slot, gpa, len(mem), err)
	}
	return nil
}

// SetTSSAddr places the three pages KVM needs for real-mode emulation on
// Intel (KVM_SET_TSS_ADDR); they must not overlap guest RAM in use.
func (vm *VM) SetTSSAddr(gpa uint32) error {
	if err := gokvm.SetTSSAddr(vm.fd(), gpa); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR %#x: %w", gpa, err)
	}
	return nil
}

// SetIdentityMapAddr places KVM's identity-map page (KVM_SET_IDENTITY_MAP_ADDR).
func (vm *VM) SetIdentityMapAddr(gpa uint32) error {
	if err := gokvm.SetIdentityMapAddr(vm.fd(), gpa); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR %#x: %w", gpa, err)
	}
	return nil
}

// kvmEnableCap is struct kvm_enable_cap.
type kvmEnableCap struct {
	Cap   uint32
	Flags uint32
	Args  [4]uint64
	_     [64]uint8
}

const ioctlEnableCap = 0xa3

// EnableCap enables a VM capability (KVM_ENABLE_CAP on the VM fd).
func (vm *VM) EnableCap(c Capability, args ...uint64) error {
	ec := kvmEnableCap{Cap: uint32(c)}
	copy(ec.Args[:], args)
	if _, err := gokvm.Ioctl(vm.fd(), gokvm.IIOW(ioctlEnableCap, unsafe.Sizeof(ec)), uintptr(unsafe.Pointer(&ec))); err != nil {
		return fmt.Errorf("KVM_ENABLE_CAP %v: %w", c, err)
	}
	return nil
}

// CreateVCPU creates vCPU id and maps its kvm_run area.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	fd, err := gokvm.CreateVCPU(vm.fd(), id)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	f := os.NewFile(fd, "kvm-vcpu")
	mem, err := unix.Mmap(int(fd), 0, vm.sys.mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mmap kvm_run of vCPU %d: %w", id, err)
	}
	if len(mem) < int(unsafe.Sizeof(runHeader{})) {
		unix.Munmap(mem)
		f.Close()
		return nil, fmt.Errorf("kvm_run of vCPU %d is %d bytes, smaller than walkvm's view of it", id, len(mem))
	}
	return &VCPU{f: f, sysfd: fd, ID: id, runMem: mem, run: (*runHeader)(unsafe.Pointer(&mem[0]))}, nil
}
