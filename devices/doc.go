// Package devices holds walkvm's device models: a 16550A UART for the
// guest's console, debug-exit ports that end the run with a status, the
// report port, RAM-like MMIO test windows that record every access, and the
// PC devices that kvm-unit-tests and Linux touch (fw_cfg, pc-testdev, PCI
// configuration ports, CMOS RTC, i8042, ACPI PM timer). Each implements
// memory.Device, is safe for use from several vCPU threads, and sits on the
// PIO or MMIO bus at the places below.
package devices

// Standard places, shared by the machine and the guests: each device's
// first port or address, how many it covers, and its ISA IRQ.
const (
	COM1Port  = 0x3f8 // UART: 8 ports
	COM1Ports = 8
	COM1IRQ   = 4

	DebugExitPort  = 0xf4 // DebugExit; QEMU's isa-debug-exit,iobase=0xf4,iosize=0x4
	DebugExitPorts = 4

	PCTestDevPort     = 0xe0 // PCTestDev: 0xe0-0xeb
	PCTestDevPorts    = pcTestPorts
	PCTestDevIRQPort  = 0x2000 // PCTestDevIRQ: 0x2000+n sets ISA IRQ n
	PCTestDevIRQPorts = 24

	FwCfgPort  = 0x510 // FwCfg: selector 0x510, data 0x511
	FwCfgPorts = 2

	PCIConfigPort  = 0xcf8 // PCIConfig: address 0xcf8, reset control 0xcf9, data 0xcfc-0xcff
	PCIConfigPorts = 8

	RTCPort  = 0x70 // RTC: index 0x70, data 0x71
	RTCPorts = 2
	RTCIRQ   = 8

	I8042DataPort    = 0x60 // I8042: data
	I8042CommandPort = 0x64 // I8042: status (read) / command (write)
	I8042KbdIRQ      = 1
	I8042AuxIRQ      = 12

	// PMTimerPort is the ACPI PM timer (PMTimer, 4 ports): the FADT's
	// PM_TMR_BLK, at QEMU's PIIX4/ICH9 PM base 0x600 + 8.
	PMTimerPort  = 0x608
	PMTimerPorts = 4

	TestWindowHigh = 0xff000000 // like QEMU pc-testdev iomem
	TestWindowLow  = 0xd0000    // in the PC hole, reachable from real mode
	TestWindowSize = 0x10000
)

// copyAccess copies an access's data, len(dst) or len(src) bytes
// whichever is less, as copy does. The sizes of an MMIO or port access
// (1, 2, 4, 8) are copied as one move each, without a call to memmove.
func copyAccess(dst, src []byte) {
	switch n := min(len(dst), len(src)); n {
	case 1:
		dst[0] = src[0]
	case 2:
		*(*[2]byte)(dst) = [2]byte(src)
	case 4:
		*(*[4]byte)(dst) = [4]byte(src)
	case 8:
		*(*[8]byte)(dst) = [8]byte(src)
	default:
		copy(dst, src)
	}
}

// fill sets every byte of b to v.
func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
