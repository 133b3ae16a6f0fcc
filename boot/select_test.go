package boot

import (
	"bytes"
	"encoding/binary"
	"os"
	"reflect"
	"strings"
	"testing"

	"walkvm/boot/elfload"
	"walkvm/boot/format"
	"walkvm/boot/internal/boottest"
	"walkvm/boot/linux"
	"walkvm/boot/multiboot"
	"walkvm/memory"
	"walkvm/x86"
)

// bzImage is the smallest bzImage the 64-bit boot protocol takes: one
// setup sector, protocol 2.15, relocatable, XLF_KERNEL_64, and 4 KiB of
// protected-mode code with HLT at the 64-bit entry point.
func bzImage() []byte {
	b := make([]byte, 0x400+0x1000)
	le := binary.LittleEndian
	b[0x1f1] = 1 // setup_sects
	b[0x1ef] = 0xff
	le.PutUint16(b[0x1fe:], 0xaa55)
	b[0x200], b[0x201] = 0xeb, 0x66
	le.PutUint32(b[0x202:], 0x53726448) // "HdrS"
	le.PutUint16(b[0x206:], 0x020f)
	b[0x211] = 1                        // LOADED_HIGH
	le.PutUint32(b[0x22c:], 0x7fffffff) // initrd_addr_max
	le.PutUint32(b[0x230:], 0x200000)   // kernel_alignment
	b[0x234] = 1                        // relocatable
	le.PutUint16(b[0x236:], 1)          // XLF_KERNEL_64
	le.PutUint32(b[0x238:], 2047)       // cmdline_size
	le.PutUint64(b[0x258:], 0x1000000)  // pref_address
	le.PutUint32(b[0x260:], 0x800000)   // init_size
	b[0x400+0x200] = 0xf4
	return b
}

func pvhELF() []byte {
	img, _ := boottest.ELF(64, elfload.EMX86_64, 0xffffffff81000000, []boottest.Seg{
		{PAddr: 0x1000000, Data: bytes.Repeat([]byte{0xf4}, 0x1000), MemSz: 0x200000},
	}, []boottest.Note{{Name: "Xen", Type: 18, Desc: binary.LittleEndian.AppendUint64(nil, 0x1000100)}}, nil)
	return img
}

func plainELF(entry uint64, paddr uint64) []byte {
	img, _ := boottest.ELF(64, elfload.EMX86_64, entry, []boottest.Seg{{PAddr: paddr, Data: []byte{0xf4, 0xf4}, MemSz: 0x2000}}, nil, nil)
	return img
}

func guestFile(t *testing.T, name string) []byte {
	b, err := os.ReadFile("../guest/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kernelMachine is walkvm's machine for kernels: FirmwareMap with the low
// test window carved out, as package machine builds it.
func kernelMachine(t *testing.T, size uint64) (*memory.Map, *memory.RAM) {
	t.Helper()
	mm, err := memory.FirmwareMap(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := mm.Add(boottest.Window); err != nil {
		t.Fatal(err)
	}
	ram, err := memory.NewRAMFromMap(mm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	return mm, ram
}

// Select picks the loader by the image's bytes and says what the image
// needs of the machine.
func TestSelect(t *testing.T) {
	for _, c := range []struct {
		name   string
		image  []byte
		opt    Options
		format format.Kind
		needs  Needs
		err    string
	}{
		{"flat", []byte{0xf4}, Options{Load: 0x1000}, format.Flat, Needs{}, ""},
		{"flat with a command line", []byte{0xf4}, Options{Append: "x"}, format.Flat, Needs{}, "not flat images"},
		{"flat with an initrd", []byte{0xf4}, Options{Initrd: []byte{}}, format.Flat, Needs{}, "not flat images"},
		{"multiboot ELF32", guestFile(t, "mbelf32.elf"), Options{}, format.MultibootELF, Needs{Firmware: true, IRQChip: true}, ""},
		{"multiboot ELF64 as elf32-i386", guestFile(t, "mbelf64x32.elf"), Options{Append: "a", Initrd: []byte("x")}, format.MultibootELF, Needs{Firmware: true, IRQChip: true}, ""},
		{"multiboot a.out kludge", guestFile(t, "mbaout.bin"), Options{}, format.MultibootAout, Needs{Firmware: true, IRQChip: true}, ""},
		{"bzImage", bzImage(), Options{Append: "quiet"}, format.BzImage, Needs{Firmware: true, IRQChip: true, ROMScan: true}, ""},
		{"PVH", pvhELF(), Options{}, format.PVH, Needs{Firmware: true, IRQChip: true, ROMScan: true}, ""},
		{"plain ELF", plainELF(0x200000, 0x200000), Options{Mode: Long}, format.ELF, Needs{Firmware: true}, ""},
		{"plain ELF with an initrd", plainELF(0x200000, 0x200000), Options{Initrd: []byte{1}}, format.ELF, Needs{}, "not ELF images"},
		{"truncated ELF", []byte("\x7fELF\x01\x01\x01"), Options{}, format.ELF, Needs{}, "shorter than an ELF header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Select(c.image, c.opt)
			if got.Format != c.format || got.Reason == "" {
				t.Errorf("format %v (%q), want %v", got.Format, got.Reason, c.format)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one mentioning %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := NeedsOf(got.Loader); n != c.needs {
				t.Errorf("needs %+v, want %+v", n, c.needs)
			}
		})
	}
}

// A kernel's loader claims in Plan exactly what Load writes, around the
// firmware tables, and enters as its boot protocol says.
func TestKernelPlanLoad(t *testing.T) {
	module := []byte("NR_CPUS=2\n")
	for _, c := range []struct {
		name  string
		image []byte
		opt   Options
		cpus  int
		check func(t *testing.T, ram *memory.RAM, e *Entry)
	}{
		{"multiboot ELF", guestFile(t, "mbelf32.elf"), Options{Name: "guest/mbelf32.elf", Append: "mbtest", Initrd: module}, 2, func(t *testing.T, ram *memory.RAM, e *Entry) {
			if e.Mode != Protected || e.Regs.RAX != multiboot.BootMagic || e.Regs.RIP != 0x100c || e.Sregs.CS.DB != 1 || e.Sregs.CR0&x86.CR0PG != 0 {
				t.Errorf("entry %v rax %#x rip %#x cs %+v", e.Mode, e.Regs.RAX, e.Regs.RIP, e.Sregs.CS)
			}
			cmd, _ := ram.ReadUint32(e.Regs.RBX + multiboot.OffCmdline)
			if s := cString(t, ram, uint64(cmd)); s != "guest/mbelf32.elf mbtest" {
				t.Errorf("command line %q", s)
			}
		}},
		{"bzImage", bzImage(), Options{Append: "quiet"}, 1, func(t *testing.T, ram *memory.RAM, e *Entry) {
			if e.Mode != Long || e.Regs.RIP != 0x1000200 || e.Sregs.CS.L != 1 || e.Sregs.EFER&x86.EFERLMA == 0 {
				t.Errorf("entry %v rip %#x cs %+v", e.Mode, e.Regs.RIP, e.Sregs.CS)
			}
			cmd, _ := ram.ReadUint32(e.Regs.RSI + 0x228)
			if s := cString(t, ram, uint64(cmd)); s != linux.Cmdline("quiet") {
				t.Errorf("command line %q", s)
			}
			if rsdp, _ := ram.ReadUint64(e.Regs.RSI + 0x70); rsdp != RSDPBase {
				t.Errorf("acpi_rsdp_addr %#x", rsdp)
			}
		}},
		{"PVH", pvhELF(), Options{}, 4, func(t *testing.T, ram *memory.RAM, e *Entry) {
			if e.Mode != Protected || e.Regs.RIP != 0x1000100 || e.Sregs.TR.Selector == 0 {
				t.Errorf("entry %v rip %#x tr %+v", e.Mode, e.Regs.RIP, e.Sregs.TR)
			}
		}},
		{"plain ELF, long mode", plainELF(0x200001, 0x200000), Options{Mode: Long}, 1, func(t *testing.T, ram *memory.RAM, e *Entry) {
			if e.Mode != Long || e.Regs.RIP != 0x200001 || e.Regs.RSP != 0x200000 || e.Sregs.CR3 != PML4Base || e.Sregs.GDT.Base != GDTBase {
				t.Errorf("entry %v rip %#x rsp %#x cr3 %#x", e.Mode, e.Regs.RIP, e.Regs.RSP, e.Sregs.CR3)
			}
			if b, _ := ram.Slice(0x200000, 2); !bytes.Equal(b, []byte{0xf4, 0xf4}) {
				t.Errorf("segment % x", b)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm, ram := kernelMachine(t, 128<<20)
			ch, err := Select(c.image, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			l := WithFirmware(Firmware{CPUs: c.cpus}, ch.Loader)
			if _, err := l.Load(ram); err == nil || !strings.Contains(err.Error(), "before Plan") {
				t.Errorf("Load before Plan: %v", err)
			}
			if err := l.Plan(mm); err != nil {
				t.Fatal(err)
			}
			e, err := l.Load(ram)
			if err != nil {
				t.Fatal(err)
			}
			var written []memory.Range
			for _, r := range e.Written {
				written = append(written, memory.Range{Name: r.Name, Start: r.Start, Size: r.Size, Kind: memory.KindRAM})
			}
			claims := mm.Claims()
			sortRanges(written)
			if !reflect.DeepEqual(claims, written) {
				t.Errorf("Plan claimed\n%v\nLoad wrote\n%v", claims, written)
			}
			if sig, _ := ram.Slice(RSDPBase, 8); string(sig) != "RSD PTR " {
				t.Errorf("no RSDP at %#x: %q", RSDPBase, sig)
			}
			mp, _ := ram.Slice(MPTableBase, 4)
			if string(mp) != "_MP_" {
				t.Errorf("%d CPUs: MP table at %#x %q", c.cpus, MPTableBase, mp)
			}
			c.check(t, ram, e)
		})
	}
}

func sortRanges(rs []memory.Range) {
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if rs[j].Start < rs[i].Start {
				rs[i], rs[j] = rs[j], rs[i]
			}
		}
	}
}

func cString(t *testing.T, ram *memory.RAM, gpa uint64) string {
	t.Helper()
	var s []byte
	for i := uint64(0); i < 4096; i++ {
		b, err := ram.Slice(gpa+i, 1)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] == 0 {
			return string(s)
		}
		s = append(s, b[0])
	}
	t.Fatalf("no NUL at %#x", gpa)
	return ""
}

// What does not fit is refused in Plan, naming what it overlaps.
func TestKernelPlanRejects(t *testing.T) {
	for _, c := range []struct {
		name  string
		image []byte
		opt   Options
		want  string
	}{
		{"ELF over the ACPI tables", plainELF(0xe0000, 0xe0000), Options{Mode: Protected}, "overlaps ACPI tables"},
		{"ELF over walkvm's GDT", plainELF(0x400, 0x400), Options{Mode: Protected}, "overlaps walkvm's GDT"},
		{"ELF in the test window", plainELF(0xd0000, 0xd0000), Options{Mode: Protected}, "not in guest RAM"},
		{"ELF real mode above 640 KiB", plainELF(0x200000, 0x200000), Options{Mode: Real}, "cannot be entered in real mode"},
		{"ELF above 4 GiB in protected mode", plainELF(1<<33, 0x200000), Options{Mode: Protected}, "not a 32-bit address"},
		{"a.out past RAM", append(mbHeaderAout(0x7fff000, 0x7fff000, 0x8000000+0x1000), make([]byte, 0x100)...), Options{}, "not in guest RAM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm, _ := kernelMachine(t, 128<<20)
			ch, err := Select(c.image, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			err = WithFirmware(Firmware{CPUs: 1}, ch.Loader).Plan(mm)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// mbHeaderAout is a multiboot header with the address fields: the file is
// loaded at load, its bss runs to bssEnd, entry at load.
func mbHeaderAout(header, load, bssEnd uint32) []byte {
	le := binary.LittleEndian
	flags := uint32(multiboot.FlagAddress)
	b := le.AppendUint32(nil, multiboot.HeaderMagic)
	b = le.AppendUint32(b, flags)
	b = le.AppendUint32(b, -(multiboot.HeaderMagic + flags))
	for _, v := range []uint32{header, load, 0, bssEnd, load} {
		b = le.AppendUint32(b, v)
	}
	return b
}
