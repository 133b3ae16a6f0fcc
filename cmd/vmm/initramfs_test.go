package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitramfsCommand(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs busybox in PATH")
	}
	dir := t.TempDir()
	extra := filepath.Join(dir, "hello.txt")
	os.WriteFile(extra, []byte("hello"), 0o640)
	out := filepath.Join(dir, "initrd.gz")
	var stderr bytes.Buffer
	if rc := Main([]string{"initramfs", "-o", out, "-busybox", bb, "-add", extra + "=/etc/hello.txt"}, io.Discard, &stderr); rc != 0 {
		if strings.Contains(stderr.String(), "dynamically linked") {
			t.Skipf("%s is not static: %s", bb, stderr.String())
		}
		t.Fatalf("status %d: %s", rc, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bin/busybox\x00", "init\x00", "etc/hello.txt\x00", "setsid cttyhack sh", "hello", "TRAILER!!!\x00"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("archive lacks %q", want)
		}
	}
}

func TestInitramfsCommandErrors(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	cases := []struct {
		args []string
		rc   int
		want string
	}{
		{[]string{}, 2, "usage"},
		{[]string{"-o", filepath.Join(dir, "x"), "extra"}, 2, "usage"},
		{[]string{"-o", filepath.Join(dir, "x"), "-busybox", script}, 1, "busybox"},
		{[]string{"-o", filepath.Join(dir, "x"), "-busybox", filepath.Join(dir, "none")}, 1, "no such file"},
		{[]string{"-o", filepath.Join(dir, "x"), "-busybox", script, "-add", "nonsense"}, 1, "want HOST=GUEST"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		rc := Main(append([]string{"initramfs"}, c.args...), io.Discard, &stderr)
		if rc != c.rc || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: status %d, %q; want %d and %q", c.args, rc, stderr.String(), c.rc, c.want)
		}
	}
}
