package ownpath

import (
	"walkvm/emulate"
	"walkvm/kvm"
)

// resolveByData settles a write exit whose matches disagree about the
// access by what each would have written: with the state at the exit
// rewound, each is executed on a copy (emulate.ExecuteOnCopy), and only
// those that write KVM's bytes at KVM's address stay. A 66 byte in front
// of an SSE store is the common case: 66 0F 7F /r (MOVDQA, 16 bytes) and
// the 0F 7F /r behind it (MOVQ from an MMX register, 8 bytes) both explain
// an 8-byte exit, but only one of them holds KVM's data. It runs only for
// ambiguous exits. Where no match writes KVM's data, ms stays as it was,
// with noData set when every match could be executed (then nothing
// explains the exit).
func (p *Path) resolveByData(ms *writeMatches, exit *kvm.MMIOExit, n int) {
	kept, executed := 0, 0
	for i := range ms.n {
		writes, ran := p.writesExitData(&ms.m[i], exit, n)
		if ran {
			executed++
		}
		if !writes {
			continue
		}
		if kept != i {
			ms.m[kept] = ms.m[i]
		}
		kept++
	}
	if kept == 0 {
		ms.noData = executed == ms.n
		return
	}
	ms.n, ms.ambiguous = kept, false
	for i := 1; i < kept; i++ {
		if ms.m[i].acc.Pieces != ms.m[0].acc.Pieces || ms.m[i].acc.Size != ms.m[0].acc.Size {
			ms.ambiguous = true
		}
	}
	ms.pick = pickWrite(ms.m[:kept])
}

// writesExitData executes m from the rewound state at the exit and
// reports whether it writes exactly KVM's n bytes at KVM's address, and
// whether it could be executed at all.
func (p *Path) writesExitData(m *writeMatch, exit *kvm.MMIOExit, n int) (writes, ran bool) {
	xv := &p.xv
	xv.pre = p.exit.st
	xv.pre.RIP = m.start
	xv.pre.Vec = nil
	if p.cfg.CPU != nil {
		xv.pre.Vec = &p.vec
	}
	if m.undo {
		emulate.Rewind(&xv.pre, m.inst)
	}
	xv.emu.MaxRep = 1
	xv.inst = *m.inst
	if err := xv.emu.ExecuteOnCopy(&xv.pre, &xv.inst, nil, &xv.fx); err != nil {
		return false, false
	}
	for j := range n {
		v, ok := effectsWrote(&xv.fx, exit.PhysAddr+uint64(j))
		if !ok || v != exit.Data[j] {
			return false, true
		}
	}
	return true, true
}
