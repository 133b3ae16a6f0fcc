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
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs vmm with args and returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "guests":
		return cmdGuests(args[1:], stdout, stderr)
	case "test":
		return cmdTest(args[1:], stdout, stderr)
	case "probe":
		return cmdProbe(args[1:], stdout, stderr)
	case "unittests":
		return cmdUnittests(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "nested":
		return cmdNested(args[1:], stdout, stderr)
	case "initramfs":
		return cmdInitramfs(args[1:], stdout, stderr)
	case "fuzz":
		return cmdFuzz(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "vmm: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: vmm COMMAND [flags]

commands:
  run [flags] [IMAGE]   boot a flat image (default: the embedded default guest)
  guests                list the embedded guests
  test [flags] [GUEST]  run the embedded guests under -verify strict and print a table
  probe                 report the host's KVM and which paging modes a guest can enter
  bench [flags]         walkvm side by side with a minimal C VMM (the floor), interleaved
  unittests [flags] DIR kvm-unit-tests' x86 suite (its tree or x86 directory), each entry by vmm run
  report [flags] TRACE  render a trace (-trace) as an HTML page or Chrome trace events
  nested COMMAND...     run a vmm command in QEMU's nested KVM (where /dev/kvm is missing)
  initramfs -o FILE     build a busybox initramfs with a shell (for a Linux -kernel)
  fuzz [flags]          generated MMIO instructions in every mode under -verify exec
  help                  this text

Run "vmm run -h" for the flags of run.
`)
}
