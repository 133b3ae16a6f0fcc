package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"walkvm/ownpath"
	"walkvm/unittests"
)

// cmdUnittests is `vmm unittests`: kvm-unit-tests' x86 suite, each entry of
// its unittests.cfg run by `vmm run`.
func cmdUnittests(args []string, stdout, stderr io.Writer) int {
	fs, o := unittestsFlags(stderr)
	jobs, verify, tap, jsonOut, only, logs, vmmPath, all := o.jobs, o.verify, o.tap, o.jsonOut, o.only, o.logs, o.vmmPath, o.all
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "vmm unittests: %v\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *tap && *jsonOut {
		return fail(errors.New("give -tap or -json, not both"))
	}
	if *jobs < 1 {
		return fail(fmt.Errorf("-j %d: want at least 1", *jobs))
	}
	if _, err := ownpath.ParseVerify(*verify); err != nil {
		return fail(fmt.Errorf("-verify: %w", err))
	}
	var onlyRE *regexp.Regexp
	if *only != "" {
		var err error
		if onlyRE, err = regexp.Compile(*only); err != nil {
			return fail(fmt.Errorf("-only: %w", err))
		}
	}
	if *vmmPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return fail(fmt.Errorf("finding vmm: %w (give -vmm)", err))
		}
		*vmmPath = exe
	}

	dir, err := unittests.FindDir(fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	cfgPath := filepath.Join(dir, "unittests.cfg")
	cf, err := os.Open(cfgPath)
	if err != nil {
		return fail(err)
	}
	entries, err := unittests.Parse(cf, cfgPath)
	cf.Close()
	if err != nil {
		return fail(err)
	}

	env := os.Environ()
	if *all {
		env = append(env, "ERRATA_FORCE=y")
	}
	maxSMP := os.Getenv("MAX_SMP")
	if maxSMP == "" {
		maxSMP = strconv.Itoa(runtime.NumCPU())
		env = append(env, "MAX_SMP="+maxSMP)
	}
	env = append(env, "ARCH=x86_64", "ACCEL=kvm", "TEST_DIR="+dir)

	if err := os.MkdirAll(*logs, 0o755); err != nil {
		return fail(fmt.Errorf("-logs: %w", err))
	}
	envFile, err := writeEnviron(filepath.Join(*logs, "environ"), dir, env)
	if err != nil {
		return fail(err)
	}

	jobsPlan := unittests.Plan(entries, unittests.Config{
		Dir: dir, Arch: "x86_64", Accel: "kvm", All: *all, Only: onlyRE,
		Timeout: os.Getenv("TIMEOUT"), Check: os.Getenv("CHECK"),
		Verify: *verify, EnvFile: envFile, Shell: unittests.Shell{Env: env},
	})
	var out unittests.Reporter
	switch {
	case *tap:
		out = unittests.NewTAP(stdout)
	case *jsonOut:
		out = unittests.NewJSON(stdout)
	default:
		out = unittests.NewText(stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &unittests.Runner{VMM: *vmmPath, Jobs: *jobs, LogDir: *logs, Out: out, Grace: 10 * time.Second}
	tot, err := r.Run(ctx, jobsPlan)
	if err != nil {
		return fail(err)
	}
	switch {
	case tot.Interrupted:
		return 130
	case tot.Failed > 0:
		return 1
	}
	return 0
}

// unittestsOptions are the flags of `vmm unittests`.
type unittestsOptions struct {
	jobs               *int
	verify, only, logs *string
	vmmPath            *string
	tap, jsonOut, all  *bool
}

// unittestsFlags defines the flags of `vmm unittests` (also read by `vmm
// nested unittests`, which moves DIR and -logs into the guest).
func unittestsFlags(stderr io.Writer) (*flag.FlagSet, *unittestsOptions) {
	fs := flag.NewFlagSet("vmm unittests", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &unittestsOptions{
		jobs:    fs.Int("j", 1, "run up to N vCPUs' worth of tests at once (a test with smp = K takes K)"),
		verify:  fs.String("verify", "strict", "vmm run -verify level: off, warn, strict or exec"),
		tap:     fs.Bool("tap", false, "report in TAP version 13"),
		jsonOut: fs.Bool("json", false, "report one JSON object per test, then a summary object"),
		only:    fs.String("only", "", "run only the tests whose name matches REGEXP"),
		logs:    fs.String("logs", "logs", "directory for each test's log (command line, console, walkvm's stderr) and the env file"),
		vmmPath: fs.String("vmm", "", "the vmm binary that runs each test (default: this one)"),
		all:     fs.Bool("all", false, "run nodefault tests too and force errata (run_tests.sh -a)"),
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: vmm unittests [flags] DIR

DIR is kvm-unit-tests' tree or its x86 directory (built: x86/*.flat).
Environment as kvm-unit-tests' runner: TIMEOUT overrides every timeout,
CHECK every check line, MAX_SMP the value of $MAX_SMP (default: online
CPUs), KVM_UNIT_TESTS_ENV an env file merged into the guests' one,
ERRATA_* override errata.txt.`)
		fs.PrintDefaults()
	}
	return fs, o
}

// writeEnviron writes the guests' env file (arch-run.bash's ENVIRON_DEFAULT)
// to path; errata.txt is read from the tree root above dir when present.
func writeEnviron(path, dir string, env []string) (string, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	k, err := unittests.ParseKernelVersion(unix.ByteSliceToString(uts.Release[:]))
	if err != nil {
		return "", err
	}
	en := unittests.Environ{Kernel: k, Env: env}
	errataPath := os.Getenv("ERRATATXT")
	if errataPath == "" {
		errataPath = filepath.Join(filepath.Dir(dir), "errata.txt")
	}
	if b, err := os.ReadFile(errataPath); err == nil {
		if en.Errata, err = unittests.ParseErrata(bytes.NewReader(b)); err != nil {
			return "", fmt.Errorf("%s: %w", errataPath, err)
		}
	} else if os.Getenv("ERRATATXT") != "" {
		return "", fmt.Errorf("ERRATATXT: %w", err)
	}
	if old := os.Getenv("KVM_UNIT_TESTS_ENV"); old != "" {
		b, err := os.ReadFile(old)
		if err != nil {
			return "", fmt.Errorf("KVM_UNIT_TESTS_ENV: %w", err)
		}
		en.Old = string(b)
	}
	lines, err := en.Generate()
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("env file: %w", err)
	}
	return filepath.Abs(path)
}
