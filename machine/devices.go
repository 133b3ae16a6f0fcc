package machine

import (
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"walkvm/devices"
	"walkvm/memory"
)

// Device is one device of the machine as data: where it sits, the
// interrupt lines it drives and how to build it. The machine adds its MMIO
// windows to the memory map, builds it with New and maps it at each span
// (the device sees offsets within the span).
type Device struct {
	Name  string
	Ports []Span // port-I/O ranges
	MMIO  []Span // MMIO windows
	// IRQs are the ISA IRQs (GSIs 1-23) the device drives, in the order
	// DeviceEnv.IRQs hands them over (IRQ 0 is the in-kernel PIT's).
	IRQs []int
	// New builds the device.
	New func(env DeviceEnv) (memory.Device, error)
}

// Span is a range of ports or guest-physical addresses.
type Span struct {
	Base, Size uint64
}

// DeviceEnv is what the machine hands a device it builds.
type DeviceEnv struct {
	// IRQs are the device's interrupt lines, one per Device.IRQs entry:
	// nil while the machine has no interrupt controller to deliver them.
	IRQs []devices.IRQLine
	// SetIRQ drives any ISA IRQ line (pc-testdev's IRQ ports); nil while
	// the machine has no interrupt controller.
	SetIRQ devices.ISAIRQFunc
	// RAM is guest memory, for devices that read or write it.
	RAM *memory.RAM
	// Stop ends the run at the device's request.
	Stop    devices.Stopper
	Console io.Writer
	Log     logrus.FieldLogger
}

// irq returns the device's i-th interrupt line (nil when it has none).
func (e DeviceEnv) irq(i int) devices.IRQLine {
	if i < len(e.IRQs) {
		return e.IRQs[i]
	}
	return nil
}

// pcDevices are the devices every walkvm machine has: walkvm's own (UART,
// debug exit, report port, MMIO test windows; no low window for a Linux
// kernel) and the PC devices that
// kvm-unit-tests and Linux touch. Without the in-kernel irqchip their
// interrupt lines go nowhere; a guest that polls (walkvm's flat guests)
// needs no more.
func (m *Machine) pcDevices() []Device {
	debugExitPorts := uint64(1)
	if m.debugExit == devices.DebugExitQEMU {
		debugExitPorts = devices.DebugExitPorts // QEMU's isa-debug-exit,iobase=0xf4,iosize=0x4
	}
	var kbd *devices.I8042
	devs := []Device{
		{Name: "uart0", Ports: []Span{{devices.COM1Port, devices.COM1Ports}}, IRQs: []int{devices.COM1IRQ}, New: func(env DeviceEnv) (memory.Device, error) {
			m.UART = devices.NewUARTIRQ(env.Console, env.irq(0))
			return m.UART, nil
		}},
		{Name: "debug-exit", Ports: []Span{{devices.DebugExitPort, debugExitPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewDebugExit(m.debugExit, env.Stop), nil
		}},
		{Name: "report", Ports: []Span{{devices.ReportPort, devices.ReportPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			m.Report = devices.NewReport()
			return m.Report, nil
		}},
		{Name: "testwindow-high", MMIO: []Span{{devices.TestWindowHigh, devices.TestWindowSize}}, New: func(env DeviceEnv) (memory.Device, error) {
			m.WindowHigh = devices.NewTestWindow(devices.TestWindowHigh, devices.TestWindowSize)
			return m.WindowHigh, nil
		}},
		{Name: "fw_cfg", Ports: []Span{{devices.FwCfgPort, devices.FwCfgPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewFwCfg(m.memSize, m.vcpus), nil
		}},
		{Name: "pc-testdev", Ports: []Span{{devices.PCTestDevPort, devices.PCTestDevPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			// Flush page: as QEMU, the host page's protection is changed
			// and restored, which makes the host kernel zap KVM's
			// mapping of it (memory.RAM.Flush).
			var flush devices.FlushPageFunc
			if env.RAM != nil {
				flush = env.RAM.Flush
			}
			m.PCTestDev = devices.NewPCTestDev(flush)
			return m.PCTestDev, nil
		}},
		{Name: "pc-testdev-irq", Ports: []Span{{devices.PCTestDevIRQPort, devices.PCTestDevIRQPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewPCTestDevIRQ(env.SetIRQ), nil
		}},
		{Name: "pci-config", Ports: []Span{{devices.PCIConfigPort, devices.PCIConfigPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewPCIConfig(env.Stop), nil
		}},
		{Name: "rtc", Ports: []Span{{devices.RTCPort, devices.RTCPorts}}, IRQs: []int{devices.RTCIRQ}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewRTC(devices.RTCConfig{RAMBelow4G: m.memSize, CPUs: m.vcpus}), nil
		}},
		// The i8042's two ports are two entries of one controller.
		{Name: "i8042-data", Ports: []Span{{devices.I8042DataPort, 1}}, IRQs: []int{devices.I8042KbdIRQ, devices.I8042AuxIRQ}, New: func(env DeviceEnv) (memory.Device, error) {
			kbd = devices.NewI8042(env.irq(0), env.irq(1), env.Stop)
			return kbd.Data(), nil
		}},
		{Name: "i8042-command", Ports: []Span{{devices.I8042CommandPort, 1}}, New: func(env DeviceEnv) (memory.Device, error) {
			if kbd == nil {
				return nil, fmt.Errorf("built before i8042-data")
			}
			return kbd.Command(), nil
		}},
		{Name: "pm-timer", Ports: []Span{{devices.PMTimerPort, devices.PMTimerPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewPMTimer(nil), nil
		}},
	}
	// The low window sits in the option-ROM area, which a Linux kernel
	// scans (boot.Needs.ROMScan): there it would only slow the boot.
	if !m.Needs.ROMScan {
		devs = append(devs, Device{Name: "testwindow-low", MMIO: []Span{{devices.TestWindowLow, devices.TestWindowSize}}, New: func(env DeviceEnv) (memory.Device, error) {
			m.WindowLow = devices.NewTestWindow(devices.TestWindowLow, devices.TestWindowSize)
			return m.WindowLow, nil
		}})
	}
	return devs
}

// irqLine is the interrupt line for ISA IRQ irq: a GSI of KVM's in-kernel
// PIC and IOAPIC, or nil while the machine has no irqchip.
func (m *Machine) irqLine(irq int) devices.IRQLine {
	if !m.irqchip {
		return nil
	}
	return devices.IRQFunc(func(high bool) error { return m.setIRQLine(irq, high) })
}

// setIRQLine drives GSI irq: an error, not a panic, for a device that
// drives its line while the machine has no VM (before Create, after
// Close).
func (m *Machine) setIRQLine(irq int, high bool) error {
	if m.VM == nil {
		return fmt.Errorf("IRQ %d: the machine has no VM (not created yet, or closed)", irq)
	}
	return m.VM.SetIRQLine(uint32(irq), high)
}

// setIRQ drives any ISA IRQ line; nil while the machine has no irqchip.
func (m *Machine) setIRQ() devices.ISAIRQFunc {
	if !m.irqchip {
		return nil
	}
	return func(irq int, high bool) error {
		if irq < 0 || irq > 23 {
			return fmt.Errorf("IRQ %d is not an ISA or I/O APIC line (0-23)", irq)
		}
		return m.setIRQLine(irq, high)
	}
}

// addDevices builds devs and maps them on the buses.
func (m *Machine) addDevices(devs []Device, console io.Writer) error {
	m.PIO = memory.NewBus("pio")
	m.MMIO = memory.NewBus("mmio")
	for _, d := range devs {
		env := DeviceEnv{RAM: m.RAM, Stop: &m.group, Console: console, Log: m.Log, SetIRQ: m.setIRQ()}
		for _, irq := range d.IRQs {
			if irq < 1 || irq > 23 {
				return fmt.Errorf("device %s: IRQ %d is not an ISA or I/O APIC line (1-23)", d.Name, irq)
			}
			env.IRQs = append(env.IRQs, m.irqLine(irq))
		}
		dev, err := d.New(env)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Name, err)
		}
		for _, sp := range d.Ports {
			if err := m.PIO.Register(d.Name, sp.Base, sp.Size, dev); err != nil {
				return err
			}
		}
		for _, sp := range d.MMIO {
			if err := m.MMIO.Register(d.Name, sp.Base, sp.Size, dev); err != nil {
				return err
			}
		}
		m.Devices = append(m.Devices, d)
	}
	return nil
}
