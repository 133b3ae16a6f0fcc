package ownpath

import (
	"encoding/binary"
	"testing"

	"walkvm/kvm"
	"walkvm/x86"
)

// FuzzWriteExit feeds the backward decode of a write exit arbitrary code
// bytes, registers and exits: it never panics, and a match always covers
// KVM's access.
func FuzzWriteExit(f *testing.F) {
	f.Add([]byte{0xb0, 0x66, 0x89, 0x07}, uint8(2), uint64(0xd0010), uint8(4), uint64(0x12345666))
	f.Add([]byte{0x90, 0xf3, 0xab}, uint8(2), uint64(0xd0040), uint8(4), uint64(0))
	f.Fuzz(func(t *testing.T, code []byte, modeSel uint8, gpa uint64, n uint8, regSeed uint64) {
		if len(code) == 0 || len(code) > 64 {
			return
		}
		mode := []string{"real", "prot32", "long64"}[modeSel%3]
		p := newTestPath(t, mode, code)
		for r := range p.exit.st.GPR {
			p.exit.st.GPR[r] = regSeed * uint64(r+1) & 0xfffff
		}
		p.exit.st.GPR[x86.RSP] = 0xe000
		exit := &kvm.MMIOExit{PhysAddr: gpa, Len: uint32(n%8 + 1), IsWrite: 1}
		binary.LittleEndian.PutUint64(exit.Data[:], regSeed)
		var win writeWindow
		var ms writeMatches
		p.findWrite(&win, exit, int(exit.Len), &ms)
		for i := range ms.n {
			if m := &ms.m[i]; !isKVMFragment(&m.acc, exit.PhysAddr, int(exit.Len)) {
				t.Fatalf("match %+v does not cover KVM's %d bytes at %#x", m.acc, exit.Len, exit.PhysAddr)
			}
		}
		if ms.n > 0 && (ms.pick < 0 || ms.pick >= ms.n) {
			t.Fatalf("picked match %d of %d", ms.pick, ms.n)
		}
	})
}

// FuzzReadExit: the read-exit check on arbitrary code never panics.
func FuzzReadExit(f *testing.F) {
	f.Add([]byte{0x8b, 0x03}, uint8(2), uint64(0xd0000))
	f.Fuzz(func(t *testing.T, code []byte, modeSel uint8, gpa uint64) {
		if len(code) == 0 || len(code) > 64 {
			return
		}
		mode := []string{"real", "prot32", "long64"}[modeSel%3]
		p := newTestPath(t, mode, code)
		p.exit.st.RIP = 0x1000
		p.cfg.Verify = VerifyWarn
		exit := &kvm.MMIOExit{PhysAddr: gpa, Len: 4}
		_ = p.readExit(exit, 4)
	})
}
