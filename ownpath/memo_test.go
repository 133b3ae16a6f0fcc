package ownpath

import (
	"testing"

	"walkvm/kvm"
	"walkvm/x86"
)

// syncCPU is fakeCPU with registers and special registers in a kvm_run-like
// area, as KVM_CAP_SYNC_REGS leaves them.
type syncCPU struct {
	*fakeCPU
	synced kvm.Sregs
}

func (c *syncCPU) SyncedSregs() *kvm.Sregs { return &c.synced }

// newSyncPath is newEntryPath (real mode, code at 0x1000, the window at
// DS = 0xd000) with synced registers.
func newSyncPath(t *testing.T, code []byte) (*Path, *syncCPU) {
	t.Helper()
	p, cpu, _ := newEntryPath(t, code, nil)
	c := &syncCPU{fakeCPU: cpu}
	s := &c.synced
	s.CS, s.DS, s.ES, s.SS = cpu.sregs.CS, cpu.sregs.DS, cpu.sregs.ES, cpu.sregs.SS
	s.CR0 = cpu.sregs.CR0
	cfg := p.cfg
	cfg.CPU, cfg.SyncRegs, cfg.Stats = c, true, nil
	return New(cfg), c
}

func ioExitAt(seq uint64) *kvm.Exit {
	return &kvm.Exit{Kind: kvm.KindIO, Reason: kvm.ExitIO, Seq: seq, IO: kvm.IOAccess{Port: 0x80, Size: 1, Out: true, Count: 1, Data: make([]byte, 1)}}
}

// The special-register memo: an exit whose synced special registers are
// unchanged reuses the state built from them, and any change to them, to
// RFLAGS.VM, or a completed instruction rebuilds it.
func TestSregsMemo(t *testing.T) {
	p, c := newSyncPath(t, []byte{0x8b, 0x47, 0x10}) // mov 0x10(%bx),%ax
	c.regs.RBX = 0x20
	seq := uint64(0)
	read := func() {
		t.Helper()
		seq++
		if err := p.MMIORead(mmioExit(seq, 0xd0030, 2, false, 0)); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if !p.memo.sregs || p.exit.mode.String() != "real" {
		t.Fatalf("first load: memo %v, mode %v", p.memo.sregs, p.exit.mode)
	}
	// The same special registers, other general registers: only those are
	// reloaded, and they are current.
	c.regs.RBX = 0x22
	seq++
	if err := p.MMIORead(mmioExit(seq, 0xd0032, 2, false, 0)); err != nil {
		t.Fatalf("RBX changed: %v", err)
	}
	// DS's base changes under the same selector (a descriptor cache
	// KVM reports): the state follows.
	c.synced.DS.Base = 0xd0100
	seq++
	if err := p.MMIORead(mmioExit(seq, 0xd0132, 2, false, 0)); err != nil {
		t.Fatalf("DS base changed: %v", err)
	}
	if p.exit.st.Seg[x86.DS].Base != 0xd0100 {
		t.Errorf("DS base %#x after it changed", p.exit.st.Seg[x86.DS].Base)
	}
	// A 4-byte read at the old base is a disagreement: the memo did not
	// keep the old DS.
	seq++
	if err := p.MMIORead(mmioExit(seq, 0xd0032, 2, false, 0)); err == nil {
		t.Error("a read at the old DS base agrees")
	}
	// RFLAGS.VM alone changes the mode.
	c.regs.RBX, c.synced.DS.Base = 0x20, 0xd0000
	c.synced.CR0 |= x86.CR0PE
	read()
	if p.exit.mode.String() != "protected16" {
		t.Errorf("mode %v with CR0.PE", p.exit.mode)
	}
	c.regs.RFLAGS |= x86.FlagVM
	read()
	if p.exit.mode.String() != "vm86" {
		t.Errorf("mode %v with CR0.PE and RFLAGS.VM", p.exit.mode)
	}
	c.regs.RFLAGS &^= x86.FlagVM
	read()
	if p.exit.mode.String() == "vm86" {
		t.Errorf("mode %v after RFLAGS.VM cleared", p.exit.mode)
	}
	// A completed instruction may change any of the state: the memo goes.
	c.synced.CR0 &^= x86.CR0PE
	read()
	seq++
	e := &kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError, Seq: seq,
		EmulationFailure: &kvm.EmulationFailure{Suberror: kvm.InternalErrorEmulation}}
	if err := p.EmulationFailure(e); err != nil {
		t.Fatal(err)
	}
	if p.memo.sregs {
		t.Error("the memo outlived a completed instruction")
	}
}

// BeginExit at a port-I/O exit logs the mode without a load while the
// synced special registers stay the same, and loads when they change.
func TestBeginExitMode(t *testing.T) {
	p, c := newSyncPath(t, []byte{0x8b, 0x47, 0x10})
	c.regs.RBX = 0x20
	if err := p.MMIORead(mmioExit(1, 0xd0030, 2, false, 0)); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginExit(ioExitAt(2)); err != nil {
		t.Fatal(err)
	}
	if p.exit.seq != 1 {
		t.Errorf("an I/O exit with the same special registers loaded the state (seq %d)", p.exit.seq)
	}
	s := p.Stats()
	if len(s.Modes) != 1 || s.Modes[0].Exits != 2 {
		t.Fatalf("modes %+v", s.Modes)
	}
	// Protected mode: CR0.PE and a 32-bit CS.
	c.synced.CR0 |= x86.CR0PE
	c.synced.CS.DB, c.synced.CS.Selector = 1, 8
	if err := p.BeginExit(ioExitAt(3)); err != nil {
		t.Fatal(err)
	}
	if p.exit.seq != 3 || len(s.Modes) != 2 || s.Modes[1].Mode.String() != "protected32" || s.Modes[1].FirstCS != 8 {
		t.Errorf("after a mode change: seq %d, modes %+v", p.exit.seq, s.Modes)
	}
	if err := p.BeginExit(ioExitAt(4)); err != nil {
		t.Fatal(err)
	}
	if len(s.Modes) != 2 || s.Modes[1].Exits != 2 {
		t.Errorf("modes %+v", s.Modes)
	}
}
