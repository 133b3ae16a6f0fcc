package boot

import (
	"fmt"

	"walkvm/boot/loader"
	"walkvm/kvm"
)

// EntryState turns an image loader's entry state (package loader) into
// the KVM register sets to enter it with: each segment register gets the
// descriptor its selector names in the loader's GDT, TR a busy TSS (the
// loader's, or a placeholder when it asked for none), RFLAGS 0x2.
func EntryState(e *loader.Entry) (*kvm.Regs, *kvm.Sregs, error) {
	if e.Mode != loader.Protected32 && e.Mode != loader.Long64 {
		return nil, nil, fmt.Errorf("loader entry state: unknown %v", e.Mode)
	}
	if len(e.GDT) == 0 || len(e.GDT) > 8192 {
		return nil, nil, fmt.Errorf("loader entry state: GDT of %d descriptors", len(e.GDT))
	}
	seg := func(name string, sel uint16) (kvm.Segment, error) {
		i := int(sel >> 3)
		if sel&7 != 0 || i == 0 || i >= len(e.GDT) {
			return kvm.Segment{}, fmt.Errorf("loader entry state: %s selector %#x is not a GDT entry (GDT of %d descriptors)", name, sel, len(e.GDT))
		}
		s := DecodeDescriptor(e.GDT[i])
		s.Selector = sel
		return s, nil
	}
	regs := &kvm.Regs{RFLAGS: 2, RIP: e.RIP, RSP: e.RSP, RAX: e.RAX, RBX: e.RBX, RSI: e.RSI}
	sregs := &kvm.Sregs{CR0: e.CR0, CR3: e.CR3, CR4: e.CR4, EFER: e.EFER}
	sregs.GDT = kvm.Descriptor{Base: e.GDTBase, Limit: uint16(8*len(e.GDT) - 1)}
	sregs.IDT = kvm.Descriptor{Limit: 0x3ff}
	sregs.LDT = kvm.Segment{Limit: 0xffff, Typ: 2, Present: 1}
	var err error
	if sregs.CS, err = seg("CS", e.CS); err != nil {
		return nil, nil, err
	}
	ds, err := seg("DS", e.DS)
	if err != nil {
		return nil, nil, err
	}
	setData(sregs, ds)
	sregs.TR = kvm.Segment{Limit: 0xffff, Typ: 11, Present: 1}
	if e.TR != 0 {
		if sregs.TR, err = seg("TR", e.TR); err != nil {
			return nil, nil, err
		}
	}
	return regs, sregs, nil
}

// DecodeDescriptor unpacks a code, data or system segment descriptor
// (SDM Vol. 3A §3.4.5, Figure 3-8) into KVM's segment form; the selector
// is left zero.
func DecodeDescriptor(d uint64) kvm.Segment {
	bit := func(n uint) uint8 { return uint8(d >> n & 1) }
	s := kvm.Segment{
		Base:    d>>16&0xffffff | d>>56<<24,
		Limit:   uint32(d&0xffff | d>>48&0xf<<16),
		Typ:     uint8(d >> 40 & 0xf),
		S:       bit(44),
		DPL:     uint8(d >> 45 & 3),
		Present: bit(47),
		AVL:     bit(52),
		L:       bit(53),
		DB:      bit(54),
		G:       bit(55),
	}
	if s.G == 1 {
		s.Limit = s.Limit<<12 | 0xfff
	}
	return s
}
