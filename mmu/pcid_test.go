package mmu_test

import (
	"fmt"
	"testing"

	"walkvm/mmu"
	"walkvm/x86"
)

// Linux's tables as KPTI and PCID leave CR3 at a user-mode exit: CR3[11:0]
// is the PCID (CR4.PCIDE=1, SDM Vol. 3A §4.10.1), not part of the table's
// address, and KPTI's user PGD is the odd page of an 8 KiB-aligned pair, so
// CR3 bit 12 is set (Linux's PTI_USER_PGTABLE_BIT) and belongs to the
// address. The walk must start at CR3[51:12] whatever the PCID, and reach
// a user page with NX through U/S at every level, as devmem's mapping is.
func TestWalkCR3WithPCIDAndKPTI(t *testing.T) {
	const (
		kernelPGD = 0x10000
		userPGD   = kernelPGD + 0x1000 // KPTI: the user half of the pair
		la        = 0x7f1234567010     // a user address
		target    = 0xff000000         // the MMIO test window
		p, rw, us = 1, 2, 4
		xd        = 1 << 63
	)
	for _, levels := range []int{4, 5} {
		for _, c := range []struct {
			name string
			cr3  uint64
		}{
			{"kernel PGD, PCID 0", kernelPGD},
			{"user PGD, PCID 0", userPGD},
			{"user PGD, user PCID 0x801", userPGD | 0x801}, // Linux: kernel ASID 1, bit 11 for user
			{"user PGD, PCID 0xfff", userPGD | 0xfff},
		} {
			t.Run(fmt.Sprintf("%d-level/%s", levels, c.name), func(t *testing.T) {
				ram := mmu.NewSliceMemory(0, 1<<20)
				// Both halves of the PGD pair lead to the same tables, as
				// KPTI's user PGD maps user space like the kernel's; only
				// the path from the user PGD is user-accessible here, so a
				// walk from the kernel PGD faults for CPL 3.
				next := uint64(0x20000)
				table := func() uint64 { next += 0x1000; return next - 0x1000 }
				var idx []uint64
				for lv := levels; lv >= 1; lv-- {
					idx = append(idx, la>>(12+9*uint(lv-1))&0x1ff)
				}
				cur := uint64(userPGD)
				for i := range levels - 1 {
					tb := table()
					ram.WriteUint64(cur+8*idx[i], tb|p|rw|us)
					if i == 0 {
						ram.WriteUint64(kernelPGD+8*idx[0], tb|p|rw) // supervisor-only from the kernel PGD
					}
					cur = tb
				}
				ram.WriteUint64(cur+8*idx[levels-1], target|p|rw|us|xd)

				cr4 := uint64(x86.CR4PAE | x86.CR4PCIDE | x86.CR4SMEP | x86.CR4SMAP)
				if levels == 5 {
					cr4 |= x86.CR4LA57
				}
				s := mmu.State{
					CR0: x86.CR0PE | x86.CR0PG | x86.CR0WP, CR3: c.cr3, CR4: cr4,
					EFER: x86.EFERLME | x86.EFERLMA | x86.EFERNXE, CSL: true, CPL: 3,
				}
				var ctx mmu.Context
				if err := ctx.Reset(&s, mmu.Features{MaxPhyAddr: 48}); err != nil {
					t.Fatal(err)
				}
				var w mmu.Walk
				err := ctx.Walk(ram, la, x86.AccessWrite, &w)
				if w.N == 0 || w.Entries[0].TableGPA != c.cr3&^0xfff {
					t.Fatalf("walk began at table %#x (%d entries read), want CR3[51:12] = %#x", w.Entries[0].TableGPA, w.N, c.cr3&^0xfff)
				}
				if c.cr3&^0xfff == kernelPGD {
					if err == nil {
						t.Fatalf("CPL-3 write through a supervisor PML%dE translated to %#x", levels, w.GPA)
					}
					return
				}
				if err != nil {
					t.Fatalf("walk: %v", err)
				}
				if w.GPA != target|la&0xfff || int(w.N) != levels || w.Perm&mmu.PermUser == 0 || w.Perm&mmu.PermExec != 0 {
					t.Errorf("GPA %#x, %d levels, perm %v; want %#x, %d, user and not executable", w.GPA, w.N, w.Perm, target|la&0xfff, levels)
				}
			})
		}
	}
}
