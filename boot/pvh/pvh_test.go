package pvh

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"walkvm/boot/elfload"
	"walkvm/boot/internal/boottest"
	"walkvm/boot/loader"
)

// vmlinux is shaped like Linux's: ELF64, text at 16 MiB physical (virtual
// in the higher half), a PVH note with an 8-byte descriptor.
func vmlinux(desc []byte) []byte {
	if desc == nil {
		desc = binary.LittleEndian.AppendUint64(nil, 0x1000100)
	}
	img, _ := boottest.ELF(64, elfload.EMX86_64, 0xffffffff81000000, []boottest.Seg{
		{PAddr: 0x1000000, Data: bytes.Repeat([]byte{0xf4}, 0x1000), MemSz: 0x400000},
	}, []boottest.Note{{Name: "Xen", Type: 6, Desc: []byte("linux\x00")}, {Name: "Xen", Type: NotePhys32Entry, Desc: desc}}, nil)
	return img
}

func TestLoad(t *testing.T) {
	m := boottest.NewMem(t, 128<<20)
	initrd := bytes.Repeat([]byte{0xa5}, 5000)
	e, err := Load(m, vmlinux(nil), Config{Cmdline: "console=ttyS0", Initrd: initrd, Map: m.Map, RSDP: 0xe0000})
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != loader.Protected32 || e.RIP != 0x1000100 || e.CR4 != 0 || e.EFER != 0 || e.CR0&loader.CR0PG != 0 {
		t.Fatalf("entry %+v", e)
	}
	si := e.RBX
	if si+StartInfoSize > StructLimit {
		t.Fatalf("start info at %#x", si)
	}
	if m.U32(si+OffMagic) != StartInfoMagic || m.U32(si+OffVersion) != 1 || m.U32(si+OffNrModules) != 1 || m.U64(si+OffRSDPPaddr) != 0xe0000 {
		t.Fatalf("start info: magic %#x version %d modules %d", m.U32(si), m.U32(si+4), m.U32(si+12))
	}
	if got := m.CString(m.U64(si + OffCmdlinePaddr)); got != "console=ttyS0" {
		t.Errorf("cmdline %q", got)
	}
	mod := m.U64(si + OffModlistPaddr)
	rd, rdSize := m.U64(mod), m.U64(mod+8)
	if rdSize != uint64(len(initrd)) || rd%4096 != 0 || rd+rdSize > 128<<20 || !bytes.Equal(m.Bytes(rd, rdSize), initrd) {
		t.Errorf("module 0 at %#x size %d", rd, rdSize)
	}
	if rd < 0x1400000 {
		t.Errorf("initrd at %#x overlaps the kernel", rd)
	}
	want := []loader.MapEntry{{Addr: 0, Size: 0x9fc00, Type: 1}, {Addr: 0x9fc00, Size: 0x60400, Type: 2}, {Addr: 0x100000, Size: 127 << 20, Type: 1}}
	mm, n := m.U64(si+OffMemmapPaddr), m.U32(si+OffMemmapEntries)
	if int(n) != len(want) {
		t.Fatalf("memmap_entries %d", n)
	}
	for i, w := range want {
		p := mm + uint64(i*MemmapEntrySize)
		got := loader.MapEntry{Addr: m.U64(p), Size: m.U64(p + 8), Type: loader.MapType(m.U32(p + 16))}
		if got != w || m.U32(p+20) != 0 {
			t.Errorf("memmap[%d] = %v, want %v", i, got, w)
		}
	}
	if e.TR != SelTSS || m.U64(e.GDTBase+SelTSS) != loader.DescTSS32Busy || m.U64(e.GDTBase+SelCode) != loader.DescCode32 {
		t.Errorf("GDT at %#x / TR %#x", e.GDTBase, e.TR)
	}
	if err := boottest.Overlaps(e.Occupied); err != nil {
		t.Error(err)
	}
}

func TestEntryPoint(t *testing.T) {
	for _, c := range []struct {
		name  string
		desc  []byte
		entry uint32
		err   string
	}{
		{"4-byte descriptor", []byte{0x00, 0x01, 0x00, 0x01}, 0x1000100, ""},
		{"8-byte descriptor", binary.LittleEndian.AppendUint64(nil, 0x1000200), 0x1000200, ""},
		{"above 4 GiB", binary.LittleEndian.AppendUint64(nil, 1<<32), 0, "not a 32-bit address"},
		{"2-byte descriptor", []byte{1, 2}, 0, "descriptor of 2 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := vmlinux(c.desc)
			f, err := elfload.Parse(img)
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := EntryPoint(f, img)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !ok || got != c.entry {
				t.Fatalf("entry %#x %v %v", got, ok, err)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	noNote, _ := boottest.ELF(64, elfload.EMX86_64, 0x1000000, []boottest.Seg{{PAddr: 0x1000000, Data: []byte{1}}}, nil, nil)
	for _, c := range []struct {
		name   string
		img    []byte
		mem    uint64
		initrd int
		want   string
	}{
		{"no note", noNote, 64 << 20, 0, "no XEN_ELFNOTE_PHYS32_ENTRY"},
		{"entry outside the segments", vmlinux([]byte{0, 0, 0, 2}), 64 << 20, 0, "in no PT_LOAD"},
		{"kernel past RAM", vmlinux(nil), 18 << 20, 0, "ELF program header 0: p_paddr 0x1000000"},
		{"initrd too big", vmlinux(nil), 64 << 20, 60 << 20, "initrd of 62914560 bytes"},
		{"not ELF", []byte("plain"), 64 << 20, 0, "magic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := boottest.NewMem(t, c.mem)
			_, err := Load(m, c.img, Config{Initrd: make([]byte, c.initrd), Map: m.Map})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// FuzzLoad: any image errs or loads without a panic or a write outside
// guest memory; a load puts the start info, module list and memory map
// below 1 GiB and the initrd below 4 GiB, overlapping nothing.
func FuzzLoad(f *testing.F) {
	f.Add(vmlinux(nil), "console=ttyS0", 4096)
	f.Fuzz(func(t *testing.T, img []byte, cmdline string, initrd int) {
		m := boottest.NewMem(t, 32<<20)
		e, err := Load(m, img, Config{Cmdline: cmdline, Initrd: make([]byte, initrd&0xfffff), Map: m.Map})
		if err != nil {
			return
		}
		if err := boottest.Overlaps(e.Occupied); err != nil {
			t.Fatal(err)
		}
		if e.RBX+StartInfoSize > StructLimit || m.U64(e.RBX+OffMemmapPaddr) > StructLimit {
			t.Fatalf("start info at %#x", e.RBX)
		}
	})
}
