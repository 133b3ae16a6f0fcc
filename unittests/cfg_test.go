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
	if _, err := os.Stat(dir + "/x86/apic.flat"); err != nil {
		t.Skipf("kvm-unit-tests at %s is not built (%v)", dir, err)
	}
	if len(entries) != 87 {
		t.Errorf("parsed %d entries, want 87", len(entries))
	}
	c := Config{Dir: dir + "/x86", Arch: "x86_64", Accel: "kvm", EnvFile: "/env",
		Shell:    Shell{Env: []string{"MAX_SMP=4", "PATH=" + os.Getenv("PATH")}},
		ReadFile: func(string) ([]byte, error) { return []byte("Y\n"), nil }}
	x86 := dir + "/x86/"
	tail := []string{"-initrd", "/env", "-debug-exit", "qemu"}
	exact := map[string][]string{
		"x2apic":     append(append([]string{"run", "-mem", "128M", "-smp", "2", "-cpu", "qemu64,+x2apic,+tsc-deadline"}, tail...), "-timeout", "30s", "-verify", "strict", x86+"apic.flat"),
		"vmexit_ipi": append(append([]string{"run", "-mem", "128M", "-smp", "2", "-append", "ipi"}, tail...), "-timeout", "1m30s", "-verify", "strict", x86+"vmexit.flat"),
		"asyncpf":    append(append([]string{"run", "-mem", "2048M", "-smp", "1", "-cpu", "host"}, tail...), "-timeout", "1m30s", "-verify", "strict", x86+"asyncpf.flat"),
		"svm":        append(append([]string{"run", "-mem", "4G", "-smp", "2", "-cpu", "max,+svm", "-append", "-pause_filter_test -svm_unsupported_instruction_intercept_test"}, tail...), "-timeout", "1m30s", "-verify", "strict", x86+"svm.flat"),
	}
	skips := map[string]string{
		"cmpxchg8b":        "i386 only",
		"access_fep":       "nodefault",
		"vmware_backdoors": "needs -machine vmport=on",
		"intel_iommu":      "needs -machine q35; needs -machine kernel-irqchip=split; -device intel-iommu not offered; -device edu not offered",
		"hyperv_synic":     "-device hyperv-testdev not offered",
		"svm_pause_filter": "needs -overcommit cpu-pm=on",
	}
	for _, j := range Plan(entries, c) {
		if want, ok := exact[j.Entry.Name]; ok && !reflect.DeepEqual(j.Args, want) {
			t.Errorf("%s: args\n got %q\nwant %q", j.Entry.Name, j.Args, want)
		}
		if want, ok := skips[j.Entry.Name]; ok && j.Skip != want {
			t.Errorf("%s: skip %q, want %q", j.Entry.Name, j.Skip, want)
		}
		if j.Fail != "" {
			t.Errorf("%s: %s", j.Entry.Name, j.Fail)
		}
		if j.Entry.File == "" {
			t.Errorf("%s: no file", j.Entry.Name)
		}
	}
}
