package initramfs

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// entry is one parsed newc entry.
type entry struct {
	ino, mode, nlink, rmaj, rmin uint32
	name                         string
	body                         []byte
}

// parse reads a newc archive as the kernel's unpacker does
// (init/initramfs.c): headers at 4-byte aligned offsets, up to the trailer.
func parse(b []byte) ([]entry, error) {
	var out []entry
	off := 0
	for {
		if off+headerSize > len(b) {
			return nil, fmt.Errorf("header at %d past the end (%d bytes)", off, len(b))
		}
		h := b[off : off+headerSize]
		if string(h[:6]) != magic {
			return nil, fmt.Errorf("bad magic %q at %d", h[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("field %d at %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		nameEnd := off + headerSize + int(f[11])
		if nameEnd > len(b) || f[11] == 0 || b[nameEnd-1] != 0 {
			return nil, fmt.Errorf("name at %d: size %d not NUL-terminated", off, f[11])
		}
		name := string(b[off+headerSize : nameEnd-1])
		dataOff := (nameEnd + 3) &^ 3
		dataEnd := dataOff + int(f[6])
		if dataEnd > len(b) {
			return nil, fmt.Errorf("%s: data past the end", name)
		}
		for _, p := range b[nameEnd:dataOff] {
			if p != 0 {
				return nil, fmt.Errorf("%s: non-zero name padding", name)
			}
		}
		if f[12] != 0 {
			return nil, fmt.Errorf("%s: check field %#x, want 0 for newc", name, f[12])
		}
		off = (dataEnd + 3) &^ 3
		if name == trailer {
			if off != len(b) {
				return nil, fmt.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out, nil
		}
		out = append(out, entry{ino: f[0], mode: f[1], nlink: f[4], rmaj: f[9], rmin: f[10], name: name, body: b[dataOff:dataEnd]})
	}
}

func TestWriterEntries(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Dir("bin", 0o755)
	w.File("bin/a", 0o755, []byte("x"))
	w.File("bin/empty", 0o644, nil)
	w.File("ab", 0o600, []byte("abcdef"))
	w.Symlink("bin/sh", "busybox")
	w.CharDev("console", 0o600, 5, 1)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{ino: 1, mode: 0o040755, nlink: 2, name: "bin", body: []byte{}},
		{ino: 2, mode: 0o100755, nlink: 1, name: "bin/a", body: []byte("x")},
		{ino: 3, mode: 0o100644, nlink: 1, name: "bin/empty", body: []byte{}},
		{ino: 4, mode: 0o100600, nlink: 1, name: "ab", body: []byte("abcdef")},
		{ino: 5, mode: 0o120777, nlink: 1, name: "bin/sh", body: []byte("busybox")},
		{ino: 6, mode: 0o020600, nlink: 1, rmaj: 5, rmin: 1, name: "console", body: []byte{}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, e := got[i], want[i]
		if g.ino != e.ino || g.mode != e.mode || g.nlink != e.nlink || g.rmaj != e.rmaj || g.rmin != e.rmin || g.name != e.name || !bytes.Equal(g.body, e.body) {
			t.Errorf("entry %d: %+v, want %+v", i, g, e)
		}
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive of %d bytes is not 4-byte aligned", buf.Len())
	}
}

// The first header, byte for byte as GNU cpio -H newc writes it (uid, gid
// and mtime 0, upper-case hex).
func TestWriterHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.File("init", 0o755, []byte("#!"))
	w.Close()
	want := "070701" + "00000001" + "000081ED" + "00000000" + "00000000" + "00000001" + "00000000" + "00000002" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000005" + "00000000" + "init\x00" + "\x00" + "#!" + "\x00\x00"
	if got := buf.String()[:len(want)]; got != want {
		t.Errorf("header\n%q\nwant\n%q", got, want)
	}
}

func TestWriterRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "/abs", "a/../b", "..", "a//b", "a/", "nul\x00"} {
		w := NewWriter(io.Discard)
		if err := w.File(name, 0o644, nil); err == nil {
			t.Errorf("File(%q) accepted", name)
		}
		if err := w.Close(); err == nil {
			t.Errorf("Close after File(%q) did not return the error", name)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk full")
	}
	n := min(f.n, len(b))
	f.n -= n
	return n, nil
}

func TestWriterKeepsFirstError(t *testing.T) {
	w := NewWriter(&failWriter{n: 200})
	w.File("a", 0o644, make([]byte, 300))
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("Close: %v, want the write error with its offset", err)
	}
}

// elfWith returns a minimal little-endian ELF64 executable with one program
// header of type typ.
func elfWith(typ uint32) []byte {
	b := make([]byte, 64+56)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], 64) // e_phoff
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[54:], 56) // e_phentsize
	le.PutUint16(b[56:], 1)  // e_phnum
	le.PutUint32(b[64:], typ)
	return b
}

func TestCheckStatic(t *testing.T) {
	if err := CheckStatic(elfWith(1)); err != nil { // PT_LOAD
		t.Errorf("static ELF: %v", err)
	}
	if err := CheckStatic(elfWith(3)); err == nil || !strings.Contains(err.Error(), "dynamically linked") { // PT_INTERP
		t.Errorf("dynamic ELF: %v, want dynamically linked", err)
	}
	if err := CheckStatic([]byte("#!/bin/sh\n")); err == nil {
		t.Error("a script passed as static busybox")
	}
}

func TestBusyboxBuild(t *testing.T) {
	bin := elfWith(1)
	gz, err := Busybox{Binary: bin, Init: "echo hi\n", Files: []File{{Name: "etc/x/y/conf", Perm: 0o644, Data: []byte("k=v")}}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]entry{}
	for _, e := range ents {
		if _, dup := seen[e.name]; dup {
			t.Errorf("%s twice", e.name)
		}
		if i := strings.LastIndexByte(e.name, '/'); i >= 0 {
			if p, ok := seen[e.name[:i]]; !ok || p.mode&0o170000 != modeDir {
				t.Errorf("%s comes before its directory %s", e.name, e.name[:i])
			}
		}
		seen[e.name] = e
	}
	if e := seen["dev/console"]; e.mode != modeCharDev|0o600 || e.rmaj != 5 || e.rmin != 1 {
		t.Errorf("dev/console: %+v", e)
	}
	if e := seen["bin/busybox"]; !bytes.Equal(e.body, bin) || e.mode != modeFile|0o755 {
		t.Errorf("bin/busybox: mode %o, %d bytes", e.mode, len(e.body))
	}
	if e := seen["init"]; !strings.HasPrefix(string(e.body), "#!/bin/busybox sh\n") || !strings.HasSuffix(string(e.body), "\necho hi\n") || e.mode != modeFile|0o755 {
		t.Errorf("init: mode %o %q", e.mode, e.body)
	}
	if e := seen["etc/x/y/conf"]; string(e.body) != "k=v" {
		t.Errorf("etc/x/y/conf: %q", e.body)
	}
	if _, err := (Busybox{Binary: bin, Files: []File{{Name: "init"}}}).Build(); err == nil {
		t.Error("a second init was accepted")
	}
	if _, err := (Busybox{Binary: elfWith(3)}).Build(); err == nil {
		t.Error("a dynamic busybox was accepted")
	}
}

// FuzzWriter: whatever files are added, the archive parses back to the same
// names and contents, aligned, with the trailer last.
func FuzzWriter(f *testing.F) {
	f.Add("a", []byte("x"), "b/c", []byte{})
	f.Add("init", []byte("#!/bin/sh"), "dev", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, n1 string, d1 []byte, n2 string, d2 []byte) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		e1 := w.File(n1, 0o644, d1)
		e2 := w.File(n2, 0o600, d2)
		err := w.Close()
		if (e1 != nil || e2 != nil) != (err != nil) {
			t.Fatalf("entry errors %v, %v but Close %v", e1, e2, err)
		}
		if err != nil {
			return
		}
		ents, perr := parse(buf.Bytes())
		if perr != nil {
			t.Fatalf("own archive does not parse: %v", perr)
		}
		if len(ents) != 2 || ents[0].name != n1 || ents[1].name != n2 || !bytes.Equal(ents[0].body, d1) || !bytes.Equal(ents[1].body, d2) {
			t.Fatalf("parsed %+v", ents)
		}
	})
}
