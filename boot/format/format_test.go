package format

import (
	"encoding/binary"
	"strings"
	"testing"

	"walkvm/boot/elfload"
	"walkvm/boot/internal/boottest"
	"walkvm/boot/linux"
	"walkvm/boot/multiboot"
	"walkvm/boot/pvh"
)

func mbHeader(flags uint32, addr ...uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, multiboot.HeaderMagic)
	b = le.AppendUint32(b, flags)
	b = le.AppendUint32(b, -(multiboot.HeaderMagic + flags))
	for _, a := range addr {
		b = le.AppendUint32(b, a)
	}
	return b
}

func bzImage(version uint16) []byte {
	b := make([]byte, 0x800)
	le := binary.LittleEndian
	b[linux.OffSetupSects] = 1
	le.PutUint16(b[linux.OffBootFlag:], linux.BootFlag)
	b[linux.OffJump+1] = 0x66
	le.PutUint32(b[linux.OffHeader:], linux.HeaderHdrS)
	le.PutUint16(b[linux.OffVersion:], version)
	b[linux.OffLoadFlags] = linux.LoadedHigh
	le.PutUint16(b[linux.OffXLoadFlags:], linux.XLFKernel64)
	le.PutUint32(b[linux.OffKernelAlignment:], 0x200000)
	return b
}

func TestDetect(t *testing.T) {
	seg := []boottest.Seg{{PAddr: 0x400000, Data: []byte{0xf4}}}
	mbELF32, _ := boottest.ELF(32, elfload.EM386, 0x400000, seg, nil, mbHeader(0))
	mbELF64, _ := boottest.ELF(64, elfload.EMX86_64, 0x400000, seg, nil, mbHeader(multiboot.FlagMemInfo))
	pvhNote := []boottest.Note{{Name: pvh.NoteName, Type: pvh.NotePhys32Entry, Desc: []byte{0, 0, 0x40, 0}}}
	pvhELF, _ := boottest.ELF(64, elfload.EMX86_64, 0x400000, seg, pvhNote, nil)
	mbAndPVH, _ := boottest.ELF(64, elfload.EMX86_64, 0x400000, seg, pvhNote, mbHeader(0))
	plainELF, _ := boottest.ELF(32, elfload.EM386, 0x400000, seg, nil, nil)
	aout := append(make([]byte, 0x40), mbHeader(multiboot.FlagAddress, 0x100040, 0x100000, 0, 0, 0x100000)...)
	lateHeader := append(make([]byte, multiboot.SearchLimit), mbHeader(0)...)
	lateHeader, _ = boottest.ELF(32, elfload.EM386, 0x400000, seg, nil, lateHeader)
	badSum := append(make([]byte, 16), mbHeader(0)...)
	badSum[16+8]++
	for _, c := range []struct {
		name   string
		img    []byte
		kind   Kind
		reason string
		err    string
	}{
		{"kvm-unit-tests style ELF32", mbELF32, MultibootELF, "ELFCLASS32 EM_386 with a multiboot header at file offset 0x54", ""},
		{"ELF64 multiboot", mbELF64, MultibootELF, "ELFCLASS64 EM_X86_64 with a multiboot header at file offset 0x78 (flags 0x2)", ""},
		{"a.out kludge", aout, MultibootAout, "multiboot header at file offset 0x40, flags 0x10000 with address fields", ""},
		{"multiboot wins over PVH", mbAndPVH, MultibootELF, "multiboot header", ""},
		{"PVH", pvhELF, PVH, "PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY) at 0x400000", ""},
		{"plain ELF", plainELF, ELF, "entered at e_entry 0x400000", ""},
		{"multiboot header past 8 KiB", lateHeader, ELF, "without a multiboot header", ""},
		{"bzImage", bzImage(0x020f), BzImage, "boot protocol 2.15, protected-mode code at file offset 0x400", ""},
		{"old bzImage", bzImage(0x0206), BzImage, "HdrS", "boot protocol 2.06"},
		{"flat", []byte{0xfa, 0xf4}, Flat, "flat binary", ""},
		{"bad checksum is flat", badSum, Flat, "flat binary", ""},
		{"multiboot without addresses, not ELF", append(make([]byte, 4), mbHeader(0)...), MultibootAout, "file offset 0x4", "not ELF"},
		{"multiboot address fields cut off", mbHeader(multiboot.FlagAddress), MultibootAout, "file offset 0x0", "address fields"},
		{"broken ELF", []byte("\x7fELF\x01"), ELF, "magic", "shorter than an ELF header"},
		{"broken multiboot ELF", append([]byte("\x7fELF\x03\x01\x01"), append(make([]byte, 57), mbHeader(0)...)...), MultibootELF, "multiboot header", "e_type 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, reason, err := Detect(c.img)
			if k != c.kind || !strings.Contains(reason, c.reason) {
				t.Fatalf("Detect = %v, %q; want %v, %q", k, reason, c.kind, c.reason)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}

// FuzzDetect: any bytes get a kind and a reason, never a panic.
func FuzzDetect(f *testing.F) {
	f.Add(bzImage(0x020f))
	f.Add(append(make([]byte, 0x40), mbHeader(multiboot.FlagAddress, 1, 2, 3, 4, 5)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, reason, _ := Detect(b)
		if reason == "" || k < Flat || k > ELF {
			t.Fatalf("Detect = %v, %q", k, reason)
		}
	})
}
