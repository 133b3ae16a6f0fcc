package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/guest"
	"walkvm/internal/kvmtest"
	"walkvm/ownpath"
	"walkvm/unittests"
)

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := write("small.bin", 4096)
	empty := write("empty.bin", 0)
	big := write("big.bin", 3<<20)
	unreadable := write("unreadable.bin", 64)
	// A multiboot header with the address fields whose load_addr is above
	// header_addr.
	mb := make([]byte, 64)
	for i, v := range []uint32{0x1BADB002, 0x10000, 0x100000000 - (0x1BADB002 + 0x10000), 0x1000, 0x2000, 0, 0, 0x1000} {
		binary.LittleEndian.PutUint32(mb[4*i:], v)
	}
	mbBad := filepath.Join(dir, "mb.bin")
	if err := os.WriteFile(mbBad, mb, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(unreadable, 0)
	cases := []struct {
		name string
		args []string
		want string // in the one-line error
		kvm  bool   // the error comes after /dev/kvm opens
	}{
		{"missing image", []string{filepath.Join(dir, "nope.bin")}, "no such file", false},
		{"empty image", []string{empty}, "is empty", false},
		{"bad -mem", []string{"-mem", "lots", small}, `-mem "lots"`, false},
		{"-mem not page sized", []string{"-mem", "4196352", small}, "multiple of 4 KiB", false},
		{"-mem too large", []string{"-mem", "64G", small}, "too large: guest RAM is at most 3 GiB", false},
		{"-mem 1T", []string{"-mem", "1T", small}, "1 TiB is too large: guest RAM is at most 3 GiB", false},
		{"-mem too small", []string{"-mem", "1M", small}, "too small", false},
		{"image is a device", []string{"/dev/zero"}, "/dev/zero is a character device, not a regular file", false},
		{"image is a directory", []string{dir}, "is a directory, not a regular file", false},
		{"image is a FIFO", []string{fifo}, "is a named pipe (FIFO), not a regular file", false},
		{"image larger than RAM", []string{"-mem", "2M", big}, "larger than guest RAM (-mem 2 MiB)", false},
		{"bad -trace-format", []string{"-trace-format", "xml", small}, "-trace-format", false},
		{"bad -load", []string{"-load", "0xzz", small}, `-load "0xzz"`, false},
		{"bad -entry", []string{"-entry", "v86", small}, "entry mode", false},
		{"bad -log-level", []string{"-log-level", "loud", small}, "-log-level", false},
		{"two images", []string{small, small}, "one IMAGE", false},
		{"bad -verify", []string{"-verify", "paranoid", small}, "-verify", false},
		{"bad -stats", []string{"-stats", "xml", small}, "-stats", false},
		{"negative -timeout", []string{"-timeout", "-1s", small}, "-timeout", false},
		{"unwritable -trace", []string{"-trace", filepath.Join(dir, "no", "such", "dir"), small}, "-trace", true},
		{"-load with the embedded guest", []string{"-load", "0x2000"}, "embedded guest", false},
		{"unknown guest", []string{"-guest", "nosuch"}, "no embedded guest", false},
		{"unknown -cpu model", []string{"-cpu", "pentium9", small}, `-cpu "pentium9": unknown model`, false},
		{"unknown -cpu feature", []string{"-cpu", "host,+warp", small}, `-cpu "host,+warp": unknown CPU feature "warp"`, false},
		{"-smp 0", []string{"-smp", "0", small}, "-smp 0", false},
		{"-smp 300", []string{"-smp", "300", small}, "-smp 300", false},
		{"-smp without irqchip", []string{"-smp", "2", "-irqchip", "off", small}, "needs the in-kernel irqchip", false},
		{"bad -irqchip", []string{"-irqchip", "maybe", small}, "-irqchip", false},
		{"bad -debug-exit", []string{"-debug-exit", "isa", small}, "-debug-exit", false},
		{"-kernel and IMAGE", []string{"-kernel", small, small}, "give the image once", false},
		{"-append for a flat image", []string{"-append", "console=ttyS0", small}, "not flat images", false},
		{"-initrd for a flat image", []string{"-initrd", empty, small}, "not flat images", false},
		{"missing -initrd", []string{"-initrd", filepath.Join(dir, "nope.img"), small}, "initrd: stat", false},
		{"-initrd larger than RAM", []string{"-mem", "2M", "-initrd", big, small}, "initrd " + big + " is 3145728 bytes, larger than guest RAM", false},
		{"malformed multiboot", []string{mbBad}, "multiboot", false},
		{"no KVM device", []string{"-kvm", filepath.Join(dir, "kvm"), small}, "KVM is not available", false},
		{"image too large for RAM", []string{"-mem", "4M", "-entry", "protected", "-load", "0x200000", big}, "does not fit in guest RAM", false},
		{"image over the hole", []string{"-load", "0x9ff00", small}, "overlaps the PC hole", false},
		{"image over walkvm's GDT", []string{"-load", "0x500", small}, "overlaps walkvm's GDT", false},
		{"long image over the page tables", []string{"-entry", "long", "-load", "0x99fc0", small}, "page tables", false},
	}
	if os.Geteuid() != 0 {
		cases = append(cases, struct {
			name string
			args []string
			want string
			kvm  bool
		}{"unreadable image", []string{unreadable}, "permission denied", false})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.kvm {
				kvmtest.Require(t)
			}
			var stdout, stderr bytes.Buffer
			status := Main(append([]string{"run"}, c.args...), &stdout, &stderr)
			if status != 125 {
				t.Errorf("status %d, want 125; stderr:\n%s", status, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, "vmm run: ") {
				t.Errorf("stderr %q: want one line mentioning %q", msg, c.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1T": 1 << 40, "64M": 64 << 20, "1g": 1 << 30, "4096": 4096, "512K": 512 << 10, "0x1000": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "M", "-1M", "99999999999999999999G", "1P"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if s := Main([]string{"frobnicate"}, &out, &errb); s != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("status %d, stderr %q", s, errb.String())
	}
}

// The documented -stats json shape, from a strict run of the default guest.
func TestRunStatsJSON(t *testing.T) {
	kvmtest.Require(t)
	file := filepath.Join(t.TempDir(), "stats.json")
	var stdout, stderr bytes.Buffer
	status := Main([]string{"run", "-verify", "strict", "-stats", "json", "-stats-file", file}, &stdout, &stderr)
	if status != 0 {
		t.Fatalf("status %d: %s", status, stderr.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		ExitStatus *int `json:"exit_status"`
		Exits      map[string]uint64
		MMIO       map[string]uint64
		Walks      struct {
			Nonpaging, Paging32, Paging64 *uint64
			Paging64Levels                map[string]uint64 `json:"paging64_levels"`
		}
		Modes []struct {
			Mode     string
			FirstRIP string `json:"first_rip"`
			Exits    uint64
		}
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if s.ExitStatus == nil || *s.ExitStatus != 0 {
		t.Errorf("exit_status missing or not 0: %s", b)
	}
	for _, k := range []string{"mmio", "io", "hlt", "emulation_failure", "shutdown", "total"} {
		if _, ok := s.Exits[k]; !ok {
			t.Errorf("exits.%s missing", k)
		}
	}
	for _, k := range []string{"reads", "writes", "agreed", "disagreed", "completed_in_userspace"} {
		if _, ok := s.MMIO[k]; !ok {
			t.Errorf("mmio.%s missing", k)
		}
	}
	if s.MMIO["disagreed"] != 0 || s.MMIO["agreed"] == 0 || s.Exits["total"] == 0 {
		t.Errorf("counts: %s", b)
	}
	if s.Walks.Nonpaging == nil || s.Walks.Paging32 == nil || s.Walks.Paging64 == nil || s.Walks.Paging64Levels == nil {
		t.Errorf("walks incomplete: %s", b)
	}
	if len(s.Modes) == 0 || s.Modes[0].Mode != "real" || s.Modes[0].FirstRIP == "" || s.Modes[0].Exits == 0 {
		t.Errorf("modes: %+v", s.Modes)
	}
	if strings.Contains(stderr.String(), "exit status") {
		t.Errorf("text stats printed although -stats json: %s", stderr.String())
	}
}

func TestGuestsAndTestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if s := Main([]string{"guests"}, &out, &errb); s != 0 || !strings.Contains(out.String(), "hello") {
		t.Fatalf("vmm guests: status %d, %q %q", s, out.String(), errb.String())
	}
	out.Reset()
	if s := Main([]string{"test", "nosuchguest"}, &out, &errb); s != 2 {
		t.Errorf("vmm test nosuchguest: status %d", s)
	}
	kvmtest.Require(t)
	out.Reset()
	if s := Main([]string{"test", "hello"}, &out, &errb); s != 0 {
		t.Fatalf("vmm test hello: status %d\n%s%s", s, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "hello") || !strings.HasSuffix(out.String(), "1 passed, 0 failed, 0 skipped\n") {
		t.Errorf("vmm test hello printed:\n%s", out.String())
	}
}

// -trace writes one JSON object per exit; MMIO exits carry the walks,
// KVM's GPA and the verdict.
func TestRunTrace(t *testing.T) {
	kvmtest.Require(t)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	var stdout, stderr bytes.Buffer
	if s := Main([]string{"run", "-guest", "hello", "-verify", "strict", "-stats", "off", "-trace", file}, &stdout, &stderr); s != 0 {
		t.Fatalf("status %d: %s", s, stderr.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var head struct {
		Header *struct{ MaxPhyAddr int }
	}
	if err := json.Unmarshal([]byte(lines[0]), &head); err != nil || head.Header == nil || head.Header.MaxPhyAddr < 32 {
		t.Fatalf("first line is not the header: %v: %s", err, lines[0])
	}
	lines = lines[1:]
	mmio := 0
	for i, l := range lines {
		var rec struct {
			Seq     uint64 `json:"seq"`
			TimeNS  *int64 `json:"t_ns"`
			DurNS   *int64 `json:"dur_ns"`
			Exit    string `json:"exit"`
			Mode    string `json:"mode"`
			CSRIP   string `json:"cs_rip"`
			Bytes   string `json:"bytes"`
			Disasm  string `json:"disasm"`
			Walks   []struct{ Walker, GPA string }
			GPA     string `json:"gpa"`
			KVMGPA  string `json:"kvm_gpa"`
			Dir     string `json:"direction"`
			Verdict string `json:"verdict"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, l)
		}
		if rec.Seq != uint64(i+1) || rec.Mode != "real" || rec.CSRIP == "" || rec.TimeNS == nil || rec.DurNS == nil || *rec.DurNS < 0 {
			t.Errorf("line %d: %s", i+1, l)
		}
		if rec.Exit != "mmio" {
			continue
		}
		mmio++
		if rec.Bytes == "" || rec.Disasm == "" || len(rec.Walks) == 0 || rec.GPA != rec.KVMGPA || rec.Verdict != "agree" || rec.Dir == "" {
			t.Errorf("mmio record incomplete: %s", l)
		}
	}
	if mmio != 12 {
		t.Errorf("%d mmio records, want 12", mmio)
	}
}

// The command line `vmm unittests` builds for a kvm-unit-tests entry is
// one `vmm run` takes, and it boots the image the multiboot way with the
// environment as its module (everything short of /dev/kvm).
func TestRunTakesUnittestsCommandLine(t *testing.T) {
	dir := t.TempDir()
	g, err := guest.Lookup("mbelf32")
	if err != nil {
		t.Fatal(err)
	}
	img, err := g.Image()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "smptest.flat"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "env")
	if err := os.WriteFile(env, []byte("NR_CPUS=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "[smptest]\nfile = smptest.flat\nsmp = 2\nextra_params = -cpu max,+x2apic -append 'a b'\ntimeout = 30\n"
	entries, err := unittests.Parse(strings.NewReader(cfg), "unittests.cfg")
	if err != nil {
		t.Fatal(err)
	}
	jobs := unittests.Plan(entries, unittests.Config{Dir: dir, Arch: "x86_64", Accel: "kvm", Verify: "strict", EnvFile: env})
	if len(jobs) != 1 || jobs[0].Args == nil {
		t.Fatalf("jobs %+v", jobs)
	}
	args := jobs[0].Args
	if args[0] != "run" {
		t.Fatalf("args %q", args)
	}
	o, err := parseRun(args[1:], io.Discard)
	if err != nil {
		t.Fatalf("vmm %s: %v", strings.Join(args, " "), err)
	}
	if o.smp != 2 || o.mem != 128<<20 || o.cpu == nil || o.cpu.Base != "max" || o.appendText != "a b" || o.initrd != env ||
		o.debugExit != devices.DebugExitQEMU || o.timeout != 30*time.Second || o.verify != ownpath.VerifyStrict || !strings.HasSuffix(o.image, "smptest.flat") {
		t.Errorf("vmm %s: options %+v", strings.Join(args, " "), o)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	mc, err := o.machineConfig(log)
	if err != nil {
		t.Fatal(err)
	}
	if mc.VCPUs != 2 || mc.DebugExit != devices.DebugExitQEMU || mc.MemSize != 128<<20 {
		t.Errorf("machine config %+v", mc)
	}
	if n := boot.NeedsOf(mc.Loader); !n.Firmware || !n.IRQChip {
		t.Errorf("needs %+v: want a kernel's machine", n)
	}
}
