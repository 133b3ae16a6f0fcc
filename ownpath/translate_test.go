package ownpath

import (
	"encoding/binary"
	"testing"

	"walkvm/emulate"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/trace"
	"walkvm/x86"
)

// translator answers KVM_TRANSLATE with a fixed verdict.
type translator struct {
	gpa   uint64
	valid bool
}

func (t translator) Translate(la uint64) (uint64, bool, error) { return t.gpa | la&0xfff, t.valid, nil }

// A user page at CPL 3 under SMAP, as Linux's user space runs: walkvm's
// user walk translates it, while KVM_TRANSLATE (an explicit supervisor
// read) must call it invalid; with RFLAGS.AC KVM translates it, to the
// same page.
func TestTranslateCheckSMAP(t *testing.T) {
	const p, rw, us = 1, 2, 4
	ram := memory.NewRAMFromSlice(make([]byte, 1<<20))
	le := binary.LittleEndian
	put := func(gpa, v uint64) {
		var b [8]byte
		le.PutUint64(b[:], v)
		if err := ram.Write(gpa, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	put(0x1000, 0x2000|p|rw|us)
	put(0x2000, 0x3000|p|rw|us)
	put(0x3000, 0x4000|p|rw|us)
	put(0x4000, 0x9000|p|us) // user code page, read-only
	for _, c := range []struct {
		name     string
		ac       bool
		kvm      translator
		mismatch bool
	}{
		{"SMAP refuses KVM's read: invalid agrees", false, translator{0, false}, false},
		{"SMAP refuses KVM's read: valid disagrees", false, translator{0x9000, true}, true},
		{"AC overrides SMAP: same page agrees", true, translator{0x9000, true}, false},
		{"AC overrides SMAP: invalid disagrees", true, translator{0, false}, true},
		{"AC overrides SMAP: other page disagrees", true, translator{0x8000, true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rflags := uint64(2)
			if c.ac {
				rflags |= x86.FlagAC
			}
			g := &guestMem{phys: physMem{ram: ram, bus: memory.NewBus("mmio"), stats: trace.NewStats(0)}, kvm: c.kvm}
			s := mmu.State{CR0: x86.CR0PE | x86.CR0PG | x86.CR0WP, CR3: 0x1000, CR4: x86.CR4PAE | x86.CR4SMAP | x86.CR4SMEP,
				EFER: x86.EFERLME | x86.EFERLMA | x86.EFERNXE, CSL: true, CPL: 3, RFLAGS: rflags}
			if err := g.ctx.Reset(&s, mmu.Features{MaxPhyAddr: 48}); err != nil {
				t.Fatal(err)
			}
			gpa, err := g.Translate(0x123, emulate.Intent{Access: x86.AccessFetch})
			if err != nil || gpa != 0x9123 {
				t.Fatalf("fetch walk: %#x, %v", gpa, err)
			}
			if g.checks != 1 || (g.mismatches == 1) != c.mismatch || g.mismatch.seen != c.mismatch {
				t.Errorf("%d checks, %d mismatches (seen %v), want a mismatch: %v", g.checks, g.mismatches, g.mismatch.seen, c.mismatch)
			}
		})
	}
}
