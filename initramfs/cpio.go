// Package initramfs builds the initial RAM file systems Linux unpacks at
// boot: "newc" cpio archives (Documentation/driver-api/early-userspace/
// buffer-format.rst), gzip-compressed, and from them small busybox systems
// whose /init is a shell script.
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// newc header: the magic and thirteen 8-digit hexadecimal fields.
const (
	magic      = "070701"
	headerSize = 6 + 13*8
	trailer    = "TRAILER!!!"
)

// File types in c_mode (the st_mode bits Linux's initramfs unpacker reads).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// Writer writes one newc archive. Entries go out in the order they are
// added; a directory must come before what it holds, as Linux creates each
// entry at once. Close writes the trailer. The first error stops the
// writer and is returned by every later call.
type Writer struct {
	w   io.Writer
	ino uint32
	off int64
	err error
	pad [4]byte
}

// NewWriter returns a Writer that writes the archive to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// header is one entry's newc header fields.
type header struct {
	mode         uint32
	size         uint32
	nlink        uint32
	rmaj, rmin   uint32
	name         string
	data, target []byte
}

// checkName refuses names the unpacker would put outside the archive's root
// or cannot represent.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return fmt.Errorf("initramfs: entry name %q: want a relative path without NUL", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "" {
			return fmt.Errorf("initramfs: entry name %q: empty or .. component", name)
		}
	}
	return nil
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("initramfs: write at archive offset %d: %w", w.off, err)
	}
}

// align pads the archive to a multiple of 4 bytes.
func (w *Writer) align() {
	if r := w.off % 4; r != 0 {
		w.write(w.pad[:4-r])
	}
}

func (w *Writer) entry(h header) error {
	if w.err != nil {
		return w.err
	}
	if h.name != trailer {
		if err := checkName(h.name); err != nil {
			w.err = err
			return err
		}
	}
	body := h.data
	if h.target != nil {
		body = h.target
	}
	if uint64(len(body)) > 0xffffffff {
		w.err = fmt.Errorf("initramfs: %s: %d bytes, newc holds at most 4 GiB - 1", h.name, len(body))
		return w.err
	}
	w.ino++
	ino := w.ino
	if h.name == trailer {
		ino = 0
	}
	var hdr [headerSize]byte
	copy(hdr[:], magic)
	fields := [13]uint32{
		ino, h.mode, 0, 0, // ino, mode, uid, gid
		h.nlink, 0, uint32(len(body)), // nlink, mtime, filesize
		0, 0, h.rmaj, h.rmin, // devmajor, devminor, rdevmajor, rdevminor
		uint32(len(h.name) + 1), 0, // namesize (with the NUL), check
	}
	for i, f := range fields {
		const hexdig = "0123456789ABCDEF"
		for j := range 8 {
			hdr[6+8*i+j] = hexdig[f>>(28-4*uint(j))&0xf]
		}
	}
	w.write(hdr[:])
	w.write([]byte(h.name))
	w.write([]byte{0})
	w.align()
	w.write(body)
	w.align()
	return w.err
}

// Dir adds directory name with permissions perm.
func (w *Writer) Dir(name string, perm fs.FileMode) error {
	return w.entry(header{mode: modeDir | uint32(perm.Perm()), nlink: 2, name: name})
}

// File adds regular file name holding data with permissions perm.
func (w *Writer) File(name string, perm fs.FileMode, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	return w.entry(header{mode: modeFile | uint32(perm.Perm()), nlink: 1, name: name, data: data})
}

// Symlink adds symbolic link name pointing at target.
func (w *Writer) Symlink(name, target string) error {
	if target == "" {
		w.err = errors.New("initramfs: symlink " + name + ": empty target")
		return w.err
	}
	return w.entry(header{mode: modeSymlink | 0o777, nlink: 1, name: name, target: []byte(target)})
}

// CharDev adds character device node name (major, minor) with permissions
// perm.
func (w *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return w.entry(header{mode: modeCharDev | uint32(perm.Perm()), nlink: 1, rmaj: major, rmin: minor, name: name})
}

// Close writes the trailer entry. It does not close the underlying writer.
func (w *Writer) Close() error {
	return w.entry(header{nlink: 1, name: trailer})
}
