// Package emulate is the instruction side of walkvm's own MMIO path: it
// fetches the bytes at CS:RIP through the guest's paging, decodes them with
// walkvm/emulate/decode, resolves every memory operand to the
// guest-physical accesses the CPU would make (segmentation, limits,
// canonical checks, page splits), and executes the instructions that touch
// MMIO with RFLAGS exactly as the CPU sets them.
//
// It knows nothing about KVM: the guest is a State (registers as
// KVM_GET_REGS/SREGS give them, vector state loaded lazily through Vector)
// and a Memory (translate, read and write guest-physical memory), which the
// vCPU implements over mmu and its device bus. Guest faults are
// *x86.Exception; instructions walkvm does not execute are
// *NotEmulatedError.
package emulate
