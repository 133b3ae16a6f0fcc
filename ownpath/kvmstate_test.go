package ownpath

import (
	"testing"

	"walkvm/kvm"
	"walkvm/x86"
)

// gprOf and gprsOf read KVM's registers in one order: every general
// register by its encoding, each from a field of its own.
func TestKVMGPR(t *testing.T) {
	r := kvm.Regs{RAX: 0xa0, RBX: 0xb0, RCX: 0xc0, RDX: 0xd0, RSI: 0x51, RDI: 0xd1, RSP: 0x5b, RBP: 0xbb,
		R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15, RIP: 0x1b, RFLAGS: 0xf1}
	want := [x86.NumGPR]uint64{x86.RAX: 0xa0, x86.RCX: 0xc0, x86.RDX: 0xd0, x86.RBX: 0xb0, x86.RSP: 0x5b,
		x86.RBP: 0xbb, x86.RSI: 0x51, x86.RDI: 0xd1, x86.R8: 8, x86.R9: 9, x86.R10: 10, x86.R11: 11,
		x86.R12: 12, x86.R13: 13, x86.R14: 14, x86.R15: 15}
	var g [x86.NumGPR]uint64
	gprsOf(&g, &r)
	for i := range x86.NumGPR {
		if g[i] != want[i] || gprOf(&r, i) != want[i] {
			t.Errorf("%v: gprsOf %#x, gprOf %#x, want %#x", x86.Reg(i), g[i], gprOf(&r, i), want[i])
		}
	}
}
