// Package machine assembles a walkvm VM: /dev/kvm, guest memory registered
// as memslots laid out as the image needs (a PC with the hole for flat
// images, the memory a firmware leaves for kernels, with ACPI and MP
// tables), KVM's in-kernel irqchip and PIT when asked for, the PIO and MMIO
// buses with walkvm's devices wired to the irqchip, the vCPUs with their
// CPUID, and an image loaded by package boot; and runs it on every vCPU,
// with the plain bus MMIO handler or walkvm's own MMIO path.
package machine

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/boot"
	"walkvm/boot/mptable"
	"walkvm/cpuid"
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
	// Loader puts the guest into memory (boot.Select picks one for an
	// image); nil means boot.Flat(Image). What it needs of the machine
	// (boot.NeedsOf) decides the memory map, the firmware tables and, with
	// IRQChipAuto, the irqchip.
	Loader boot.Loader
	Image  boot.Image
	// Devices are added to the machine's own (Devices).
	Devices []Device
	// VCPUs is the number of vCPUs; 0 means 1. vCPU 0 boots; the others
	// wait for INIT and SIPI from it (they need the in-kernel irqchip).
	VCPUs int
	// CPU is the guest's CPU model (cpuid.Parse); nil means "host": KVM's
	// supported CPUID.
	CPU *cpuid.Model
	// IRQChip says whether KVM's in-kernel interrupt controllers and PIT
	// are created.
	IRQChip IRQChipMode
	// DebugExit is the form of the debug-exit port at 0xf4.
	DebugExit devices.DebugExitForm
	Console   io.Writer // the UART's output
	Log       logrus.FieldLogger
	// KVMPath is the KVM device node; empty means kvm.DevicePath.
	KVMPath string
}

// IRQChipMode says whether a machine has KVM's in-kernel irqchip and PIT.
type IRQChipMode int

// IRQ chip modes (`vmm run -irqchip`).
const (
	// IRQChipAuto: for kernels (multiboot, bzImage, PVH), which program
	// interrupt controllers and timers, and for more than one vCPU, whose
	// application processors start on INIT/SIPI through the local APIC;
	// not for flat images and plain ELF, whose HLT then ends the run.
	IRQChipAuto IRQChipMode = iota
	IRQChipOn
	IRQChipOff
)

var irqChipNames = []string{"auto", "on", "off"}

func (c IRQChipMode) String() string {
	if int(c) < len(irqChipNames) {
		return irqChipNames[c]
	}
	return fmt.Sprintf("irqchip(%d)", int(c))
}

// ParseIRQChip reads "auto", "on" or "off".
func ParseIRQChip(s string) (IRQChipMode, error) {
	for i, n := range irqChipNames {
		if s == n {
			return IRQChipMode(i), nil
		}
	}
	return 0, fmt.Errorf("irqchip %q: want auto, on or off", s)
}

// wantIRQChip resolves c for a loader that needs the irqchip or not and n
// vCPUs.
func wantIRQChip(c IRQChipMode, needs bool, n int) (bool, error) {
	switch c {
	case IRQChipOn:
		return true, nil
	case IRQChipOff:
		if n > 1 {
			return false, fmt.Errorf("%d vCPUs need the in-kernel irqchip: the application processors start on INIT and SIPI from the boot vCPU's local APIC", n)
		}
		return false, nil
	case IRQChipAuto:
		return needs || n > 1, nil
	}
	return false, fmt.Errorf("unknown irqchip mode %v", c)
}

// Machine is a walkvm machine: its parts as Prepare builds them, and its
// VM and vCPUs once Create has made them, ready to run.
type Machine struct {
	Sys  *kvm.System
	VM   *kvm.VM
	CPUs []*kvm.VCPU // by index; CPUs[0] boots
	CPU  *kvm.VCPU   // CPUs[0]
	// CPUID is the boot vCPU's CPUID; every vCPU has the same but for its
	// APIC ID (cpuid.ForVCPU).
	CPUID *kvm.CPUID
	RAM   *memory.RAM
	PIO   *memory.Bus
	MMIO  *memory.Bus
	UART  *devices.UART

	// The MMIO test windows, for tests that inspect recorded accesses.
	WindowHigh, WindowLow *devices.TestWindow
	// Report records the guests' structured events (ports 0xf0-0xf3).
	Report *devices.Report
	// PCTestDev is pc-testdev's ports 0xe0-0xeb (scratch, flush page).
	PCTestDev *devices.PCTestDev

	Log logrus.FieldLogger

	// Map is the guest-physical memory map the machine was built from.
	Map *memory.Map
	// Devices are the devices on the buses, as built.
	Devices []Device
	// Entry is how the boot vCPU entered the guest.
	Entry *boot.Entry
	// Needs is what the image needed of the machine.
	Needs boot.Needs

	// cpuids are the vCPUs' CPUID, by index, for Create.
	cpuids []*kvm.CPUID
	// pending is the VM's creation, from Prepare until Create takes it.
	pending *pendingVM
	// group runs the vCPUs and is the devices' Stopper.
	group vcpu.Group
	// irqchip says KVM's in-kernel interrupt controllers and PIT exist.
	irqchip   bool
	memSize   uint64
	vcpus     int
	debugExit devices.DebugExitForm
}

// IRQChip says whether the machine has KVM's in-kernel irqchip and PIT.
func (m *Machine) IRQChip() bool { return m.irqchip }

// New builds the machine described by cfg and creates its VM: Prepare,
// then Create. On error nothing is left open.
func New(cfg Config) (*Machine, error) {
	m, err := Prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := m.Create(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Prepare builds the machine described by cfg up to its VM: /dev/kvm
// opened and KVM_CREATE_VM started on a goroutine of its own, the memory
// map, guest RAM with the image loaded, the devices on their buses and
// every vCPU's CPUID. Create takes the VM and makes its memslots and
// vCPUs. Whatever else a caller sets up before the run (a console on the
// UART, a trace) belongs between the two, where it overlaps the VM's
// creation. On error nothing is left open; otherwise Close releases what
// it acquired.
func Prepare(cfg Config) (_ *Machine, err error) {
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
	if n < 0 || n > mptable.MaxCPUs {
		return nil, fmt.Errorf("%d vCPUs: want 1 to %d", n, mptable.MaxCPUs)
	}
	loader := cfg.Loader
	if loader == nil {
		loader = boot.Flat(cfg.Image)
	}
	m := &Machine{Log: log, memSize: cfg.MemSize, vcpus: n, debugExit: cfg.DebugExit, Needs: boot.NeedsOf(loader)}
	if m.irqchip, err = wantIRQChip(cfg.IRQChip, m.Needs.IRQChip, n); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	// KVM_CREATE_VM waits in the kernel (for an RCU grace period, as
	// its worker thread joins this process's cgroup): it runs on a
	// goroutine of its own while the rest is built. An error opening
	// /dev/kvm is returned after the image's and the devices', so that
	// what is wrong with those shows on any machine.
	path := cfg.KVMPath
	if path == "" {
		path = kvm.DevicePath
	}
	sys, kvmErr := kvm.OpenPath(path)
	if kvmErr == nil {
		m.Sys, m.pending = sys, createVM(sys)
	}
	devs := append(m.pcDevices(), cfg.Devices...)
	if m.Map, err = memoryMap(cfg.MemSize, m.Needs.Firmware, m.irqchip, devs); err != nil {
		return nil, err
	}
	if m.Needs.Firmware {
		loader = boot.WithFirmware(boot.Firmware{CPUs: n}, loader)
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
	if err = m.addDevices(devs, cfg.Console); err != nil {
		return nil, err
	}
	if kvmErr != nil {
		return nil, kvmErr
	}
	if m.cpuids, err = m.buildCPUID(cfg.CPU, n); err != nil {
		return nil, err
	}
	return m, nil
}

// Create makes the VM of a prepared machine, once KVM_CREATE_VM has
// returned: KVM's real-mode pages, the in-kernel irqchip and PIT when the
// machine has them, the memslots, and the vCPUs with their CPUID and the
// boot vCPU's entry registers. On error the machine keeps what was made,
// for Close.
func (m *Machine) Create() (err error) {
	if m.Sys == nil {
		return errors.New("create the VM: the machine is not prepared, or closed")
	}
	if m.pending == nil {
		return errors.New("create the VM: done already")
	}
	m.VM, err = m.pending.wait()
	m.pending = nil
	if err != nil {
		return err
	}
	if err = m.VM.SetTSSAddr(TSSAddr); err != nil {
		return err
	}
	if err = m.VM.SetIdentityMapAddr(IdentityMapAddr); err != nil {
		return err
	}
	if m.irqchip {
		// Both before any vCPU exists (KVM_CREATE_IRQCHIP's rule).
		if err = m.VM.CreateIRQChip(); err != nil {
			return err
		}
		if err = m.VM.CreatePIT2(); err != nil {
			return err
		}
		if err = initPICs(m.VM); err != nil {
			return err
		}
	}
	if err = m.RAM.Register(m.VM); err != nil {
		return err
	}
	for i, id := range m.cpuids {
		c, err := m.VM.CreateVCPU(i)
		if err != nil {
			return fmt.Errorf("vCPU %d: %w", i, err)
		}
		m.CPUs = append(m.CPUs, c)
		if err = c.SetCPUID(id); err != nil {
			return fmt.Errorf("vCPU %d: %w", i, err)
		}
		if m.irqchip {
			if err = setAPICBase(c, i); err != nil {
				return fmt.Errorf("vCPU %d: %w", i, err)
			}
		}
		if i > 0 {
			// An application processor waits for INIT and SIPI (KVM
			// starts it so with the in-kernel irqchip; set it anyway).
			if err = c.SetMPState(kvm.MPUninitialized); err != nil {
				return fmt.Errorf("vCPU %d: %w", i, err)
			}
		}
	}
	m.CPU = m.CPUs[0]
	if m.irqchip {
		// KVM_SET_SREGS sets IA32_APIC_BASE too.
		m.Entry.Sregs.ApicBase = APICBase(0)
	}
	if err = m.CPU.SetSregs(&m.Entry.Sregs); err != nil {
		return err
	}
	return m.CPU.SetRegs(&m.Entry.Regs)
}

// pendingVM is a KVM_CREATE_VM under way on a goroutine of its own.
type pendingVM struct {
	done chan struct{}
	vm   *kvm.VM
	err  error
}

// createVM starts creating a VM on sys.
func createVM(sys *kvm.System) *pendingVM {
	p := &pendingVM{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.vm, p.err = sys.CreateVM()
	}()
	return p
}

// wait returns the VM once it is created.
func (p *pendingVM) wait() (*kvm.VM, error) {
	<-p.done
	return p.vm, p.err
}

// buildCPUID makes each vCPU's CPUID from KVM's supported CPUID shaped by
// model (nil: "host"): the TSC-deadline bit where KVM's LAPIC emulates it,
// and each vCPU's APIC ID (its index). m.CPUID is vCPU 0's.
func (m *Machine) buildCPUID(model *cpuid.Model, n int) ([]*kvm.CPUID, error) {
	sup, err := m.Sys.SupportedCPUID()
	if err != nil {
		return nil, err
	}
	if model == nil {
		model = &cpuid.Model{Base: "host"}
	}
	tscDeadline, _ := m.Sys.CheckExtension(kvm.CapTSCDeadlineTimer)
	entries, warnings := model.Build(sup.Entries(), cpuid.Host{TSCDeadline: tscDeadline != 0 && m.irqchip})
	for _, w := range warnings {
		m.Log.Warnf("-cpu: %s", w)
	}
	out := make([]*kvm.CPUID, n)
	for i := range n {
		out[i] = kvm.NewCPUID(cpuid.ForVCPU(entries, uint32(i), n))
	}
	m.CPUID = out[0]
	return out, nil
}

// IA32_APIC_BASE (SDM Vol. 3A §10.4.4): the MSR and its flags.
const (
	msrAPICBase    = 0x1b
	apicBaseBSP    = 1 << 8
	apicBaseEnable = 1 << 11
)

// APICBase is the IA32_APIC_BASE a PC's vCPU i resets with: its local APIC
// at 0xfee00000, enabled, and the BSP flag on vCPU 0.
func APICBase(i int) uint64 {
	v := uint64(mptable.LAPICAddr | apicBaseEnable)
	if i == 0 {
		v |= apicBaseBSP
	}
	return v
}

// setAPICBase gives vCPU i its reset IA32_APIC_BASE, as a PC's (and QEMU)
// does: KVM leaves it to userspace, and with the local APIC disabled there
// KVM neither serves its MMIO page nor delivers INIT and SIPI to it.
func setAPICBase(c *kvm.VCPU, i int) error {
	want := APICBase(i)
	if err := c.SetMSR(msrAPICBase, want); err != nil {
		return err
	}
	// KVM_SET_MSRS reports a refused MSR only in its count: read it back.
	got, err := c.MSR(msrAPICBase)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("IA32_APIC_BASE is %#x after setting %#x", got, want)
	}
	return nil
}

// kvmPrivate is the range KVM_SET_TSS_ADDR and KVM_SET_IDENTITY_MAP_ADDR
// take: no RAM or device may sit there.
var kvmPrivate = memory.Range{Name: "KVM's real-mode TSS and identity map", Start: IdentityMapAddr, Size: TSSAddr + 3*4096 - IdentityMapAddr, Kind: memory.KindReserved}

// The in-kernel irqchip's MMIO pages, which KVM serves itself.
var (
	ioapicPage = memory.Range{Name: "the I/O APIC (in KVM)", Start: mptable.IOAPICAddr, Size: 0x1000, Kind: memory.KindReserved}
	lapicPage  = memory.Range{Name: "the local APICs (in KVM)", Start: mptable.LAPICAddr, Size: 0x1000, Kind: memory.KindReserved}
)

// memoryMap is the machine's memory map with size bytes of RAM: a kernel's
// (memory.FirmwareMap: the first MiB backed) when firmware is set, else a
// PC's with the hole (memory.PCMap); with KVM's private pages, the
// irqchip's pages and every device's MMIO windows.
func memoryMap(size uint64, firmware, irqchip bool, devs []Device) (*memory.Map, error) {
	pc := memory.PCMap
	if firmware {
		pc = memory.FirmwareMap
	}
	mm, err := pc(size)
	if err != nil {
		return nil, err
	}
	fixed := []memory.Range{kvmPrivate}
	if irqchip {
		fixed = append(fixed, ioapicPage, lapicPage)
	}
	for _, r := range fixed {
		if err := mm.Add(r); err != nil {
			return nil, err
		}
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

// RunLoops runs the loops of every vCPU together, each on its own locked
// OS thread, until the first end; timeout 0 means no limit. The
// application processors start waiting for INIT and SIPI, which the
// in-kernel irqchip (which a machine with more than one vCPU has) delivers
// from the boot vCPU's local APIC; until then KVM_RUN keeps them in the
// kernel. A timeout says what each vCPU was doing (KVM_GET_MP_STATE): with
// the in-kernel irqchip a HLT does not end the run, so a guest halted for
// good runs into the timeout.
func (m *Machine) RunLoops(loops []*vcpu.Loop, timeout time.Duration) vcpu.End {
	end := m.group.Run(loops, timeout)
	if end.Kind == vcpu.EndTimeout {
		states := make([]MPState, len(m.CPUs))
		for i, c := range m.CPUs {
			states[i].State, states[i].Err = c.MPState()
		}
		end.Err = fmt.Errorf("%w; %s", end.Err, DescribeMPStates(states))
	}
	return end
}

// MPState is one vCPU's multiprocessing state, or why it is unknown.
type MPState struct {
	State kvm.MPState
	Err   error
}

// DescribeMPStates says in one line what the vCPUs were doing, by vCPU
// index: "vCPU 0 halted, vCPU 1 waiting for INIT/SIPI".
func DescribeMPStates(states []MPState) string {
	parts := make([]string, len(states))
	for i, s := range states {
		if s.Err != nil {
			parts[i] = fmt.Sprintf("vCPU %d state unknown (%v)", i, s.Err)
			continue
		}
		parts[i] = fmt.Sprintf("vCPU %d %v", i, s.State)
	}
	return strings.Join(parts, ", ")
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
	if m.VM == nil {
		return nil, errors.New("own MMIO path: the machine has no VM (Create)")
	}
	if n, _ := m.Sys.CheckExtension(kvm.CapExitOnEmulationFailure); n == 0 {
		return nil, fmt.Errorf("%s lacks KVM_CAP_EXIT_ON_EMULATION_FAILURE: walkvm could not see the instructions KVM cannot emulate", kvm.DevicePath)
	}
	if err := m.VM.EnableCap(kvm.CapExitOnEmulationFailure, 1); err != nil {
		return nil, err
	}
	features := mmu.FeaturesFromCPUID(m.CPUID.Leaves())
	// Registers synced into kvm_run serve the mode log and the own
	// path's loads; -verify off without a trace reads no state but at
	// the instructions it completes, so KVM need not copy them out.
	n, _ := m.Sys.CheckExtension(kvm.CapSyncRegs)
	syncRegs := n&(kvm.SyncRegs|kvm.SyncSregs) == kvm.SyncRegs|kvm.SyncSregs && (verify != ownpath.VerifyOff || tr != nil)
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
			VCPU: i, CPU: c, RAM: m.RAM, Bus: m.MMIO, PIO: m.PIO, Verify: verify, Log: m.Log, Trace: tr,
			Features: features, SyncRegs: syncRegs, PKRUOffset: pkru,
		}))
	}
	return o, nil
}

// OwnLoops returns a run loop for every vCPU through its own MMIO path,
// which also observes every exit (where it has something to observe) and
// counts into its statistics; with a trace, the loops time every exit
// from now.
func (m *Machine) OwnLoops(o *Own) []*vcpu.Loop {
	loops := m.Loops(func(i int) vcpu.MMIOHandler { return o.Paths[i] })
	var clock *trace.Clock
	if o.trace != nil {
		clock = trace.NewClock() // the trace's times count from here
	}
	for i, l := range loops {
		l.Stats, l.Clock = o.Paths[i].Stats(), clock
		if o.Paths[i].Observes() {
			l.Observer = o.Paths[i]
		}
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

// Close releases everything Prepare and Create acquired: the vCPUs and the
// VM (which KVM then destroys), the RAM and /dev/kvm. Calling it again does
// nothing.
func (m *Machine) Close() error {
	var errs []error
	for _, c := range m.CPUs {
		errs = append(errs, c.Close())
	}
	m.CPUs, m.CPU = nil, nil
	if m.pending != nil {
		if vm, err := m.pending.wait(); err == nil {
			errs = append(errs, vm.Close())
		}
		m.pending = nil
	}
	if m.VM != nil {
		errs = append(errs, m.VM.Close())
		m.VM = nil
	}
	if m.RAM != nil {
		errs = append(errs, m.RAM.Close())
	}
	if m.Sys != nil {
		errs = append(errs, m.Sys.Close())
		m.Sys = nil
	}
	return errors.Join(errs...)
}
