package multiboot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"walkvm/boot/elfload"
	"walkvm/boot/internal/boottest"
	"walkvm/boot/loader"
)

// TestProjectGuests loads the project's own multiboot guests (guest/
// mbinfo.S, built by guest/build.sh) the way they expect to be run and
// checks what their checks rely on: the entry point, the information
// fields, and that the loader kept everything out of the image and the
// areas the guests write.
func TestProjectGuests(t *testing.T) {
	module, err := os.ReadFile("../../guest/mbmodule.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file         string
		class        int
		machine      uint16
		aout, hasELF bool
		entry        uint64 // _start, after the 12- or 32-byte header
	}{
		{"mbelf32.elf", elfload.ClassELF32, elfload.EM386, false, true, 0x100c},
		{"mbelf64.elf", elfload.ClassELF64, elfload.EMX86_64, false, true, 0x100c},
		{"mbelf64x32.elf", elfload.ClassELF32, elfload.EM386, false, true, 0x100c},
		{"mbaout.bin", 0, 0, true, false, 0x1020},
	} {
		t.Run(c.file, func(t *testing.T) {
			img, err := os.ReadFile(filepath.Join("../../guest", c.file))
			if err != nil {
				t.Fatal(err)
			}
			h, ok, err := FindHeader(img)
			if err != nil || !ok || (h.Flags&FlagAddress != 0) != c.aout {
				t.Fatalf("header %+v %v %v", h, ok, err)
			}
			if c.hasELF {
				f, err := elfload.Parse(img)
				if err != nil || f.Class != c.class || f.Machine != c.machine {
					t.Fatalf("ELF %+v %v", f, err)
				}
			}
			m := boottest.NewMem(t, 128<<20)
			e, err := Load(m, img, Config{Name: "guest/" + c.file, Append: "mbtest mem_upper=130048", Initrd: module, InitrdName: "guest/mbmodule.txt", Map: m.Map})
			if err != nil {
				t.Fatal(err)
			}
			if e.RIP != c.entry || e.RAX != BootMagic {
				t.Fatalf("entry %#x eax %#x", e.RIP, e.RAX)
			}
			if m.U32(e.RBX+OffMemUpper) != 130048 || !strings.HasSuffix(m.CString(uint64(m.U32(e.RBX+OffCmdline))), " mbtest mem_upper=130048") {
				t.Fatalf("mem_upper %d cmdline %q", m.U32(e.RBX+OffMemUpper), m.CString(uint64(m.U32(e.RBX+OffCmdline))))
			}
			var image loader.Range
			for _, r := range e.Occupied {
				if strings.HasPrefix(r.What, "ELF") || strings.HasPrefix(r.What, "multiboot image") {
					image = r
				}
			}
			if image.Base != 0x1000 || image.End() > 0x10000 {
				t.Fatalf("image %v: the guests link at 0x1000 and end below their page tables at 0x10000", image)
			}
			for _, r := range e.Occupied {
				if r != image && (r.Base < 0x2000 || r.Base < 0xe000 && r.End() > 0x8000 || r.Base < 0x80000 && r.End() > 0x10000) {
					t.Errorf("%v lies where the guest writes (page 0, 0x1000, 0x8000-0xdfff, its tables and stack 0x10000-0x7ffff)", r)
				}
			}
		})
	}
}
