package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"walkvm/internal/kvmtest"
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
		{"-mem not page sized", []string{"-mem", "5000", small}, "multiple of 4 KiB", true},
		{"-mem too large", []string{"-mem", "64G", small}, "between", true},
		{"bad -load", []string{"-load", "0xzz", small}, `-load "0xzz"`, false},
		{"bad -entry", []string{"-entry", "v86", small}, "entry mode", false},
		{"bad -log-level", []string{"-log-level", "loud", small}, "-log-level", false},
		{"two images", []string{small, small}, "one IMAGE", false},
		{"-load with the embedded guest", []string{"-load", "0x2000"}, "embedded guest", false},
		{"unknown guest", []string{"-guest", "nosuch"}, "no embedded guest", false},
		{"no KVM device", []string{"-kvm", filepath.Join(dir, "kvm"), small}, "KVM is not available", false},
		{"image too large for RAM", []string{"-mem", "2M", "-entry", "protected", "-load", "0x100000", big}, "does not fit in guest RAM", true},
		{"image over the hole", []string{"-load", "0x9ff00", small}, "overlaps the PC hole", true},
		{"image over walkvm's GDT", []string{"-load", "0x500", small}, "overlaps walkvm's GDT", true},
		{"long image over the page tables", []string{"-entry", "long", "-load", "0x99fc0", small}, "page tables", true},
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
	for in, want := range map[string]uint64{"64M": 64 << 20, "1g": 1 << 30, "4096": 4096, "512K": 512 << 10, "0x1000": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "M", "-1M", "99999999999999999999G", "1T"} {
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
