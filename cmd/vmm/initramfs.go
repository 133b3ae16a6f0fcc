package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"walkvm/initramfs"
)

// busyboxInstall is the command that installs a static busybox on Debian.
const busyboxInstall = "sudo apt-get install busybox-static"

// fileList collects -add HOST=GUEST flags.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(s string) error { *l = append(*l, s); return nil }

// cmdInitramfs runs `vmm initramfs`: a gzip'd busybox initramfs from the
// host's static busybox, with a shell on the console as /init.
func cmdInitramfs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vmm initramfs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the initramfs (newc cpio, gzip) to FILE (required)")
	bb := fs.String("busybox", "", "a statically linked busybox (default: busybox in PATH)")
	initFile := fs.String("init", "", "a shell script to run as /init instead of the interactive shell")
	var adds fileList
	fs.Var(&adds, "add", "HOST=GUEST: also put file HOST at GUEST (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: vmm initramfs -o FILE [flags]
builds a small initramfs from the host's statically linked busybox; its /init
mounts /proc, /sys and /dev and runs a shell on the console, e.g.
  vmm initramfs -o initrd.gz && vmm run -kernel /boot/vmlinuz-$(uname -r) -initrd initrd.gz`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if err := buildInitramfs(*out, *bb, *initFile, adds); err != nil {
		fmt.Fprintf(stderr, "vmm initramfs: %v\n", err)
		return 1
	}
	return 0
}

func buildInitramfs(out, busybox, initFile string, adds []string) error {
	var files []initramfs.File
	for _, a := range adds {
		host, guest, ok := strings.Cut(a, "=")
		if !ok || host == "" || guest == "" {
			return fmt.Errorf("-add %q: want HOST=GUEST", a)
		}
		st, err := os.Stat(host)
		if err != nil {
			return fmt.Errorf("-add: %w", err)
		}
		data, err := os.ReadFile(host)
		if err != nil {
			return fmt.Errorf("-add: %w", err)
		}
		files = append(files, initramfs.File{Name: strings.TrimLeft(guest, "/"), Perm: st.Mode().Perm(), Data: data})
	}
	if busybox == "" {
		p, err := exec.LookPath("busybox")
		if err != nil {
			return fmt.Errorf("no busybox in PATH: install a static one (%s) or give -busybox", busyboxInstall)
		}
		busybox = p
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	if err := initramfs.CheckStatic(bin); err != nil {
		return fmt.Errorf("%s: %w (%s)", busybox, err, busyboxInstall)
	}
	sys := initramfs.Busybox{Binary: bin, Init: initramfs.ShellInit, Files: files}
	if initFile != "" {
		b, err := os.ReadFile(initFile)
		if err != nil {
			return fmt.Errorf("-init: %w", err)
		}
		sys.Init = string(b)
	}
	img, err := sys.Build()
	if err != nil {
		return err
	}
	return os.WriteFile(out, img, 0o644)
}
