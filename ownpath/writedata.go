package ownpath

import (
	"walkvm/emulate"
	"walkvm/kvm"
)

// resolveByData settles a write exit whose candidates disagree about the
// access by what each would have written: with the state at the exit
// rewound, each candidate is executed on a copy (emulate.ExecuteOnCopy),
// and only those that write KVM's bytes at KVM's address stay. A 66 byte
// in front of an SSE store is the common case: 66 0F 7F /r (MOVDQA, 16
// bytes) and 0F 7F /r behind it (MOVQ from an MMX register, 8 bytes) both
// explain an 8-byte exit, but only one of them holds KVM's data. It runs
// only for ambiguous exits and returns the match to keep and whether the
// ambiguity remains.
func (p *Path) resolveByData(win *writeWindow, exit *kvm.MMIOExit, n int, first writeMatch) (writeMatch, bool) {
	end := p.exit.st.RIP
	if first.end != end {
		return first, true // a CALL found through its return address
	}
	xv := &p.xv
	set := p.candidates(win, p.exit.st.DecodeMode(), end)
	var keep writeMatch
	kept := 0
	for i := range set.n {
		inst, k := &set.insts[i], uint64(set.k[i])
		acc, undo, ok := p.candidateWrites(inst, end-k, exit, n)
		if !ok {
			continue
		}
		xv.pre = p.exit.st
		xv.pre.RIP = end - k
		xv.pre.Vec = nil
		if p.cfg.CPU != nil {
			xv.pre.Vec = &p.vec
		}
		if undo {
			emulate.Rewind(&xv.pre, inst)
		}
		xv.emu.MaxRep = 1
		xv.inst = *inst
		if err := xv.emu.ExecuteOnCopy(&xv.pre, &xv.inst, nil, &xv.fx); err != nil {
			continue
		}
		if !wroteExit(&xv.fx, exit, n) {
			continue
		}
		m := writeMatch{start: end - k, end: end, len: inst.Len, acc: acc, undo: undo, inst: *inst}
		switch {
		case kept == 0:
			keep = m
		case acc.Pieces != keep.acc.Pieces || acc.Size != keep.acc.Size:
			return first, true
		}
		kept++
	}
	if kept == 0 {
		return first, true
	}
	return keep, false
}

// wroteExit reports whether an execution wrote exactly KVM's n bytes at
// KVM's address.
func wroteExit(fx *emulate.Effects, exit *kvm.MMIOExit, n int) bool {
	for j := range n {
		v, ok := effectsWrote(fx, exit.PhysAddr+uint64(j))
		if !ok || v != exit.Data[j] {
			return false
		}
	}
	return true
}
