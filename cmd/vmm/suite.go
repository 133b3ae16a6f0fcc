package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/devices"
	"walkvm/guest"
	"walkvm/kvm"
	"walkvm/ownpath"
	"walkvm/suite"
	"walkvm/vcpu"
)

// cmdGuests lists the embedded guests.
func cmdGuests(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "vmm guests: takes no arguments")
		return 2
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tENTRY\tLOAD\tNEEDS\tCHECKS")
	for _, g := range guest.All() {
		needs := strings.Join(g.Needs, ",")
		if len(g.Optional) > 0 {
			if needs != "" {
				needs += " "
			}
			needs += "(" + strings.Join(g.Optional, ",") + ")"
		}
		if needs == "" {
			needs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%#x\t%s\t%s\n", g.Name, g.Entry, g.Load, needs, g.Checks)
	}
	tw.Flush()
	return 0
}

func suiteFlags(name string, stderr io.Writer) (*flag.FlagSet, *string, *time.Duration, *string) {
	fs := flag.NewFlagSet("vmm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	verify := fs.String("verify", "strict", "cross-checks against KVM: off, warn, strict or exec")
	timeout := fs.Duration("timeout", 30*time.Second, "time limit per guest")
	level := fs.String("log-level", "error", "log level")
	return fs, verify, timeout, level
}

// cmdTest runs the embedded guests (all, or those named) and prints a table.
func cmdTest(args []string, stdout, stderr io.Writer) int {
	fs, verifyFlag, timeout, level := suiteFlags("test", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vmm test [flags] [GUEST...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	verify, err := ownpath.ParseVerify(*verifyFlag)
	if err != nil {
		fmt.Fprintf(stderr, "vmm test: -verify: %v\n", err)
		return 2
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vmm test: %v\n", err)
		return 2
	}
	guests, err := selectGuests(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "vmm test: %v\n", err)
		return 2
	}
	if err := kvmReady(kvm.DevicePath, append([]string{"test"}, args...)); err != nil {
		fmt.Fprintf(stderr, "vmm test: %v\n", err)
		return vcpu.StatusFailed
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tMODES\tMMIO\tAGREED\tDISAGREED\tCOMPLETED\tVERDICT")
	var passed, failed, skipped int
	for _, g := range guests {
		o := suite.Run(g, suite.Options{Verify: verify, Timeout: *timeout, Log: log})
		var mmio, agreed, disagreed, completed uint64
		if o.Stats != nil {
			mmio, agreed, disagreed, completed = o.Stats.Exits.MMIO, o.Stats.MMIO.Agreed, o.Stats.MMIO.Disagreed, o.Stats.MMIO.CompletedInUserspace
		}
		verdict := o.Verdict
		if o.Reason != "" {
			verdict += ": " + o.Reason
		}
		switch o.Verdict {
		case suite.Pass:
			passed++
		case suite.Skip:
			skipped++
		default:
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", g.Name, strings.Join(compact(o.Modes()), "→"), mmio, agreed, disagreed, completed, verdict)
	}
	tw.Flush()
	// The closing line CI runners read: "N passed, M failed, K skipped".
	fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 {
		return 1
	}
	return 0
}

// compact drops repeated neighbours: a guest that goes real→protected→real
// keeps all three, a list of one mode stays one.
func compact(modes []string) []string {
	var out []string
	for _, m := range modes {
		if len(out) == 0 || out[len(out)-1] != m {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return []string{"-"}
	}
	return out
}

func selectGuests(names []string) ([]guest.Guest, error) {
	if len(names) == 0 {
		return guest.All(), nil
	}
	var out []guest.Guest
	for _, n := range names {
		g, err := guest.Lookup(n)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func newLogger(level string, w io.Writer) (*logrus.Logger, error) {
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	l := logrus.New()
	l.SetOutput(w)
	l.SetLevel(lv)
	return l, nil
}

// cmdProbe reports what the host's KVM offers walkvm and which paging
// modes a guest can actually enter, measured by running the guests.
func cmdProbe(args []string, stdout, stderr io.Writer) int {
	fs, _, timeout, level := suiteFlags("probe", stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vmm probe: %v\n", err)
		return 2
	}
	sys, err := kvm.Open()
	if err != nil {
		fmt.Fprintf(stderr, "vmm probe: %v\n", explainKVM(err, kvm.DevicePath, host{"/"}, append([]string{"probe"}, args...)))
		return vcpu.StatusFailed
	}
	defer sys.Close()
	fmt.Fprintf(stdout, "KVM API version %d at %s\n\ncapabilities walkvm uses:\n", kvm.APIVersion, kvm.DevicePath)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, c := range []struct {
		name string
		cap  kvm.Capability
		use  string
	}{
		{"USER_MEMORY", kvm.CapUserMemory, "guest RAM memslots (required)"},
		{"SET_TSS_ADDR", kvm.CapSetTSSAddr, "real mode on Intel (required)"},
		{"SET_IDENTITY_MAP_ADDR", kvm.CapSetIdentityMapAddr, "real mode on Intel (required)"},
		{"EXT_CPUID", kvm.CapExtCPUID, "guest CPUID (required)"},
		{"IMMEDIATE_EXIT", kvm.CapImmediateExit, "timeouts (required)"},
		{"EXIT_ON_EMULATION_FAILURE", kvm.CapExitOnEmulationFailure, "userspace completion"},
		{"SREGS2", kvm.CapSRegs2, "PAE PDPTE registers"},
		{"XSAVE", kvm.CapXSave, "AVX state for completion"},
		{"XSAVE2", kvm.CapXSave2, "XSAVE area size"},
		{"VCPU_EVENTS", kvm.CapVCPUEvents, "exception injection"},
		{"READONLY_MEM", kvm.CapReadonlyMem, "-"},
	} {
		n, err := sys.CheckExtension(c.cap)
		v := "no"
		switch {
		case err != nil:
			v = "error: " + err.Error()
		case n == 1:
			v = "yes"
		case n > 1:
			v = fmt.Sprintf("yes (%d)", n)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, v, c.use)
	}
	tw.Flush()
	if id, err := sys.SupportedCPUID(); err == nil {
		fmt.Fprintf(stdout, "\nguest CPUID: MAXPHYADDR %d, PSE-36 %s, 1 GiB pages %s, LA57 %s, AVX %s\n",
			id.MaxPhyAddr(), yes(id.HasPSE36()), yes(id.Has1GPages()), yes(id.HasLA57()), yes(id.HasAVX()))
	}
	fmt.Fprintln(stdout, "\nwhat a guest can enter (measured by the embedded guests):")
	found := probeStages(*timeout, log)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	stages := make([]guest.Stage, 0, len(found))
	for s := range found {
		stages = append(stages, s)
	}
	sort.Slice(stages, func(i, j int) bool { return stages[i] < stages[j] })
	for _, s := range stages {
		fmt.Fprintf(tw, "  %s\t%s\n", s, found[s])
	}
	tw.Flush()
	return 0
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// probeStages runs every guest without cross-checks and collects, per
// stage, whether a guest entered it, the host refused it, or CPUID lacks it.
func probeStages(timeout time.Duration, log logrus.FieldLogger) map[guest.Stage]string {
	found := map[guest.Stage]string{}
	for _, g := range guest.All() {
		o := suite.Run(g, suite.Options{Verify: ownpath.VerifyOff, Timeout: timeout, Log: log})
		for _, e := range o.Events {
			s := guest.Stage(e.Stage())
			switch e.Kind {
			case devices.EventStage:
				found[s] = "entered (guest " + g.Name + ")"
			case devices.EventRefused:
				if _, ok := found[s]; !ok {
					found[s] = fmt.Sprintf("refused by the host: %s on entering it (guest %s)", suite.Exception(e.Vector(), e.ErrorCode()), g.Name)
				}
			case devices.EventUnsupported:
				if _, ok := found[s]; !ok {
					found[s] = "not in the guest's CPUID (guest " + g.Name + ")"
				}
			}
		}
	}
	return found
}
