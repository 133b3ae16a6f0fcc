package unittests

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// KernelVersion is the host kernel's release split as arch-run.bash's
// env_params does: "6.18.44-fc-v1045" is 6, 18, "44", "" (a part that is
// not a number is empty).
type KernelVersion struct {
	String             string
	Version, Patch     int
	Sublevel, Extraver string
}

// ParseKernelVersion splits a `uname -r` string.
func ParseKernelVersion(release string) (KernelVersion, error) {
	k := KernelVersion{String: release}
	v, rest, _ := strings.Cut(release, ".")
	p, rest, _ := strings.Cut(rest, ".")
	s, x, _ := strings.Cut(rest, "-")
	var err1, err2 error
	k.Version, err1 = strconv.Atoi(v)
	k.Patch, err2 = strconv.Atoi(leadingDigits(p))
	if err1 != nil || err2 != nil {
		return k, fmt.Errorf("kernel release %q: no VERSION.PATCHLEVEL", release)
	}
	k.Sublevel, k.Extraver = leadingDigits(s), leadingDigits(x)
	return k, nil
}

// leadingDigits is bash's ${s%%[!0-9]*}.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// Erratum is one errata.txt line: the fix's commit and the first kernel
// that has it.
type Erratum struct {
	Commit, MinVersion string
}

// ParseErrata reads errata.txt ("commit : minimum version : summary",
// '#' comments), as env_generate_errata does.
func ParseErrata(r io.Reader) ([]Erratum, error) {
	var out []Erratum
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, line)
		fields := strings.SplitN(line, ":", 3)
		if fields[0] == "" {
			continue
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("errata.txt:%d: no minimum kernel version", n)
		}
		out = append(out, Erratum{Commit: fields[0], MinVersion: fields[1]})
	}
	return out, sc.Err()
}

// Have reports whether kernel k has the fix (arch-run.bash's comparison:
// VERSION.PATCHLEVEL, then SUBLEVEL and EXTRAVERSION where both sides give
// them; a missing part of the minimum counts as 0).
func (e Erratum) Have(k KernelVersion) (bool, error) {
	vs, rest, _ := strings.Cut(e.MinVersion, ".")
	ps, rest, _ := strings.Cut(rest, ".")
	ss, xs, _ := strings.Cut(rest, "-")
	v, err1 := strconv.Atoi(vs)
	p, err2 := strconv.Atoi(ps)
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("erratum %s: bad minimum kernel version %q", e.Commit, e.MinVersion)
	}
	s, x := leadingDigits(ss), leadingDigits(xs)
	switch {
	case k.Version > v || k.Version == v && k.Patch > p:
		return true, nil
	case k.Version != v || k.Patch != p:
		return false, nil
	}
	if k.Sublevel != "" && s != "" {
		ks, _ := strconv.Atoi(k.Sublevel)
		ms, _ := strconv.Atoi(s)
		switch {
		case ks > ms:
			return true, nil
		case ks < ms:
			return false, nil
		}
		if k.Extraver != "" && x != "" {
			kx, _ := strconv.Atoi(k.Extraver)
			mx, _ := strconv.Atoi(x)
			return kx >= mx, nil
		}
		return x == "" || atoiZero(x), nil
	}
	return s == "" || atoiZero(s), nil
}

func atoiZero(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n == 0
}

// Environ is the content of the env file the guests read from their
// initrd: arch-run.bash's ENVIRON_DEFAULT (TARGET, QEMU_ACCEL, the QEMU
// version fields, the host kernel's version fields, ERRATA_*), merged with
// an existing KVM_UNIT_TESTS_ENV file and ERRATA_* from the environment.
type Environ struct {
	Kernel KernelVersion
	Errata []Erratum
	// Env is the runner's environment ("KEY=VALUE"): its ERRATA_* values
	// win over errata.txt and are written too; ERRATA_FORCE=y with -all.
	Env []string
	// Old is the KVM_UNIT_TESTS_ENV file's content: its variables not
	// already set are appended.
	Old string
}

var envLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[ \t]*[A-Za-z_][A-Za-z0-9_]*=`) })

// Generate returns the env file's lines.
func (en Environ) Generate() ([]string, error) {
	var lines []string
	seen := map[string]bool{}
	add := func(k, v string) {
		if !seen[k] {
			seen[k] = true
			lines = append(lines, k+"="+v)
		}
	}
	add("TARGET", "qemu") // the machine model the guests see: QEMU's pc with pc-testdev and isa-debug-exit
	add("QEMU_ACCEL", "kvm")
	for _, k := range []string{"QEMU_VERSION_STRING", "QEMU_MAJOR", "QEMU_MINOR", "QEMU_MICRO"} {
		add(k, "") // no QEMU: arch-run.bash writes them empty then
	}
	k := en.Kernel
	add("KERNEL_VERSION_STRING", k.String)
	add("KERNEL_VERSION", strconv.Itoa(k.Version))
	add("KERNEL_PATCHLEVEL", strconv.Itoa(k.Patch))
	add("KERNEL_SUBLEVEL", k.Sublevel)
	add("KERNEL_EXTRAVERSION", k.Extraver)
	for _, l := range strings.Split(en.Old, "\n") {
		if envLineRE().MatchString(l) {
			kv := strings.TrimLeft(l, " \t")
			name, val, _ := strings.Cut(kv, "=")
			add(name, val)
		}
	}
	fromEnv := map[string]string{}
	for _, kv := range en.Env {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "ERRATA_") {
			fromEnv[name] = val
		}
	}
	var errata []string
	for _, e := range en.Errata {
		name := "ERRATA_" + e.Commit
		if _, ok := fromEnv[name]; ok {
			continue
		}
		have, err := e.Have(k)
		if err != nil {
			return nil, err
		}
		fromEnv[name] = map[bool]string{true: "y", false: "n"}[have]
	}
	for name := range fromEnv {
		errata = append(errata, name)
	}
	sort.Strings(errata)
	for _, name := range errata {
		add(name, fromEnv[name])
	}
	return lines, nil
}
