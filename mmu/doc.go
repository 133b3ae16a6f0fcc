// Package mmu walks a guest's paging structures the way the CPU does, so
// that walkvm's own MMIO path can fetch and access guest memory by linear
// address without asking KVM.
//
// It follows KVM's arch/x86/kvm/mmu/paging_tmpl.h: one walk loop over a
// Format value (entry size, levels, index bits, large-page levels, flag
// positions), instantiated as the walkers nonpaging, paging32 and paging64
// (PAE is paging64 with 3 levels) plus EPT. Everything that depends only on
// control registers and CPUID — format, reserved-bit masks, the permission
// table (KVM's update_permission_bitmask) — is computed once by
// Context.Reset; Context.Walk then allocates nothing.
//
// A guest fault is an *x86.Exception with the #PF error code and CR2 the CPU
// would report (SDM Vol. 3A §4.7), #GP(0)/#SS(0) for a non-canonical
// address; EPT faults are *EPTViolation and *EPTMisconfig. A paging-structure
// entry outside guest RAM is a *MemoryError wrapping the Memory's error.
//
// Choices that differ from, or go beyond, KVM's walker:
//   - PAE PDPTEs come from the PDPTE registers when the caller has them
//     (State.HasPDPTEs), else from memory at CR3. Reserved bits in a PDPTE
//     are #GP(0) at load time (LoadPDPTEs); a walk that meets one reports
//     #PF with P|RSVD, because the access cannot be translated and a walk
//     has no load to fault. KVM only checks the present bit during a walk.
//   - I/D is set for fetches when CR4.SMEP=1, or EFER.NXE=1 with CR4.PAE=1,
//     as SDM §4.7 says; KVM looks at EFER.NXE alone.
//   - PSE-36 uses bits 20:13 of a 4-MByte PDE up to MAXPHYADDR (at most 40),
//     per SDM Table 4-4; KVM assumes 36 bits.
//   - AMD guests (Features.AMD) reserve bit 8 of PML4Es and PML5Es, as KVM
//     does.
//   - Canonical checks (64-bit mode only) live here, not in a caller.
//   - Walk only looks; WalkCommit, for an access being made, sets accessed
//     and dirty flags with a compare-and-exchange on each entry and walks
//     again when another vCPU changed one in between, as KVM's walker does
//     with cmpxchg, so vCPUs can share paging structures.
//   - The operating and paging mode come from x86.ModeOf and x86.PagingOf,
//     the classifier the emulator and the vCPU's reports use too.
//   - Protection keys for supervisor pages (CR4.PKS), shadow stacks, LAM,
//     mode-based execute control for EPT and AMD's reserved bits are not
//     modelled.
//
// README.md has the API in brief, the KVM differential test's results and
// the benchmark figures.
package mmu
