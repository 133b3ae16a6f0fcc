package unittests

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtureConfig plans the fixture with every file present and checks that
// read what files says.
func fixtureConfig(files map[string]string) Config {
	return Config{
		Dir: "/kut/x86", Arch: "x86_64", Accel: "kvm", EnvFile: "/logs/environ",
		Shell: Shell{Env: []string{"MAX_SMP=3", "PATH=" + os.Getenv("PATH")}},
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		},
		Stat: func(p string) (os.FileInfo, error) {
			if p == "/kut/x86/nosuch.flat" {
				return nil, os.ErrNotExist
			}
			return nil, nil
		},
	}
}

func TestPlanFixture(t *testing.T) {
	tail := func(timeout, image string) []string {
		return []string{"-initrd", "/logs/environ", "-debug-exit", "qemu", "-timeout", timeout, "-verify", "strict", "/kut/x86/" + image}
	}
	run := func(head []string, timeout, image string) []string {
		return append(append([]string{"run"}, head...), tail(timeout, image)...)
	}
	type want struct {
		skip, fail string
		args       []string
		smp        int
		timeout    time.Duration
		notes      int
	}
	wants := map[string]want{
		"plain":       {args: run([]string{"-mem", "128M", "-smp", "1"}, "1m30s", "plain.flat"), smp: 1, timeout: 90 * time.Second},
		"smp2_x2apic": {args: run([]string{"-mem", "128M", "-smp", "2", "-cpu", "max,+x2apic"}, "30s", "apic.flat"), smp: 2, timeout: 30 * time.Second},
		"args_quoted": {args: run([]string{"-mem", "128M", "-smp", "1", "-append", "cpuid"}, "1m30s", "vmexit.flat"), smp: 1, timeout: 90 * time.Second},
		"args_double": {args: run([]string{"-mem", "4G", "-smp", "1", "-cpu", "max,+svm", "-append", "-pause_filter_test -svm_unsupported_instruction_intercept_test"}, "1m30s", "svm.flat"), smp: 1, timeout: 90 * time.Second},
		"i386_only":   {skip: "i386 only"},
		"manual":      {skip: "nodefault"},
		"tcg_only":    {skip: "tcg only, but ACCEL=kvm"},
		"checked":     {skip: "/proc/sys/kernel/nmi_watchdog not equal to 0"},
		"q35":         {skip: "needs -machine q35; needs -machine kernel-irqchip=split; -device intel-iommu not offered; -device edu not offered"},
		"pit_off":     {args: run([]string{"-mem", "128M", "-smp", "2", "-append", "ipi"}, "1m30s", "vmexit.flat"), smp: 2, timeout: 90 * time.Second, notes: 1},
		"max_smp":     {args: run([]string{"-mem", "128M", "-smp", "3"}, "1m30s", "smptest.flat"), smp: 3, timeout: 90 * time.Second},
		"backtick":    {args: run([]string{"-mem", "128M", "-smp", "2", "-append", "10000000 42"}, "1m30s", "kvmclock_test.flat"), smp: 2, timeout: 90 * time.Second},
		"multiline":   {args: run([]string{"-mem", "2048M", "-smp", "1", "-cpu", "qemu64,+pcid"}, "1m30s", "plain.flat"), smp: 1, timeout: 90 * time.Second},
		"missing":     {skip: "Test file '/kut/x86/nosuch.flat' not found"},
	}
	jobs := Plan(parseFixture(t), fixtureConfig(map[string]string{
		"/sys/module/kvm/parameters/enable_pmu": "Y\n",
		"/proc/sys/kernel/nmi_watchdog":         "1\n",
	}))
	if len(jobs) != len(wants) {
		t.Fatalf("%d jobs, want %d", len(jobs), len(wants))
	}
	for _, j := range jobs {
		w, ok := wants[j.Entry.Name]
		if !ok {
			t.Errorf("unexpected job %s", j.Entry.Name)
			continue
		}
		if j.Skip != w.skip || j.Fail != w.fail {
			t.Errorf("%s: skip %q fail %q, want skip %q fail %q", j.Entry.Name, j.Skip, j.Fail, w.skip, w.fail)
		}
		if !reflect.DeepEqual(j.Args, w.args) {
			t.Errorf("%s: args\n got %q\nwant %q", j.Entry.Name, j.Args, w.args)
		}
		if w.args != nil && (j.SMP != w.smp || j.Timeout != w.timeout || len(j.Notes) != w.notes) {
			t.Errorf("%s: smp %d timeout %v notes %q, want %d %v %d", j.Entry.Name, j.SMP, j.Timeout, j.Notes, w.smp, w.timeout, w.notes)
		}
	}
}

func TestPlanOptions(t *testing.T) {
	entries := parseFixture(t)
	c := fixtureConfig(map[string]string{"/sys/module/kvm/parameters/enable_pmu": "Y", "/proc/sys/kernel/nmi_watchdog": "0"})
	c.All, c.Timeout, c.Verify = true, "5", "warn"
	c.Only = regexp.MustCompile(`^(manual|checked|plain)$`)
	jobs := Plan(entries, c)
	var names []string
	for _, j := range jobs {
		names = append(names, j.Entry.Name)
		if j.Skip != "" || j.Fail != "" {
			t.Errorf("%s: skip %q fail %q", j.Entry.Name, j.Skip, j.Fail)
		}
		if j.Timeout != 5*time.Second || j.Args[len(j.Args)-2] != "warn" {
			t.Errorf("%s: timeout %v args %q: TIMEOUT and -verify not applied", j.Entry.Name, j.Timeout, j.Args)
		}
	}
	if want := []string{"plain", "manual", "checked"}; !reflect.DeepEqual(names, want) {
		t.Errorf("-only kept %q, want %q", names, want)
	}
	c.Check = "/nope=1"
	if j := Plan(entries, c)[0]; j.Skip != "/nope not equal to 1" {
		t.Errorf("CHECK override: skip %q", j.Skip)
	}
}

func TestParseQEMU(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		want  qemuArgs
		error string
	}{
		{args: []string{"-cpu", "qemu64,+x2apic,+tsc-deadline"}, want: qemuArgs{cpu: "qemu64,+x2apic,+tsc-deadline"}},
		{args: []string{"-enable-kvm", "-m", "2048", "-cpu", "host"}, want: qemuArgs{cpu: "host", mem: "2048M"}},
		{args: []string{"-m", "size=1g,maxmem=4g", "-smp", "cpus=3,sockets=1", "-append", "x y", "-initrd", "/e"}, want: qemuArgs{mem: "1G", smp: "3", appendText: "x y", initrd: "/e"}},
		{args: []string{"-m", "1T"}, want: qemuArgs{mem: "1024G"}},
		{args: []string{"-machine", "vmport=on", "-cpu", "max"}, want: qemuArgs{cpu: "max", skips: []string{"needs -machine vmport=on"}}},
		{args: []string{"-machine", "pc,accel=kvm,kernel-irqchip=on"}, want: qemuArgs{}},
		{args: []string{"-overcommit", "cpu-pm=on"}, want: qemuArgs{skips: []string{"needs -overcommit cpu-pm=on"}}},
		{args: []string{"-device", "pc-testdev", "-device", "hyperv-testdev"}, want: qemuArgs{skips: []string{"-device hyperv-testdev not offered"}}},
		{args: []string{"-global", "kvm-pit.lost_tick_policy=discard", "-global", "x.y=1"}, want: qemuArgs{skips: []string{"needs -global x.y=1"}}},
		{args: []string{"--cpu", "max"}, want: qemuArgs{cpu: "max"}},
		{args: []string{"stray"}, error: `QEMU argument "stray" is not an option`},
		{args: []string{"-cpu"}, error: "QEMU option -cpu has no value"},
		{args: []string{"-m", "lots"}, error: `QEMU -m "lots": not a size`},
	} {
		got, err := parseQEMU(tc.args)
		if tc.error != "" {
			if err == nil || err.Error() != tc.error {
				t.Errorf("%q: err %v, want %q", tc.args, err, tc.error)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true}, {"30", 30 * time.Second, true}, {"2m", 2 * time.Minute, true},
		{"1.5h", 90 * time.Minute, true}, {"1d", 24 * time.Hour, true}, {"0", 0, true},
		{"", 0, false}, {"-1", 0, false}, {"ten", 0, false},
	} {
		got, err := ParseTimeout(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestShellWords(t *testing.T) {
	sh := Shell{Env: []string{"MAX_SMP=8", "PATH=" + os.Getenv("PATH")}}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`a  b`, []string{"a", "b"}},
		{`'cpuid'`, []string{"cpuid"}},
		{`"x y" 'p q'r`, []string{"x y", "p qr"}},
		{`"a \"b\" \\c"`, []string{`a "b" \c`}},
		{`a\ b`, []string{"a b"}},
		{`$MAX_SMP`, []string{"8"}},
		{`$((MAX_SMP > 4 ? 4 : MAX_SMP))`, []string{"4"}},
		{"\"1 `echo 2 3`\"", []string{"1 2 3"}},
		{``, nil},
	} {
		got, err := sh.Words(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Words(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`} {
		if _, err := sh.Words(bad); err == nil {
			t.Errorf("Words(%q): no error", bad)
		}
	}
	if _, err := sh.Words("$((1 +))"); err == nil {
		t.Error("a bad arithmetic expansion gave no error")
	}
	if on, err := sh.True(`[ "$MAX_SMP" = 8 ]`); !on || err != nil {
		t.Errorf("True = %v, %v", on, err)
	}
	if on, err := sh.True(`false`); on || err != nil {
		t.Errorf("True(false) = %v, %v", on, err)
	}
	if _, err := (Shell{Bash: "/nonexistent/bash"}).True("true"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing bash: %v", err)
	}
}

// An entry whose command line uses the shell is expanded again when its job
// starts, as runtime.bash evals it then (kvmclock_test's `date +%s`); a
// plain one keeps what Plan built.
func TestRebuildExpandsAtStart(t *testing.T) {
	clock := filepath.Join(t.TempDir(), "clock")
	if err := os.WriteFile(clock, []byte("100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := Parse(strings.NewReader("[clocked]\nfile = c.flat\ntest_args = \"7 `cat "+clock+"`\"\n[plain]\nfile = p.flat\ntest_args = 7\n"), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	jobs := Plan(entries, fixtureConfig(nil))
	appendOf := func(j *Job) string {
		i := slices.Index(j.Args, "-append")
		if i < 0 {
			return ""
		}
		return j.Args[i+1]
	}
	if got := appendOf(&jobs[0]); got != "7 100" {
		t.Fatalf("planned -append %q, want %q", got, "7 100")
	}
	if err := os.WriteFile(clock, []byte("160\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"7 160", "7"} {
		if err := jobs[i].Rebuild(); err != nil {
			t.Fatal(err)
		}
		if got := appendOf(&jobs[i]); got != want {
			t.Errorf("%s: -append %q after Rebuild, want %q", jobs[i].Entry.Name, got, want)
		}
	}
}
