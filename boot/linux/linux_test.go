package linux

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"walkvm/boot/internal/boottest"
	"walkvm/boot/loader"
)

// bzImage builds a bzImage-shaped file: one setup sector after the boot
// sector, protocol 2.15, relocatable, pref_address 16 MiB, init_size
// 8 MiB, and pm bytes of protected-mode code.
func bzImage(pm []byte, edit func(b []byte)) []byte {
	b := make([]byte, 0x400, 0x400+len(pm))
	le := binary.LittleEndian
	b[OffSetupSects] = 1
	b[OffSentinel] = 0xff
	le.PutUint16(b[OffBootFlag:], BootFlag)
	b[OffJump], b[OffJump+1] = 0xeb, 0x66 // header ends at 0x268
	le.PutUint32(b[OffHeader:], HeaderHdrS)
	le.PutUint16(b[OffVersion:], 0x020f)
	b[OffLoadFlags] = LoadedHigh | CanUseHeap
	le.PutUint32(b[OffInitrdAddrMax:], 0x7fffffff)
	le.PutUint32(b[OffKernelAlignment:], 0x200000)
	b[OffRelocatable] = 1
	le.PutUint16(b[OffXLoadFlags:], XLFKernel64|0x2)
	le.PutUint32(b[OffCmdlineSize:], 2047)
	le.PutUint64(b[OffPrefAddress:], 0x1000000)
	le.PutUint32(b[OffInitSize:], 0x800000)
	le.PutUint32(b[0x264:], 0x190) // handover_offset: copied as is
	b = append(b, pm...)
	if edit != nil {
		edit(b)
	}
	return b
}

func pmCode() []byte {
	pm := bytes.Repeat([]byte{0x90}, 0x1000)
	pm[Entry64] = 0xf4
	return pm
}

func TestLoad(t *testing.T) {
	m := boottest.NewMem(t, 128<<20)
	img := bzImage(pmCode(), nil)
	initrd := bytes.Repeat([]byte("initramfs"), 1000)
	cmdline := "console=ttyS0 reboot=k panic=-1 acpi=off"
	e, err := Load(m, img, Config{Cmdline: cmdline, Initrd: initrd, Map: m.Map, RSDP: 0xe0000})
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != loader.Long64 || e.RIP != 0x1000000+Entry64 || e.CS != SelBootCS || e.DS != SelBootDS {
		t.Fatalf("entry %+v", e)
	}
	if e.CR0&loader.CR0PG == 0 || e.CR4&loader.CR4PAE == 0 || e.EFER != loader.EFERLME|loader.EFERLMA {
		t.Fatalf("control registers cr0 %#x cr4 %#x efer %#x", e.CR0, e.CR4, e.EFER)
	}
	if !bytes.Equal(m.Bytes(0x1000000, 0x1000), pmCode()) {
		t.Fatal("protected-mode code not at pref_address")
	}
	zp := e.RSI
	z := m.Bytes(zp, ZeroPageSize)
	le := binary.LittleEndian
	// The setup header is copied, with the loader's fields changed.
	changed := map[int]bool{}
	for _, o := range []int{OffTypeOfLoader, OffLoadFlags, OffHeapEndPtr, OffHeapEndPtr + 1} {
		changed[o] = true
	}
	for o := OffRamdiskImage; o < OffRamdiskImage+8; o++ {
		changed[o] = true
	}
	for o := OffCmdLinePtr; o < OffCmdLinePtr+4; o++ {
		changed[o] = true
	}
	for o := OffSetupSects; o < 0x268; o++ {
		if !changed[o] && z[o] != img[o] {
			t.Errorf("zero page byte %#x = %#x, image has %#x", o, z[o], img[o])
		}
	}
	if z[OffSentinel] != 0 {
		t.Errorf("sentinel at 0x1ef = %#x, want 0 (the kernel wipes fields when it is set)", z[OffSentinel])
	}
	if z[OffTypeOfLoader] != 0xff || z[OffLoadFlags] != LoadedHigh {
		t.Errorf("type_of_loader %#x loadflags %#x", z[OffTypeOfLoader], z[OffLoadFlags])
	}
	if got := m.CString(uint64(le.Uint32(z[OffCmdLinePtr:]))); got != cmdline {
		t.Errorf("cmdline %q", got)
	}
	rd, rdSize := uint64(le.Uint32(z[OffRamdiskImage:])), le.Uint32(z[OffRamdiskSize:])
	if rdSize != uint32(len(initrd)) || rd%4096 != 0 || !bytes.Equal(m.Bytes(rd, uint64(rdSize)), initrd) {
		t.Errorf("initrd at %#x size %d", rd, rdSize)
	}
	if rd < 0x1800000 || rd+uint64(rdSize) > 128<<20 {
		t.Errorf("initrd at %#x: want above the kernel's init_size area, in RAM", rd)
	}
	if le.Uint64(z[OffACPIRSDPAddr:]) != 0xe0000 {
		t.Errorf("acpi_rsdp_addr %#x", le.Uint64(z[OffACPIRSDPAddr:]))
	}
	want := []loader.MapEntry{{Addr: 0, Size: 0x9fc00, Type: 1}, {Addr: 0x9fc00, Size: 0x60400, Type: 2}, {Addr: 0x100000, Size: 127 << 20, Type: 1}}
	if int(z[OffE820Entries]) != len(want) {
		t.Fatalf("e820_entries %d", z[OffE820Entries])
	}
	for i, w := range want {
		p := z[OffE820Table+i*E820EntrySize:]
		got := loader.MapEntry{Addr: le.Uint64(p), Size: le.Uint64(p[8:]), Type: loader.MapType(le.Uint32(p[16:]))}
		if got != w {
			t.Errorf("e820[%d] = %v, want %v", i, got, w)
		}
	}
	// GDT: __BOOT_CS flat 64-bit code, __BOOT_DS flat data.
	if m.U64(e.GDTBase+SelBootCS) != loader.DescCode64 || m.U64(e.GDTBase+SelBootDS) != loader.DescData32 {
		t.Errorf("GDT at %#x", e.GDTBase)
	}
	// The identity map translates everything the kernel touches.
	for _, a := range []uint64{e.RIP, e.RIP + 0x800000 - 0x201, zp, rd, e.GDTBase, e.RSP - 8, 0xfee00000} {
		if got, ok := walk(m, e.CR3, a); !ok || got != a {
			t.Errorf("page walk of %#x gives %#x, %v", a, got, ok)
		}
	}
	if err := boottest.Overlaps(e.Occupied); err != nil {
		t.Error(err)
	}
}

// walk translates va through 4-level tables with 2 MiB pages.
func walk(m *boottest.Mem, cr3, va uint64) (uint64, bool) {
	const addr = 0x000ffffffffff000
	pml4e := m.U64(cr3&addr + (va>>39&511)*8)
	if pml4e&1 == 0 {
		return 0, false
	}
	pdpte := m.U64(pml4e&addr + (va>>30&511)*8)
	if pdpte&1 == 0 {
		return 0, false
	}
	pde := m.U64(pdpte&addr + (va>>21&511)*8)
	if pde&0x81 != 0x81 {
		return 0, false
	}
	return pde&0x000fffffffe00000 | va&0x1fffff, true
}

func TestLoadPlacement(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name string
		edit func(b []byte)
		mem  uint64
		load uint64
	}{
		{"pref_address aligned up", func(b []byte) { le.PutUint64(b[OffPrefAddress:], 0x1100000) }, 64 << 20, 0x1200000},
		{"not relocatable, no pref_address", func(b []byte) {
			b[OffRelocatable] = 0
			le.PutUint64(b[OffPrefAddress:], 0)
		}, 64 << 20, DefaultLoad},
		{"setup_sects 0 means 4", func(b []byte) { b[OffSetupSects] = 0 }, 64 << 20, 0x1000000},
	} {
		t.Run(c.name, func(t *testing.T) {
			pm := pmCode()
			img := bzImage(append(make([]byte, 0x600), pm...), c.edit) // setup_sects 4 reads pm at 0xa00
			if c.name != "setup_sects 0 means 4" {
				img = bzImage(pm, c.edit)
			}
			m := boottest.NewMem(t, c.mem)
			e, err := Load(m, img, Config{Map: m.Map})
			if err != nil {
				t.Fatal(err)
			}
			if e.RIP != c.load+Entry64 || m.Bytes(e.RIP, 1)[0] != 0xf4 {
				t.Fatalf("rip %#x (byte %#x), want %#x", e.RIP, m.Bytes(e.RIP, 1)[0], c.load+Entry64)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name    string
		edit    func(b []byte)
		cmdline string
		initrd  int
		mem     uint64
		want    string
	}{
		{name: "not a bzImage", edit: func(b []byte) { b[OffHeader] = 'X' }, want: "HdrS"},
		{name: "protocol 2.11", edit: func(b []byte) { le.PutUint16(b[OffVersion:], 0x020b) }, want: "boot protocol 2.11"},
		{name: "no 64-bit entry", edit: func(b []byte) { le.PutUint16(b[OffXLoadFlags:], 2) }, want: "XLF_KERNEL_64"},
		{name: "zImage", edit: func(b []byte) { b[OffLoadFlags] = 0 }, want: "LOADED_HIGH"},
		{name: "header end past boot_params' header", edit: func(b []byte) { b[OffJump+1] = 0xa0 }, want: "setup header end"},
		{name: "header too short", edit: func(b []byte) { b[OffJump+1] = 0x10 }, want: "before init_size"},
		{name: "setup_sects past the file", edit: func(b []byte) { b[OffSetupSects] = 200 }, want: "past the end"},
		{name: "alignment not a power of two", edit: func(b []byte) { le.PutUint32(b[OffKernelAlignment:], 0x300000) }, want: "kernel_alignment 0x300000"},
		{name: "command line too long", cmdline: strings.Repeat("x", 2048), want: "cmdline_size 2047"},
		{name: "kernel past RAM", mem: 16 << 20, want: "init_size"},
		{name: "not relocatable, pref past RAM", edit: func(b []byte) { b[OffRelocatable] = 0 }, mem: 20 << 20, want: "not relocatable"},
		{name: "initrd too big", initrd: 100 << 20, want: "initrd of 104857600 bytes"},
		{name: "initrd_addr_max low", edit: func(b []byte) { le.PutUint32(b[OffInitrdAddrMax:], 0xfffff) }, initrd: 10, want: "initrd_addr_max 0xfffff"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := c.mem
			if mem == 0 {
				mem = 64 << 20
			}
			m := boottest.NewMem(t, mem)
			_, err := Load(m, bzImage(pmCode(), c.edit), Config{Cmdline: c.cmdline, Initrd: make([]byte, c.initrd), Map: m.Map})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	m := boottest.NewMem(t, 64<<20)
	if _, err := Load(m, bzImage(pmCode()[:Entry64], nil), Config{Map: m.Map}); err == nil || !strings.Contains(err.Error(), "64-bit entry point") {
		t.Fatalf("short protected-mode code: err = %v", err)
	}
}

// FuzzLoad mutates a bzImage's first 0x400 bytes: the loader errs or
// loads, never panics or writes outside guest memory; a load leaves
// everything it wrote below 4 GiB, identity-mapped and non-overlapping,
// with RIP in the loaded code.
func FuzzLoad(f *testing.F) {
	f.Add(bzImage(pmCode(), nil)[:0x400], "console=ttyS0", 100)
	f.Fuzz(func(t *testing.T, setup []byte, cmdline string, initrd int) {
		if len(setup) > 0x1000 {
			return
		}
		img := append(append([]byte(nil), setup...), pmCode()...)
		m := boottest.NewMem(t, 48<<20)
		e, err := Load(m, img, Config{Cmdline: cmdline, Initrd: make([]byte, initrd&0xfffff), Map: m.Map})
		if err != nil {
			return
		}
		if err := boottest.Overlaps(e.Occupied); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.Occupied {
			if r.End() > IdentityLimit {
				t.Fatalf("%v is not identity-mapped", r)
			}
		}
		if got, ok := walk(m, e.CR3, e.RIP); !ok || got != e.RIP {
			t.Fatalf("RIP %#x not identity-mapped", e.RIP)
		}
	})
}
