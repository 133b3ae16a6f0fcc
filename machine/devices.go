package machine

import (
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"walkvm/devices"
	"walkvm/memory"
)

// Device is one device of the machine as data: where it sits, the
// interrupt line it drives and how to build it. The machine adds its MMIO
// windows to the memory map, builds it with New and maps it at each span
// (the device sees offsets within the span).
type Device struct {
	Name  string
	Ports []Span // port-I/O ranges
	MMIO  []Span // MMIO windows
	// IRQ is the ISA IRQ (GSI) the device drives, 0 for none (IRQ 0 is
	// the in-kernel PIT's).
	IRQ int
	// New builds the device.
	New func(env DeviceEnv) (memory.Device, error)
}

// Span is a range of ports or guest-physical addresses.
type Span struct {
	Base, Size uint64
}

// DeviceEnv is what the machine hands a device it builds.
type DeviceEnv struct {
	// IRQ is the device's interrupt line: nil without Device.IRQ, and nil
	// while the machine has no interrupt controller to deliver it.
	IRQ devices.IRQLine
	// RAM is guest memory, for devices that read or write it.
	RAM *memory.RAM
	// Stop ends the run at the device's request.
	Stop    devices.Stopper
	Console io.Writer
	Log     logrus.FieldLogger
}

// pcDevices are the devices every walkvm machine has.
func (m *Machine) pcDevices() []Device {
	return []Device{
		{Name: "uart0", Ports: []Span{{devices.COM1Port, 8}}, IRQ: 4, New: func(env DeviceEnv) (memory.Device, error) {
			m.UART = devices.NewUART(env.Console)
			return m.UART, nil
		}},
		{Name: "debug-exit", Ports: []Span{{devices.DebugExitPort, 1}}, New: func(env DeviceEnv) (memory.Device, error) {
			return devices.NewDebugExit(devices.DebugExitWalkvm, env.Stop), nil
		}},
		{Name: "report", Ports: []Span{{devices.ReportPort, devices.ReportPorts}}, New: func(env DeviceEnv) (memory.Device, error) {
			m.Report = devices.NewReport()
			return m.Report, nil
		}},
		{Name: "testwindow-high", MMIO: []Span{{devices.TestWindowHigh, devices.TestWindowSize}}, New: func(env DeviceEnv) (memory.Device, error) {
			m.WindowHigh = devices.NewTestWindow(devices.TestWindowHigh, devices.TestWindowSize)
			return m.WindowHigh, nil
		}},
		{Name: "testwindow-low", MMIO: []Span{{devices.TestWindowLow, devices.TestWindowSize}}, New: func(env DeviceEnv) (memory.Device, error) {
			m.WindowLow = devices.NewTestWindow(devices.TestWindowLow, devices.TestWindowSize)
			return m.WindowLow, nil
		}},
	}
}

// irqLine is the interrupt line for ISA IRQ irq: a GSI of KVM's in-kernel
// PIC and IOAPIC, or nil for none or while the machine has no irqchip.
func (m *Machine) irqLine(irq int) devices.IRQLine {
	if irq == 0 || !m.irqchip {
		return nil
	}
	return devices.IRQFunc(func(high bool) error { return m.VM.SetIRQLine(uint32(irq), high) })
}

// addDevices builds devs and maps them on the buses.
func (m *Machine) addDevices(devs []Device, console io.Writer) error {
	m.PIO = memory.NewBus("pio")
	m.MMIO = memory.NewBus("mmio")
	for _, d := range devs {
		if d.IRQ < 0 || d.IRQ > 23 {
			return fmt.Errorf("device %s: IRQ %d is not an ISA or IOAPIC line (1-23)", d.Name, d.IRQ)
		}
		dev, err := d.New(DeviceEnv{IRQ: m.irqLine(d.IRQ), RAM: m.RAM, Stop: &m.group, Console: console, Log: m.Log})
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
