package boot

import (
	"strings"
	"testing"

	"walkvm/memory"
	"walkvm/x86"
)

// load plans and loads img into fresh RAM laid out as a PC with 4 MiB.
func load(t *testing.T, img Image) (*memory.RAM, *memory.Map, *Entry, error) {
	t.Helper()
	mm, err := memory.PCMap(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	ram, err := memory.NewRAMFromMap(mm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	e, err := Load(ram, mm, Flat(img))
	return ram, mm, e, err
}

func TestLoadRejects(t *testing.T) {
	page := make([]byte, 4096)
	for _, c := range []struct {
		name string
		img  Image
		want string
	}{
		{"empty", Image{Load: 0x1000}, "empty"},
		{"over the hole", Image{Data: page, Load: 0x9f800}, "PC hole"},
		{"over the GDT", Image{Data: page, Load: 0x400}, "GDT"},
		{"past RAM", Image{Data: page, Load: 4<<20 - 2048, Mode: Protected}, "does not fit"},
		{"wraps", Image{Data: page, Load: ^uint64(0) - 10, Mode: Long}, "wraps"},
		{"long over page tables", Image{Data: page, Load: 0x99800, Mode: Long}, "page tables"},
		{"real above 1 MiB", Image{Data: page, Load: 0x100000}, "below"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := load(t, c.img)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestLoadLong(t *testing.T) {
	ram, mm, e, err := load(t, Image{Data: []byte{0xf4}, Load: 0x1000, Mode: Long})
	if err != nil {
		t.Fatal(err)
	}
	regs, sregs := &e.Regs, &e.Sregs
	if e.Mode != Long || len(e.Written) != 2 || len(mm.Claims()) != 3 {
		t.Errorf("mode %v, wrote %v, claims %v", e.Mode, e.Written, mm.Claims())
	}
	if regs.RIP != 0x1000 || sregs.CS.L != 1 || sregs.EFER&x86.EFERLMA == 0 || sregs.CR3 != PML4Base {
		t.Fatalf("entry state: rip %#x cs.l %d efer %#x cr3 %#x", regs.RIP, sregs.CS.L, sregs.EFER, sregs.CR3)
	}
	// The last 2 MiB page below 4 GiB maps itself.
	pde, err := ram.ReadUint64(PDBase + 3*0x1000 + 511*8)
	if err != nil {
		t.Fatal(err)
	}
	if pde != 0xffe00000|0x83 {
		t.Fatalf("PDE for 0xffe00000 = %#x", pde)
	}
}

func TestLoadRealHighSegment(t *testing.T) {
	_, _, e, err := load(t, Image{Data: []byte{0xf4}, Load: 0x20010})
	if err != nil {
		t.Fatal(err)
	}
	regs, sregs := &e.Regs, &e.Sregs
	if got := sregs.CS.Base + regs.RIP; got != 0x20010 {
		t.Fatalf("CS:IP points at %#x", got)
	}
	if top := sregs.SS.Base + regs.RSP; top > 0x20010 || top < 0x20010-0x20 {
		t.Fatalf("stack top %#x is not just below the image", top)
	}
}
