package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"walkvm/unittests"
)

// nestedRunner is the script that boots the nested KVM kit (QEMU TCG with
// SVM, Debian's kernel, kvm-amd); `vmm nested` runs one vmm command in it.
const nestedRunner = "tests/nested/run"

// qemuInstall is the one command that installs what the runner needs.
const qemuInstall = "sudo apt-get install --no-install-recommends qemu-system-x86 busybox-static cpio"

// cmdNested runs `vmm ARGS...` inside the nested KVM: files the command
// reads are copied in, files it writes copied out; its console streams
// here and its status is returned (125 when the kit itself fails).
func cmdNested(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintf(stderr, `usage: vmm nested COMMAND [ARGS...]
runs "vmm COMMAND ARGS..." inside QEMU (TCG, emulated SVM) under Debian's kernel
with kvm-amd loaded: a real KVM where /dev/kvm is missing. It needs the walkvm
source tree (it builds vmm with go) and QEMU (%s).
Files run reads (IMAGE) are copied in; -trace, -report and -stats-file are copied out.
For unittests, DIR (its x86 directory and errata.txt) is copied in, -logs out.
e.g. vmm nested run -trace trace.jsonl -report report.html
`, qemuInstall)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	// QEMU first: its absence has a one-line remedy on any machine.
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		fmt.Fprintf(stderr, "vmm nested: QEMU is not installed (no qemu-system-x86_64 in PATH): install it with\n  %s\n", qemuInstall)
		return 125
	}
	root, err := findSourceTree()
	if err != nil {
		fmt.Fprintf(stderr, "vmm nested: %v\n", err)
		return 125
	}
	if _, err := exec.LookPath("go"); err != nil {
		fmt.Fprintln(stderr, "vmm nested: go is not in PATH: the nested runner builds vmm for the guest with it")
		return 125
	}
	plan, err := planNested(args)
	if err != nil {
		fmt.Fprintf(stderr, "vmm nested: %v\n", err)
		return 2
	}
	cmd := exec.Command(filepath.Join(root, nestedRunner), plan.runnerArgs()...)
	cmd.Dir = root
	if len(plan.env) > 0 {
		cmd.Env = append(os.Environ(), plan.env...)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	}
	fmt.Fprintf(stderr, "vmm nested: %s: %v\n", nestedRunner, err)
	return 125
}

// findSourceTree walks up from the working directory to the walkvm tree
// that holds the nested runner.
func findSourceTree() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, nestedRunner)); err == nil && fi.Mode().IsRegular() {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module walkvm\n") {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no walkvm source tree with %s above %s: run vmm nested from the walkvm checkout", nestedRunner, dir)
		}
	}
}

// nestedPlan is the vmm command line for the guest and the files that
// cross into and out of it.
type nestedPlan struct {
	args      []string // vmm arguments, with guest paths
	ins, outs []string // HOST=GUEST, GUEST=HOST for the runner
	env       []string // NAME=VALUE for the runner, on top of ours
}

func (p *nestedPlan) runnerArgs() []string {
	a := []string{"--vmm"}
	for _, s := range p.ins {
		a = append(a, "--in", s)
	}
	for _, s := range p.outs {
		a = append(a, "--out", s)
	}
	return append(append(a, "--"), p.args...)
}

// outputFlags are the flags of `vmm run` that name a file it writes.
var outputFlags = []string{"trace", "report", "stats-file"}

// unsafeName matches what a path inside the guest leaves out; compiled at
// first use.
var unsafeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9._-]`) })

// planNested rewrites the paths in a vmm command line to paths inside the
// guest: /in/N-NAME for files read, /out/N-NAME for files written.
func planNested(args []string) (*nestedPlan, error) {
	p := &nestedPlan{args: append([]string(nil), args...)}
	if args[0] == "nested" {
		return nil, errors.New("vmm nested nested: already the nested KVM's command")
	}
	if args[0] == "unittests" {
		return planNestedUnittests(p)
	}
	if args[0] != "run" {
		return p, nil
	}
	o, err := parseRun(args[1:], io.Discard)
	if errors.Is(err, flag.ErrHelp) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	n := 0
	guestPath := func(dir, host string) string {
		n++
		return fmt.Sprintf("/%s/%d-%s", dir, n, unsafeName().ReplaceAllString(filepath.Base(host), "_"))
	}
	in := func(host string) (string, error) {
		if _, err := os.Stat(host); err != nil {
			return "", err
		}
		abs, err := filepath.Abs(host)
		if err != nil {
			return "", err
		}
		g := guestPath("in", host)
		p.ins = append(p.ins, abs+"="+g)
		return g, nil
	}
	if o.image != "" {
		if _, err := readImage(o.image, o.mem); err != nil {
			return nil, err
		}
	}
	i := 1
	for ; i < len(p.args); i++ {
		a := p.args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, value, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		input, output := isInputFlag(name), isOutputFlag(name)
		if !input && !output {
			if !inline && !isBoolFlag(name) {
				i++ // the flag's value
			}
			continue
		}
		at := i
		if !inline {
			i++
			if i >= len(p.args) {
				break
			}
			value, at = p.args[i], i
		}
		if value == "-" || value == "" {
			continue
		}
		var g string
		if input {
			if g, err = in(value); err != nil {
				return nil, err
			}
		} else {
			abs, err := filepath.Abs(value)
			if err != nil {
				return nil, err
			}
			g = guestPath("out", value)
			p.outs = append(p.outs, g+"="+abs)
		}
		if inline {
			p.args[at] = "-" + name + "=" + g
		} else {
			p.args[at] = g
		}
	}
	if i < len(p.args) && p.args[i] == "--" {
		i++
	}
	if i < len(p.args) {
		// run takes one IMAGE, after its flags.
		g, err := in(p.args[i])
		if err != nil {
			return nil, err
		}
		p.args[i] = g
	}
	return p, nil
}

// Where `vmm nested unittests` puts kvm-unit-tests' files and the logs in
// the guest.
const (
	nestedKUT  = "/in/kvm-unit-tests"
	nestedLogs = "/out/logs"
)

// planNestedUnittests moves `vmm unittests`' DIR into the guest (its x86
// directory, and errata.txt beside it when there is one) and its -logs
// directory out. The guests' entries that expand a shell word (kvmclock_test's
// `date +%s`) need bash, which the runner carries in with its libraries.
func planNestedUnittests(p *nestedPlan) (*nestedPlan, error) {
	fs, o := unittestsFlags(io.Discard)
	if err := fs.Parse(p.args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return p, nil
		}
		return nil, fmt.Errorf("unittests: %w", err)
	}
	if fs.NArg() != 1 {
		return nil, errors.New("unittests: want one DIR, kvm-unit-tests' tree or its x86 directory")
	}
	if *o.vmmPath != "" {
		return nil, errors.New("unittests: -vmm names a host binary; inside, the vmm built for the guest runs every test")
	}
	dir, err := unittests.FindDir(fs.Arg(0))
	if err != nil {
		return nil, fmt.Errorf("unittests: %w", err)
	}
	logs, err := filepath.Abs(*o.logs)
	if err != nil {
		return nil, err
	}
	p.ins = []string{dir + "=" + nestedKUT + "/x86"}
	if errata := filepath.Join(filepath.Dir(dir), "errata.txt"); fileExists(errata) {
		p.ins = append(p.ins, errata+"="+nestedKUT+"/errata.txt")
	}
	p.outs = []string{nestedLogs + "=" + logs}
	args := []string{"unittests", "-j", strconv.Itoa(*o.jobs), "-verify", *o.verify, "-logs", nestedLogs}
	if *o.tap {
		args = append(args, "-tap")
	}
	if *o.jsonOut {
		args = append(args, "-json")
	}
	if *o.only != "" {
		args = append(args, "-only", *o.only)
	}
	if *o.all {
		args = append(args, "-all")
	}
	p.args = append(args, nestedKUT)
	p.env = []string{"NESTED_HOST_BINS=" + strings.TrimSpace(os.Getenv("NESTED_HOST_BINS")+" bash")}
	return p, nil
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// inputFlags are the flags of `vmm run` that name a file it reads.
var inputFlags = []string{"kernel", "initrd"}

func isInputFlag(name string) bool {
	for _, f := range inputFlags {
		if f == name {
			return true
		}
	}
	return false
}

func isOutputFlag(name string) bool {
	for _, f := range outputFlags {
		if f == name {
			return true
		}
	}
	return false
}

// isBoolFlag: `vmm run` has no boolean flags but -h.
func isBoolFlag(name string) bool { return name == "h" || name == "help" }
