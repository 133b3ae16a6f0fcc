package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"walkvm/bench"
)

// cmdBench runs `vmm bench`: the bench guests under the C floor and under
// this binary's `run` at every verify level, interleaved (package bench).
func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vmm bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 5, "rounds; each runs every workload under every variant once")
	iterations := fs.Uint("iterations", 100000, "loop iterations of the loop workloads (2 exits each)")
	var names []string
	for _, w := range bench.Workloads {
		names = append(names, w.Name)
	}
	workloads := fs.String("workloads", strings.Join(names, ","), "comma-separated workloads")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	floor := fs.String("floor", os.Getenv("WALKVM_FLOOR"), "a built floor binary (default: $WALKVM_FLOOR, else build bench/floor/floor.c with -cc)")
	cc := fs.String("cc", "gcc", "C compiler for the floor")
	mem := fs.String("mem", "64M", "guest RAM of every variant")
	timeout := fs.Duration("timeout", 10*time.Minute, "limit for each run")
	inProcess := fs.Bool("inprocess", true, "also time walkvm's run loop in this process (and count its allocations)")
	kut := fs.String("kut", "", "also time the kvm-unit-tests suite in DIR under `vmm unittests` at each verify level")
	linux := fs.String("linux", "", "also time a Linux `KERNEL`'s boot to /init (a bzImage or PVH vmlinux) under each verify level and QEMU's microvm")
	linuxInitrd := fs.String("linux-initrd", "", "the initramfs of the Linux boot; its /init prints bench.LinuxInit's marker (default: built from the static busybox in PATH)")
	verify := fs.String("verify", "", "comma-separated verify levels (default: every level this walkvm has)")
	compare := fs.String("compare", "", "other vmm binaries to run beside this one, as NAME=PATH,...")
	qemu := fs.Bool("qemu", true, "run QEMU (microvm, -accel kvm) too where qemu-system-x86_64 (or $WALKVM_QEMU) is installed")
	dir := fs.String("dir", "", "keep the patched images, the floor's states and the floor in DIR")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vmm bench [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vmm bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *iterations == 0 || *iterations > 1<<32-1 {
		fmt.Fprintf(stderr, "vmm bench: -iterations %d: want 1 to %d\n", *iterations, uint32(1<<32-1))
		return 2
	}
	memSize, err := parseSize(*mem)
	if err != nil {
		fmt.Fprintf(stderr, "vmm bench: -mem %q: %v\n", *mem, err)
		return 2
	}
	var linuxBoot *bench.LinuxBoot
	switch {
	case *linux != "":
		if _, err := os.Stat(*linux); err != nil {
			fmt.Fprintf(stderr, "vmm bench: -linux: %v\n", err)
			return 2
		}
		linuxBoot = &bench.LinuxBoot{Kernel: *linux, Initrd: *linuxInitrd}
	case *linuxInitrd != "":
		fmt.Fprintln(stderr, "vmm bench: -linux-initrd without -linux KERNEL")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "vmm bench: finding this binary: %v\n", err)
		return 1
	}
	o := bench.Options{
		Rounds: *rounds, Iterations: uint32(*iterations), VMM: self, Floor: *floor, CC: *cc,
		MemSize: memSize, Timeout: *timeout, InProcess: *inProcess, KUT: *kut, Linux: linuxBoot, Dir: *dir, NoQEMU: !*qemu,
	}
	if *workloads != "" {
		o.Workloads = strings.Split(*workloads, ",")
	}
	if *verify != "" {
		o.Verify = strings.Split(*verify, ",")
	}
	if *compare != "" {
		for _, c := range strings.Split(*compare, ",") {
			name, path, ok := strings.Cut(c, "=")
			if !ok || name == "" || path == "" {
				fmt.Fprintf(stderr, "vmm bench: -compare %q: want NAME=PATH\n", c)
				return 2
			}
			o.Compare = append(o.Compare, bench.Binary{Name: name, Path: path})
		}
	}
	if !*quiet {
		o.Progress = stderr
	}
	res, err := bench.Run(o)
	if err != nil {
		fmt.Fprintf(stderr, "vmm bench: %v\n", err)
		return 1
	}
	if *asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "vmm bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	if err := bench.WriteText(stdout, res); err != nil {
		fmt.Fprintf(stderr, "vmm bench: %v\n", err)
		return 1
	}
	return 0
}
