package linux

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"walkvm/bench"
)

// Environment of the side-by-side boot timing.
const (
	envBench       = "WALKVM_LINUX_BENCH"        // 1: run TestLinuxBootVsQEMU
	envBenchRounds = "WALKVM_LINUX_BENCH_ROUNDS" // rounds (default 5)
	envQEMU        = "WALKVM_QEMU"               // qemu-system-x86_64 (default: in PATH)
)

// benchTimeout bounds one timed boot; a boot of the bench takes seconds.
const benchTimeout = 2 * time.Minute

// span is a median with its range.
type span struct{ med, lo, hi float64 }

func spanOf(v []float64) span {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return span{med, s[0], s[n-1]}
}

func (s span) String() string { return fmt.Sprintf("%5.2f s [%.2f–%.2f]", s.med, s.lo, s.hi) }

// TestLinuxBootVsQEMU times the boot of the same kernel and initramfs to
// /init under walkvm (`vmm run`, default -verify) and under QEMU's microvm
// machine with KVM, interleaved round by round (each round alternates which
// goes first), through the PVH vmlinux and the bzImage, and logs medians
// with ranges and walkvm's time as a ratio to QEMU's. It asserts only that
// every boot reaches /init and exits with status 0; the times are a
// measurement, for docs/linux.md. It runs when WALKVM_LINUX_BENCH=1
// (tests/nested/run: NESTED_LINUX_BENCH=1).
func TestLinuxBootVsQEMU(t *testing.T) {
	if os.Getenv(envBench) != "1" {
		t.Skipf("a timing, not a check: set %s=1 (tests/nested/run: NESTED_LINUX_BENCH=1)", envBench)
	}
	e := setup(t)
	qemu := os.Getenv(envQEMU)
	if qemu == "" {
		p, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			t.Skipf("needs qemu-system-x86_64 ($%s or in PATH)", envQEMU)
		}
		qemu = p
	}
	rounds := 5
	if v := os.Getenv(envBenchRounds); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", envBenchRounds, v)
		}
		rounds = n
	}
	initrd := e.initrd(t, bench.LinuxInit)
	type variant struct {
		name string
		argv func(kernel string) []string
	}
	variants := []variant{
		{"walkvm", func(k string) []string { return bench.WalkvmLinuxArgs(e.vmm, k, initrd, "", bootTimeout) }},
		{"qemu", func(k string) []string { return bench.QEMULinuxArgs(qemu, k, initrd) }},
	}
	kernels := []struct{ name, path string }{{"pvh", e.vmlinux}, {"bzImage", e.bzImage}}
	samples := map[string][]bench.LinuxSample{}
	failed := map[string]int{}
	for r := range rounds {
		for _, k := range kernels {
			order := []variant{variants[r%2], variants[1-r%2]}
			for _, v := range order {
				key := k.name + "/" + v.name
				s, err := bench.TimeLinuxBoot(v.argv(k.path), benchTimeout)
				if err != nil {
					// QEMU's boots are the baseline, not under test: one
					// that does not finish is counted and left out.
					if v.name == "walkvm" {
						t.Errorf("round %d, %s: %v", r, key, err)
					} else {
						t.Logf("round %d, %s: %v", r, key, err)
					}
					failed[key]++
					continue
				}
				samples[key] = append(samples[key], s)
				t.Logf("round %d %-14s to /init %.2f s (uptime %.2f s), exit %.2f s", r, key, s.ToInit, s.Uptime, s.Total)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "boot to /init, %d rounds interleaved; median [min–max]\n", rounds)
	fmt.Fprintf(&b, "%-8s %-7s %-24s %-24s %-24s\n", "kernel", "vmm", "start to /init", "guest uptime at /init", "start to exit")
	for _, k := range kernels {
		var med, up [2]span
		for i, v := range variants {
			ss := samples[k.name+"/"+v.name]
			if len(ss) == 0 {
				fmt.Fprintf(&b, "%-8s %-7s no boot reached /init\n", k.name, v.name)
				continue
			}
			var a, u, x []float64
			for _, s := range ss {
				a, u, x = append(a, s.ToInit), append(u, s.Uptime), append(x, s.Total)
			}
			med[i], up[i] = spanOf(a), spanOf(u)
			fmt.Fprintf(&b, "%-8s %-7s %-24v %-24v %-24v\n", k.name, v.name, spanOf(a), spanOf(u), spanOf(x))
		}
		if med[0].med > 0 && med[1].med > 0 {
			fmt.Fprintf(&b, "%-8s walkvm/qemu: start to /init %.2f, guest uptime at /init %.2f\n", k.name, med[0].med/med[1].med, up[0].med/up[1].med)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "boots that did not finish (left out): %v\n", failed)
	}
	t.Log("\n" + b.String())
}
