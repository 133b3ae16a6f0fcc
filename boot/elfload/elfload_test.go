package elfload

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"walkvm/boot/internal/boottest"
	"walkvm/boot/loader"
)

func TestLoad(t *testing.T) {
	text := bytes.Repeat([]byte{0x90}, 100)
	data := []byte("data")
	for _, class := range []int{32, 64} {
		for _, machine := range []uint16{EM386, EMX86_64} {
			img, _ := boottest.ELF(class, machine, 0x400010, []boottest.Seg{
				{PAddr: 0x400000, Data: text},
				{PAddr: 0x401000, Data: data, MemSz: 0xc00000}, // kvm-unit-tests' bss
			}, nil, nil)
			f, err := Parse(img)
			if err != nil {
				t.Fatalf("class %d machine %d: %v", class, machine, err)
			}
			if f.Class != class/32 || f.Entry != 0x400010 || f.Machine != machine {
				t.Fatalf("class %d: parsed %+v", class, f)
			}
			m := boottest.NewMem(t, 32<<20)
			// Dirty the bss first: Load must zero it.
			if err := m.RAM.Write(0x401000+0x100, []byte{0xff}); err != nil {
				t.Fatal(err)
			}
			pl := loader.NewPlacer(m.Map)
			rs, err := f.Load(m, pl, img)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 2 || rs[1] != (loader.Range{Base: 0x401000, Size: 0xc00000, What: "ELF program header 1"}) {
				t.Fatalf("ranges %v", rs)
			}
			if !bytes.Equal(m.Bytes(0x400000, 100), text) || !bytes.Equal(m.Bytes(0x401000, 4), data) || m.Bytes(0x401100, 1)[0] != 0 {
				t.Fatal("segments not copied, or bss not zeroed")
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := boottest.ELF(32, EM386, 0x1000, []boottest.Seg{{PAddr: 0x100000, Data: []byte{1, 2, 3}}}, nil, nil)
	good64, _ := boottest.ELF(64, EMX86_64, 0x1000, []boottest.Seg{{PAddr: 0x100000, Data: []byte{1, 2, 3}}}, nil, nil)
	le := binary.LittleEndian
	mut := func(b []byte, f func(b []byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	for _, c := range []struct {
		name string
		img  []byte
		want string
	}{
		{"no magic", []byte("MZ\x90\x00"), "magic"},
		{"short", good[:40], "shorter than an ELF header"},
		{"big endian", mut(good, func(b []byte) { b[5] = 2 }), "EI_DATA 2"},
		{"class 3", mut(good, func(b []byte) { b[4] = 3 }), "EI_CLASS 3"},
		{"relocatable", mut(good, func(b []byte) { le.PutUint16(b[16:], 1) }), "e_type 1"},
		{"arm", mut(good, func(b []byte) { le.PutUint16(b[18:], 40) }), "e_machine 40"},
		{"phentsize", mut(good, func(b []byte) { le.PutUint16(b[42:], 31) }), "e_phentsize 31"},
		{"phnum past file", mut(good, func(b []byte) { le.PutUint16(b[44:], 1000) }), "program header table"},
		{"pn_xnum", mut(good, func(b []byte) { le.PutUint16(b[44:], 0xffff) }), "PN_XNUM"},
		{"phoff past file", mut(good64, func(b []byte) { le.PutUint64(b[32:], ^uint64(0)-8) }), "program header table"},
		{"filesz past file", mut(good, func(b []byte) { le.PutUint32(b[52+16:], 0x10000) }), "ELF program header 0: p_offset"},
		{"filesz > memsz", mut(good, func(b []byte) { le.PutUint32(b[52+20:], 1) }), "larger than p_memsz"},
		{"paddr wraps", mut(good64, func(b []byte) {
			le.PutUint64(b[64+24:], ^uint64(0)-1)
			le.PutUint64(b[64+40:], 0x100)
		}), "wraps"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.img)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		segs []boottest.Seg
		want string
	}{
		{"past RAM", []boottest.Seg{{PAddr: 0x100000, Data: []byte{1}}, {PAddr: 0x1ff000, Data: []byte{1}, MemSz: 0x2000}}, "ELF program header 1: p_paddr 0x1ff000 .. p_paddr+p_memsz 0x201000 is not in guest RAM"},
		{"in an MMIO window", []boottest.Seg{{PAddr: 0xd8000, Data: []byte{1}}}, "ELF program header 0: p_paddr 0xd8000"},
		{"segments overlap", []boottest.Seg{{PAddr: 0x100000, Data: []byte{1}, MemSz: 0x2000}, {PAddr: 0x101000, Data: []byte{1}}}, "ELF program header 1 at 0x101000-0x101000 overlaps ELF program header 0"},
		{"nothing to load", nil, "no PT_LOAD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, _ := boottest.ELF(32, EM386, 0x100000, c.segs, nil, nil)
			f, err := Parse(img)
			if err != nil {
				t.Fatal(err)
			}
			m := boottest.NewMem(t, 2<<20)
			pl := loader.NewPlacer(m.Map)
			_, err = f.Load(m, pl, img)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
			if len(m.Writes) != 0 {
				t.Fatalf("a failed load wrote %v", m.Writes)
			}
		})
	}
}

func TestNotes(t *testing.T) {
	img, _ := boottest.ELF(64, EMX86_64, 0, []boottest.Seg{{PAddr: 0x100000, Data: []byte{1}}}, []boottest.Note{
		{Name: "GNU", Type: 3, Desc: []byte{1, 2, 3, 4, 5}},
		{Name: "Xen", Type: 18, Desc: []byte{0x00, 0x10, 0x00, 0x01, 0, 0, 0, 0}},
	}, nil)
	f, err := Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := f.Notes(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || ns[0].Name != "GNU" || len(ns[0].Desc) != 5 || ns[1].Name != "Xen" || ns[1].Type != 18 || le64(ns[1].Desc) != 0x01001000 {
		t.Fatalf("notes %+v", ns)
	}
	// A note whose n_descsz runs past its segment.
	bad := append([]byte(nil), img...)
	binary.LittleEndian.PutUint32(bad[ns[1].Offset+4:], 1000)
	if _, err := f.Notes(bad); err == nil || !strings.Contains(err.Error(), "n_descsz 1000") {
		t.Fatalf("err = %v", err)
	}
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// FuzzELF: any bytes give a parsed file or an error, never a panic; a file
// that parses loads only inside guest RAM (boottest.Mem fails the test
// otherwise), and what it reports as written covers its PT_LOADs.
func FuzzELF(f *testing.F) {
	seed32, _ := boottest.ELF(32, EM386, 0x100000, []boottest.Seg{{PAddr: 0x100000, Data: []byte("code"), MemSz: 0x3000}}, []boottest.Note{{Name: "Xen", Type: 18, Desc: []byte{0, 0, 0x10, 0}}}, nil)
	seed64, _ := boottest.ELF(64, EMX86_64, 0x100000, []boottest.Seg{{PAddr: 0x1000, Data: []byte("code")}, {PAddr: 0x200000, Data: []byte("x"), MemSz: 0x10000}}, nil, nil)
	f.Add(seed32)
	f.Add(seed64)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		_, _ = file.Notes(b)
		m := boottest.NewMem(t, 4<<20)
		pl := loader.NewPlacer(m.Map)
		rs, err := file.Load(m, pl, b)
		if err != nil {
			return
		}
		if len(rs) != len(file.Loads()) {
			t.Fatalf("%d ranges for %d PT_LOADs", len(rs), len(file.Loads()))
		}
		if err := boottest.Overlaps(rs); err != nil {
			t.Fatal(err)
		}
	})
}
