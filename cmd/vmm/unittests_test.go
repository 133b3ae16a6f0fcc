package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnittestsCommand(t *testing.T) {
	root := t.TempDir()
	x86 := filepath.Join(root, "x86")
	if err := os.Mkdir(x86, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "[good]\nfile = good.flat\nsmp = 2\n\n[bad]\nfile = bad.flat\n\n[old]\nfile = good.flat\narch = i386\n"
	files := map[string]string{
		filepath.Join(x86, "unittests.cfg"): cfg,
		filepath.Join(x86, "good.flat"):     "",
		filepath.Join(x86, "bad.flat"):      "",
		filepath.Join(root, "errata.txt"):   "0123456789ab : 2.6 : an old fix\n",
		// The fake vmm: the guest's verdict by image name, the env file
		// copied to the console so the test sees what the guest got.
		filepath.Join(root, "fake-vmm"): `#!/bin/sh
for a; do img=$a; done
while [ $# -gt 0 ]; do [ "$1" = -initrd ] && cat "$2"; shift; done
case $img in
*good.flat) echo "SUMMARY: 2 tests"; exit 1;;
*) echo "SUMMARY: 2 tests, 1 unexpected failures"; exit 3;;
esac
`,
	}
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logs := filepath.Join(root, "logs")
	for _, dir := range []string{root, x86} {
		var stdout, stderr bytes.Buffer
		st := Main([]string{"unittests", "-j", "2", "-logs", logs, "-vmm", filepath.Join(root, "fake-vmm"), dir}, &stdout, &stderr)
		want := "PASS good (2 tests)\nFAIL bad (2 tests, 1 unexpected failures)\nSKIP old (i386 only)\n1 passed, 1 failed, 1 skipped\n"
		if st != 1 || stdout.String() != want {
			t.Errorf("DIR %s: status %d, output\n%s\nstderr %s\nwant status 1, output\n%s", dir, st, stdout.String(), stderr.String(), want)
		}
		log, err := os.ReadFile(filepath.Join(logs, "good.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{" run -mem 128M -smp 2 -initrd " + filepath.Join(logs, "environ") + " -debug-exit qemu -timeout 1m30s -verify strict " + filepath.Join(x86, "good.flat"),
			"\nTARGET=qemu\n", "\nERRATA_0123456789ab=y\n"} {
			if !strings.Contains(string(log), s) {
				t.Errorf("good.log lacks %q:\n%s", s, log)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if st := Main([]string{"unittests", "-only", "good", "-json", "-logs", logs, "-vmm", filepath.Join(root, "fake-vmm"), root}, &stdout, &stderr); st != 0 ||
		!strings.Contains(stdout.String(), `"name":"good","result":"PASS"`) || strings.Contains(stdout.String(), `"bad"`) {
		t.Errorf("-only good -json: status %d, output %s, stderr %s", st, stdout.String(), stderr.String())
	}
}

func TestUnittestsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"unittests"}, "usage: vmm unittests"},
		{[]string{"unittests", "-tap", "-json", dir}, "give -tap or -json, not both"},
		{[]string{"unittests", "-j", "0", dir}, "-j 0: want at least 1"},
		{[]string{"unittests", "-verify", "loud", dir}, "-verify:"},
		{[]string{"unittests", "-only", "(", dir}, "-only:"},
		{[]string{"unittests", dir}, "no unittests.cfg here or in"},
	} {
		var stdout, stderr bytes.Buffer
		if st := Main(tc.args, &stdout, &stderr); st != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: status %d, stderr %q; want 2 and %q", tc.args, st, stderr.String(), tc.want)
		}
	}
}
