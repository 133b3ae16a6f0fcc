package initramfs

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// ShellInit is the /init of an interactive system: it mounts the kernel's
// file systems, says how to leave, runs a login shell with the console as
// its controlling terminal (so Ctrl-C reaches the shell's job) and reboots
// when the shell exits, which ends a walkvm run with status 0.
const ShellInit = `mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "walkvm initramfs: Linux $(uname -r), /init at $(cut -d' ' -f1 /proc/uptime)s of uptime"
echo "'reboot -f' or leaving the shell ends the run; Ctrl-A x quits walkvm, Ctrl-A h helps"
setsid cttyhack sh -l
reboot -f
`

// Busybox describes a small system: a statically linked busybox, an /init
// script run by busybox's shell, and any further files.
type Busybox struct {
	// Binary is the busybox executable; it must be statically linked (the
	// system has no shared libraries).
	Binary []byte
	// Init is the body of /init. Before it runs, busybox's applets are
	// installed as symbolic links in /bin and PATH is /bin.
	Init string
	// Files are added after the base system, with their parent
	// directories; a name the base system has is an error.
	Files []File
}

// File is a regular file of the system, by its path without a leading
// slash.
type File struct {
	Name string
	Perm fs.FileMode
	Data []byte
}

// baseDirs are the directories every system has.
var baseDirs = []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp"}

// initPreamble starts every /init.
const initPreamble = "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nexport PATH=/bin\n"

// Build returns the system as a gzip-compressed newc archive.
func (b Busybox) Build() ([]byte, error) {
	if err := CheckStatic(b.Binary); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	gz, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	w := NewWriter(gz)
	have := map[string]bool{}
	dir := func(name string) {
		if !have[name] {
			have[name] = true
			w.Dir(name, 0o755)
		}
	}
	for _, d := range baseDirs {
		dir(d)
	}
	w.CharDev("dev/console", 0o600, 5, 1)
	w.CharDev("dev/null", 0o666, 1, 3)
	have["dev/console"], have["dev/null"] = true, true
	add := func(name string, perm fs.FileMode, data []byte) error {
		if err := checkName(name); err != nil {
			return err
		}
		if have[name] {
			return fmt.Errorf("initramfs: %s is already in the system", name)
		}
		var parents []string
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			parents = append(parents, p)
		}
		sort.Strings(parents)
		for _, p := range parents {
			dir(p)
		}
		have[name] = true
		return w.File(name, perm, data)
	}
	if err := add("bin/busybox", 0o755, b.Binary); err != nil {
		return nil, err
	}
	if err := add("init", 0o755, []byte(initPreamble+b.Init)); err != nil {
		return nil, err
	}
	for _, f := range b.Files {
		if err := add(f.Name, f.Perm, f.Data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("initramfs: gzip: %w", err)
	}
	return out.Bytes(), nil
}

// CheckStatic says why binary cannot run in a system without shared
// libraries: not an ELF file, or one that asks for a program interpreter.
func CheckStatic(binary []byte) error {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return fmt.Errorf("initramfs: busybox: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("initramfs: busybox is dynamically linked (PT_INTERP at file offset %#x): use a static build (Debian: busybox-static)", p.Off)
		}
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("initramfs: busybox: ELF type %v, want an executable", f.Type)
	}
	return nil
}
