package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/cpu"

	"walkvm/fuzz"
	"walkvm/kvm"
)

// cmdFuzz runs `vmm fuzz`: generated one-instruction guests under -verify
// exec in every mode the host enters (package fuzz). Exit status 0 when no
// program made walkvm fail (disagreements with KVM are findings, not
// failures), 1 when some did, 2 for bad usage.
func cmdFuzz(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vmm fuzz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 30*time.Second, "how long to fuzz")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock; printed)")
	mode := fs.String("mode", "all", "modes: all, or some of real,protected,paging32,pae,long,la57")
	out := fs.String("out", "fuzz-out", "directory for the findings' guests and JSON descriptions")
	max := fs.Int("n", 0, "stop after this many programs (0: only -duration counts)")
	timeout := fs.Duration("timeout", time.Second, "limit for each program's run")
	shrink := fs.Int("shrink", 40, "runs spent shrinking each finding")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vmm fuzz [-duration D] [-seed S] [-mode M] [-out DIR] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vmm fuzz: unexpected arguments %q\n", fs.Args())
		return 2
	}
	modes, err := fuzz.ParseModes(*mode)
	if err != nil {
		fmt.Fprintf(stderr, "vmm fuzz: -mode: %v\n", err)
		return 2
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if err := kvmReady(kvm.DevicePath, append([]string{"fuzz"}, args...)); err != nil {
		fmt.Fprintf(stderr, "vmm fuzz: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "vmm fuzz: seed %d (replay the same programs with -seed %d)\n", *seed, *seed)
	rep, err := fuzz.Fuzz(fuzz.Options{
		Seed: *seed, Duration: *duration, Max: *max, Modes: modes, Out: *out, Run: fuzz.KVMRunner(*timeout),
		AVX: cpu.X86.HasAVX && cpu.X86.HasOSXSAVE, ShrinkRuns: *shrink, Progress: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "vmm fuzz: %v\n", err)
		return 1
	}
	rep.Summary(stdout)
	if rep.Crashes() > 0 {
		return 1
	}
	return 0
}
