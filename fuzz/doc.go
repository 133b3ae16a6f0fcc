// Package fuzz is `vmm fuzz`: it generates small flat guests, each running
// one instruction built from the decoder's own opcode tables
// (decode.Forms) with its memory operand aimed at an MMIO window, a page
// or segment boundary or a fault-raising address, in one of the modes the
// host can enter (real, protected, 32-bit paging, PAE, 4- and 5-level long
// mode), and runs them under `-verify exec`, where walkvm executes every
// MMIO instruction itself and compares the result with KVM's. Each
// distinct disagreement class (the instruction, the fields that differ,
// the kind of verdict) is shrunk to a small guest and written to a
// directory with a JSON description, replayable with `vmm run`.
//
// Generation and shrinking are pure functions of a seed and a Runner, so
// they are tested without KVM; Run needs /dev/kvm.
package fuzz
