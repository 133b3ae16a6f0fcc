package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bootlinux "walkvm/boot/linux"
	"walkvm/initramfs"
)

// LinuxBoot asks for a Linux kernel's boot to /init, timed under walkvm at
// each verify level and under QEMU's microvm machine with KVM, interleaved
// round by round. The floor boots flat images only, so the ratio is to
// QEMU.
type LinuxBoot struct {
	Kernel string // a bzImage or an ELF vmlinux with a PVH note
	// Initrd is an initramfs whose /init prints LinuxMarker's line and
	// reboots (LinuxInit); empty builds one from Busybox.
	Initrd  string
	Busybox string // a statically linked busybox; empty: busybox in PATH
}

// LinuxMarker starts the line LinuxInit prints: "WALKVM-LINUX-INIT
// uptime=SECONDS cpus=N".
const LinuxMarker = "WALKVM-LINUX-INIT"

// LinuxInit is the /init of a timed boot: the guest's uptime at /init,
// then a reboot, which ends walkvm's run through the i8042 and QEMU's
// (reboot=t, -no-reboot) through its triple fault.
const LinuxInit = `mount -t proc proc /proc
echo "` + LinuxMarker + ` uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(grep -c ^processor /proc/cpuinfo)"
reboot -f
`

// LinuxExtra is added to walkvm's default command line in a timed boot.
const LinuxExtra = "quiet"

// linuxMemMiB is the guest RAM of a timed boot, under both VMMs.
const linuxMemMiB = 256

// WalkvmLinuxArgs is `vmm run`'s command line for a timed boot.
func WalkvmLinuxArgs(vmm, kernel, initrd, verify string, timeout time.Duration) []string {
	a := []string{vmm, "run", "-kernel", kernel, "-initrd", initrd, "-mem", strconv.Itoa(linuxMemMiB) + "M",
		"-timeout", timeout.String(), "-stats", "off", "-append", LinuxExtra}
	if verify != "" {
		a = append(a, "-verify", verify)
	}
	return a
}

// QEMULinuxArgs is QEMU's command line for the same boot: microvm with the
// devices walkvm offers a Linux guest (PIT, PIC, RTC and a 16550; no ACPI,
// no PCIe) and walkvm's default command line. microvm has no i8042, so the
// guest reboots by triple fault, which -no-reboot makes QEMU's exit.
func QEMULinuxArgs(qemu, kernel, initrd string) []string {
	return []string{qemu, "-M", "microvm,pit=on,pic=on,rtc=on,isa-serial=on,acpi=off,pcie=off",
		"-accel", "kvm", "-cpu", "host", "-m", strconv.Itoa(linuxMemMiB), "-smp", "1", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", bootlinux.Cmdline(LinuxExtra + " reboot=t")}
}

// LinuxSample is one timed boot, in seconds: from starting the VMM to
// LinuxMarker's line on its console, the guest's uptime at /init, and to
// the VMM's exit.
type LinuxSample struct{ ToInit, Uptime, Total float64 }

// TimeLinuxBoot runs argv and times it to LinuxMarker's line and to its
// exit, which must be status 0 within timeout.
func TimeLinuxBoot(argv []string, timeout time.Duration) (LinuxSample, error) {
	var s LinuxSample
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return s, err
	}
	var tail strings.Builder
	cmd.Stderr = &tail
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return s, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, LinuxMarker+" uptime=")
		if i < 0 || s.ToInit > 0 {
			continue
		}
		s.ToInit = time.Since(start).Seconds()
		if f := strings.Fields(line[i+len(LinuxMarker)+1:]); len(f) > 0 {
			s.Uptime, _ = strconv.ParseFloat(strings.TrimPrefix(f[0], "uptime="), 64)
		}
	}
	err = cmd.Wait()
	s.Total = time.Since(start).Seconds()
	if err != nil {
		return s, fmt.Errorf("%s: %v\n%s", argv[0], err, tail.String())
	}
	if s.ToInit == 0 {
		return s, fmt.Errorf("%s: no %s line on the console", argv[0], LinuxMarker)
	}
	return s, nil
}

// LinuxResult is the timed boots' summary.
type LinuxResult struct {
	Kernel string     `json:"kernel"`
	Initrd string     `json:"initrd"`
	Rows   []LinuxRow `json:"rows"`
}

// LinuxRow is one variant's boots over the rounds, in seconds.
type LinuxRow struct {
	Variant string `json:"variant"`
	ToInitS Stat   `json:"to_init_s"`
	UptimeS Stat   `json:"uptime_s"`
	TotalS  Stat   `json:"total_s"`
	// ToQEMU is ToInitS over QEMU's in the same round, where QEMU ran.
	ToQEMU *Stat `json:"to_qemu,omitempty"`
	// Failed counts the boots that did not reach /init and exit 0.
	Failed int `json:"failed,omitempty"`
}

// linuxVariant is one VMM of the timed boots.
type linuxVariant struct {
	name string
	argv []string
}

// linuxInitrd returns l's initramfs, building it into dir from busybox
// when none is given.
func linuxInitrd(l *LinuxBoot, dir string) (string, error) {
	if l.Initrd != "" {
		return l.Initrd, nil
	}
	bb := l.Busybox
	if bb == "" {
		p, err := exec.LookPath("busybox")
		if err != nil {
			return "", errors.New("Linux boot: no initramfs given and no busybox in PATH to build one")
		}
		bb = p
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return "", fmt.Errorf("Linux boot: %w", err)
	}
	if err := initramfs.CheckStatic(bin); err != nil {
		return "", fmt.Errorf("Linux boot: %s: %w", bb, err)
	}
	img, err := initramfs.Busybox{Binary: bin, Init: LinuxInit}.Build()
	if err != nil {
		return "", fmt.Errorf("Linux boot: %w", err)
	}
	p := filepath.Join(dir, "linux-initrd.gz")
	return p, os.WriteFile(p, img, 0o644)
}

// runLinux times the boots: every round runs every variant once, the
// order rotated by one each round.
func runLinux(o Options, levels []string, qemu *QEMU, dir string) (*LinuxResult, error) {
	l := o.Linux
	if _, err := os.Stat(l.Kernel); err != nil {
		return nil, fmt.Errorf("Linux boot: %w", err)
	}
	initrd, err := linuxInitrd(l, dir)
	if err != nil {
		return nil, err
	}
	var vs []linuxVariant
	for _, v := range levels {
		vs = append(vs, linuxVariant{v, WalkvmLinuxArgs(o.VMM, l.Kernel, initrd, v, o.Timeout)})
	}
	if qemu != nil {
		vs = append(vs, linuxVariant{"qemu", QEMULinuxArgs(qemu.Path, l.Kernel, initrd)})
	}
	// samples[variant][round]; nil where the boot failed.
	samples := make([][]*LinuxSample, len(vs))
	for round := range o.Rounds {
		for k := range vs {
			j := (k + round) % len(vs)
			s, err := TimeLinuxBoot(vs[j].argv, o.Timeout)
			if err != nil {
				samples[j] = append(samples[j], nil)
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "bench: round %d/%d linux %-6s failed: %v\n", round+1, o.Rounds, vs[j].name, err)
				}
				continue
			}
			samples[j] = append(samples[j], &s)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "bench: round %d/%d linux %-6s to /init %.3f s (uptime %.2f s), exit %.3f s\n",
					round+1, o.Rounds, vs[j].name, s.ToInit, s.Uptime, s.Total)
			}
		}
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.name
	}
	return summarizeLinux(l.Kernel, initrd, names, samples), nil
}

// summarizeLinux turns the boots into rows; a variant named "qemu" is the
// baseline of the ratios.
func summarizeLinux(kernel, initrd string, names []string, samples [][]*LinuxSample) *LinuxResult {
	r := &LinuxResult{Kernel: kernel, Initrd: initrd}
	q := -1
	for i, n := range names {
		if n == "qemu" {
			q = i
		}
	}
	for i, n := range names {
		row := LinuxRow{Variant: n}
		var to, up, tot, ratio []float64
		for round, s := range samples[i] {
			if s == nil {
				row.Failed++
				continue
			}
			to, up, tot = append(to, s.ToInit), append(up, s.Uptime), append(tot, s.Total)
			if q >= 0 && q != i && round < len(samples[q]) && samples[q][round] != nil {
				ratio = append(ratio, s.ToInit/samples[q][round].ToInit)
			}
		}
		row.ToInitS, row.UptimeS, row.TotalS = summary(to), summary(up), summary(tot)
		if len(ratio) > 0 {
			st := summary(ratio)
			row.ToQEMU = &st
		}
		r.Rows = append(r.Rows, row)
	}
	return r
}
