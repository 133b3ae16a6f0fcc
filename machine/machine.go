// Package machine assembles a walkvm VM: /dev/kvm, guest RAM registered as
// memslots, the PIO and MMIO buses with walkvm's devices, one vCPU with
// KVM's supported CPUID, and a flat image loaded by package boot.
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
	Image   boot.Image
	Console io.Writer // the UART's output
	Log     logrus.FieldLogger
	// KVMPath is the KVM device node; empty means kvm.DevicePath.
	KVMPath string
}

// Machine is a built VM, ready to run.
type Machine struct {
	Sys   *kvm.System
	VM    *kvm.VM
	CPU   *kvm.VCPU
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
}

// New builds the VM described by cfg. On error nothing is left open.
func New(cfg Config) (_ *Machine, err error) {
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
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
	if m.RAM, err = memory.NewRAM(cfg.MemSize); err != nil {
		return nil, err
	}
	regs, sregs, err := boot.Load(m.RAM, cfg.Image)
	if err != nil {
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
	if err = m.buildBuses(cfg.Console); err != nil {
		return nil, err
	}
	if m.CPU, err = m.VM.CreateVCPU(0); err != nil {
		return nil, err
	}
	if m.CPUID, err = m.Sys.SupportedCPUID(); err != nil {
		return nil, err
	}
	modelCPUID(m.CPUID)
	if err = m.CPU.SetCPUID(m.CPUID); err != nil {
		return nil, err
	}
	if err = m.CPU.SetSregs(sregs); err != nil {
		return nil, err
	}
	if err = m.CPU.SetRegs(regs); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Machine) buildBuses(console io.Writer) error {
	m.PIO = memory.NewBus("pio")
	m.MMIO = memory.NewBus("mmio")
	m.UART = devices.NewUART(console)
	m.WindowHigh = devices.NewTestWindow(devices.TestWindowHigh, devices.TestWindowSize)
	m.WindowLow = devices.NewTestWindow(devices.TestWindowLow, devices.TestWindowSize)
	m.Report = devices.NewReport()
	return errors.Join(
		m.PIO.Register("uart0", devices.COM1Port, 8, m.UART),
		m.PIO.Register("debug-exit", devices.DebugExitPort, 1, devices.DebugExit{}),
		m.PIO.Register("report", devices.ReportPort, devices.ReportPorts, m.Report),
		m.MMIO.Register("testwindow-high", devices.TestWindowHigh, devices.TestWindowSize, m.WindowHigh),
		m.MMIO.Register("testwindow-low", devices.TestWindowLow, devices.TestWindowSize, m.WindowLow),
	)
}

// Loop returns a run loop for the vCPU with handler h (nil: plain bus MMIO).
func (m *Machine) Loop(h vcpu.MMIOHandler) *vcpu.Loop {
	if h == nil {
		h = &vcpu.BusMMIO{Bus: m.MMIO, Log: m.Log}
	}
	return &vcpu.Loop{CPU: m.CPU, PIO: m.PIO, MMIO: h, Log: m.Log}
}

// OwnPath returns walkvm's own MMIO path for this machine, with
// KVM_CAP_EXIT_ON_EMULATION_FAILURE enabled so that instructions KVM cannot
// emulate reach it. Use it as both the MMIO handler and the observer of a
// Loop (see RunOwn).
func (m *Machine) OwnPath(verify vcpu.Verify) (*vcpu.OwnPath, error) {
	if n, _ := m.Sys.CheckExtension(kvm.CapExitOnEmulationFailure); n == 0 {
		return nil, fmt.Errorf("%s lacks KVM_CAP_EXIT_ON_EMULATION_FAILURE: walkvm could not see the instructions KVM cannot emulate", kvm.DevicePath)
	}
	if err := m.VM.EnableCap(kvm.CapExitOnEmulationFailure, 1); err != nil {
		return nil, err
	}
	p := &vcpu.OwnPath{
		CPU: m.CPU, RAM: m.RAM, Bus: m.MMIO, Verify: verify, Log: m.Log,
		Stats: vcpu.NewStats(), Features: mmu.FeaturesFromCPUID(m.CPUID.Leaves()),
	}
	if n, _ := m.Sys.CheckExtension(kvm.CapSyncRegs); n&(kvm.SyncRegs|kvm.SyncSregs) == kvm.SyncRegs|kvm.SyncSregs {
		m.CPU.EnableSyncRegs(kvm.SyncRegs | kvm.SyncSregs)
		p.SyncRegs = true
	}
	// PKRU is XSAVE component 9 (SDM Vol. 1 §13.2).
	if e, ok := m.CPUID.Lookup(0xd, 9); ok && e.Eax == 8 {
		p.PKRUOffset = e.Ebx
	}
	return p, nil
}

// RunOwn runs the guest through the own MMIO path p.
func (m *Machine) RunOwn(p *vcpu.OwnPath, timeout time.Duration) vcpu.Result {
	l := m.Loop(p)
	l.Observer = p
	res := l.Run(timeout)
	p.Stats.ExitStatus = res.Status
	return res
}

// Run runs the guest with the plain bus MMIO handler.
func (m *Machine) Run(timeout time.Duration) vcpu.Result {
	return m.Loop(nil).Run(timeout)
}

// Close releases everything New acquired.
func (m *Machine) Close() error {
	var errs []error
	if m.CPU != nil {
		errs = append(errs, m.CPU.Close())
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
