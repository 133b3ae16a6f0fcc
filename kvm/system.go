package kvm

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"unsafe"

	"walkvm/x86"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// APIVersion is the only KVM API version walkvm speaks (KVM_GET_API_VERSION).
const APIVersion = 12

// DevicePath is where the KVM device lives.
const DevicePath = "/dev/kvm"

// Capability is a KVM_CAP_* number.
type Capability = gokvm.Capability

// Capabilities walkvm uses, by their KVM names.
const (
	CapUserMemory             Capability = gokvm.CapUserMemory
	CapSetTSSAddr             Capability = gokvm.CapSetTSSAddr
	CapSetIdentityMapAddr     Capability = gokvm.CapSetIdentityMapAddr
	CapExtCPUID               Capability = gokvm.CapEXTCPUID
	CapImmediateExit          Capability = gokvm.CapImmediateExit
	CapXSave                  Capability = gokvm.CapXSave
	CapXSave2                 Capability = gokvm.CapXSave2
	CapSRegs2                 Capability = gokvm.CapSREGS2
	CapExitOnEmulationFailure Capability = gokvm.CapExitOnEmulationFailure
	CapReadonlyMem            Capability = gokvm.CapReadOnlyMEM
	CapVCPUEvents             Capability = gokvm.CapVCPUEvents
	CapNrVCPUs                Capability = gokvm.CapNRVCPUS
	CapMaxVCPUs               Capability = gokvm.CapMAXVCPUS
	CapExceptionPayload       Capability = gokvm.CapExceptionPayload
	CapSetGuestDebug          Capability = gokvm.CapSetGuestDebug
	CapCoalescedMMIO          Capability = gokvm.CapCoalescedMMIO
	CapMemoryFaultInfo        Capability = 232
	CapSyncRegs               Capability = gokvm.CapSyncRegs
)

// Required lists the capabilities walkvm cannot run without.
var Required = []Capability{CapUserMemory, CapSetTSSAddr, CapSetIdentityMapAddr, CapExtCPUID, CapImmediateExit}

// ErrNoKVM says the KVM device is missing or cannot be opened.
var ErrNoKVM = errors.New("KVM is not available")

// System is an open /dev/kvm.
type System struct {
	f        *os.File
	mmapSize int
}

// Open opens /dev/kvm, checks the API version and the capabilities walkvm
// needs, and returns the handle.
func Open() (*System, error) { return OpenPath(DevicePath) }

// OpenPath is Open for a KVM device node at path.
func OpenPath(path string) (*System, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoKVM, err)
	}
	s := &System{f: f}
	v, err := gokvm.GetAPIVersion(s.fd())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: KVM_GET_API_VERSION on %s: %w", ErrNoKVM, path, err)
	}
	if v != APIVersion {
		f.Close()
		return nil, fmt.Errorf("%s speaks KVM API version %d, walkvm needs %d", path, v, APIVersion)
	}
	for _, c := range Required {
		n, err := s.CheckExtension(c)
		if err != nil || n == 0 {
			f.Close()
			return nil, fmt.Errorf("%s lacks capability %v (KVM_CAP number %d), which walkvm needs", path, c, int(c))
		}
	}
	sz, err := gokvm.GetVCPUMMmapSize(s.fd())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	s.mmapSize = int(sz)
	return s, nil
}

func (s *System) fd() uintptr { return s.f.Fd() }

// Close releases /dev/kvm. VMs created from it stay valid until closed.
func (s *System) Close() error { return s.f.Close() }

// CheckExtension returns KVM_CHECK_EXTENSION's answer for c: 0 when absent,
// otherwise 1 or a capability-specific value.
func (s *System) CheckExtension(c Capability) (int, error) {
	n, err := gokvm.CheckExtension(s.fd(), c)
	return int(n), err
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID.
func (s *System) SupportedCPUID() (*CPUID, error) {
	b := &cpuid2{Nent: maxCPUIDEntries}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, s.fd(), gokvm.IIOWR(ioctlGetSupportedCPUID, cpuid2Header), uintptr(unsafe.Pointer(b))); errno != 0 {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", errno)
	}
	if b.Nent > maxCPUIDEntries {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID returned %d entries, more than the %d asked for", b.Nent, maxCPUIDEntries)
	}
	return NewCPUID(slices.Clone(b.Entries[:b.Nent])), nil
}

// maxCPUIDEntries is KVM_MAX_CPUID_ENTRIES, the most entries KVM takes or
// returns.
const maxCPUIDEntries = 256

// cpuid2 is struct kvm_cpuid2 with room for maxCPUIDEntries, as
// KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2 take it: filled and read in
// place (gokvm's own encodes every entry through encoding/binary's
// reflection, which a VM's start pays for twice).
type cpuid2 struct {
	Nent    uint32
	_       uint32
	Entries [maxCPUIDEntries]CPUIDEntry
}

// cpuid2Header is sizeof(struct kvm_cpuid2), the size the ioctl numbers
// encode: the entries are its flexible array.
const cpuid2Header = unsafe.Offsetof(cpuid2{}.Entries)

// ioctl numbers of the CPUID calls.
const (
	ioctlGetSupportedCPUID = 0x05 // on /dev/kvm
	ioctlSetCPUID2         = 0x90 // on a vCPU
)

// CPUID is a list of CPUID entries as KVM takes and returns them.
type CPUID struct{ raw *gokvm.CPUID }

// CPUIDEntry is one leaf/subleaf.
type CPUIDEntry = gokvm.CPUIDEntry2

// NewCPUID makes a CPUID list of entries, as KVM_SET_CPUID2 takes it.
func NewCPUID(entries []CPUIDEntry) *CPUID {
	return &CPUID{&gokvm.CPUID{Nent: uint32(len(entries)), Entries: entries}}
}

// Entries returns the entries; changing them changes c.
func (c *CPUID) Entries() []CPUIDEntry { return c.raw.Entries }

// Lookup returns the entry for function fn, subleaf idx (ignored for leaves
// without a significant index).
func (c *CPUID) Lookup(fn, idx uint32) (CPUIDEntry, bool) {
	for _, e := range c.raw.Entries {
		if e.Function != fn {
			continue
		}
		// KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1.
		if e.Flags&1 == 0 || e.Index == idx {
			return e, true
		}
	}
	return CPUIDEntry{}, false
}

// Leaves returns the entries in the form the rest of walkvm reads CPUID in
// (x86.CPUIDEntry), as a new slice.
func (c *CPUID) Leaves() []x86.CPUIDEntry {
	out := make([]x86.CPUIDEntry, len(c.raw.Entries))
	for i, e := range c.raw.Entries {
		out[i] = x86.CPUIDEntry{Function: e.Function, Index: e.Index, EAX: e.Eax, EBX: e.Ebx, ECX: e.Ecx, EDX: e.Edx}
	}
	return out
}

// MaxPhyAddr is the guest's physical-address width by x86.MaxPhyAddr's
// rule: CPUID 0x80000008 EAX[7:0], 36 when the leaf is absent.
func (c *CPUID) MaxPhyAddr() uint8 { return x86.MaxPhyAddr(c.Leaves()) }

// Has1GPages reports CPUID 0x80000001 EDX bit 26 (Page1GB).
func (c *CPUID) Has1GPages() bool {
	e, ok := c.Lookup(0x80000001, 0)
	return ok && e.Edx&(1<<26) != 0
}

// HasPSE36 reports CPUID 1 EDX bit 17.
func (c *CPUID) HasPSE36() bool {
	e, ok := c.Lookup(1, 0)
	return ok && e.Edx&(1<<17) != 0
}

// HasLA57 reports CPUID 7.0 ECX bit 16.
func (c *CPUID) HasLA57() bool {
	e, ok := c.Lookup(7, 0)
	return ok && e.Ecx&(1<<16) != 0
}

// HasAVX reports CPUID 1 ECX bit 28 and OSXSAVE-capable XSAVE (bit 26).
func (c *CPUID) HasAVX() bool {
	e, ok := c.Lookup(1, 0)
	return ok && e.Ecx&(1<<28) != 0 && e.Ecx&(1<<26) != 0
}

// CreateVM creates a VM. KVM_CREATE_VM can fail with EINTR when a signal
// (Go's preemption signal included) arrives while KVM sets the VM up; it is
// retried.
func (s *System) CreateVM() (*VM, error) {
	var fd uintptr
	var err error
	for range 100 {
		if fd, err = gokvm.CreateVM(s.fd()); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	return &VM{f: os.NewFile(fd, "kvm-vm"), sys: s}, nil
}
