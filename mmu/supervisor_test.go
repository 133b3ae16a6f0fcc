package mmu_test

import (
	"testing"

	"walkvm/mmu"
	"walkvm/x86"
)

// KVM_TRANSLATE's view of a user page: an explicit supervisor read, which
// SMAP refuses unless RFLAGS.AC, and PKRU.AD of the page's key refuses.
func TestAllowsSupervisorRead(t *testing.T) {
	const p, rw, us = 1, 2, 4
	for _, c := range []struct {
		name     string
		user     bool // U/S of the PTE
		smap, ac bool
		cpl      uint8
		pke      bool
		pkru     uint32
		key      uint64
		want     bool
	}{
		{"user page, no SMAP", true, false, false, 3, false, 0, 0, true},
		{"user page, SMAP, CPL 3", true, true, false, 3, false, 0, 0, false},
		{"user page, SMAP, CPL 3, AC", true, true, true, 3, false, 0, 0, true},
		{"user page, SMAP, CPL 0", true, true, false, 0, false, 0, 0, false},
		{"user page, SMAP, CPL 0, AC", true, true, true, 0, false, 0, 0, true},
		{"supervisor page, SMAP", false, true, false, 0, false, 0, 0, true},
		{"user page, key 1 AD", true, false, false, 3, true, 1 << 2, 1, false},
		{"user page, key 1 WD only", true, false, false, 3, true, 2 << 2, 1, true},
		{"supervisor page, key 1 AD", false, false, false, 0, true, 1 << 2, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ram := mmu.NewSliceMemory(0, 1<<20)
			u := uint64(0)
			if c.user {
				u = us
			}
			ram.WriteUint64(0x1000, 0x2000|p|rw|us)
			ram.WriteUint64(0x2000, 0x3000|p|rw|us)
			ram.WriteUint64(0x3000, 0x4000|p|rw|us)
			ram.WriteUint64(0x4000, 0x9000|p|rw|u|c.key<<59)
			cr4 := uint64(x86.CR4PAE)
			if c.smap {
				cr4 |= x86.CR4SMAP
			}
			if c.pke {
				cr4 |= x86.CR4PKE
			}
			var rflags uint64 = 2
			if c.ac {
				rflags |= x86.FlagAC
			}
			s := mmu.State{CR0: x86.CR0PE | x86.CR0PG | x86.CR0WP, CR3: 0x1000, CR4: cr4,
				EFER: x86.EFERLME | x86.EFERLMA | x86.EFERNXE, CSL: true, CPL: c.cpl, RFLAGS: rflags, PKRU: c.pkru}
			var ctx mmu.Context
			if err := ctx.Reset(&s, mmu.Features{MaxPhyAddr: 48}); err != nil {
				t.Fatal(err)
			}
			var w mmu.Walk
			acc := x86.AccessFetch // a fetch: neither SMAP nor keys apply to it
			if !c.user {
				acc = x86.AccessRead
			}
			if err := ctx.Walk(ram, 0x123, acc, &w); err != nil {
				t.Fatalf("walk: %v", err)
			}
			if got := ctx.AllowsSupervisorRead(&w); got != c.want {
				t.Errorf("AllowsSupervisorRead = %v, want %v (perm %v, key %d)", got, c.want, w.Perm, w.PKey)
			}
		})
	}
	var ctx mmu.Context
	if err := ctx.Reset(&mmu.State{CR0: x86.CR0PE}, mmu.Features{}); err != nil {
		t.Fatal(err)
	}
	var w mmu.Walk
	ctx.Walk(mmu.NewSliceMemory(0, 4096), 0x10, x86.AccessRead, &w)
	if !ctx.AllowsSupervisorRead(&w) {
		t.Error("without paging a supervisor read was refused")
	}
}
