package mmu_test

import (
	"errors"
	"fmt"

	"walkvm/mmu"
	"walkvm/x86"
)

// The emulator's use: build a Context from the vCPU's registers once per
// exit, then translate each access. WalkCommit is the walk of an access being
// made: it sets accessed/dirty flags (Walk only looks). A #PF comes back as
// *x86.Exception with the error code and CR2 to inject.
func ExampleContext_Walk() {
	ram := mmu.NewSliceMemory(0, 1<<20)
	// 4-level tables at 0x1000.. mapping linear 0x400000 to GPA 0x9000,
	// read-only and supervisor-only at the PTE.
	ram.WriteUint64(0x1000, 0x2000|3)     // PML4E[0]
	ram.WriteUint64(0x2000, 0x3000|3)     // PDPTE[0]
	ram.WriteUint64(0x3000+2*8, 0x4000|3) // PDE[2]
	ram.WriteUint64(0x4000, 0x9000|1)     // PTE[0]: present, read-only

	s := mmu.State{
		CR0: x86.CR0PE | x86.CR0PG | x86.CR0WP, CR3: 0x1000, CR4: x86.CR4PAE,
		EFER: x86.EFERLME | x86.EFERLMA | x86.EFERNXE, CSL: true, CPL: 0,
	}
	features := mmu.Features{MaxPhyAddr: 48} // or mmu.FeaturesFromCPUID(guest CPUID)
	var c mmu.Context
	if err := c.Reset(&s, features); err != nil {
		panic(err)
	}
	var w mmu.Walk
	for _, acc := range []x86.Access{x86.AccessRead, x86.AccessFetch, x86.AccessWrite} {
		err := c.WalkCommit(ram, 0x400123, acc, &w)
		var ex *x86.Exception
		switch {
		case err == nil:
			fmt.Printf("%#x -> gpa %#x, %d-byte page, %v, walker %v, %d levels\n",
				w.Addr, w.GPA, w.PageSize, w.Perm, w.Walker, w.N)
		case errors.As(err, &ex):
			fmt.Printf("%s: error code %#x, CR2 %#x\n", x86.VectorName(ex.Vector), ex.ErrorCode, ex.Addr)
		default:
			fmt.Println("walkvm cannot translate:", err)
		}
	}
	pte, _ := ram.ReadUint64(0x4000)
	fmt.Printf("PTE now %#x (accessed)\n", pte)
	// Output:
	// 0x400123 -> gpa 0x9123, 4096-byte page, r-x-, walker paging64, 4 levels
	// 0x400123 -> gpa 0x9123, 4096-byte page, r-x-, walker paging64, 4 levels
	// #PF: error code 0x3, CR2 0x400123
	// PTE now 0x9021 (accessed)
}
