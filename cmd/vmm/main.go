// Command vmm is walkvm's front end: it boots flat guest images on KVM with
// walkvm's own MMIO path.
//
//	vmm run [flags] [IMAGE]   boot IMAGE (default: the embedded default guest)
//	vmm guests                list the embedded guests
//	vmm test [flags] [GUEST]  run the embedded guests under -verify strict
//	vmm probe                 report the host's KVM and the modes a guest can enter
//	vmm bench [flags]         walkvm side by side with a minimal C VMM
//	vmm unittests [flags] DIR kvm-unit-tests' x86 suite, each entry by vmm run
//	vmm report [flags] TRACE  render a -trace as an HTML page or Chrome trace events
//	vmm nested COMMAND...     run a vmm command inside QEMU's nested KVM
//	vmm initramfs -o FILE     build a busybox initramfs with a shell
//	vmm fuzz [flags]          generated MMIO instructions under -verify exec
//
// Exit status of run: the guest's debug-exit value, 0 when it halts with
// interrupts disabled, 124 on timeout, 125 when the VM or walkvm fails,
// 128 + the signal when SIGINT, SIGTERM or SIGHUP stop it.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand: its name, its arguments and what it does (as
// usage prints them), and the function that runs it.
type command struct {
	name, args, summary string
	run                 func(args []string, stdout, stderr io.Writer) int
}

// commands are vmm's subcommands in the order usage lists them.
var commands = []command{
	{"run", "[flags] [IMAGE]", "boot an image: multiboot, bzImage, PVH, ELF or flat (default: the embedded default guest)", cmdRun},
	{"guests", "", "list the embedded guests", cmdGuests},
	{"test", "[flags] [GUEST]", "run the embedded guests under -verify strict and print a table", cmdTest},
	{"probe", "", "report the host's KVM and which paging modes a guest can enter", cmdProbe},
	{"bench", "[flags]", "walkvm side by side with a minimal C VMM (the floor), interleaved", cmdBench},
	{"unittests", "[flags] DIR", "kvm-unit-tests' x86 suite (its tree or x86 directory), each entry by vmm run", cmdUnittests},
	{"report", "[flags] TRACE", "render a trace (-trace) as an HTML page or Chrome trace events", cmdReport},
	{"nested", "COMMAND...", "run a vmm command in QEMU's nested KVM (where /dev/kvm is missing)", cmdNested},
	{"initramfs", "-o FILE", "build a busybox initramfs with a shell (for a Linux -kernel)", cmdInitramfs},
	{"fuzz", "[flags]", "generated MMIO instructions in every mode under -verify exec", cmdFuzz},
}

// Main runs vmm with args and returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "vmm: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: vmm COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-22s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "  %-22s %s\n\nRun \"vmm run -h\" for the flags of run.\n", "help", "this text")
}
