package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"walkvm/kvm"
	"walkvm/memory"
)

// Checks of what a command was given, done before /dev/kvm is opened so
// that they show on any machine, and the explanation of an unusable
// /dev/kvm.

// checkMem says why size cannot be guest RAM (memory.NewRAM's bounds).
func checkMem(size uint64) error {
	switch {
	case size > memory.MaxRAM:
		return fmt.Errorf("%s is too large: guest RAM is at most %s (it stays below the 32-bit MMIO space)", sizeName(size), sizeName(memory.MaxRAM))
	case size < memory.MinRAM:
		return fmt.Errorf("%s is too small: guest RAM is at least %s (the low 640 KiB and the first MiB above the PC hole)", sizeName(size), sizeName(memory.MinRAM))
	case size%4096 != 0:
		return fmt.Errorf("%d bytes is not a multiple of 4 KiB", size)
	}
	return nil
}

// sizeName writes a size in the largest binary unit that divides it.
func sizeName(n uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}

// readImage reads an image that must be a regular file no larger than
// guest RAM; it reads at most that much, whatever the file does meanwhile.
func readImage(path string, mem uint64) ([]byte, error) { return readFile("image", path, mem, false) }

// readFile reads the file what (image, initrd) that must be a regular
// file no larger than guest RAM, and not empty unless empty is set; an
// empty file gives an empty, non-nil slice.
func readFile(what, path string, mem uint64, empty bool) ([]byte, error) {
	// Stat before opening: opening a FIFO blocks until a writer comes.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is %s, not a regular file", what, path, fileKind(fi.Mode()))
	}
	if uint64(fi.Size()) > mem {
		return nil, fmt.Errorf("%s %s is %d bytes, larger than guest RAM (-mem %s)", what, path, fi.Size(), sizeName(mem))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	// One buffer of the file's size and one copy: a kernel's vmlinux is
	// tens of MB, and io.ReadAll's growing buffer copies it about twice
	// more (4x slower for Debian's 66 MB vmlinux).
	data := make([]byte, fi.Size())
	n, err := io.ReadFull(f, data)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s %s shrank from %d to %d bytes while read", what, path, len(data), n)
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if m, _ := f.Read(make([]byte, 1)); m > 0 {
		return nil, fmt.Errorf("%s %s grew past its %d bytes while read", what, path, len(data))
	}
	if len(data) == 0 && !empty {
		return nil, fmt.Errorf("%s %s is empty", what, path)
	}
	return data, nil
}

// invoker is how the user ran vmm, for the commands an error suggests:
// "go run ./cmd/vmm" under go run, else the program's name.
func invoker() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/vmm"
	}
	return filepath.Base(os.Args[0])
}

// host is where the KVM explanation reads /proc and /sys ("/" but in tests).
type host struct{ root string }

func (h host) read(p string) string {
	b, _ := os.ReadFile(filepath.Join(h.root, p))
	return string(b)
}

func (h host) exists(p string) bool {
	_, err := os.Stat(filepath.Join(h.root, p))
	return err == nil
}

// cpuFlag is "vmx" or "svm" when /proc/cpuinfo shows it, else ""; vm
// says the CPU reports running under a hypervisor.
func (h host) cpuFlag() (flag string, vm bool) {
	for _, line := range strings.Split(h.read("proc/cpuinfo"), "\n") {
		name, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			switch f {
			case "vmx", "svm":
				flag = f
			case "hypervisor":
				vm = true
			}
		}
		return flag, vm
	}
	return "", false
}

// kvmModules lists the loaded KVM modules (kvm, kvm_intel, kvm_amd...).
func (h host) kvmModules() []string {
	var out []string
	for _, line := range strings.Split(h.read("proc/modules"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "kvm" || strings.HasPrefix(f[0], "kvm_")) {
			out = append(out, f[0])
		}
	}
	if len(out) == 0 && h.exists("sys/module/kvm") {
		out = append(out, "kvm (built in)")
	}
	return out
}

// explainKVM turns a failure to open the KVM device into one line saying
// why and what to do; other errors come back as they are. again is the
// vmm command line (without the program) to suggest under `vmm nested`.
func explainKVM(err error, path string, h host, again []string) error {
	if !errors.Is(err, kvm.ErrNoKVM) {
		return err
	}
	nested := fmt.Sprintf("or run it in QEMU's nested KVM: %s nested %s", invoker(), strings.Join(again, " "))
	var why string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		mods := h.kvmModules()
		flag, vm := h.cpuFlag()
		switch {
		case flag == "" && vm:
			why = fmt.Sprintf("%s does not exist and the CPU shows neither vmx nor svm in /proc/cpuinfo: this is a VM without nested virtualisation (turn it on in the host)", path)
		case flag == "":
			why = fmt.Sprintf("%s does not exist and the CPU shows neither vmx nor svm in /proc/cpuinfo: hardware virtualisation is off or absent (VT-x/AMD-V in the firmware settings)", path)
		case len(mods) > 0:
			why = fmt.Sprintf("%s does not exist although %s is loaded (a container without the device? pass it in, e.g. docker --device /dev/kvm)", path, strings.Join(mods, ", "))
		default:
			mod := map[string]string{"vmx": "kvm_intel", "svm": "kvm_amd"}[flag]
			why = fmt.Sprintf("%s does not exist: the CPU has %s but the kvm module is not loaded (sudo modprobe %s)", path, flag, mod)
		}
	case errors.Is(err, fs.ErrPermission):
		why = fmt.Sprintf("permission denied opening %s", path)
		if fi, serr := os.Stat(path); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				group := groupName(h, st.Gid)
				why += fmt.Sprintf(" (mode %v, group %s): join the group with sudo usermod -aG %s $USER and log in again", fi.Mode().Perm(), group, group)
			}
		}
	default:
		return fmt.Errorf("%w; %s", err, nested)
	}
	return fmt.Errorf("%w: %s; %s", kvm.ErrNoKVM, why, nested)
}

// groupName looks gid up in /etc/group.
func groupName(h host, gid uint32) string {
	want := fmt.Sprint(gid)
	for _, line := range strings.Split(h.read("etc/group"), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == want {
			return f[0]
		}
	}
	return want
}

// kvmReady opens and closes the KVM device, explaining a failure.
func kvmReady(path string, again []string) error {
	sys, err := kvm.OpenPath(path)
	if err != nil {
		return explainKVM(err, path, host{"/"}, again)
	}
	return sys.Close()
}
