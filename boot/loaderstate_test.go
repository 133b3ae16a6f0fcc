package boot

import (
	"strings"
	"testing"

	"walkvm/boot/loader"
	"walkvm/kvm"
)

func TestDecodeDescriptor(t *testing.T) {
	for _, c := range []struct {
		d    uint64
		want kvm.Segment
	}{
		{loader.DescCode32, kvm.Segment{Limit: 0xffffffff, Typ: 11, S: 1, Present: 1, DB: 1, G: 1}},
		{loader.DescData32, kvm.Segment{Limit: 0xffffffff, Typ: 3, S: 1, Present: 1, DB: 1, G: 1}},
		{loader.DescCode64, kvm.Segment{Limit: 0xffffffff, Typ: 11, S: 1, Present: 1, L: 1, G: 1}},
		{loader.DescTSS32Busy, kvm.Segment{Limit: 0x67, Typ: 11, Present: 1}},
		{0x12cf9a345678ffff, kvm.Segment{Base: 0x12345678, Limit: 0xffffffff, Typ: 10, S: 1, Present: 1, DB: 1, G: 1}},
		{gdt[4], kvm.Segment{Limit: 0xffff, Typ: 11, S: 1, Present: 1}},
		{gdt[5], kvm.Segment{Limit: 0xffff, Typ: 3, S: 1, Present: 1}},
	} {
		if got := DecodeDescriptor(c.d); got != c.want {
			t.Errorf("%#x: %+v, want %+v", c.d, got, c.want)
		}
	}
}

func TestEntryState(t *testing.T) {
	e := &loader.Entry{
		Mode: loader.Protected32, RIP: 0x1000100, RBX: 0x9e000,
		CR0: loader.CR0PE | loader.CR0ET, GDTBase: 0x9e100,
		GDT: []uint64{0, loader.DescCode32, loader.DescData32, loader.DescTSS32Busy},
		CS:  0x08, DS: 0x10, TR: 0x18,
	}
	regs, sregs, err := EntryState(e)
	if err != nil {
		t.Fatal(err)
	}
	if regs.RIP != 0x1000100 || regs.RBX != 0x9e000 || regs.RFLAGS != 2 {
		t.Fatalf("regs %+v", regs)
	}
	if sregs.CS.Selector != 8 || sregs.CS.DB != 1 || sregs.SS.Selector != 0x10 || sregs.ES.Typ != 3 || sregs.TR.Selector != 0x18 || sregs.TR.Limit != 0x67 || sregs.TR.Typ != 11 {
		t.Fatalf("segments cs %+v ss %+v tr %+v", sregs.CS, sregs.SS, sregs.TR)
	}
	if sregs.GDT.Base != 0x9e100 || sregs.GDT.Limit != 31 {
		t.Fatalf("gdt %+v", sregs.GDT)
	}
	for _, c := range []struct {
		edit func(e *loader.Entry)
		want string
	}{
		{func(e *loader.Entry) { e.CS = 0x20 }, "CS selector 0x20"},
		{func(e *loader.Entry) { e.DS = 0 }, "DS selector 0x0"},
		{func(e *loader.Entry) { e.TR = 0x1b }, "TR selector 0x1b"},
		{func(e *loader.Entry) { e.Mode = 0 }, "unknown"},
		{func(e *loader.Entry) { e.GDT = nil }, "GDT of 0"},
	} {
		bad := *e
		c.edit(&bad)
		if _, _, err := EntryState(&bad); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}
