package ownpath

import (
	"bytes"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/x86"
)

// KVM's emulator does not store a REP INS element by element, as the SDM
// describes it, when the direction flag is clear: pio_in_emulated
// (arch/x86/kvm/emulate.c) reads up to min(elements left in the page,
// 1024 bytes' worth, rCX) elements from the port in one KVM_EXIT_IO with
// count > 1, advances rDI and rCX past all of them, and stores them with
// one write of count×size bytes (OP_MEM_STR). On MMIO that write reaches
// userspace as write exits of 8 bytes each, with RIP still at the
// instruction and rDI already past the batch. The path keeps the data of
// the last string IN exit so that the write exits behind it are checked
// against that batch: address, size and the bytes the port returned.

// insBatchMax is the most a batch holds: KVM's struct read_cache.
const insBatchMax = 1024

// insBatch is the last string IN exit, valid while the exits after it are
// MMIO writes.
type insBatch struct {
	valid bool
	size  uint8  // element size
	count uint32 // elements
	data  [insBatchMax]byte
}

// observe keeps the batch of a string IN exit once its data is in
// (after the exit was handled), and drops it at any exit that is not one
// of the batch's MMIO writes.
func (b *insBatch) observe(e *kvm.Exit, handled bool) {
	switch e.Kind {
	case kvm.KindIO:
		io := &e.IO
		if !handled {
			b.valid = false
			return
		}
		if io.Out || io.Count < 2 || len(io.Data) > insBatchMax || len(io.Data) != int(io.Size)*int(io.Count) {
			return
		}
		b.valid, b.size, b.count = true, io.Size, io.Count
		copy(b.data[:], io.Data)
	case kvm.KindMMIO:
		if b.valid && (e.MMIO == nil || e.MMIO.IsWrite == 0) {
			b.valid = false
		}
	case kvm.KindInterrupted:
	default:
		b.valid = false
	}
}

// insBatchWrite reports the batch write of a REP INS candidate that covers
// KVM's exit: count×size bytes at ES:rDI-count×size (rDI as the exit found
// it), one page at most, holding the port's bytes where KVM's exit lies.
func (p *Path) insBatchWrite(inst *decode.Inst, start uint64, exit *kvm.MMIOExit, n int) (emulate.MemRef, bool) {
	b := &p.ins
	s := p.exit.st
	if !b.valid || inst.Op != decode.INS || !(inst.Prefix.Rep || inst.Prefix.Repne) ||
		s.RFLAGS&x86.FlagDF != 0 || inst.OpSize != b.size {
		return emulate.MemRef{}, false
	}
	total := uint64(b.count) * uint64(b.size)
	mask := ^uint64(0)
	switch inst.AddrSize {
	case 2:
		mask = 0xffff
	case 4:
		mask = 0xffffffff
	}
	s.Vec = nil
	s.RIP = start
	var acc emulate.MemRef
	if err := p.finder.ResolveRange(&s, x86.ES, (s.GPR[x86.RDI]-total)&mask, uint16(total), true, &acc); err != nil {
		return emulate.MemRef{}, false
	}
	if acc.N != 1 || !isKVMFragment(&acc, exit.PhysAddr, n) {
		return emulate.MemRef{}, false
	}
	off := exit.PhysAddr - acc.Pieces[0].GPA
	if !bytes.Equal(exit.Data[:n], b.data[off:off+uint64(n)]) {
		return emulate.MemRef{}, false
	}
	return acc, true
}
