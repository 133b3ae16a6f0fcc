package unittests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is also the fake vmm: with UNITTESTS_FAKE_VMM=1 it reads
// `vmm run … IMAGE`, runs IMAGE's script (one command a line) and exits.
func TestMain(m *testing.M) {
	if os.Getenv("UNITTESTS_FAKE_VMM") == "1" {
		os.Exit(fakeVMM(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeVMM plays `vmm run`. Script commands: "out TEXT" (console), "err
// TEXT" (stderr), "sleep DURATION", "hang", "kill" (SIGKILL itself),
// "exit N". It holds min(-smp, -j) slots in UNITTESTS_FAKE_SLOTS while it runs and
// fails when more than UNITTESTS_FAKE_J are held at once.
func fakeVMM(args []string) int {
	if len(args) < 2 || args[0] != "run" {
		fmt.Fprintln(os.Stderr, "vmm: fake wants run")
		return 2
	}
	smp, hasDebugExit, initrd := 1, false, ""
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "-smp":
			smp, _ = strconv.Atoi(args[i+1])
		case "-debug-exit":
			hasDebugExit = args[i+1] == "qemu"
		case "-initrd":
			initrd = args[i+1]
		case "-cpu":
			if strings.Contains(args[i+1], "hv_passthrough") {
				fmt.Fprintf(os.Stderr, "vmm run: -cpu: -cpu %q: unknown option \"hv_passthrough\"\n", args[i+1])
				return 125
			}
		}
	}
	if !hasDebugExit {
		fmt.Fprintln(os.Stderr, "vmm run: fake: no -debug-exit qemu")
		return 125
	}
	if env, err := os.ReadFile(initrd); err != nil || !bytes.Contains(env, []byte("\nKERNEL_VERSION=")) {
		fmt.Fprintf(os.Stderr, "vmm run: fake: -initrd %q is not an env file: %v\n", initrd, err)
		return 125
	}
	slots := os.Getenv("UNITTESTS_FAKE_SLOTS")
	j, _ := strconv.Atoi(os.Getenv("UNITTESTS_FAKE_J"))
	mine := filepath.Join(slots, strconv.Itoa(os.Getpid()))
	os.WriteFile(mine, []byte(strconv.Itoa(min(smp, j))), 0o644)
	defer os.Remove(mine)
	held := 0
	files, _ := os.ReadDir(slots)
	for _, f := range files {
		if pid, _ := strconv.Atoi(f.Name()); syscall.Kill(pid, 0) != nil {
			continue // a fake killed by SIGKILL left its file behind
		}
		b, _ := os.ReadFile(filepath.Join(slots, f.Name()))
		n, _ := strconv.Atoi(string(b))
		held += n
	}
	if held > j {
		fmt.Fprintf(os.Stderr, "vmm run: fake: %d slots held, -j %d\n", held, j)
		return 125
	}
	script, err := os.ReadFile(args[len(args)-1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm run: image: %v\n", err)
		return 125
	}
	sc := bufio.NewScanner(bytes.NewReader(script))
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "out":
			fmt.Println(arg)
		case "err":
			fmt.Fprintln(os.Stderr, arg)
		case "sleep":
			d, _ := time.ParseDuration(arg)
			time.Sleep(d)
		case "hang":
			time.Sleep(time.Hour)
		case "kill":
			os.Remove(mine) // SIGKILL skips the deferred removal
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		case "exit":
			n, _ := strconv.Atoi(arg)
			return n
		}
	}
	return 0
}

const e2eCfg = `
[slow_pass]
file = slow.flat

[fast_fail]
file = fail.flat
smp = 2

[all_skipped]
file = skip.flat

[timeout]
file = timeout.flat
timeout = 7

[hang]
file = hang.flat
timeout = 0.2s

[cpu_refused]
file = pass.flat
qemu_params = -cpu host,hv_passthrough

[manual]
file = pass.flat
groups = nodefault

[crash]
file = crash.flat

[smp3]
file = pass.flat
smp = 3
test_args = "x y"
`

var e2eImages = map[string]string{
	"slow.flat":    "sleep 400ms\nout PASS: slow\nout SUMMARY: 3 tests\nerr level=info msg=stats\nexit 1\n",
	"fail.flat":    "out FAIL: one\nout SUMMARY: 4 tests, 1 unexpected failures\nexit 3\n",
	"skip.flat":    "out SKIP: a\nout SUMMARY: 2 tests, 2 skipped\nexit 77\n",
	"timeout.flat": "out PASS: before\nerr vmm run: timeout after 7s; vCPU 0 halted\nexit 124\n",
	"hang.flat":    "out started\nhang\n",
	"pass.flat":    "out SUMMARY: 1 tests\nexit 1\n",
	"crash.flat":   "kill\n",
}

// e2eSetup writes the cfg and images and returns the planned jobs.
func e2eSetup(t *testing.T, j int) (dir string, jobs []Job) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "unittests.cfg"), []byte(e2eCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, script := range e2eImages {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	envFile := filepath.Join(dir, "environ")
	if err := os.WriteFile(envFile, []byte("TARGET=qemu\nKERNEL_VERSION=6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	slots := filepath.Join(dir, "slots")
	if err := os.Mkdir(slots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("UNITTESTS_FAKE_VMM", "1")
	t.Setenv("UNITTESTS_FAKE_SLOTS", slots)
	t.Setenv("UNITTESTS_FAKE_J", strconv.Itoa(j))
	found, err := FindDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(found, "unittests.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := Parse(f, "unittests.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return dir, Plan(entries, Config{Dir: found, Arch: "x86_64", Accel: "kvm", EnvFile: envFile, Verify: "strict"})
}

func TestRunEndToEnd(t *testing.T) {
	for _, j := range []int{1, 3} {
		t.Run(fmt.Sprintf("j%d", j), func(t *testing.T) {
			dir, jobs := e2eSetup(t, j)
			var out bytes.Buffer
			r := &Runner{VMM: os.Args[0], Jobs: j, LogDir: filepath.Join(dir, "logs"), Out: NewText(&out), Grace: 300 * time.Millisecond}
			tot, err := r.Run(context.Background(), jobs)
			if err != nil {
				t.Fatal(err)
			}
			want := `PASS slow_pass (3 tests)
FAIL fast_fail (4 tests, 1 unexpected failures)
SKIP all_skipped (2 tests, 2 skipped)
FAIL timeout (timeout; duration=7)
FAIL hang (timeout; duration=0.2s)
SKIP cpu_refused (-cpu: -cpu "host,hv_passthrough": unknown option "hv_passthrough")
SKIP manual (nodefault)
FAIL crash (terminated on SIGKILL)
PASS smp3 (1 tests)
2 passed, 4 failed, 3 skipped
`
			if out.String() != want {
				t.Errorf("output\n%s\nwant\n%s", out.String(), want)
			}
			if tot != (Totals{Passed: 2, Failed: 4, Skipped: 3}) {
				t.Errorf("totals %+v", tot)
			}
			log, err := os.ReadFile(filepath.Join(dir, "logs", "slow_pass.log"))
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(log), "\n")
			if want := ShellQuote(append([]string{os.Args[0]}, jobs[0].Args...)); first != want {
				t.Errorf("log's first line %q, want the command %q", first, want)
			}
			for _, s := range []string{"PASS: slow", "SUMMARY: 3 tests", "level=info msg=stats", "status 1: PASS slow_pass (3 tests)"} {
				if !strings.Contains(string(log), s) {
					t.Errorf("slow_pass.log lacks %q:\n%s", s, log)
				}
			}
			if log, _ := os.ReadFile(filepath.Join(dir, "logs", "hang.log")); !bytes.Contains(log, []byte("killed")) {
				t.Errorf("hang.log does not say it was killed:\n%s", log)
			}
			if _, err := os.Stat(filepath.Join(dir, "logs", "manual.log")); err == nil {
				t.Error("a log for a test that did not run")
			}
			if smp3 := jobs[len(jobs)-1]; !slices.Contains(smp3.Args, "x y") {
				t.Errorf("smp3 args %q lack the -append text", smp3.Args)
			}
		})
	}
}

// orderRecorder notes when each result arrives.
type orderRecorder struct {
	names []string
	at    []time.Time
}

func (o *orderRecorder) Result(r Result) error {
	o.names = append(o.names, r.Name)
	o.at = append(o.at, time.Now())
	return nil
}
func (o *orderRecorder) End(Totals) error { return nil }

func TestRunParallelKeepsOrder(t *testing.T) {
	dir, jobs := e2eSetup(t, 4)
	// slow_pass (400ms) first; the others finish before it with -j 4.
	jobs = slices.DeleteFunc(jobs, func(j Job) bool { return j.Entry.Name == "hang" })
	rec := &orderRecorder{}
	r := &Runner{VMM: os.Args[0], Jobs: 4, LogDir: filepath.Join(dir, "logs"), Out: rec, Grace: time.Second}
	start := time.Now()
	if _, err := r.Run(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, j := range jobs {
		want = append(want, j.Entry.Name)
	}
	if !slices.Equal(rec.names, want) {
		t.Errorf("order %q, want cfg order %q", rec.names, want)
	}
	// Results behind slow_pass are held back until it is in: all arrive
	// after its 400ms.
	for i, at := range rec.at {
		if at.Sub(start) < 400*time.Millisecond {
			t.Errorf("%s reported %v after the start, before slow_pass finished", rec.names[i], at.Sub(start))
		}
	}
}

func TestRunInterrupt(t *testing.T) {
	dir, jobs := e2eSetup(t, 1)
	// fast_fail, then a test that hangs with no timeout, then smp3 which
	// never starts.
	var keep []Job
	for _, j := range jobs {
		switch j.Entry.Name {
		case "fast_fail", "smp3":
			keep = append(keep, j)
		case "hang":
			j.Timeout = 0
			keep = append(keep, j)
		}
	}
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{VMM: os.Args[0], Jobs: 1, LogDir: filepath.Join(dir, "logs"), Out: NewText(&out), Grace: time.Second}
	go func() {
		// Cancel once hang's child is running: its log has the console line.
		for {
			if b, _ := os.ReadFile(filepath.Join(dir, "logs", "hang.log")); bytes.Contains(b, []byte("started")) {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	done := make(chan struct{})
	var tot Totals
	var err error
	go func() { tot, err = r.Run(ctx, keep); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the interrupt")
	}
	if err != nil {
		t.Fatal(err)
	}
	want := "FAIL fast_fail (4 tests, 1 unexpected failures)\n0 passed, 1 failed, 0 skipped (interrupted)\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if !tot.Interrupted {
		t.Error("totals not marked interrupted")
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "smp3.log")); err == nil {
		t.Error("smp3 started after the interrupt")
	}
}
