package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"walkvm/kvm"
)

// fakeHost builds a root with the /proc and /sys files explainKVM reads.
func fakeHost(t *testing.T, cpuFlags, modules string, sysKVM bool) host {
	t.Helper()
	root := t.TempDir()
	for p, body := range map[string]string{
		"proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu vme " + cpuFlags + "\n",
		"proc/modules": modules,
		"etc/group":    "root:x:0:\nkvm:x:993:alice\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if sysKVM {
		if err := os.MkdirAll(filepath.Join(root, "sys/module/kvm"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return host{root}
}

func TestExplainKVM(t *testing.T) {
	notExist := fmt.Errorf("%w: open /dev/kvm: %w", kvm.ErrNoKVM, fs.ErrNotExist)
	denied := fmt.Errorf("%w: open /dev/kvm: %w", kvm.ErrNoKVM, fs.ErrPermission)
	for _, c := range []struct {
		name    string
		err     error
		h       host
		want    []string
		notWant string
	}{
		{"VM without nested virtualisation", notExist, fakeHost(t, "hypervisor sse2", "", true),
			[]string{"neither vmx nor svm", "VM without nested virtualisation", "nested run -trace t.jsonl"}, "modprobe"},
		{"bare metal, virtualisation off", notExist, fakeHost(t, "sse2", "", false),
			[]string{"neither vmx nor svm", "firmware"}, "container"},
		{"module not loaded (Intel)", notExist, fakeHost(t, "vmx sse2", "", false),
			[]string{"has vmx", "not loaded", "sudo modprobe kvm_intel"}, ""},
		{"module not loaded (AMD)", notExist, fakeHost(t, "svm sse2", "", false),
			[]string{"sudo modprobe kvm_amd"}, ""},
		{"module loaded, no node", notExist, fakeHost(t, "svm", "kvm_amd 200704 0 - Live 0x0\nkvm 1404928 1 kvm_amd, Live 0x0\n", true),
			[]string{"although kvm_amd, kvm is loaded", "--device /dev/kvm"}, ""},
		{"permission denied", denied, fakeHost(t, "vmx", "kvm_intel 1 0 - Live\n", true),
			[]string{"permission denied opening"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := explainKVM(c.err, "/dev/kvm", c.h, []string{"run", "-trace", "t.jsonl"})
			msg := err.Error()
			if !errors.Is(err, kvm.ErrNoKVM) || strings.Contains(msg, "\n") {
				t.Errorf("%q: want one line that is still ErrNoKVM", msg)
			}
			for _, w := range append(c.want, "KVM is not available", "nested KVM") {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if c.notWant != "" && strings.Contains(msg, c.notWant) {
				t.Errorf("%q mentions %q", msg, c.notWant)
			}
		})
	}
	other := errors.New("KVM_CREATE_VM: out of memory")
	if err := explainKVM(other, "/dev/kvm", host{"/"}, []string{"run"}); err != other {
		t.Errorf("an error that is not ErrNoKVM changed: %v", err)
	}
}

// The group owning the device is named, with the usermod line to join it.
func TestExplainKVMPermissionGroup(t *testing.T) {
	h := fakeHost(t, "vmx", "", true)
	node := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(node, nil, 0o660); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(node, 0, 993); err != nil {
		t.Skipf("cannot chown a file to gid 993 here: %v", err)
	}
	err := explainKVM(fmt.Errorf("%w: %w", kvm.ErrNoKVM, fs.ErrPermission), node, h, []string{"run"})
	if msg := err.Error(); !strings.Contains(msg, "group kvm") || !strings.Contains(msg, "usermod -aG kvm $USER") {
		t.Errorf("%q: want the group and the usermod command", msg)
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[uint64]string{1 << 40: "1 TiB", 3 << 30: "3 GiB", 2 << 20: "2 MiB", 4096: "4 KiB", 5000: "5000 bytes"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
}

// readFile reads a regular file whole, and says what is wrong with
// anything else.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big, empty := write("big", 3<<20+5), write("empty", 0)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		mem        uint64
		empty      bool
		n          int
		err        string
	}{
		{"whole", big, 64 << 20, false, 3<<20 + 5, ""},
		{"larger than RAM", big, 1 << 20, false, 0, "larger than guest RAM"},
		{"empty refused", empty, 1 << 20, false, 0, "is empty"},
		{"empty allowed", empty, 1 << 20, true, 0, ""},
		{"missing", filepath.Join(dir, "none"), 1 << 20, false, 0, "no such file"},
		{"directory", dir, 1 << 20, false, 0, "not a regular file"},
		{"FIFO", fifo, 1 << 20, false, 0, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := readFile("image", c.path, c.mem, c.empty)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil || b == nil || len(b) != c.n {
				t.Fatalf("%d bytes (nil %v), error %v; want %d", len(b), b == nil, err, c.n)
			}
			for i := range b {
				if b[i] != byte(i*7) {
					t.Fatalf("byte %d is %#x", i, b[i])
				}
			}
		})
	}
}
