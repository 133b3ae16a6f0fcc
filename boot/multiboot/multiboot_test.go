package multiboot

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"walkvm/boot/elfload"
	"walkvm/boot/internal/boottest"
	"walkvm/boot/loader"
)

// header builds a multiboot header with flags and, with FlagAddress, the
// address fields.
func header(flags uint32, addr ...uint32) []byte {
	b := make([]byte, 12, 32)
	le := binary.LittleEndian
	le.PutUint32(b, HeaderMagic)
	le.PutUint32(b[4:], flags)
	le.PutUint32(b[8:], -(HeaderMagic + flags))
	for _, a := range addr {
		b = le.AppendUint32(b, a)
	}
	return b
}

// unitTestELF is shaped like a kvm-unit-tests x86_64 image: ELFCLASS32,
// EM_386, the multiboot header near the start, text at 4 MiB and data
// whose bss runs to about 16.4 MiB.
func unitTestELF() []byte {
	img, _ := boottest.ELF(32, elfload.EM386, 0x4000bc, []boottest.Seg{
		{PAddr: 0x400000, Data: bytes.Repeat([]byte{0xf4}, 0x200)},
		{PAddr: 0x401000, Data: []byte("data"), MemSz: 0x1000000 - 0x1000 + 0x64000},
	}, nil, header(0))
	return img
}

type mbInfo struct {
	flags, lower, upper, cmdline, modsCount, modsAddr, mmapLen, mmapAddr, name uint32
}

func readInfo(m *boottest.Mem, at uint64) mbInfo {
	return mbInfo{
		flags: m.U32(at + OffFlags), lower: m.U32(at + OffMemLower), upper: m.U32(at + OffMemUpper),
		cmdline: m.U32(at + OffCmdline), modsCount: m.U32(at + OffModsCount), modsAddr: m.U32(at + OffModsAddr),
		mmapLen: m.U32(at + OffMmapLength), mmapAddr: m.U32(at + OffMmapAddr), name: m.U32(at + OffLoaderName),
	}
}

func TestLoadUnitTestImage(t *testing.T) {
	m := boottest.NewMem(t, 128<<20)
	env := []byte("NR_CPUS=1\nMEMSIZE=128\n")
	e, err := Load(m, unitTestELF(), Config{Name: "x86/emulator.flat", Append: "-v 1", Initrd: env, InitrdName: "env", Map: m.Map})
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != loader.Protected32 || e.RIP != 0x4000bc || e.RAX != BootMagic || e.CR0&loader.CR0PG != 0 || e.CR0&loader.CR0PE == 0 {
		t.Fatalf("entry %+v", e)
	}
	in := readInfo(m, e.RBX)
	if want := uint32(InfoMemory | InfoCmdline | InfoMods | InfoMemMap | InfoLoaderName); in.flags != want {
		t.Errorf("flags %#x, want %#x", in.flags, want)
	}
	if in.lower != 639 || in.upper != 127*1024 {
		t.Errorf("mem_lower %d mem_upper %d, want 639 and %d", in.lower, in.upper, 127*1024)
	}
	if s := m.CString(uint64(in.cmdline)); s != "x86/emulator.flat -v 1" {
		t.Errorf("cmdline %q", s)
	}
	if s := m.CString(uint64(in.name)); s != LoaderName {
		t.Errorf("boot_loader_name %q", s)
	}
	if in.modsCount != 1 {
		t.Fatalf("mods_count %d", in.modsCount)
	}
	start, end, str := m.U32(uint64(in.modsAddr)), m.U32(uint64(in.modsAddr)+4), m.U32(uint64(in.modsAddr)+8)
	if end-start != uint32(len(env)) || start%4096 != 0 || !bytes.Equal(m.Bytes(uint64(start), uint64(len(env))), env) || m.CString(uint64(str)) != "env" {
		t.Errorf("module %#x-%#x %q", start, end, m.CString(uint64(str)))
	}
	if uint64(end) > 128<<20 || uint64(start) < 0x1064000 {
		t.Errorf("module at %#x-%#x: want above the image, below the end of RAM", start, end)
	}
	wantMap := []loader.MapEntry{{Addr: 0, Size: 0x9fc00, Type: 1}, {Addr: 0x9fc00, Size: 0x60400, Type: 2}, {Addr: 0x100000, Size: 127 << 20, Type: 1}}
	if in.mmapLen != uint32(len(wantMap)*MmapEntrySize) {
		t.Fatalf("mmap_length %d", in.mmapLen)
	}
	for i, w := range wantMap {
		p := uint64(in.mmapAddr) + uint64(i*MmapEntrySize)
		got := loader.MapEntry{Addr: m.U64(p + 4), Size: m.U64(p + 12), Type: loader.MapType(m.U32(p + 20))}
		if m.U32(p) != 20 || got != w {
			t.Errorf("mmap[%d] size %d %v, want 20 %v", i, m.U32(p), got, w)
		}
	}
	// The info block: in base memory, clear of the guests' areas and the
	// image; nothing the loader wrote overlaps anything else.
	for _, r := range e.Occupied {
		if r.Base < 0x2000 || (r.Base < 0xe000 && r.End() > 0x8000) {
			t.Errorf("%v is in an area the guests write", r)
		}
	}
	if e.RBX >= loader.EBDA || e.RBX < 0xe000 {
		t.Errorf("info at %#x, want in base memory", e.RBX)
	}
	if err := boottest.Overlaps(e.Occupied); err != nil {
		t.Error(err)
	}
	if m.U64(e.GDTBase+8) != loader.DescCode32 || e.CS != SelCode || e.DS != SelData {
		t.Errorf("GDT at %#x: code %#x", e.GDTBase, m.U64(e.GDTBase+8))
	}
}

func TestLoadNoInitrd(t *testing.T) {
	m := boottest.NewMem(t, 32<<20)
	e, err := Load(m, unitTestELF(), Config{Name: "x86/msr.flat", Map: m.Map})
	if err != nil {
		t.Fatal(err)
	}
	in := readInfo(m, e.RBX)
	if in.modsCount != 0 || m.CString(uint64(in.cmdline)) != "x86/msr.flat" {
		t.Fatalf("mods_count %d, cmdline %q", in.modsCount, m.CString(uint64(in.cmdline)))
	}
}

func TestLoadAout(t *testing.T) {
	// A flat image linked at 1 MiB, header at file offset 0x40.
	img := make([]byte, 0x200)
	copy(img[0x40:], header(FlagAddress|FlagPageAlign|FlagMemInfo, 0x100040, 0x100000, 0x100180, 0x108000, 0x100080))
	img[0x80] = 0xf4
	img[0x190] = 0xee // past load_end_addr: not loaded
	m := boottest.NewMem(t, 4<<20)
	if err := m.RAM.Write(0x100190, []byte{0x55}); err != nil {
		t.Fatal(err)
	}
	e, err := Load(m, img, Config{Name: "mbaout", Append: "a=b", Map: m.Map})
	if err != nil {
		t.Fatal(err)
	}
	if e.RIP != 0x100080 || m.Bytes(0x100080, 1)[0] != 0xf4 || m.Bytes(0x100190, 1)[0] != 0 {
		t.Fatalf("rip %#x, byte at entry %#x, bss byte %#x", e.RIP, m.Bytes(0x100080, 1)[0], m.Bytes(0x100190, 1)[0])
	}
	if e.Occupied[len(e.Occupied)-1] != (loader.Range{Base: 0x100000, Size: 0x8000, What: "multiboot image (load_addr 0x100000)"}) {
		t.Fatalf("occupied %v", e.Occupied)
	}
}

func TestLoadRejects(t *testing.T) {
	aout := func(addr ...uint32) []byte {
		img := make([]byte, 0x100)
		copy(img[0x40:], header(FlagAddress, addr...))
		return img
	}
	noHeader, _ := boottest.ELF(32, elfload.EM386, 0x100000, []boottest.Seg{{PAddr: 0x100000, Data: []byte{1}}}, nil, nil)
	pastRAM, _ := boottest.ELF(32, elfload.EM386, 0x100000, []boottest.Seg{{PAddr: 0x100000, Data: []byte{1}, MemSz: 4 << 20}}, nil, header(0))
	highEntry, _ := boottest.ELF(64, elfload.EMX86_64, 1<<40, []boottest.Seg{{PAddr: 0x100000, Data: []byte{1}}}, nil, header(0))
	over, _ := boottest.ELF(32, elfload.EM386, 0x8000, []boottest.Seg{{PAddr: 0x1000, Data: []byte{1}, MemSz: 0x9ec00}, {PAddr: 0x100000, Data: []byte{1}, MemSz: 0x2ff000}}, nil, header(0))
	for _, c := range []struct {
		name   string
		img    []byte
		initrd []byte
		want   string
	}{
		{"no header", noHeader, nil, "no header"},
		{"bad checksum", append(header(0)[:8], 1, 2, 3, 4), nil, "no header"},
		{"video mode", append(make([]byte, 8), header(FlagVideoMode)...), nil, "video mode (bit 2)"},
		{"unknown requirement", append(make([]byte, 8), header(1<<9)...), nil, "unknown requirement"},
		{"address fields cut off", header(FlagAddress, 0x100000), nil, "address fields end at 0x20"},
		{"load_addr above header_addr", aout(0x100000, 0x100100, 0, 0, 0x100100), nil, "load_addr 0x100100 is above header_addr"},
		{"load before the file", aout(0x100040, 0x100000-0x100, 0, 0, 0x100000), nil, "before the file's first byte"},
		{"load_end past the file", aout(0x100040, 0x100000, 0x100200, 0, 0x100000), nil, "past the end of the 256-byte file"},
		{"load_end below load_addr", aout(0x100040, 0x100000, 0x100000, 0, 0x100000), nil, "load_end_addr 0x100000 is not above"},
		{"bss_end below the data", aout(0x100040, 0x100000, 0, 0x100010, 0x100000), nil, "bss_end_addr 0x100010 is below"},
		{"entry outside", aout(0x100040, 0x100000, 0, 0, 0x200000), nil, "entry_addr 0x200000 is outside"},
		{"a.out past RAM", aout(0x3ff040, 0x3ff000, 0, 0x500000, 0x3ff000), nil, "is not in guest RAM"},
		{"a.out in an MMIO window", aout(0xd0040, 0xd0000, 0, 0, 0xd0000), nil, "is not in guest RAM"},
		{"PT_LOAD past RAM", pastRAM, nil, "ELF program header 0: p_paddr 0x100000 .. p_paddr+p_memsz 0x500000 is not in guest RAM"},
		{"entry above 4 GiB", highEntry, nil, "not a 32-bit address"},
		{"module larger than RAM", unitTestELF(), make([]byte, 64<<20), "multiboot module of 67108864 bytes"},
		{"no room for the info", over, make([]byte, 0x10), "multiboot information"},
	} {
		t.Run(c.name, func(t *testing.T) {
			size := uint64(32 << 20)
			if c.name == "a.out past RAM" || c.name == "PT_LOAD past RAM" || c.name == "no room for the info" {
				size = 4 << 20
			}
			m := boottest.NewMem(t, size)
			_, err := Load(m, c.img, Config{Name: "x", Initrd: c.initrd, Map: m.Map})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// FuzzLoad: any image gives an entry state or an error, never a panic nor
// a write outside guest memory; on success the information structure and
// everything else written lie in guest RAM below 4 GiB, do not overlap and
// stay out of the guests' areas (except the image's own segments).
func FuzzLoad(f *testing.F) {
	f.Add(unitTestELF(), "arg", []byte("K=V\n"))
	aout := make([]byte, 0x100)
	copy(aout[0x20:], header(FlagAddress, 0x100020, 0x100000, 0, 0x101000, 0x100000))
	f.Add(aout, "", []byte(nil))
	f.Fuzz(func(t *testing.T, img []byte, appendText string, initrd []byte) {
		m := boottest.NewMem(t, 4<<20)
		e, err := Load(m, img, Config{Name: "fuzz", Append: appendText, Initrd: initrd, Map: m.Map})
		if err != nil {
			return
		}
		if err := boottest.Overlaps(e.Occupied); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.Occupied {
			if r.End() > loader.Below4G {
				t.Fatalf("%v is above 4 GiB", r)
			}
			if !strings.HasPrefix(r.What, "ELF") && !strings.HasPrefix(r.What, "multiboot image") && (r.Base < 0x2000 || (r.Base < 0xe000 && r.End() > 0x8000)) {
				t.Fatalf("%v is in an area the guests write", r)
			}
		}
		if got := m.CString(uint64(m.U32(e.RBX + OffCmdline))); !strings.HasPrefix("fuzz "+appendText, got) {
			t.Fatalf("cmdline %q", got)
		}
	})
}
