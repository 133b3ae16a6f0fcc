package unittests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is runtime.bash's timeout for an entry without one.
const DefaultTimeout = "90s"

// DefaultMem is QEMU's default RAM size, which the guests expect.
const DefaultMem = "128M"

// Config is how entries become jobs: the host and the runner's options.
type Config struct {
	Dir     string // the directory holding unittests.cfg and the .flat files
	Arch    string // the suite's ARCH: "x86_64"
	Accel   string // "kvm"
	All     bool   // run nodefault entries too (run_tests.sh -a)
	Only    *regexp.Regexp
	Timeout string // TIMEOUT: overrides every entry's timeout when set
	Check   string // CHECK: overrides every entry's check when set
	Verify  string // vmm run -verify level
	EnvFile string // passed by -initrd unless the entry names its own
	// ReadFile reads the files of check lines (os.ReadFile when nil).
	ReadFile func(string) ([]byte, error)
	// Stat tells whether a test file exists (os.Stat when nil).
	Stat  func(string) (os.FileInfo, error)
	Shell Shell
}

// Job is one planned entry: either a `vmm run` to start (Args) or a
// verdict known without running it (Skip or Fail).
type Job struct {
	Entry Entry
	Skip  string // SKIP with this reason, not run
	Fail  string // FAIL with this reason, not run (an entry walkvm cannot read)
	// Args are vmm's arguments, starting with "run".
	Args []string
	SMP  int
	// Timeout is the guest's limit (0: none); TimeoutText as the cfg says it.
	Timeout     time.Duration
	TimeoutText string
	// Notes are QEMU options accepted without an effect, for the log.
	Notes []string
	// late is the configuration to build Args with again when the job
	// starts (Rebuild): set when the entry's command line needs the shell.
	late *Config
}

// Rebuild builds the job's command line again, as it starts, when the
// entry's test_args, qemu_params or smp use the shell: runtime.bash evals
// an entry's command line when it runs the test, and kvmclock_test passes
// `date +%s`, the host's time then, which the guest checks its wall clock
// against within 5 s. Other jobs keep what Plan built.
func (j *Job) Rebuild() error {
	if j.late == nil {
		return nil
	}
	return j.late.build(j)
}

// Plan turns entries into jobs in cfg order, leaving out those -only does
// not select. It follows runtime.bash's run(): nodefault, arch, machine,
// accel, disabled_if, check, test file; then the QEMU options become vmm
// run flags, or a SKIP naming the option walkvm does not offer.
func Plan(entries []Entry, c Config) []Job {
	var jobs []Job
	for _, e := range entries {
		if c.Only != nil && !c.Only.MatchString(e.Name) {
			continue
		}
		j := Job{Entry: e}
		j.Skip, j.Fail = c.precheck(&e)
		if j.Skip == "" && j.Fail == "" {
			if err := c.build(&j); err != nil {
				j.Fail = err.Error()
			}
		}
		if j.Skip == "" && j.Fail == "" && needsShell(e.TestArgs+e.Params+e.SMP) {
			late := c
			j.late = &late
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// precheck returns the SKIP reason of runtime.bash's checks, or a FAIL
// reason when a check cannot be evaluated.
func (c Config) precheck(e *Entry) (skip, fail string) {
	if e.InGroup("nodefault") && !c.All {
		return "nodefault", ""
	}
	if e.Arch != "" && e.Arch != c.Arch {
		return e.Arch + " only", ""
	}
	if e.Accel != "" && !regexp.MustCompile(`^`+regexp.QuoteMeta(e.Accel)+`(,|$)`).MatchString(c.Accel) {
		return fmt.Sprintf("%s only, but ACCEL=%s", e.Accel, c.Accel), ""
	}
	if e.DisabledIf != "" {
		off, err := c.Shell.True(e.DisabledIf)
		if err != nil {
			return "", "disabled_if: " + err.Error()
		}
		if off {
			return "disabled because: " + e.DisabledIf, ""
		}
	}
	check := e.Check
	if c.Check != "" {
		check = c.Check
	}
	read := c.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	for _, p := range strings.Fields(check) {
		path, value, _ := strings.Cut(p, "=")
		b, err := read(path)
		if err != nil || strings.TrimRight(string(b), "\n") != value {
			return fmt.Sprintf("%s not equal to %s", path, value), ""
		}
	}
	stat := c.Stat
	if stat == nil {
		stat = os.Stat
	}
	if e.File == "" {
		return "", "no file ="
	}
	if _, err := stat(filepath.Join(c.Dir, e.File)); err != nil {
		return fmt.Sprintf("Test file '%s' not found", filepath.Join(c.Dir, e.File)), ""
	}
	return "", ""
}

// qemuArgs are what an entry's QEMU options ask of the machine.
type qemuArgs struct {
	cpu, mem, smp, appendText, initrd string
	skips, notes                      []string
}

// offeredDevices are the -device models walkvm's machine has.
var offeredDevices = map[string]bool{"pc-testdev": true, "isa-debug-exit": true}

// machineProps says how walkvm answers each -machine property; the empty
// string accepts it, anything else is the SKIP reason.
func machineProp(p string) (skip, note string) {
	name, val, _ := strings.Cut(p, "=")
	switch {
	case p == "pc" || strings.HasPrefix(p, "pc-i440fx") || p == "type=pc":
		return "", ""
	case name == "accel" && strings.HasPrefix(val, "kvm"):
		return "", ""
	case name == "kernel-irqchip" && (val == "on" || val == "true"):
		return "", ""
	case p == "pit=off":
		// The entry turns the PIT off so that SVM's AVIC stays enabled
		// (unittests.cfg's comment on vmexit_ipi); the test itself does
		// not touch the PIT.
		return "", "-machine pit=off: walkvm keeps its in-kernel PIT (the test does not use it)"
	}
	return "needs -machine " + p, ""
}

// parseQEMU reads QEMU options into what walkvm's run takes.
func parseQEMU(words []string) (qemuArgs, error) {
	var q qemuArgs
	for i := 0; i < len(words); i++ {
		opt := words[i]
		if !strings.HasPrefix(opt, "-") {
			return q, fmt.Errorf("QEMU argument %q is not an option", opt)
		}
		opt = "-" + strings.TrimLeft(opt, "-")
		if opt == "-enable-kvm" || opt == "-nodefaults" || opt == "-no-reboot" {
			continue // walkvm always runs on KVM with no default devices and stops on a reset
		}
		if i+1 >= len(words) {
			return q, fmt.Errorf("QEMU option %s has no value", opt)
		}
		i++
		val := words[i]
		switch opt {
		case "-cpu":
			q.cpu = val
		case "-m":
			m, err := qemuMem(val)
			if err != nil {
				return q, err
			}
			q.mem = m
		case "-smp":
			n, _, _ := strings.Cut(val, ",")
			n = strings.TrimPrefix(n, "cpus=")
			q.smp = n
		case "-append":
			q.appendText = val
		case "-initrd":
			q.initrd = val
		case "-machine", "-M":
			for _, p := range strings.Split(val, ",") {
				skip, note := machineProp(p)
				if skip != "" {
					q.skips = append(q.skips, skip)
				}
				if note != "" {
					q.notes = append(q.notes, note)
				}
			}
		case "-device":
			model, _, _ := strings.Cut(val, ",")
			if !offeredDevices[model] {
				q.skips = append(q.skips, "-device "+model+" not offered")
			}
		case "-global":
			if val != "kvm-pit.lost_tick_policy=discard" {
				q.skips = append(q.skips, "needs -global "+val)
			}
		default:
			q.skips = append(q.skips, "needs "+opt+" "+val)
		}
	}
	return q, nil
}

// qemuMem turns QEMU's -m (MiB by default, k/M/G/T suffixes, size=…) into
// walkvm's -mem form.
func qemuMem(v string) (string, error) {
	s, _, _ := strings.Cut(v, ",")
	s = strings.TrimPrefix(s, "size=")
	num := strings.TrimRight(s, "kKmMgGtT")
	suffix := strings.ToUpper(s[len(num):])
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 || len(suffix) > 1 {
		return "", fmt.Errorf("QEMU -m %q: not a size", v)
	}
	switch suffix {
	case "", "M":
		return num + "M", nil
	case "K", "G":
		return num + suffix, nil
	default: // T
		return strconv.FormatUint(n*1024, 10) + "G", nil
	}
}

// ParseTimeout reads a timeout(1) duration: a number with an optional s,
// m, h or d suffix; 0 means none.
func ParseTimeout(s string) (time.Duration, error) {
	unit := time.Second
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 's':
			num = s[:n-1]
		case 'm':
			unit, num = time.Minute, s[:n-1]
		case 'h':
			unit, num = time.Hour, s[:n-1]
		case 'd':
			unit, num = 24*time.Hour, s[:n-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("timeout %q: not a duration", s)
	}
	return time.Duration(f * float64(unit)), nil
}

// build fills j.Args from the entry, or j.Skip when the entry needs a QEMU
// option walkvm does not offer.
func (c Config) build(j *Job) error {
	e := &j.Entry
	params, err := c.Shell.Words(e.Params)
	if err != nil {
		return fmt.Errorf("qemu_params: %w", err)
	}
	q, err := parseQEMU(params)
	if err != nil {
		return fmt.Errorf("qemu_params: %w", err)
	}
	if len(q.skips) > 0 {
		j.Skip = strings.Join(q.skips, "; ")
		return nil
	}
	j.Notes = q.notes

	smpText := "1"
	if e.SMP != "" {
		w, err := c.Shell.Words(e.SMP)
		if err != nil || len(w) != 1 {
			return fmt.Errorf("smp = %s: not one value", e.SMP)
		}
		smpText = w[0]
	}
	if q.smp != "" {
		smpText = q.smp
	}
	if j.SMP, err = strconv.Atoi(smpText); err != nil || j.SMP < 1 {
		return fmt.Errorf("smp %q: not a positive number", smpText)
	}

	appendText := ""
	if e.TestArgs != "" {
		w, err := c.Shell.Words(e.TestArgs)
		if err != nil {
			return fmt.Errorf("test_args: %w", err)
		}
		appendText = strings.Join(w, " ")
	}
	if q.appendText != "" {
		appendText = q.appendText
	}

	j.TimeoutText = DefaultTimeout
	if e.Timeout != "" {
		j.TimeoutText = e.Timeout
	}
	if c.Timeout != "" {
		j.TimeoutText = c.Timeout
	}
	if j.Timeout, err = ParseTimeout(j.TimeoutText); err != nil {
		return err
	}

	mem := DefaultMem
	if q.mem != "" {
		mem = q.mem
	}
	initrd := c.EnvFile
	if q.initrd != "" {
		initrd = q.initrd
	}
	verify := c.Verify
	if verify == "" {
		verify = "strict"
	}
	args := []string{"run", "-mem", mem, "-smp", strconv.Itoa(j.SMP)}
	if q.cpu != "" {
		args = append(args, "-cpu", q.cpu)
	}
	if appendText != "" {
		args = append(args, "-append", appendText)
	}
	if initrd != "" {
		args = append(args, "-initrd", initrd)
	}
	args = append(args, "-debug-exit", "qemu", "-timeout", j.Timeout.String(), "-verify", verify,
		filepath.Join(c.Dir, e.File))
	j.Args = args
	return nil
}

// FindDir returns the directory holding unittests.cfg: dir itself, or its
// x86 subdirectory when dir is kvm-unit-tests' tree root.
func FindDir(dir string) (string, error) {
	for _, d := range []string{dir, filepath.Join(dir, "x86")} {
		if _, err := os.Stat(filepath.Join(d, "unittests.cfg")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("%s: no unittests.cfg here or in %s", dir, filepath.Join(dir, "x86"))
}
