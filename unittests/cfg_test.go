package unittests

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func parseFixture(t *testing.T) []Entry {
	t.Helper()
	f, err := os.Open("testdata/unittests.cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := Parse(f, "testdata/unittests.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestParseFixture(t *testing.T) {
	entries := parseFixture(t)
	want := []Entry{
		{Name: "plain", Line: 5, File: "plain.flat"},
		{Name: "smp2_x2apic", Line: 9, File: "apic.flat", SMP: "2", Params: "-cpu max,+x2apic", Arch: "x86_64", Timeout: "30", Groups: []string{"apic"}},
		{Name: "args_quoted", Line: 17, File: "vmexit.flat", TestArgs: "'cpuid'", Groups: []string{"vmexit", "two"}},
		{Name: "args_double", Line: 22, File: "svm.flat", TestArgs: `"-pause_filter_test -svm_unsupported_instruction_intercept_test"`, Params: "-cpu max,+svm -m 4g", Arch: "x86_64"},
		{Name: "i386_only", Line: 28, File: "cmpxchg8b.flat", Arch: "i386"},
		{Name: "manual", Line: 32, File: "access_test.flat", Groups: []string{"nodefault"}, Timeout: "240"},
		{Name: "tcg_only", Line: 37, File: "plain.flat", Accel: "tcg"},
		{Name: "checked", Line: 41, File: "plain.flat", Check: "/sys/module/kvm/parameters/enable_pmu=Y /proc/sys/kernel/nmi_watchdog=0"},
		{Name: "q35", Line: 45, File: "plain.flat", SMP: "4", Params: "-M q35,kernel-irqchip=split -device intel-iommu,intremap=on -device edu"},
		{Name: "pit_off", Line: 50, File: "vmexit.flat", SMP: "2", TestArgs: "'ipi'", Params: "-machine pit=off"},
		{Name: "max_smp", Line: 56, File: "smptest.flat", SMP: "$MAX_SMP"},
		{Name: "backtick", Line: 60, File: "kvmclock_test.flat", SMP: "2", TestArgs: "\"10000000 `echo 42`\""},
		{Name: "multiline", Line: 65, File: "plain.flat", Params: "-cpu qemu64,+pcid -m 2048\n-enable-kvm"},
		{Name: "missing", Line: 71, File: "nosuch.flat"},
	}
	if len(entries) != len(want) {
		t.Fatalf("got %d entries, want %d", len(entries), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(entries[i], want[i]) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, entries[i], want[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"empty name", "[]\nfile = a.flat\n", "x.cfg:1: empty test name"},
		{"unclosed triple quote", "[a]\nqemu_params = \"\"\"-cpu max\n-m 1g\n", `x.cfg:2: [a] qemu_params: no closing """`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.cfg), "x.cfg")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseKeysBeforeSectionIgnored(t *testing.T) {
	entries, err := Parse(strings.NewReader("file = stray.flat\n[a]\nfile = a.flat\nunknown = 1\n"), "x.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].File != "a.flat" {
		t.Fatalf("entries = %+v", entries)
	}
}

// TestParseRealCfg reads kvm-unit-tests' own x86/unittests.cfg where a
// built tree is at hand (KUT_DIR, default /work/kut).
func TestParseRealCfg(t *testing.T) {
	dir := os.Getenv("KUT_DIR")
	if dir == "" {
		dir = "/work/kut"
	}
	path := dir + "/x86/unittests.cfg"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("kvm-unit-tests' cfg not here (%v); set KUT_DIR to a kvm-unit-tests tree", err)
	}
	defer f.Close()
	entries, err := Parse(f, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 87 {
		t.Errorf("parsed %d entries, want 87", len(entries))
	}
	c := Config{Dir: dir + "/x86", Arch: "x86_64", Accel: "kvm", EnvFile: "/env",
		Shell:    Shell{Env: []string{"MAX_SMP=4", "PATH=" + os.Getenv("PATH")}},
		ReadFile: func(string) ([]byte, error) { return []byte("Y\n"), nil }}
	for _, j := range Plan(entries, c) {
		if j.Fail != "" {
			t.Errorf("%s: %s", j.Entry.Name, j.Fail)
		}
		if j.Entry.File == "" {
			t.Errorf("%s: no file", j.Entry.Name)
		}
	}
}
