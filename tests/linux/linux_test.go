package linux

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"walkvm/bench"
	"walkvm/devices"
	"walkvm/initramfs"
	"walkvm/internal/kvmtest"
)

// Where the kernel and the tools come from (tests/nested/run sets them in
// the nested KVM).
const (
	envBzImage = "WALKVM_LINUX_BZIMAGE" // a bzImage
	envVmlinux = "WALKVM_LINUX_VMLINUX" // the same kernel as an ELF vmlinux with a PVH note
	envVMM     = "WALKVM_VMM"           // the vmm binary
	envBusybox = "WALKVM_BUSYBOX"       // a static busybox
)

// bootTimeout bounds one boot: the bzImage's XZ decompression alone takes
// about 3.5 s inside the nested KVM.
const bootTimeout = 4 * time.Minute

// Console markers the /init scripts print.
const (
	markInit   = bench.LinuxMarker
	markResult = "WALKVM-LINUX-RESULT"
	markBad    = "WALKVM-LINUX-MISMATCH"
)

// op is one devmem access of the test's /init to the MMIO test window:
// a write of value, or a read that must return value.
type op struct {
	width int
	off   uint64
	write bool
	value uint64
}

// devmemOps write each width and read back, also narrower and wider than
// written (the window is RAM-like, little-endian).
var devmemOps = []op{
	{32, 0x10, true, 0x12345678},
	{32, 0x10, false, 0x12345678},
	{8, 0x10, false, 0x78},
	{8, 0x13, false, 0x12},
	{16, 0x22, true, 0xbeef},
	{16, 0x22, false, 0xbeef},
	{8, 0x31, true, 0xa5},
	{8, 0x31, false, 0xa5},
	{64, 0x40, true, 0x0123456789abcdef},
	{64, 0x40, false, 0x0123456789abcdef},
	{32, 0x44, false, 0x01234567},
	{16, 0x46, false, 0x0123},
}

// devmemInit is the /init that boots the devmem test: it prints the
// marker with the uptime and the CPUs Linux brought up, makes every access
// of devmemOps from user space (busybox devmem maps /dev/mem) and checks
// each read, prints the result and reboots (reboot=k: the i8042 reset ends
// the run with status 0).
func devmemInit() string {
	var b strings.Builder
	b.WriteString(`mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "` + markInit + ` uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(grep -c ^processor /proc/cpuinfo)"
fail=0
rd() { # width addr want
	got=$(devmem $2 $1)
	if [ "$((got))" != "$(($3))" ]; then
		echo "` + markBad + ` devmem $2 $1: read $got, want $3"
		fail=$((fail + 1))
	fi
}
`)
	for _, o := range devmemOps {
		addr := devices.TestWindowHigh + o.off
		if o.write {
			fmt.Fprintf(&b, "devmem %#x %d %#x\n", addr, o.width, o.value)
		} else {
			fmt.Fprintf(&b, "rd %d %#x %#x\n", o.width, addr, o.value)
		}
	}
	b.WriteString(`echo "` + markResult + ` accesses=` + strconv.Itoa(len(devmemOps)) + ` failed=$fail"
reboot -f
`)
	return b.String()
}

// env is what a Linux boot needs; setup skips, saying why, where any of
// it is missing.
type env struct {
	vmm, bzImage, vmlinux, busybox string
}

var (
	buildOnce sync.Once
	builtVMM  string
	buildErr  error
)

func setup(t *testing.T) *env {
	t.Helper()
	kvmtest.Require(t)
	e := &env{bzImage: os.Getenv(envBzImage), vmlinux: os.Getenv(envVmlinux)}
	// The nested runner's kernel cache, when run on a host with KVM.
	const cache = "../nested/work/kernel"
	if e.bzImage == "" {
		e.bzImage = filepath.Join(cache, "vmlinuz")
	}
	if e.vmlinux == "" {
		e.vmlinux = filepath.Join(cache, "vmlinux")
	}
	for _, p := range []string{e.bzImage, e.vmlinux} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs Debian's kernel as a bzImage ($%s) and as a PVH vmlinux ($%s), as tests/nested/run fetches them: %v", envBzImage, envVmlinux, err)
		}
	}
	e.busybox = os.Getenv(envBusybox)
	if e.busybox == "" {
		p, err := exec.LookPath("busybox")
		if err != nil {
			t.Skipf("needs a static busybox ($%s or in PATH; Debian: busybox-static)", envBusybox)
		}
		e.busybox = p
	}
	e.vmm = os.Getenv(envVMM)
	if e.vmm == "" {
		if p, err := exec.LookPath("vmm"); err == nil {
			e.vmm = p
		}
	}
	if e.vmm == "" {
		if _, err := exec.LookPath("go"); err != nil {
			t.Skipf("needs the vmm binary ($%s or vmm in PATH) or go to build it", envVMM)
		}
		buildOnce.Do(func() {
			dir, err := os.MkdirTemp("", "walkvm-linux-test")
			if err != nil {
				buildErr = err
				return
			}
			builtVMM = filepath.Join(dir, "vmm")
			out, err := exec.Command("go", "build", "-o", builtVMM, "walkvm/cmd/vmm").CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build walkvm/cmd/vmm: %v\n%s", err, out)
			}
		})
		if buildErr != nil {
			t.Fatal(buildErr)
		}
		e.vmm = builtVMM
	}
	help, _ := exec.Command(e.vmm, "run", "-h").CombinedOutput()
	for _, flag := range []string{"-kernel", "-initrd", "-append", "-smp"} {
		if !strings.Contains(string(help), "  "+flag+" ") {
			t.Skipf("%s run has no %s flag", e.vmm, flag)
		}
	}
	return e
}

// initrd writes a busybox initramfs with /init script into a temporary
// file.
func (e *env) initrd(t *testing.T, script string) string {
	t.Helper()
	bin, err := os.ReadFile(e.busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := initramfs.CheckStatic(bin); err != nil {
		t.Skipf("%s: %v", e.busybox, err)
	}
	img, err := initramfs.Busybox{Binary: bin, Init: script}.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "initrd.gz")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run is one `vmm run` of a kernel.
type run struct {
	status  int
	console string
	stats   stats
	trace   []traceExit
	wall    time.Duration
}

// stats is the part of `-stats json` (trace.Stats) the tests read.
type stats struct {
	ExitStatus int `json:"exit_status"`
	Exits      struct {
		MMIO, IO, Total uint64
	} `json:"exits"`
	MMIO struct {
		Reads, Writes, Agreed, Disagreed uint64
	} `json:"mmio"`
	Translate struct {
		Checks, Ioctls, Mismatches uint64
	} `json:"kvm_translate"`
	Walks struct {
		Paging64       uint64            `json:"paging64"`
		Paging64Levels map[string]uint64 `json:"paging64_levels"`
	} `json:"walks"`
	Modes []struct {
		Mode  string `json:"mode"`
		Exits uint64 `json:"exits"`
	} `json:"modes"`
	VCPUs []json.RawMessage `json:"vcpus"`
}

// traceExit is one `-trace` record, as far as the tests read it.
type traceExit struct {
	Exit      string `json:"exit"`
	Mode      string `json:"mode"`
	CSRIP     string `json:"cs_rip"`
	Disasm    string `json:"disasm"`
	Direction string `json:"direction"`
	GPA       string `json:"gpa"`
	KVMGPA    string `json:"kvm_gpa"`
	Size      int    `json:"size"`
	Data      string `json:"data"`
	Verdict   string `json:"verdict"`
	raw       string // the record as vmm wrote it
	Walks     []struct {
		Walker string `json:"walker"`
		Access string `json:"access"`
		Linear string `json:"linear"`
		GPA    string `json:"gpa"`
		Levels []struct {
			Level int    `json:"level"`
			Table string `json:"table"`
			Value string `json:"value"`
		} `json:"levels"`
	} `json:"walks"`
}

// boot runs vmm with args and the kernel and the initrd, and reads its
// statistics (and trace, with withTrace). onLine, when set, sees each
// console line as it comes, with vmm's stdin to type into; without it
// stdin is empty.
func (e *env) boot(t *testing.T, kernel, initrd string, args []string, withTrace bool, onLine func(line string, stdin io.Writer)) run {
	t.Helper()
	dir := t.TempDir()
	statsFile := filepath.Join(dir, "stats.json")
	traceFile := filepath.Join(dir, "trace.jsonl")
	all := []string{"run", "-kernel", kernel, "-initrd", initrd, "-mem", "256M", "-timeout", bootTimeout.String(),
		"-stats", "json", "-stats-file", statsFile}
	if withTrace {
		all = append(all, "-trace", traceFile)
	}
	all = append(all, args...)
	// vmm's own -timeout ends a runaway guest; this kills a vmm that
	// does not end.
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.vmm, all...)
	cmd.WaitDelay = 10 * time.Second
	var stdin io.WriteCloser = nopCloser{io.Discard}
	if onLine != nil {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		console.WriteString(line + "\n")
		if onLine != nil {
			onLine(line, stdin)
		}
	}
	stdin.Close()
	werr := cmd.Wait()
	r := run{console: console.String(), wall: time.Since(start), status: cmd.ProcessState.ExitCode()}
	t.Logf("vmm %s: status %d after %.2fs", strings.Join(all, " "), r.status, r.wall.Seconds())
	if werr != nil && r.status < 0 {
		t.Fatalf("vmm: %v\nconsole:\n%s\nstderr:\n%s", werr, r.console, stderr.String())
	}
	b, err := os.ReadFile(statsFile)
	if err != nil {
		t.Fatalf("no statistics (%v); status %d\nconsole:\n%s\nstderr:\n%s", err, r.status, r.console, stderr.String())
	}
	if err := json.Unmarshal(b, &r.stats); err != nil {
		t.Fatalf("statistics: %v\n%s", err, b)
	}
	if r.status != 0 {
		t.Fatalf("vmm exited %d, want 0\nconsole:\n%s\nstderr:\n%s", r.status, r.console, stderr.String())
	}
	if withTrace {
		f, err := os.Open(traceFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ts := bufio.NewScanner(f)
		ts.Buffer(make([]byte, 64<<10), 4<<20)
		for ts.Scan() {
			var x traceExit
			if err := json.Unmarshal(ts.Bytes(), &x); err != nil {
				t.Fatalf("trace line %q: %v", ts.Text(), err)
			}
			if x.Exit == "mmio" {
				x.raw = ts.Text()
				r.trace = append(r.trace, x)
			}
		}
		if err := ts.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func hexValue(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("trace value %q: %v", s, err)
	}
	return v
}

// Page-table entry bits (SDM Vol. 3A §4.5, Table 4-15 to 4-20).
const (
	pteUser = 1 << 2
	pteXD   = 1 << 63
)

// TestLinuxDevmem boots Debian's kernel through the bzImage and the PVH
// vmlinux, with one and two vCPUs, under -verify strict. /init's devmem
// accesses to the MMIO test window are user-space (CPL 3) accesses through
// Linux's own page tables: every one must reach walkvm as an agreed MMIO
// exit, with KVM_TRANSLATE agreeing on every walk, and the trace must show
// the user/supervisor bit on every level and NX on the data page. The
// two-vCPU boots add pti=on, so the accesses run on KPTI's user page
// tables (the second page of the 8 KiB PGD pair).
func TestLinuxDevmem(t *testing.T) {
	e := setup(t)
	initrd := e.initrd(t, devmemInit())
	for _, k := range []struct{ name, path string }{{"bzImage", e.bzImage}, {"pvh", e.vmlinux}} {
		for _, smp := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/smp%d", k.name, smp), func(t *testing.T) {
				appendArgs := "quiet"
				kpti := smp == 2
				if kpti {
					appendArgs += " pti=on"
				}
				r := e.boot(t, k.path, initrd, []string{"-smp", strconv.Itoa(smp), "-verify", "strict", "-append", appendArgs}, true, nil)
				checkDevmem(t, r, smp, kpti)
			})
		}
	}
}

func checkDevmem(t *testing.T, r run, smp int, kpti bool) {
	t.Helper()
	var initLine, result string
	for _, l := range strings.Split(r.console, "\n") {
		switch {
		case strings.HasPrefix(l, markInit):
			initLine = l
		case strings.HasPrefix(l, markResult):
			result = l
		case strings.HasPrefix(l, markBad):
			t.Error(l)
		}
	}
	if initLine == "" || result == "" {
		t.Fatalf("console lacks %s or %s:\n%s", markInit, markResult, r.console)
	}
	t.Logf("%s; %s", initLine, result)
	if want := fmt.Sprintf("cpus=%d", smp); !strings.Contains(initLine, want) {
		t.Errorf("Linux brought up other than %d CPUs: %s", smp, initLine)
	}
	if want := fmt.Sprintf("accesses=%d failed=0", len(devmemOps)); !strings.Contains(result, want) {
		t.Errorf("result %q, want %q", result, want)
	}
	s := r.stats
	if s.MMIO.Agreed != s.Exits.MMIO || s.MMIO.Disagreed != 0 {
		t.Errorf("%d MMIO exits, %d agreed, %d disagreed; want all agreed", s.Exits.MMIO, s.MMIO.Agreed, s.MMIO.Disagreed)
	}
	if s.Translate.Checks == 0 || s.Translate.Mismatches != 0 {
		t.Errorf("KVM_TRANSLATE: %d checks, %d mismatches; want some and none", s.Translate.Checks, s.Translate.Mismatches)
	}
	if smp > 1 && len(s.VCPUs) != smp {
		t.Errorf("statistics for %d vCPUs, want %d", len(s.VCPUs), smp)
	}
	// The kernel makes MMIO exits of its own (the ROM scan reads the low
	// test window at 0xd0000); devmem's are the ones in the high window.
	var user []traceExit
	other := map[string]int{}
	for _, x := range r.trace {
		gpa := hexValue(t, x.KVMGPA)
		if gpa >= devices.TestWindowHigh && gpa < devices.TestWindowHigh+devices.TestWindowSize {
			user = append(user, x)
			continue
		}
		if x.Verdict != "agree" {
			t.Errorf("kernel MMIO exit at %s (%s, %q): verdict %q", x.KVMGPA, x.CSRIP, x.Disasm, x.Verdict)
		}
		other[fmt.Sprintf("%s %#x", x.Mode, gpa&^0xfff)]++
	}
	t.Logf("%d MMIO exits: %d from devmem, the others by page: %v; paging64 walks by levels %v; modes %v", len(r.trace), len(user), other, s.Walks.Paging64Levels, s.Modes)
	if len(user) > 0 {
		t.Logf("devmem's first exit: %s", user[0].raw)
	}
	if len(user) != len(devmemOps) {
		t.Fatalf("trace has %d MMIO exits in the high test window, want %d", len(user), len(devmemOps))
	}
	for i, x := range user {
		o := devmemOps[i]
		where := fmt.Sprintf("MMIO exit %d (%s %s at %s, %q)", i, x.Direction, x.GPA, x.CSRIP, x.Disasm)
		if x.Verdict != "agree" {
			t.Errorf("%s: verdict %q", where, x.Verdict)
		}
		if want := fmt.Sprintf("%#x", devices.TestWindowHigh+o.off); x.GPA != want || x.KVMGPA != want || x.Size != o.width/8 || (x.Direction == "write") != o.write {
			t.Errorf("%s: size %d, KVM's GPA %s; want %s of %d bytes at %s", where, x.Size, x.KVMGPA, map[bool]string{true: "write", false: "read"}[o.write], o.width/8, want)
		}
		if o.write && hexValue(t, x.Data) != o.value {
			t.Errorf("%s: data %s, want %#x", where, x.Data, o.value)
		}
		cs, _, _ := strings.Cut(x.CSRIP, ":")
		if sel, err := strconv.ParseUint(cs, 16, 16); err != nil || sel&3 != 3 {
			t.Errorf("%s: CS %s is not CPL 3", where, cs)
		}
		if !strings.HasPrefix(x.Mode, "long64") {
			t.Errorf("%s: mode %s, want 64-bit mode", where, x.Mode)
		}
		var data bool
		for _, w := range x.Walks {
			if w.Walker != "paging64" || len(w.Levels) < 4 {
				t.Errorf("%s: %s walk by %s with %d levels, want paging64 with 4 or 5", where, w.Access, w.Walker, len(w.Levels))
				continue
			}
			for _, lv := range w.Levels {
				if hexValue(t, lv.Value)&pteUser == 0 {
					t.Errorf("%s: %s walk, level %d entry %s lacks U/S", where, w.Access, lv.Level, lv.Value)
				}
			}
			top := hexValue(t, w.Levels[0].Table)
			if kpti && top&0x1000 == 0 {
				t.Errorf("%s: %s walk from table %#x: with pti=on user space runs on the odd page of the PGD pair", where, w.Access, top)
			}
			leaf := hexValue(t, w.Levels[len(w.Levels)-1].Value)
			if w.Access == "fetch" && leaf&pteXD != 0 {
				t.Errorf("%s: fetch through a page with XD set: %#x", where, leaf)
			}
			if w.Access != "fetch" {
				data = true
				if leaf&pteXD == 0 {
					t.Errorf("%s: %s walk's leaf %#x lacks XD (devmem maps PROT_READ|PROT_WRITE)", where, w.Access, leaf)
				}
				if hexValue(t, w.GPA) != devices.TestWindowHigh+o.off {
					t.Errorf("%s: operand walk to %s", where, w.GPA)
				}
			}
		}
		if !data {
			t.Errorf("%s: no operand walk in the trace", where)
		}
	}
}

// TestLinuxShell boots the PVH vmlinux with `vmm initramfs`'s interactive
// system (initramfs.ShellInit) and types into it through stdin, as a user
// at the terminal would: a command's output comes back, and `reboot -f`
// ends the run with status 0.
func TestLinuxShell(t *testing.T) {
	e := setup(t)
	initrd := e.initrd(t, initramfs.ShellInit)
	var started sync.Once
	answered := make(chan struct{})
	var answer sync.Once
	r := e.boot(t, e.vmlinux, initrd, []string{"-verify", "strict", "-append", "quiet"}, false, func(line string, stdin io.Writer) {
		if strings.Contains(line, "typed-42-back") && !strings.Contains(line, "echo") {
			answer.Do(func() { close(answered) })
		}
		// Bytes typed before /init opened the console would be dropped
		// with the 8250's FIFO when Linux starts the port; and until the
		// shell reads its terminal, what is typed may be discarded too.
		// So the command is typed again every few seconds until its
		// answer appears, then the shell is told to reboot.
		if !strings.HasPrefix(line, "walkvm initramfs:") {
			return
		}
		started.Do(func() {
			go func() {
				tick := time.NewTicker(3 * time.Second)
				defer tick.Stop()
				for {
					if _, err := io.WriteString(stdin, "echo typed-$((6*7))-back\n"); err != nil {
						return
					}
					select {
					case <-answered:
						io.WriteString(stdin, "reboot -f\n")
						return
					case <-tick.C:
					}
				}
			}()
		})
	})
	if !strings.Contains(r.console, "typed-42-back") {
		t.Errorf("the shell did not run what was typed:\n%s", r.console)
	}
}
