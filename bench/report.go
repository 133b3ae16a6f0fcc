package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes res as tables, one per workload.
func WriteText(w io.Writer, res *Result) error {
	fmt.Fprintf(w, "vmm bench: %d round(s), %d iterations, interleaved per round: %s\n",
		res.Rounds, res.Iterations, strings.Join(res.Variants, ", "))
	e := res.Env
	fmt.Fprintf(w, "KVM: %s\n", e.KVM)
	fmt.Fprintf(w, "CPU: %s; %d CPU(s), GOMAXPROCS %d; Linux %s; %s\n", e.CPU, e.CPUs, e.GOMAXPROCS, e.Kernel, e.Go)
	for _, n := range res.NotAvailable {
		fmt.Fprintf(w, "not available: %s\n", n)
	}
	fmt.Fprintln(w, "figures: median (min-max) over the rounds; ×floor: the ratio to the floor in the same round;")
	fmt.Fprintln(w, "ns/exit (process less boot): (process time - the same variant's boot time in the round) / (exits - 1)")
	for _, v := range res.Variants {
		if v == "qemu" {
			fmt.Fprintln(w, "qemu: microvm, PVH entry of the same image bytes, -accel kvm")
		}
	}
	for _, wr := range res.Workloads {
		fmt.Fprintf(w, "\n%s: %s; %d exits\n", wr.Name, wr.What, wr.Exits)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		loop := len(wr.Rows) > 0 && wr.Rows[0].ExitNS != nil
		if loop {
			fmt.Fprintln(tw, "variant\tprocess ms\t×floor\tns/exit (process less boot)\t×floor\tns/exit (run loop)\t×floor\tallocs/exit\t")
		} else {
			fmt.Fprintln(tw, "variant\tprocess ms\t×floor\tms over floor\t")
		}
		for _, r := range wr.Rows {
			if r.NotAvailable {
				fmt.Fprintf(tw, "%s\tnot available\t\n", r.Variant)
				continue
			}
			if !loop {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.Variant, r.WallMS.format(2), r.WallRatio.format(2), r.OverFloorMS.format(2))
				continue
			}
			loopNS, loopRatio, allocs := "-", "-", "-"
			if r.LoopExitNS != nil {
				loopNS, loopRatio = r.LoopExitNS.format(0), r.LoopRatio.format(2)
			}
			if r.AllocsPerExit != nil {
				allocs = fmt.Sprintf("%.4f", *r.AllocsPerExit)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Variant, r.WallMS.format(1), r.WallRatio.format(2),
				r.ExitNS.format(0), r.ExitRatio.format(2), loopNS, loopRatio, allocs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if k := res.KUT; k != nil {
		fmt.Fprintf(w, "\nkvm-unit-tests (%s) under `vmm unittests`, whole suite\n", k.Dir)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "verify\tseconds\tstatus per round\t")
		for _, r := range k.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%v\t\n", r.Verify, r.WallS.format(2), r.Status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if l := res.Linux; l != nil {
		fmt.Fprintf(w, "\nLinux boot to /init: %s, initramfs %s, %d MiB, one vCPU, %q added to walkvm's command line\n", l.Kernel, l.Initrd, linuxMemMiB, LinuxExtra)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "variant\tstart to /init s\t×qemu\tguest uptime at /init s\tstart to exit s\tfailed\t")
		for _, r := range l.Rows {
			ratio := "-"
			if r.ToQEMU != nil {
				ratio = r.ToQEMU.format(2)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t\n", r.Variant, r.ToInitS.format(3), ratio, r.UptimeS.format(2), r.TotalS.format(3), r.Failed)
		}
		return tw.Flush()
	}
	return nil
}

// format prints "median (min-max)" with prec decimals.
func (s Stat) format(prec int) string {
	if s.N == 1 {
		return fmt.Sprintf("%.*f", prec, s.Median)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}
