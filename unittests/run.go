package unittests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Runner starts planned jobs as `vmm` subprocesses and reports them in cfg
// order.
type Runner struct {
	VMM    string // the vmm binary
	Jobs   int    // parallel slots (-j); a job takes min(smp, Jobs)
	LogDir string
	Out    Reporter
	// Grace is how long past a job's timeout the runner waits for vmm to
	// stop by itself before killing it (and judging a timeout).
	Grace time.Duration
}

// capture keeps the head (Head) or the tail of what is written, up to max
// bytes.
type capture struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	head bool
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head {
		if room := c.max - len(c.buf); room > 0 {
			c.buf = append(c.buf, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	if over := len(c.buf) - c.max; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...)
	}
	return len(p), nil
}

func (c *capture) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}

// lockedWriter interleaves the guest's console and walkvm's stderr in one
// log.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ShellQuote writes args as one copy-pasteable shell command line.
func ShellQuote(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,+=:@%", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

// logName is the log file of a test: its name with path separators
// replaced.
func logName(name string) string {
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(name) + ".log"
}

// runOne runs one job and judges it. It returns interrupted=true when ctx
// was cancelled before the job ended on its own.
func (r *Runner) runOne(ctx context.Context, j *Job) (res Result, interrupted bool) {
	res = Result{Name: j.Entry.Name, Status: -1}
	if err := j.Rebuild(); err != nil {
		res.Judgement = Judgement{Verdict: Fail, Reason: err.Error()}
		return res, false
	}
	if j.Skip != "" {
		res.Judgement = Judgement{Verdict: Skip, Reason: j.Skip}
		return res, false
	}
	res.Command = append([]string{r.VMM}, j.Args...)
	res.Log = filepath.Join(r.LogDir, logName(j.Entry.Name))
	f, err := os.Create(res.Log)
	if err != nil {
		res.Judgement = Judgement{Verdict: Fail, Reason: "log: " + err.Error()}
		return res, false
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\n", ShellQuote(res.Command))
	for _, n := range j.Notes {
		fmt.Fprintf(f, "# %s\n", n)
	}

	runCtx := ctx
	killed := false
	var cancel context.CancelFunc = func() {}
	if j.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, j.Timeout+r.Grace)
	}
	defer cancel()
	cmd := exec.CommandContext(runCtx, r.VMM, j.Args...)
	cmd.Cancel = func() error { killed = true; return cmd.Process.Kill() }
	cmd.WaitDelay = 2 * time.Second
	var mu sync.Mutex
	logw := lockedWriter{&mu, f}
	stdout := &capture{max: 64 << 10}
	stderr := &capture{max: 64 << 10, head: true}
	cmd.Stdout = io.MultiWriter(logw, stdout)
	cmd.Stderr = io.MultiWriter(logw, stderr)
	cmd.Stdin = nil

	start := time.Now()
	err = cmd.Run()
	res.Duration = time.Since(start)
	if ctx.Err() != nil {
		return res, true
	}
	o := Outcome{Stdout: stdout.bytes(), Stderr: stderr.bytes(), TimeoutText: j.TimeoutText}
	var ee *exec.ExitError
	switch {
	case err == nil:
		o.Status = 0
	case killed:
		o.Status = StatusTimeout
		fmt.Fprintf(logw, "\nvmm unittests: vmm did not stop %v after its -timeout; killed\n", r.Grace)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.Signal = signalName(ws.Signal())
		}
		o.Status = ee.ExitCode()
	default:
		res.Judgement = Judgement{Verdict: Fail, Reason: "starting vmm: " + err.Error()}
		fmt.Fprintf(f, "\nvmm unittests: %v\n", err)
		return res, false
	}
	res.Status = o.Status
	res.Judgement = Judge(o)
	mu.Lock()
	fmt.Fprintf(f, "\nvmm unittests: status %d: %s %s%s\n", o.Status, res.Verdict, res.Name, paren(res.Text()))
	mu.Unlock()
	return res, false
}

func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGILL: "SIGILL", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS",
		syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGTERM: "SIGTERM",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}

// Run runs jobs (up to r.Jobs slots at once; a job of smp N takes N slots,
// at most r.Jobs) and reports every result in job order as soon as the
// results before it are in. When ctx is cancelled it kills the running
// children, reports the results that had finished, and returns totals
// marked Interrupted.
func (r *Runner) Run(ctx context.Context, jobs []Job) (Totals, error) {
	if err := os.MkdirAll(r.LogDir, 0o755); err != nil {
		return Totals{}, fmt.Errorf("-logs: %w", err)
	}
	slots := max(r.Jobs, 1)
	type done struct {
		i           int
		res         Result
		interrupted bool
	}
	doneCh := make(chan done, len(jobs))
	free := slots
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	stop := context.AfterFunc(ctx, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
	defer stop()

	// The dispatcher starts jobs in order, each when its slots are free.
	go func() {
		for i := range jobs {
			j := &jobs[i]
			switch {
			case ctx.Err() != nil:
				doneCh <- done{i: i, interrupted: true}
				continue
			case j.Skip != "":
				doneCh <- done{i: i, res: Result{Name: j.Entry.Name, Status: -1, Judgement: Judgement{Verdict: Skip, Reason: j.Skip}}}
				continue
			case j.Fail != "":
				doneCh <- done{i: i, res: Result{Name: j.Entry.Name, Status: -1, Judgement: Judgement{Verdict: Fail, Reason: j.Fail}}}
				continue
			}
			need := min(j.SMP, slots)
			mu.Lock()
			for free < need && ctx.Err() == nil {
				cond.Wait()
			}
			if ctx.Err() != nil {
				mu.Unlock()
				doneCh <- done{i: i, interrupted: true}
				continue
			}
			free -= need
			mu.Unlock()
			go func() {
				res, intr := r.runOne(ctx, j)
				mu.Lock()
				free += need
				cond.Broadcast()
				mu.Unlock()
				doneCh <- done{i: i, res: res, interrupted: intr}
			}()
		}
	}()

	var tot Totals
	results := make([]*done, len(jobs))
	next := 0
	var werr error
	emit := func(d *done) {
		tot.Add(d.res)
		if err := r.Out.Result(d.res); err != nil && werr == nil {
			werr = err
		}
	}
	for range jobs {
		d := <-doneCh
		results[d.i] = &d
		for next < len(jobs) && results[next] != nil {
			if !results[next].interrupted {
				emit(results[next])
			}
			next++
		}
	}
	if ctx.Err() != nil {
		tot.Interrupted = true
	}
	if err := r.Out.End(tot); err != nil && werr == nil {
		werr = err
	}
	return tot, werr
}
