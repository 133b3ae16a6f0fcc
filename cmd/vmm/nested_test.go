package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPlanNested(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "my image.bin")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, c := range []struct {
		name             string
		args             []string
		wantArgs         []string
		wantIns, wantOut []string
	}{
		{"default guest, outputs",
			[]string{"run", "-trace", "t.jsonl", "-report=r.html", "--stats-file", "s.json", "-mem", "64M"},
			[]string{"run", "-trace", "/out/1-t.jsonl", "-report=/out/2-r.html", "--stats-file", "/out/3-s.json", "-mem", "64M"},
			nil, []string{"/out/1-t.jsonl=" + abs("t.jsonl"), "/out/2-r.html=" + abs("r.html"), "/out/3-s.json=" + abs("s.json")}},
		{"image in, trace to stderr stays",
			[]string{"run", "-entry", "protected", "-trace", "-", img},
			[]string{"run", "-entry", "protected", "-trace", "-", "/in/1-my_image.bin"},
			[]string{img + "=/in/1-my_image.bin"}, nil},
		{"kernel and initrd in",
			[]string{"run", "-kernel", img, "-initrd=" + img, "-append", "quiet", "-smp", "2"},
			[]string{"run", "-kernel", "/in/1-my_image.bin", "-initrd=/in/2-my_image.bin", "-append", "quiet", "-smp", "2"},
			[]string{img + "=/in/1-my_image.bin", img + "=/in/2-my_image.bin"}, nil},
		{"other commands pass through",
			[]string{"test", "-verify", "warn", "hello"},
			[]string{"test", "-verify", "warn", "hello"}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := planNested(c.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.args, c.wantArgs) || !reflect.DeepEqual(p.ins, c.wantIns) || !reflect.DeepEqual(p.outs, c.wantOut) {
				t.Errorf("got args %q ins %q outs %q\nwant args %q ins %q outs %q", p.args, p.ins, p.outs, c.wantArgs, c.wantIns, c.wantOut)
			}
			ra := p.runnerArgs()
			if ra[0] != "--vmm" || !reflect.DeepEqual(ra[len(ra)-len(p.args):], p.args) || ra[len(ra)-len(p.args)-1] != "--" {
				t.Errorf("runner args %q", ra)
			}
		})
	}
	for _, bad := range [][]string{{"run", "/dev/zero"}, {"run", "-mem", "1T"}, {"nested", "run"}} {
		if _, err := planNested(bad); err == nil {
			t.Errorf("planNested(%q) accepted", bad)
		}
	}
}

// Without QEMU, vmm nested names the one command that installs it, also
// outside a source tree (as in the nested runner's initramfs).
func TestNestedWithoutQEMU(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	if s := Main([]string{"nested", "run"}, &out, &errb); s != 125 || !strings.Contains(errb.String(), qemuInstall) {
		t.Errorf("status %d, stderr %q: want 125 and %q", s, errb.String(), qemuInstall)
	}
}

// `vmm nested unittests` copies the suite in (the x86 directory, errata.txt
// beside it) and the logs out, and carries bash for the shell-expanded
// entries.
func TestPlanNestedUnittests(t *testing.T) {
	tree := t.TempDir()
	x86 := filepath.Join(tree, "x86")
	if err := os.Mkdir(x86, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(x86, "unittests.cfg"), filepath.Join(tree, "errata.txt")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := filepath.Join(t.TempDir(), "logs")
	t.Setenv("NESTED_HOST_BINS", "strace")
	for _, dir := range []string{tree, x86} {
		p, err := planNested([]string{"unittests", "-j", "2", "-tap", "-only", "^emulator$", "-logs", logs, dir})
		if err != nil {
			t.Fatal(err)
		}
		wantArgs := []string{"unittests", "-j", "2", "-verify", "strict", "-logs", nestedLogs, "-tap", "-only", "^emulator$", nestedKUT}
		wantIns := []string{x86 + "=" + nestedKUT + "/x86", filepath.Join(tree, "errata.txt") + "=" + nestedKUT + "/errata.txt"}
		wantOuts := []string{nestedLogs + "=" + logs}
		if !reflect.DeepEqual(p.args, wantArgs) || !reflect.DeepEqual(p.ins, wantIns) || !reflect.DeepEqual(p.outs, wantOuts) {
			t.Errorf("%s: got args %q ins %q outs %q\nwant args %q ins %q outs %q", dir, p.args, p.ins, p.outs, wantArgs, wantIns, wantOuts)
		}
		if want := []string{"NESTED_HOST_BINS=strace bash"}; !reflect.DeepEqual(p.env, want) {
			t.Errorf("%s: env %q, want %q", dir, p.env, want)
		}
	}
	for _, bad := range [][]string{
		{"unittests"},
		{"unittests", "-vmm", "/usr/bin/vmm", tree},
		{"unittests", t.TempDir()},
	} {
		if _, err := planNested(bad); err == nil {
			t.Errorf("planNested(%q): no error", bad)
		}
	}
}
