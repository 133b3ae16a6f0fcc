package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"walkvm/devices"
	"walkvm/internal/kvmtest"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/trace"
	"walkvm/vcpu"
)

// vmmArgsEnv makes the test binary run vmm itself (TestMain), with the
// arguments as a JSON array, so that a test can signal a real vmm process.
const vmmArgsEnv = "WALKVM_TEST_VMM_ARGS"

func TestMain(m *testing.M) {
	if env := os.Getenv(vmmArgsEnv); env != "" {
		var args []string
		if err := json.Unmarshal([]byte(env), &args); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", vmmArgsEnv, err)
			os.Exit(2)
		}
		os.Exit(Main(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// spinCPU is a vCPU without KVM whose guest never exits: Run returns only
// when kicked (immediate exit), as KVM_RUN returns EINTR.
type spinCPU struct{ immediate atomic.Bool }

func (c *spinCPU) Run() error {
	for !c.immediate.Load() {
		time.Sleep(50 * time.Microsecond)
	}
	return kvm.ErrInterrupted
}
func (c *spinCPU) ReadExit(e *kvm.Exit) error  { return nil }
func (c *spinCPU) SetImmediateExit(on bool)    { c.immediate.Store(on) }
func (c *spinCPU) GetRegs(r *kvm.Regs) error   { return nil }
func (c *spinCPU) GetSregs(s *kvm.Sregs) error { return nil }

// A signal to the process while vCPUs run ends the run through the
// console's signal handling: every vCPU is kicked out of its KVM_RUN, and
// the status is 128 + the signal (130, 143). Without KVM: the vCPUs never
// exit on their own.
func TestSignalStopsEveryVCPU(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			var g vcpu.Group
			var loops []*vcpu.Loop
			for i := range 4 {
				loops = append(loops, &vcpu.Loop{Index: i, CPU: &spinCPU{}, PIO: memory.NewBus("pio"), MMIO: &vcpu.BusMMIO{Bus: memory.NewBus("mmio")}})
			}
			detach := attachConsole(&g, devices.NewUART(nil), nil, io.Discard, quietLog())
			defer detach()
			done := make(chan vcpu.End, 1)
			go func() { done <- g.Run(loops, 0) }()
			if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case end := <-done:
				if end.Kind != vcpu.EndQuit || end.ExitStatus() != 128+int(sig) {
					t.Fatalf("end %+v, status %d", end, end.ExitStatus())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the signal did not stop every vCPU")
			}
		})
	}
}

// After a signal ends the run, everything the run holds is still written:
// the trace flushed and closed, the report, the statistics; the status is
// 128 + the signal (130, 143). Without KVM: the run's end is made up.
func TestFinishAfterSignal(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(unix.SignalName(c.sig), func(t *testing.T) {
			dir := t.TempDir()
			tracePath, reportPath := filepath.Join(dir, "trace.jsonl"), filepath.Join(dir, "report.html")
			var stderr bytes.Buffer
			o, err := parseRun([]string{"-trace", tracePath, "-report", reportPath}, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			p, err := o.sink.path()
			if err != nil {
				t.Fatal(err)
			}
			w, closeTrace, err := openOutput(p, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			out := runOutputs{tracer: trace.NewTracer(w), closeTrace: closeTrace}
			stats := trace.NewStats(0)
			const n = 10
			for i := range n {
				out.tracer.Write(&trace.Record{Seq: uint64(i + 1), Reason: kvm.ExitIO, Mode: trace.ModeReal})
				stats.CountExit(kvm.KindIO)
			}
			end := vcpu.End{Kind: vcpu.EndQuit, Status: 128 + int(c.sig), VCPU: -1}
			stats.ExitStatus = end.ExitStatus()
			if status := o.finish(end, stats, &out, &stderr); status != c.want {
				t.Errorf("status %d, want %d", status, c.want)
			}
			checkRunOutputs(t, tracePath, reportPath, stderr.String(), c.sig, c.want)
			if lines := countLines(t, tracePath); lines != n {
				t.Errorf("%d trace lines, want %d", lines, n)
			}
		})
	}
}

// checkRunOutputs checks what a run stopped by sig left: a trace whose
// every line is JSON, a report, the reason and the statistics on stderr.
func checkRunOutputs(t *testing.T, tracePath, reportPath, stderr string, sig syscall.Signal, status int) {
	t.Helper()
	b, err := os.ReadFile(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Errorf("trace not flushed whole: %d bytes, last %q", len(b), b[max(0, len(b)-20):])
	}
	for i, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if !json.Valid(l) {
			t.Fatalf("trace line %d is not JSON: %.200s", i+1, l)
		}
	}
	page, err := os.ReadFile(reportPath)
	if err != nil || !bytes.Contains(page, []byte("</html>")) {
		t.Errorf("no whole report: %v (%d bytes)", err, len(page))
	}
	for _, want := range []string{"vmm run: quit \\(status " + strconv.Itoa(status) + "\\)\n", `\nexits +\d+ total`, `\nexit status +` + strconv.Itoa(status) + "\n"} {
		if !regexp.MustCompile(want).MatchString(stderr) {
			t.Errorf("stderr does not match %q:\n%s", want, stderr)
		}
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

// Ctrl-C and SIGTERM to a real `vmm run` whose guest never ends: the
// process stops the guest and exits with 130 or 143, the trace whole, the
// report and the statistics written.
func TestRunSignal(t *testing.T) {
	kvmtest.Require(t)
	dir := t.TempDir()
	image := filepath.Join(dir, "loop.bin")
	// 1: out %al,$0x80; jmp 1b -- a port-I/O exit per iteration, forever.
	if err := os.WriteFile(image, []byte{0xe6, 0x80, 0xeb, 0xfc}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(unix.SignalName(c.sig), func(t *testing.T) {
			tracePath, reportPath := filepath.Join(dir, c.sig.String()+".jsonl"), filepath.Join(dir, c.sig.String()+".html")
			args := []string{"run", "-timeout", "5m", "-trace", tracePath, "-report", reportPath, image}
			cmd := exec.Command(os.Args[0])
			env, err := json.Marshal(args)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Env = append(os.Environ(), vmmArgsEnv+"="+string(env))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The guest runs once the trace has its first lines (the
			// tracer's buffer is 64 KiB).
			deadline := time.Now().Add(2 * time.Minute)
			for {
				if fi, err := os.Stat(tracePath); err == nil && fi.Size() > 0 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no trace after 2 minutes; stderr:\n%s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				<-done
				t.Fatalf("vmm run did not stop on %v; stderr:\n%s", c.sig, stderr.String())
			}
			if got := cmd.ProcessState.ExitCode(); got != c.want {
				t.Errorf("status %d (%v), want %d; stderr:\n%s", got, cmd.ProcessState, c.want, stderr.String())
			}
			checkRunOutputs(t, tracePath, reportPath, stderr.String(), c.sig, c.want)
		})
	}
}
