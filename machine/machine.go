// Package machine assembles a walkvm VM: /dev/kvm, guest RAM registered as
// memslots, the PIO and MMIO buses with walkvm's devices, the vCPUs with
// KVM's supported CPUID, and a flat image loaded by package boot; and runs
// it, with the plain bus MMIO handler or walkvm's own MMIO path.
package machine

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/ownpath"
	"walkvm/trace"
	"walkvm/vcpu"
)

// KVM's private pages for real-mode emulation on Intel: three TSS pages and
// the identity-map page, just below 4 GiB and clear of the test window.
const (
	TSSAddr         = 0xfffbd000
	IdentityMapAddr = 0xfffbc000
)

// Config describes a VM.
type Config struct {
	MemSize uint64
	// Loader puts the guest into memory; nil means boot.Flat(Image).
	Loader boot.Loader
	Image  boot.Image
	// Devices are added to the machine's own (Devices).
	Devices []Device
	// VCPUs is the number of vCPUs; 0 means 1. vCPU 0 boots; see runnable
	// for the others.
	VCPUs   int
	Console io.Writer // the UART's output
	Log     logrus.FieldLogger
	// KVMPath is the KVM device node; empty means kvm.DevicePath.
	KVMPath string
}

// Machine is a built VM, ready to run.
type Machine struct {
	Sys   *kvm.System
	VM    *kvm.VM
	CPUs  []*kvm.VCPU // by index; CPUs[0] boots
	CPU   *kvm.VCPU   // CPUs[0]
	CPUID *kvm.CPUID
	RAM   *memory.RAM
	PIO   *memory.Bus
	MMIO  *memory.Bus
	UART  *devices.UART

	// The MMIO test windows, for tests that inspect recorded accesses.
	WindowHigh, WindowLow *devices.TestWindow
	// Report records the guests' structured events (ports 0xf0-0xf3).
	Report *devices.Report

	Log logrus.FieldLogger

	// Map is the guest-physical memory map the machine was built from.
	Map *memory.Map
	// Devices are the devices on the buses, as built.
	Devices []Device
	// Entry is how the boot vCPU entered the guest.
	Entry *boot.Entry

	// group runs the vCPUs and is the devices' Stopper.
	group vcpu.Group
	// irqchip says KVM's in-kernel interrupt controllers exist, which
	// deliver INIT and SIPI to the application processors.
	irqchip bool
}

// New builds the VM described by cfg. On error nothing is left open.
func New(cfg Config) (_ *Machine, err error) {
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	n := cfg.VCPUs
	if n == 0 {
		n = 1
	}
	if n < 0 {
		return nil, fmt.Errorf("%d vCPUs: want at least 1", n)
	}
	m := &Machine{Log: log}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	path := cfg.KVMPath
	if path == "" {
		path = kvm.DevicePath
	}
	if m.Sys, err = kvm.OpenPath(path); err != nil {
		return nil, err
	}
	devs := append(m.pcDevices(), cfg.Devices...)
	if m.Map, err = memoryMap(cfg.MemSize, devs); err != nil {
		return nil, err
	}
	loader := cfg.Loader
	if loader == nil {
		loader = boot.Flat(cfg.Image)
	}
	if err = loader.Plan(m.Map); err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	if m.RAM, err = memory.NewRAMFromMap(m.Map); err != nil {
		return nil, err
	}
	if m.Entry, err = loader.Load(m.RAM); err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	if m.VM, err = m.Sys.CreateVM(); err != nil {
		return nil, err
	}
	if err = m.VM.SetTSSAddr(TSSAddr); err != nil {
		return nil, err
	}
	if err = m.VM.SetIdentityMapAddr(IdentityMapAddr); err != nil {
		return nil, err
	}
	if err = m.RAM.Register(m.VM); err != nil {
		return nil, err
	}
	if err = m.addDevices(devs, cfg.Console); err != nil {
		return nil, err
	}
	if m.CPUID, err = m.Sys.SupportedCPUID(); err != nil {
		return nil, err
	}
	modelCPUID(m.CPUID)
	for i := range n {
		c, err := m.VM.CreateVCPU(i)
		if err != nil {
			return nil, fmt.Errorf("vCPU %d: %w", i, err)
		}
		m.CPUs = append(m.CPUs, c)
		if err = c.SetCPUID(m.CPUID); err != nil {
			return nil, fmt.Errorf("vCPU %d: %w", i, err)
		}
	}
	m.CPU = m.CPUs[0]
	if err = m.CPU.SetSregs(&m.Entry.Sregs); err != nil {
		return nil, err
	}
	if err = m.CPU.SetRegs(&m.Entry.Regs); err != nil {
		return nil, err
	}
	return m, nil
}

// kvmPrivate is the range KVM_SET_TSS_ADDR and KVM_SET_IDENTITY_MAP_ADDR
// take: no RAM or device may sit there.
var kvmPrivate = memory.Range{Name: "KVM's real-mode TSS and identity map", Start: IdentityMapAddr, Size: TSSAddr + 3*4096 - IdentityMapAddr, Kind: memory.KindReserved}

// memoryMap is a PC's memory map with KVM's private pages and every
// device's MMIO windows.
func memoryMap(size uint64, devs []Device) (*memory.Map, error) {
	mm, err := memory.PCMap(size)
	if err != nil {
		return nil, err
	}
	if err := mm.Add(kvmPrivate); err != nil {
		return nil, err
	}
	for _, d := range devs {
		for _, sp := range d.MMIO {
			if err := mm.Add(memory.Range{Name: d.Name, Start: sp.Base, Size: sp.Size, Kind: memory.KindMMIO}); err != nil {
				return nil, err
			}
		}
	}
	return mm, nil
}

// Loops returns a run loop for every vCPU, with the MMIO handler mmio
// returns for it (nil mmio, or a nil handler: the plain bus MMIO).
func (m *Machine) Loops(mmio func(vcpu int) vcpu.MMIOHandler) []*vcpu.Loop {
	loops := make([]*vcpu.Loop, len(m.CPUs))
	for i, c := range m.CPUs {
		var h vcpu.MMIOHandler
		if mmio != nil {
			h = mmio(i)
		}
		if h == nil {
			h = &vcpu.BusMMIO{Bus: m.MMIO}
		}
		loops[i] = &vcpu.Loop{Index: i, CPU: c, PIO: m.PIO, MMIO: h, Log: m.Log}
	}
	return loops
}

// runnable says whether vCPU i starts running. The boot vCPU does. The
// others are application processors, which wait for INIT and SIPI from the
// boot vCPU's local APIC: only KVM's in-kernel irqchip delivers those, so
// without one they never run.
func (m *Machine) runnable(i int) bool { return i == 0 || m.irqchip }

// RunLoops runs the loops of the runnable vCPUs together until the first
// end; timeout 0 means no limit.
func (m *Machine) RunLoops(loops []*vcpu.Loop, timeout time.Duration) vcpu.End {
	var run []*vcpu.Loop
	for _, l := range loops {
		if m.runnable(l.Index) {
			run = append(run, l)
		}
	}
	return m.group.Run(run, timeout)
}

// Run runs the guest with the plain bus MMIO handler.
func (m *Machine) Run(timeout time.Duration) vcpu.End {
	return m.RunLoops(m.Loops(nil), timeout)
}

// Own is walkvm's own MMIO path on every vCPU of a machine.
type Own struct {
	Paths []*ownpath.Path // by vCPU index
	// trace, when set, receives every exit; the loops then time the exits.
	trace *trace.Tracer
}

// Stats totals the paths' statistics (one vCPU's are its own).
func (o *Own) Stats() *trace.Stats {
	per := make([]*trace.Stats, len(o.Paths))
	for i, p := range o.Paths {
		per[i] = p.Stats()
	}
	return trace.Total(per)
}

// OwnPath builds walkvm's own MMIO path for every vCPU, with
// KVM_CAP_EXIT_ON_EMULATION_FAILURE enabled so that instructions KVM cannot
// emulate reach it; tr, when set, receives the trace of every exit.
func (m *Machine) OwnPath(verify ownpath.Verify, tr *trace.Tracer) (*Own, error) {
	if n, _ := m.Sys.CheckExtension(kvm.CapExitOnEmulationFailure); n == 0 {
		return nil, fmt.Errorf("%s lacks KVM_CAP_EXIT_ON_EMULATION_FAILURE: walkvm could not see the instructions KVM cannot emulate", kvm.DevicePath)
	}
	if err := m.VM.EnableCap(kvm.CapExitOnEmulationFailure, 1); err != nil {
		return nil, err
	}
	features := mmu.FeaturesFromCPUID(m.CPUID.Leaves())
	n, _ := m.Sys.CheckExtension(kvm.CapSyncRegs)
	syncRegs := n&(kvm.SyncRegs|kvm.SyncSregs) == kvm.SyncRegs|kvm.SyncSregs
	// PKRU is XSAVE component 9 (SDM Vol. 1 §13.2).
	var pkru uint32
	if e, ok := m.CPUID.Lookup(0xd, 9); ok && e.Eax == 8 {
		pkru = e.Ebx
	}
	o := &Own{trace: tr}
	if tr != nil {
		maxPhy, err := features.PhysAddrBits()
		if err != nil {
			return nil, err
		}
		tr.WriteHeader(trace.Header{MaxPhyAddr: maxPhy})
	}
	for i, c := range m.CPUs {
		if syncRegs {
			c.EnableSyncRegs(kvm.SyncRegs | kvm.SyncSregs)
		}
		o.Paths = append(o.Paths, ownpath.New(ownpath.Config{
			VCPU: i, CPU: c, RAM: m.RAM, Bus: m.MMIO, Verify: verify, Log: m.Log, Trace: tr,
			Features: features, SyncRegs: syncRegs, PKRUOffset: pkru,
		}))
	}
	return o, nil
}

// OwnLoops returns a run loop for every vCPU through its own MMIO path,
// which also observes every exit and counts into its statistics; with a
// trace, the loops time every exit from now.
func (m *Machine) OwnLoops(o *Own) []*vcpu.Loop {
	loops := m.Loops(func(i int) vcpu.MMIOHandler { return o.Paths[i] })
	var clock *trace.Clock
	if o.trace != nil {
		clock = trace.NewClock() // the trace's times count from here
	}
	for i, l := range loops {
		l.Observer, l.Stats, l.Clock = o.Paths[i], o.Paths[i].Stats(), clock
	}
	return loops
}

// RunOwn runs the guest through the own MMIO path o and records the exit
// status in its statistics.
func (m *Machine) RunOwn(o *Own, timeout time.Duration) vcpu.End {
	end := m.RunLoops(m.OwnLoops(o), timeout)
	for _, p := range o.Paths {
		p.Stats().ExitStatus = end.ExitStatus()
	}
	return end
}

// Close releases everything New acquired.
func (m *Machine) Close() error {
	var errs []error
	for _, c := range m.CPUs {
		errs = append(errs, c.Close())
	}
	if m.VM != nil {
		errs = append(errs, m.VM.Close())
	}
	if m.RAM != nil {
		errs = append(errs, m.RAM.Close())
	}
	if m.Sys != nil {
		errs = append(errs, m.Sys.Close())
	}
	return errors.Join(errs...)
}
