package ownpath

import (
	"encoding/binary"
	"testing"

	"walkvm/emulate"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
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
	// RFLAGS.AC alone changes the walker's state (SMAP).
	gen := p.mem.memoGen
	c.regs.RFLAGS |= x86.FlagAC
	read()
	if p.memo.walker.RFLAGS&x86.FlagAC == 0 || p.mem.memoGen == gen {
		t.Errorf("walker state %+v (generation %d, was %d) after RFLAGS.AC was set", p.memo.walker, p.mem.memoGen, gen)
	}
	gen = p.mem.memoGen
	read()
	if p.mem.memoGen != gen {
		t.Error("the walker was reset with nothing changed")
	}
	c.regs.RFLAGS &^= x86.FlagAC
	// CR8 and the APIC base build no state: the memo stays, and the path's
	// copy of the special registers has them. EFER, past the run of bytes
	// compared at once, rebuilds it.
	c.synced.CR8, c.synced.ApicBase = 3, 0xfee00900
	read()
	if k := &p.kvm; k.synced.CR8 != 0 || k.sregs.CR8 != 3 || k.sregs.APICBase != 0xfee00900 {
		t.Errorf("after CR8 and the APIC base changed: compared copy's CR8 %d (want 0, kept), CR8 %d, APIC base %#x", k.synced.CR8, k.sregs.CR8, k.sregs.APICBase)
	}
	c.synced.EFER = x86.EFERNXE
	read()
	if p.kvm.synced.EFER != x86.EFERNXE || p.exit.st.EFER != x86.EFERNXE {
		t.Errorf("EFER %#x in the state after it changed", p.exit.st.EFER)
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

// BeginExit logs the mode of every exit from the synced registers without
// loading the state, following mode changes; MMIO exits under -verify off
// load nothing either, and each exit is logged once.
func TestBeginExitMode(t *testing.T) {
	p, c := newSyncPath(t, []byte{0x8b, 0x47, 0x10})
	c.regs.RBX = 0x20
	e := mmioExit(1, 0xd0030, 2, false, 0)
	if err := p.BeginExit(e); err != nil {
		t.Fatal(err)
	}
	if err := p.MMIORead(e); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginExit(ioExitAt(2)); err != nil {
		t.Fatal(err)
	}
	if p.exit.seq != 1 {
		t.Errorf("an I/O exit loaded the state (seq %d)", p.exit.seq)
	}
	s := p.Stats()
	if len(s.Modes) != 1 || s.Modes[0].Exits != 2 {
		t.Fatalf("modes %+v", s.Modes)
	}
	// Protected mode: CR0.PE and a 32-bit CS.
	c.synced.CR0 |= x86.CR0PE
	c.synced.CS.DB, c.synced.CS.Selector = 1, 8
	c.regs.RIP = 0x2000
	if err := p.BeginExit(ioExitAt(3)); err != nil {
		t.Fatal(err)
	}
	if len(s.Modes) != 2 || s.Modes[1].Mode.String() != "protected32" || s.Modes[1].FirstCS != 8 || s.Modes[1].FirstRIP != 0x2000 {
		t.Errorf("after a mode change: modes %+v", s.Modes)
	}
	if err := p.BeginExit(ioExitAt(4)); err != nil {
		t.Fatal(err)
	}
	// Virtual-8086 mode: RFLAGS.VM alone.
	c.regs.RFLAGS |= x86.FlagVM
	if err := p.BeginExit(ioExitAt(5)); err != nil {
		t.Fatal(err)
	}
	if len(s.Modes) != 3 || s.Modes[1].Exits != 2 || s.Modes[2].Mode.String() != "vm86" {
		t.Errorf("modes %+v", s.Modes)
	}
	// -verify off: an MMIO exit is served without a load.
	c.regs.RFLAGS &^= x86.FlagVM
	c.synced.CR0 &^= x86.CR0PE
	p.cfg.Verify = VerifyOff
	e = mmioExit(6, 0xd0030, 2, false, 0)
	if err := p.BeginExit(e); err != nil {
		t.Fatal(err)
	}
	if err := p.MMIORead(e); err != nil {
		t.Fatal(err)
	}
	if p.exit.seq != 1 || len(s.Modes) != 4 || s.Modes[3].Exits != 1 || s.MMIO.Reads != 2 {
		t.Errorf("an MMIO exit under -verify off: loaded seq %d, modes %+v, %+v", p.exit.seq, s.Modes, s.MMIO)
	}
}

// longTables writes 4-level tables at 0x10000 mapping the first MiB one
// to one with 4 KiB pages (present, writable) and returns the GPA of the
// PTE of linear page n.
func longTables(t *testing.T, ram *memory.RAM) func(n uint64) uint64 {
	t.Helper()
	put := func(gpa, v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		if err := ram.Write(gpa, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	put(0x10000, 0x11003)
	put(0x11000, 0x12003)
	put(0x12000, 0x13003)
	for i := range uint64(256) {
		put(0x13000+8*i, i<<12|3)
	}
	return func(n uint64) uint64 { return 0x13000 + 8*n }
}

// The walk memo: a walk of a page for an access it walked before is the
// memo's copy while the entries it read are unchanged; a changed entry, a
// different access or a reset walker walks again, and committing walks
// (which set accessed and dirty flags) never use it.
func TestWalkMemo(t *testing.T) {
	ram := memory.NewRAMFromSlice(make([]byte, 0x100000))
	pte := longTables(t, ram)
	var g guestMem
	g.phys.ram = ram
	reset := func(cr0 uint64) {
		t.Helper()
		s := mmu.State{CR0: cr0, CR3: 0x10000, CR4: x86.CR4PAE, EFER: x86.EFERLME | x86.EFERLMA, CSL: true}
		if err := g.ctx.Reset(&s, mmu.Features{MaxPhyAddr: 48}); err != nil {
			t.Fatal(err)
		}
	}
	reset(x86.CR0PE | x86.CR0PG)
	walkAt := func(la uint64, acc x86.Access) (uint64, error) {
		t.Helper()
		var w mmu.Walk
		err := g.walkMemo.walk(&g.ctx, ram, la, emulate.Intent{Access: acc}, &w)
		return w.GPA, err
	}
	memoed := func(la uint64, acc x86.Access) bool {
		e := &g.walkMemo.e[((la>>12)*4+uint64(acc&3))%walkMemoSize]
		return e.valid && e.page == la>>12 && e.acc == acc && e.gen == g.ctx.Gen()
	}
	if gpa, err := walkAt(0x5123, x86.AccessRead); err != nil || gpa != 0x5123 || !memoed(0x5123, x86.AccessRead) {
		t.Fatalf("first walk: %#x, %v", gpa, err)
	}
	if gpa, err := walkAt(0x5ff0, x86.AccessRead); err != nil || gpa != 0x5ff0 {
		t.Errorf("memoized walk, other offset: %#x, %v", gpa, err)
	}
	// The PTE now maps page 5 to page 9: the memo notices.
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 0x9003)
	if err := ram.Write(pte(5), b[:]); err != nil {
		t.Fatal(err)
	}
	if gpa, err := walkAt(0x5123, x86.AccessRead); err != nil || gpa != 0x9123 {
		t.Errorf("after the PTE changed: %#x, %v", gpa, err)
	}
	// Read-only now: a write faults although the read was memoized.
	binary.LittleEndian.PutUint64(b[:], 0x9001)
	if err := ram.Write(pte(5), b[:]); err != nil {
		t.Fatal(err)
	}
	if gpa, err := walkAt(0x5123, x86.AccessRead); err != nil || gpa != 0x9123 {
		t.Errorf("read after R/W cleared: %#x, %v", gpa, err)
	}
	if _, err := walkAt(0x5123, x86.AccessWrite); err != nil {
		t.Errorf("a supervisor write to a read-only page with CR0.WP clear: %v", err)
	}
	// CR0.WP set: the walker is reset, and the memoized write walk must
	// not stand.
	reset(x86.CR0PE | x86.CR0PG | x86.CR0WP)
	if _, err := walkAt(0x5123, x86.AccessWrite); err == nil {
		t.Error("a supervisor write to a read-only page with CR0.WP set succeeded")
	}
	// Not present: the memoized read walk does not stand either.
	if _, err := walkAt(0x5123, x86.AccessRead); err != nil || !memoed(0x5123, x86.AccessRead) {
		t.Fatalf("read walk under CR0.WP: %v", err)
	}
	binary.LittleEndian.PutUint64(b[:], 0)
	if err := ram.Write(pte(5), b[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := walkAt(0x5123, x86.AccessRead); err == nil {
		t.Error("a read of a page made not present succeeded")
	}
	// A committing walk sets the accessed flags and bypasses the memo.
	if _, err := walkAt(0x6000, x86.AccessRead); err != nil {
		t.Fatal(err)
	}
	var w mmu.Walk
	if err := g.walkMemo.walk(&g.ctx, ram, 0x6000, emulate.Intent{Access: x86.AccessRead, Commit: true}, &w); err != nil {
		t.Fatal(err)
	}
	if v, _ := ram.ReadUint64(pte(6)); v&0x20 == 0 {
		t.Errorf("the committing walk set no accessed flag: PTE %#x", v)
	}
	if gpa, err := walkAt(0x6000, x86.AccessRead); err != nil || gpa != 0x6000 || g.walkMemo.e[(6*4)%walkMemoSize].w.Entries[3].Value&0x20 == 0 {
		t.Errorf("after the accessed flag was set: %#x, %v (the memo holds the old PTE)", gpa, err)
	}
}

// Under -verify off without synced registers or a trace, an exit reads no
// state: BeginExit and the MMIO entry points load nothing and log no
// mode; an emulation failure still loads and logs it.
func TestOffReadsNoState(t *testing.T) {
	p, _, w := newEntryPath(t, []byte{0x8b, 0x07}, nil) // mov (%bx),%ax
	p.cfg.Verify = VerifyOff
	if err := w.Write(0, []byte{0x78, 0x56}); err != nil {
		t.Fatal(err)
	}
	e := mmioExit(1, 0xd0000, 2, false, 0)
	if err := p.BeginExit(e); err != nil {
		t.Fatal(err)
	}
	if err := p.MMIORead(e); err != nil {
		t.Fatal(err)
	}
	p.EndExit(e)
	s := p.Stats()
	if p.exit.loaded || len(s.Modes) != 0 || s.MMIO.Reads != 1 || e.MMIO.Data[0] != 0x78 {
		t.Errorf("loaded %v, modes %+v, %+v, data % x", p.exit.loaded, s.Modes, s.MMIO, e.MMIO.Data[:2])
	}
	f := &kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError, Seq: 2,
		EmulationFailure: &kvm.EmulationFailure{Suberror: kvm.InternalErrorEmulation}}
	if err := p.BeginExit(f); err != nil {
		t.Fatal(err)
	}
	if err := p.EmulationFailure(f); err != nil {
		t.Fatal(err)
	}
	if len(s.Modes) != 1 || s.MMIO.CompletedInUserspace != 1 {
		t.Errorf("after an emulation failure: modes %+v, %+v", s.Modes, s.MMIO)
	}
}
