package linux

import "strings"

// CmdlineItem is one parameter of walkvm's default Linux command line and
// what it is for.
type CmdlineItem struct {
	Param string
	Why   string
}

// DefaultCmdline is the command line a Linux kernel (bzImage or PVH
// vmlinux) boots with under walkvm: it asks for no more than the machine
// has, a 16550 on IRQ 4, KVM's in-kernel PIC, IOAPIC and PIT, a CMOS RTC,
// an i8042 whose reset ends the run, and an MP table, and no PCI, ACPI or
// mouse.
func DefaultCmdline() []CmdlineItem {
	return []CmdlineItem{
		{"console=ttyS0", "kernel messages and /dev/console on the 16550 at port 0x3f8, which is the terminal"},
		{"reboot=k", "reboot through the keyboard controller (0xfe to port 0x64): walkvm's i8042 then ends the run with status 0, so `reboot -f` ends a test"},
		{"panic=-1", "a panic reboots at once, so the run ends instead of waiting for -timeout"},
		{"acpi=off", "no ACPI: Linux finds the CPUs and the IOAPIC in the MP table and does not look for ACPI devices"},
		{"pci=off", "no PCI bus: no configuration-space probes"},
		{"8250.nr_uarts=1", "one 16550: COM2-COM4 are not registered (nothing answers at their ports)"},
		{"i8042.noaux", "the keyboard controller has no mouse port: no AUX probe"},
	}
}

// Cmdline is the default command line followed by extra (`-append`). The
// kernel reads parameters in order, so one given again in extra overrides
// the default; console= adds a console, and the last one is /dev/console.
func Cmdline(extra string) string {
	var b strings.Builder
	for i, it := range DefaultCmdline() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(it.Param)
	}
	if extra = strings.TrimSpace(extra); extra != "" {
		b.WriteByte(' ')
		b.WriteString(extra)
	}
	return b.String()
}
