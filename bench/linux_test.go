package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bootlinux "walkvm/boot/linux"
)

// A timed boot reads the marker's line for the time to /init and the
// guest's uptime, and refuses a VMM that fails, never prints the marker or
// outlives the timeout.
func TestTimeLinuxBoot(t *testing.T) {
	sh := func(script string) []string { return []string{"sh", "-c", script} }
	s, err := TimeLinuxBoot(sh("echo booting; echo 'x "+LinuxMarker+" uptime=1.25 cpus=2'; sleep 0.05"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Uptime != 1.25 || s.ToInit <= 0 || s.Total < s.ToInit+0.04 {
		t.Errorf("sample %+v: want uptime 1.25 and the exit at least 50 ms after /init", s)
	}
	for _, c := range []struct {
		name, script string
		timeout      time.Duration
		want         string
	}{
		{"status 1", "echo '" + LinuxMarker + " uptime=1'; echo oops >&2; exit 1", 10 * time.Second, "oops"},
		{"no marker", "echo booting", 10 * time.Second, "no " + LinuxMarker + " line"},
		{"too long", "exec sleep 5", 100 * time.Millisecond, "killed"},
	} {
		if _, err := TimeLinuxBoot(sh(c.script), c.timeout); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}

// The rows: medians over the boots that finished, the failures counted,
// and each walkvm boot's time over QEMU's in the same round.
func TestSummarizeLinux(t *testing.T) {
	b := func(to, up float64) *LinuxSample { return &LinuxSample{ToInit: to, Uptime: up, Total: to + 0.1} }
	r := summarizeLinux("K", "I", []string{"off", "strict", "qemu"}, [][]*LinuxSample{
		{b(1.0, 0.5), b(1.2, 0.6), b(0.9, 0.5)},
		{b(1.5, 0.7), nil, b(1.8, 0.7)},
		{b(2.0, 0.8), b(2.0, 0.8), nil},
	})
	if len(r.Rows) != 3 || r.Kernel != "K" || r.Initrd != "I" {
		t.Fatalf("result %+v", r)
	}
	off, strict, qemu := r.Rows[0], r.Rows[1], r.Rows[2]
	if off.ToInitS.Median != 1.0 || off.ToInitS.N != 3 || off.Failed != 0 {
		t.Errorf("off %+v", off)
	}
	// Rounds 1 and 2 have QEMU: 1.0/2.0 and 1.2/2.0.
	if off.ToQEMU == nil || off.ToQEMU.N != 2 || off.ToQEMU.Min != 0.5 || off.ToQEMU.Max != 0.6 {
		t.Errorf("off over QEMU %+v", off.ToQEMU)
	}
	// Round 2 failed and round 3 has no QEMU: one ratio.
	if strict.Failed != 1 || strict.ToInitS.N != 2 || strict.ToQEMU == nil || strict.ToQEMU.N != 1 || strict.ToQEMU.Median != 0.75 {
		t.Errorf("strict %+v (over QEMU %+v)", strict, strict.ToQEMU)
	}
	if qemu.ToQEMU != nil || qemu.Failed != 1 || qemu.UptimeS.Median != 0.8 {
		t.Errorf("qemu %+v", qemu)
	}
}

// Both VMMs boot the same files with the same command line and RAM.
func TestLinuxArgs(t *testing.T) {
	w := WalkvmLinuxArgs("vmm", "K", "I", "strict", time.Minute)
	if !slices.Contains(w, "-kernel") || !slices.Contains(w, "strict") || !slices.Contains(w, "256M") || w[len(w)-2] != "-verify" {
		t.Errorf("walkvm %q", w)
	}
	if d := WalkvmLinuxArgs("vmm", "K", "I", "", time.Minute); slices.Contains(d, "-verify") {
		t.Errorf("default level: %q", d)
	}
	q := QEMULinuxArgs("qemu", "K", "I")
	i := slices.Index(q, "-append")
	if i < 0 || q[i+1] != bootlinux.Cmdline(LinuxExtra+" reboot=t") || !slices.Contains(q, "256") || !slices.Contains(q, "K") {
		t.Errorf("qemu %q", q)
	}
}

// A given initramfs is used as it is; one to build needs a static busybox.
func TestLinuxInitrd(t *testing.T) {
	if p, err := linuxInitrd(&LinuxBoot{Initrd: "given.gz"}, t.TempDir()); err != nil || p != "given.gz" {
		t.Errorf("given: %q, %v", p, err)
	}
	if _, err := linuxInitrd(&LinuxBoot{Busybox: filepath.Join(t.TempDir(), "none")}, t.TempDir()); err == nil {
		t.Error("a missing busybox: no error")
	}
	// A script is no static busybox (nor is the host's /bin/sh, unless
	// it is one: inside the nested runner it is).
	script := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := linuxInitrd(&LinuxBoot{Busybox: script}, t.TempDir()); err == nil || !strings.Contains(err.Error(), script) {
		t.Errorf("a script as busybox: %v", err)
	}
}
