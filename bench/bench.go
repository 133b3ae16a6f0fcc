// Package bench measures walkvm side by side with a floor: a minimal C VMM
// (floor/floor.c) that runs the same guests with KVM_RUN in a loop and
// nothing else. It runs the bench guests (this directory's *.S) under the
// floor and under `vmm run` at every verify level, each as a process of its
// own, interleaved round by round, and reports medians and ranges over the
// rounds with every figure also as a ratio to the floor. `vmm bench` is its
// command line.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/machine"
	"walkvm/ownpath"
)

// Options configure a bench run.
type Options struct {
	Rounds     int
	Iterations uint32
	// Workloads are names from Workloads; empty means all.
	Workloads []string
	// VMM is the vmm binary whose `run` subcommand the walkvm variants use.
	VMM string
	// Verify are the verify levels to run; empty means every level this
	// walkvm has.
	Verify []string
	// Compare are other vmm binaries (another build of walkvm), run at the
	// same verify levels in the same rounds: variants "NAME/LEVEL".
	Compare []Binary
	// Floor is a built floor binary; empty builds FloorSource with CC into
	// a temporary directory.
	Floor string
	CC    string
	// MemSize is the guest RAM of every variant.
	MemSize uint64
	// Timeout bounds each run.
	Timeout time.Duration
	// InProcess also runs walkvm's loop inside this process and times only
	// the loop (and counts its allocations), beside the floor's own loop
	// time.
	InProcess bool
	// Dir, when set, receives the patched images (IMAGE.bin), the floor's
	// states (IMAGE.state) and the floor, and is kept.
	Dir string
	// KUT is a kvm-unit-tests directory whose suite is timed under `vmm
	// unittests` at each verify level.
	KUT string
	// Linux, when set, times a Linux kernel's boot to /init.
	Linux *LinuxBoot
	// NoQEMU leaves QEMU out even where it is installed.
	NoQEMU bool
	// Progress receives one line per run (nil: none).
	Progress io.Writer
}

// Binary is a named vmm binary.
type Binary struct{ Name, Path string }

// Variant is one VMM configuration of the comparison.
type Variant struct {
	Name   string // "floor", "off", "warn", "strict", "exec", "NAME/off"...
	verify string // walkvm's -verify level; empty for the floor
	vmm    string // the vmm binary; empty for the floor
	// self: the binary is this process's, so its loop can also run here.
	self bool
	qemu *QEMU // the QEMU variant
}

// Result is a whole bench run.
type Result struct {
	Env        Env              `json:"env"`
	Rounds     int              `json:"rounds"`
	Iterations uint32           `json:"iterations"`
	Variants   []string         `json:"variants"`
	Workloads  []WorkloadResult `json:"workloads"`
	// KUT is the kvm-unit-tests suite's time (-kut DIR).
	KUT *KUTResult `json:"kvm_unit_tests,omitempty"`
	// Linux is the Linux boot's times (-linux KERNEL).
	Linux *LinuxResult `json:"linux,omitempty"`
	// NotAvailable says what was asked for or is part of the comparison
	// but could not run here, and why.
	NotAvailable []string `json:"not_available,omitempty"`
}

// WorkloadResult holds one workload's rows, the floor's first.
type WorkloadResult struct {
	Name  string `json:"name"`
	What  string `json:"what"`
	Exits uint64 `json:"exits"`
	Rows  []Row  `json:"rows"`
}

// Row is one variant's figures for a workload over the rounds.
type Row struct {
	Variant string `json:"variant"`
	// WallMS is the time from starting the process to its exit, in ms.
	WallMS Stat `json:"wall_ms"`
	// WallRatio is WallMS over the floor's, round by round.
	WallRatio Stat `json:"wall_ratio"`
	// OverFloorMS is WallMS minus the floor's, round by round.
	OverFloorMS Stat `json:"over_floor_ms"`
	// ExitNS is the process time per exit without the boot, in ns
	// (workloads with a loop): the time less the same variant's boot
	// workload time in the same round, over the exits less one.
	ExitNS *Stat `json:"exit_ns,omitempty"`
	// ExitRatio is ExitNS over the floor's, round by round.
	ExitRatio *Stat `json:"exit_ratio,omitempty"`
	// LoopExitNS is the run loop's own time per exit (in-process), in ns:
	// the floor's from its clock around KVM_RUN, walkvm's around RunOwn.
	LoopExitNS *Stat `json:"loop_exit_ns,omitempty"`
	// LoopRatio is LoopExitNS over the floor's, round by round.
	LoopRatio *Stat `json:"loop_ratio,omitempty"`
	// AllocsPerExit is the heap allocations of walkvm's loop per exit
	// (in-process), the median over the rounds.
	AllocsPerExit *float64 `json:"allocs_per_exit,omitempty"`
	// NotAvailable: the variant cannot run this workload.
	NotAvailable bool `json:"not_available,omitempty"`
}

// sample is one run of one variant.
type sample struct {
	wall   time.Duration
	loop   time.Duration // 0: not measured
	allocs uint64
	inproc bool
	// boot is the same variant's boot workload time in the same round,
	// which the per-exit figure leaves out.
	boot time.Duration
	// skipped: the variant cannot run the workload.
	skipped bool
}

// Run measures the workloads under every variant.
func Run(o Options) (*Result, error) {
	if o.Rounds < 1 {
		return nil, errors.New("rounds must be at least 1")
	}
	if o.Iterations < 1 {
		return nil, errors.New("iterations must be at least 1")
	}
	if o.VMM == "" {
		return nil, errors.New("no vmm binary to run")
	}
	var wls []Workload
	if len(o.Workloads) == 0 {
		wls = Workloads
	}
	hasBoot := false
	for _, name := range o.Workloads {
		w, err := LookupWorkload(name)
		if err != nil {
			return nil, err
		}
		wls = append(wls, w)
		hasBoot = hasBoot || w.ExitsPerIteration == 0
	}
	if len(o.Workloads) > 0 && !hasBoot {
		// Every per-exit figure leaves out the boot, measured by the
		// exit-at-once guest in the same round.
		b, err := LookupWorkload("boot")
		if err != nil {
			return nil, err
		}
		wls = append(wls, b)
	}
	sys, err := kvm.Open()
	if err != nil {
		return nil, fmt.Errorf("the bench needs KVM: %w", err)
	}
	sys.Close()
	res := &Result{Env: DetectEnv(), Rounds: o.Rounds, Iterations: o.Iterations}
	levels := o.Verify
	if len(levels) == 0 {
		for _, v := range []string{"off", "warn", "strict", "exec"} {
			if _, err := ownpath.ParseVerify(v); err != nil {
				res.NotAvailable = append(res.NotAvailable, fmt.Sprintf("walkvm -verify %s: this walkvm has no such level (%v)", v, err))
				continue
			}
			levels = append(levels, v)
		}
	}
	variants := []Variant{{Name: "floor"}}
	for _, v := range levels {
		if _, err := ownpath.ParseVerify(v); err != nil {
			return nil, err
		}
		variants = append(variants, Variant{Name: v, verify: v, vmm: o.VMM, self: true})
	}
	for _, b := range o.Compare {
		for _, v := range levels {
			variants = append(variants, Variant{Name: b.Name + "/" + v, verify: v, vmm: b.Path})
		}
	}
	var qemu *QEMU
	if o.NoQEMU {
		res.NotAvailable = append(res.NotAvailable, "qemu: left out (-qemu=false)")
	} else if q, err := FindQEMU(); err != nil {
		res.NotAvailable = append(res.NotAvailable, "qemu: "+err.Error())
	} else {
		qemu = q
		variants = append(variants, Variant{Name: "qemu", qemu: q})
		res.NotAvailable = append(res.NotAvailable, "qemu: long mode entry (long4k): PVH enters in 32-bit protected mode")
	}
	if o.KUT != "" {
		res.NotAvailable = append(res.NotAvailable, "kvm-unit-tests under the floor and QEMU: the floor boots flat images only, and QEMU is not part of this bench")
	}
	if o.Linux != nil {
		res.NotAvailable = append(res.NotAvailable, "Linux boot under the floor: the floor boots flat images only (the Linux ratios are to QEMU)")
	}
	for _, v := range variants {
		res.Variants = append(res.Variants, v.Name)
	}

	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "walkvm-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	floor := o.Floor
	if floor == "" {
		if floor, err = BuildFloor(o.CC, dir); err != nil {
			return nil, err
		}
	}
	r := &runner{o: o, dir: dir, floor: floor}
	for _, w := range wls {
		if err := r.prepare(w); err != nil {
			return nil, err
		}
	}
	// samples[workload][variant][round]
	samples := make([][][]sample, len(wls))
	for i := range samples {
		samples[i] = make([][]sample, len(variants))
	}
	for round := range o.Rounds {
		for i, w := range wls {
			for j, v := range variants {
				s, err := r.run(w, v)
				if err != nil {
					return nil, fmt.Errorf("round %d, %s under %s: %w", round+1, w.Name, v.Name, err)
				}
				samples[i][j] = append(samples[i][j], s)
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "bench: round %d/%d %-7s %-6s %10.3f ms", round+1, o.Rounds, w.Name, v.Name, ms(s.wall))
					if s.loop > 0 {
						fmt.Fprintf(o.Progress, "  loop %10.3f ms", ms(s.loop))
					}
					fmt.Fprintln(o.Progress)
				}
			}
		}
	}
	kutWalls, kutStatus := map[string][]time.Duration{}, map[string][]int{}
	for round := range o.Rounds {
		if o.KUT == "" {
			break
		}
		for _, l := range levels {
			wall, status, err := runKUT(o.VMM, o.KUT, l, dir)
			if err != nil {
				return nil, fmt.Errorf("round %d, kvm-unit-tests under -verify %s: %w", round+1, l, err)
			}
			kutWalls[l], kutStatus[l] = append(kutWalls[l], wall), append(kutStatus[l], status)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "bench: round %d/%d kvm-unit-tests %-6s %10.3f s (status %d)\n", round+1, o.Rounds, l, wall.Seconds(), status)
			}
		}
	}
	// The boot workload's samples, by variant and round.
	var boots [][]sample
	for i, w := range wls {
		if w.ExitsPerIteration == 0 {
			boots = samples[i]
		}
	}
	for i, w := range wls {
		if w.ExitsPerIteration > 0 {
			for j := range variants {
				for k := range samples[i][j] {
					samples[i][j][k].boot = boots[j][k].wall
				}
			}
		}
		res.Workloads = append(res.Workloads, summarize(w, o.Iterations, variants, samples[i]))
	}
	if o.KUT != "" {
		res.KUT = summarizeKUT(o.KUT, levels, kutWalls, kutStatus)
	}
	if o.Linux != nil {
		if res.Linux, err = runLinux(o, levels, qemu, dir); err != nil {
			return nil, err
		}
	}
	return res, nil
}

type runner struct {
	o     Options
	dir   string
	floor string
}

func (r *runner) imagePath(w Workload) string { return filepath.Join(r.dir, w.Name+".bin") }
func (r *runner) elfPath(w Workload) string   { return filepath.Join(r.dir, w.Name+".elf") }
func (r *runner) statePath(w Workload) string { return filepath.Join(r.dir, w.Name+".state") }

// prepare writes the patched image (for vmm run) and the floor's state.
func (r *runner) prepare(w Workload) error {
	img, err := w.Image(r.o.Iterations)
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.imagePath(w), img.Data, 0o644); err != nil {
		return err
	}
	elf, err := PVHELF(img.Data, img.Load)
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.elfPath(w), elf, 0o644); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := WriteState(&b, r.o.MemSize, img); err != nil {
		return fmt.Errorf("workload %s: floor state: %w", w.Name, err)
	}
	return os.WriteFile(r.statePath(w), b.Bytes(), 0o644)
}

// floorStats reads the floor's report; compiled at its first use, not at
// every start of vmm.
var floorStats = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`floor: exits=(\d+) loop_ns=(\d+)`)
})

func (r *runner) run(w Workload, v Variant) (sample, error) {
	if v.qemu != nil {
		return r.runQEMU(w, v.qemu)
	}
	var cmd *exec.Cmd
	if v.verify == "" {
		cmd = exec.Command(r.floor, "-s", r.statePath(w))
	} else {
		cmd = exec.Command(v.vmm, "run", "-verify", v.verify, "-stats", "off",
			"-mem", strconv.FormatUint(r.o.MemSize, 10), "-load", fmt.Sprintf("%#x", uint64(Load)),
			"-entry", w.Mode.String(), "-timeout", r.o.Timeout.String(), r.imagePath(w))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	want := w.Exits(r.o.Iterations)
	s := sample{wall: wall}
	if v.verify == "" {
		m := floorStats().FindSubmatch(stderr.Bytes())
		if m == nil {
			return sample{}, fmt.Errorf("the floor printed no statistics: %q", stderr.Bytes())
		}
		exits, _ := strconv.ParseUint(string(m[1]), 10, 64)
		loop, _ := strconv.ParseUint(string(m[2]), 10, 64)
		if exits != want {
			return sample{}, fmt.Errorf("the floor took %d exits, want %d", exits, want)
		}
		s.loop, s.inproc = time.Duration(loop), true
		return s, nil
	}
	if stderr.Len() > 0 {
		// walkvm prints nothing when the run is clean: a warning is a
		// disagreement under -verify warn.
		return sample{}, fmt.Errorf("%s wrote to stderr:\n%s", strings.Join(cmd.Args, " "), stderr.Bytes())
	}
	if r.o.InProcess && v.self {
		loop, allocs, err := r.inProcess(w, v)
		if err != nil {
			return sample{}, err
		}
		s.loop, s.allocs, s.inproc = loop, allocs, true
	}
	return s, nil
}

// runQEMU runs w under QEMU.
func (r *runner) runQEMU(w Workload, q *QEMU) (sample, error) {
	if !qemuSupports(w) {
		return sample{skipped: true}, nil
	}
	wall, err := q.Run(r.elfPath(w), "kvm", r.o.Timeout)
	if err != nil {
		return sample{}, err
	}
	return sample{wall: wall}, nil
}

// inProcess runs w in this process through machine.RunOwn and times the
// run loop alone.
func (r *runner) inProcess(w Workload, v Variant) (time.Duration, uint64, error) {
	verify, err := ownpath.ParseVerify(v.verify)
	if err != nil {
		return 0, 0, err
	}
	img, err := w.Image(r.o.Iterations)
	if err != nil {
		return 0, 0, err
	}
	m, err := machine.New(machine.Config{MemSize: r.o.MemSize, Image: img, Console: io.Discard})
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	own, err := m.OwnPath(verify, nil)
	if err != nil {
		return 0, 0, err
	}
	// The decoder builds its opcode tables at its first use, once per
	// process: not a cost of this run.
	var nop decode.Inst
	_ = decode.Decode([]byte{0x90}, decode.Mode32, &nop)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	res := m.RunOwn(own, r.o.Timeout)
	loop := time.Since(t0)
	runtime.ReadMemStats(&after)
	if res.ExitStatus() != 0 {
		return 0, 0, fmt.Errorf("in-process run: status %d (%v): %v", res.ExitStatus(), res.Kind, res.Err)
	}
	if want := w.Exits(r.o.Iterations); own.Stats().Exits.Total != want {
		return 0, 0, fmt.Errorf("in-process run took %d exits, want %d", own.Stats().Exits.Total, want)
	}
	if verify != ownpath.VerifyOff && own.Stats().MMIO.Disagreed != 0 {
		return 0, 0, fmt.Errorf("in-process run: %d disagreements with KVM", own.Stats().MMIO.Disagreed)
	}
	return loop, after.Mallocs - before.Mallocs, nil
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func summarize(w Workload, iterations uint32, variants []Variant, s [][]sample) WorkloadResult {
	exits := w.Exits(iterations)
	wr := WorkloadResult{Name: w.Name, What: w.What, Exits: exits}
	floor := s[0]
	for j, v := range variants {
		row := Row{Variant: v.Name}
		if len(s[j]) > 0 && s[j][0].skipped {
			row.NotAvailable = true
			wr.Rows = append(wr.Rows, row)
			continue
		}
		var wall, ratio, over, perExit, exitRatio, loopNS, loopRatio, allocs []float64
		inproc := true
		for k, x := range s[j] {
			wall = append(wall, ms(x.wall))
			ratio = append(ratio, float64(x.wall)/float64(floor[k].wall))
			over = append(over, ms(x.wall-floor[k].wall))
			if exits > 1 {
				pe, fpe := netPerExit(x, exits), netPerExit(floor[k], exits)
				perExit, exitRatio = append(perExit, pe), append(exitRatio, pe/fpe)
			}
			if !x.inproc || !floor[k].inproc {
				inproc = false
				continue
			}
			loopNS = append(loopNS, float64(x.loop.Nanoseconds())/float64(exits))
			loopRatio = append(loopRatio, float64(x.loop)/float64(floor[k].loop))
			allocs = append(allocs, float64(x.allocs)/float64(exits))
		}
		row.WallMS, row.WallRatio, row.OverFloorMS = summary(wall), summary(ratio), summary(over)
		if w.ExitsPerIteration > 0 {
			pe, er := summary(perExit), summary(exitRatio)
			row.ExitNS, row.ExitRatio = &pe, &er
			if inproc {
				l, lr := summary(loopNS), summary(loopRatio)
				row.LoopExitNS, row.LoopRatio = &l, &lr
				if v.self {
					a := summary(allocs).Median
					row.AllocsPerExit = &a
				}
			}
		}
		wr.Rows = append(wr.Rows, row)
	}
	return wr
}

// netPerExit is a run's process time less its variant's boot time in the
// same round, over the exits less the boot's one, in ns.
func netPerExit(x sample, exits uint64) float64 {
	return float64((x.wall - x.boot).Nanoseconds()) / float64(exits-1)
}
