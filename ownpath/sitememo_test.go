package ownpath

import (
	"encoding/binary"
	"fmt"
	"testing"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/x86"
)

// tableCPU is syncCPU in 64-bit mode whose KVM_TRANSLATE reads the PTE of
// longTables, so that a remapped page is KVM's answer too.
type tableCPU struct {
	*syncCPU
	ram *memory.RAM
	pte func(n uint64) uint64
}

func (c *tableCPU) Translate(la uint64) (uint64, bool, error) {
	v, err := c.ram.ReadUint64(c.pte(la >> 12))
	if err != nil || v&1 == 0 {
		return 0, false, nil
	}
	return v&^0xfff | la&0xfff, true, nil
}

// newSitePath is a strict path in 64-bit mode with synced registers: the
// code at 0x1000 is mov %eax,(%rbx); mov (%rbx),%eax, and RBX points at
// the test window through 4-level tables that map the first MiB one to
// one.
func newSitePath(t *testing.T) (*Path, *tableCPU, *memory.RAM, func(uint64) uint64) {
	t.Helper()
	ram := memory.NewRAMFromSlice(make([]byte, 0xa0000))
	if err := ram.Write(0x1000, []byte{0x89, 0x03, 0x8b, 0x03}); err != nil {
		t.Fatal(err)
	}
	pte := longTables(t, ram)
	bus := memory.NewBus("mmio")
	w := devices.NewTestWindow(devices.TestWindowLow, 0x10000)
	if err := bus.Register("w", devices.TestWindowLow, 0x10000, w); err != nil {
		t.Fatal(err)
	}
	c := &tableCPU{syncCPU: &syncCPU{fakeCPU: &fakeCPU{}}, ram: ram, pte: pte}
	c.regs = kvm.Regs{RIP: 0x1002, RBX: devices.TestWindowLow, RAX: 0x1234, RFLAGS: 2}
	seg := kvm.Segment{Limit: 0xffffffff, Present: 1, S: 1, DB: 1, G: 1, Typ: 3, Selector: 0x10}
	s := &c.synced
	s.DS, s.ES, s.SS, s.FS, s.GS = seg, seg, seg, seg, seg
	seg.Typ, seg.Selector, seg.L, seg.DB = 11, 8, 1, 0
	s.CS = seg
	s.TR = kvm.Segment{Typ: 11, Present: 1, Limit: 0x67}
	s.CR0 = x86.CR0PE | x86.CR0ET | x86.CR0PG
	s.CR3, s.CR4 = 0x10000, x86.CR4PAE
	s.EFER = x86.EFERLME | x86.EFERLMA
	p := New(Config{CPU: c, RAM: ram, Bus: bus, Verify: VerifyStrict, SyncRegs: true})
	return p, c, ram, pte
}

// The site memo: a repeated exit takes the kept verdict only while every
// input of it is unchanged; a change to any of them (a register that
// places the access, the data register, a code byte, a paging-structure
// entry, the special registers) takes the whole path, so a disagreement
// is never hidden behind a kept agreement.
func TestSiteMemo(t *testing.T) {
	p, c, ram, pte := newSitePath(t)
	const win = devices.TestWindowLow
	seq := uint64(0)
	exit := func(write bool, gpa, data uint64) error {
		seq++
		return mmioEntry(p, mmioExit(seq, gpa, 4, write, data))
	}
	remembered := func() uint64 { return p.Stats().MMIO.Remembered }
	put := func(gpa uint64, b ...byte) {
		t.Helper()
		if err := ram.Write(gpa, b); err != nil {
			t.Fatal(err)
		}
	}
	putPTE := func(n, v uint64) {
		t.Helper()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		put(pte(n), b[:]...)
	}
	for _, step := range []struct {
		name        string
		change      func()
		write       bool
		gpa, data   uint64
		disagree    bool
		rememberedN uint64 // Remembered after the exit
	}{
		{name: "first read", gpa: win, rememberedN: 0},
		{name: "read again", gpa: win, rememberedN: 1},
		{name: "first write", write: true, gpa: win, data: 0x1234, rememberedN: 1},
		{name: "write again", write: true, gpa: win, data: 0x1234, rememberedN: 2},
		{name: "RCX places nothing", change: func() { c.regs.RCX = 7 }, gpa: win, rememberedN: 3},
		{name: "CR2 places nothing", change: func() { c.synced.CR2 = 0xdead000 }, gpa: win, rememberedN: 4},
		{name: "RBX moved, KVM read the old place", change: func() { c.regs.RBX = win + 0x10 }, gpa: win, disagree: true, rememberedN: 4},
		{name: "RBX moved, KVM agrees", gpa: win + 0x10, rememberedN: 4},
		{name: "RBX moved back", change: func() { c.regs.RBX = win }, gpa: win, rememberedN: 4},
		{name: "kept again", gpa: win, rememberedN: 5},
		{name: "data register changed", change: func() { c.regs.RAX = 0x5678 }, write: true, gpa: win, data: 0x1234, disagree: true, rememberedN: 5},
		{name: "data register and KVM's data changed", write: true, gpa: win, data: 0x5678, rememberedN: 5},
		{name: "write kept", write: true, gpa: win, data: 0x5678, rememberedN: 6},
		{name: "KVM's data changed, the data register not", write: true, gpa: win, data: 0x5679, disagree: true, rememberedN: 6},
		{name: "code byte: mov (%rcx),%eax", change: func() { put(0x1003, 0x01) }, gpa: win, disagree: true, rememberedN: 6},
		{name: "code byte: mov (%rbx),%ecx", change: func() { put(0x1003, 0x0b) }, gpa: win, rememberedN: 6},
		{name: "code byte: mov %ecx,(%rbx)", change: func() { put(0x1001, 0x0b); c.regs.RCX = 0x5678 }, write: true, gpa: win, data: 0x5678, rememberedN: 6},
		{name: "code byte: mov %ecx,(%rbx), RCX changed", change: func() { c.regs.RCX = 0x9abc }, write: true, gpa: win, data: 0x5678, disagree: true, rememberedN: 6},
		{name: "PTE of the window remapped", change: func() { putPTE(win>>12, win+0x1000|3) }, gpa: win, disagree: true, rememberedN: 6},
		{name: "PTE of the window remapped, KVM agrees", gpa: win + 0x1000, rememberedN: 6},
		{name: "kept under the new PTE", gpa: win + 0x1000, rememberedN: 7},
		{name: "PTE of the code remapped", change: func() {
			put(0x2002, 0x8b, 0x43, 0x08) // mov 0x8(%rbx),%eax
			putPTE(1, 0x2003)
		}, gpa: win + 0x1000, disagree: true, rememberedN: 7},
		{name: "special registers changed: CR0.WP", change: func() {
			putPTE(1, 0x1003)
			putPTE(win>>12, win|3)
			c.synced.CR0 |= x86.CR0WP
		}, gpa: win, rememberedN: 7},
		{name: "kept under CR0.WP", gpa: win, rememberedN: 8},
		{name: "DS placed nothing in 64-bit mode, but is special", change: func() { c.synced.DS.Selector = 0x18 }, gpa: win, rememberedN: 8},
	} {
		if step.change != nil {
			step.change()
		}
		err := exit(step.write, step.gpa, step.data)
		if (err != nil) != step.disagree {
			t.Fatalf("%s: err %v, want a disagreement %v", step.name, err, step.disagree)
		}
		if got := remembered(); got != step.rememberedN {
			t.Fatalf("%s: %d remembered exits, want %d", step.name, got, step.rememberedN)
		}
	}
	s := p.Stats()
	if s.MMIO.Agreed+s.MMIO.Disagreed != s.MMIO.Reads+s.MMIO.Writes {
		t.Errorf("%+v: every exit is agreed or disagreed", s.MMIO)
	}
}

// A kept exit counts the walks and KVM_TRANSLATE checks the whole path
// makes, so the statistics do not depend on the memo.
func TestSiteMemoStats(t *testing.T) {
	run := func(sites bool) (walks, checks uint64) {
		p, _, _, _ := newSitePath(t)
		if !sites {
			p.cfg.Verify = VerifyWarn
		}
		for i := range uint64(10) {
			e := mmioExit(2*i+1, devices.TestWindowLow, 4, true, 0x1234)
			if err := p.MMIOWrite(e); err != nil {
				t.Fatal(err)
			}
			if err := p.MMIORead(mmioExit(2*i+2, devices.TestWindowLow, 4, false, 0)); err != nil {
				t.Fatal(err)
			}
			if !sites {
				p.sites = siteMemo{} // forget every site
			}
		}
		s := p.Stats()
		if sites && s.MMIO.Remembered != 18 {
			t.Errorf("%d remembered exits of 20, want 18", s.MMIO.Remembered)
		}
		return s.Walks.Paging64Levels[4], s.Translate.Checks
	}
	kw, kc := run(true)
	ww, wc := run(false)
	if kw != ww || kc != wc || kw == 0 {
		t.Errorf("with the memo %d walks, %d checks; without %d, %d", kw, kc, ww, wc)
	}
}

// A site whose inputs change at every exit stops being kept after a few
// tries, and is kept again once it settles.
func TestSiteMemoBackoff(t *testing.T) {
	p, c, _, _ := newSitePath(t)
	seq := uint64(0)
	read := func() {
		t.Helper()
		seq++
		if err := p.MMIORead(mmioExit(seq, c.regs.RBX, 4, false, 0)); err != nil {
			t.Fatal(err)
		}
	}
	slot := &p.sites.e[siteSlot(c.regs.RIP, false)]
	for i := range uint64(100) {
		c.regs.RBX = devices.TestWindowLow + 4*i
		read()
	}
	if p.Stats().MMIO.Remembered != 0 || slot.misses != siteMissLimit || slot.skipped < 90 {
		t.Fatalf("a striding read: %d remembered, slot misses %d, skipped %d", p.Stats().MMIO.Remembered, slot.misses, slot.skipped)
	}
	// Settled: within siteRetry exits a site is kept, then hit.
	for range siteRetry + 1 {
		read()
	}
	if p.Stats().MMIO.Remembered == 0 || slot.misses != 0 {
		t.Errorf("a settled read: %d remembered, slot misses %d", p.Stats().MMIO.Remembered, slot.misses)
	}
}

// Two sites of one loop a few bytes apart are kept side by side.
func TestSiteMemoNearbySites(t *testing.T) {
	p, c, ram, _ := newSitePath(t)
	if err := ram.Write(0x100a, []byte{0x8b, 0x03}); err != nil { // mov (%rbx),%eax
		t.Fatal(err)
	}
	if siteSlot(0x1002, false) == siteSlot(0x100a, false) {
		t.Fatalf("reads at 0x1002 and 0x100a share slot %d", siteSlot(0x1002, false))
	}
	for i := range uint64(10) {
		c.regs.RIP = 0x1002 + 8*(i%2)
		if err := p.MMIORead(mmioExit(i+1, devices.TestWindowLow, 4, false, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if r := p.Stats().MMIO.Remembered; r != 8 {
		t.Errorf("%d of 10 alternating reads at two sites remembered, want 8", r)
	}
}

// Where KVM syncs the registers, a repeated exit is answered from its
// kept site before the exit's state is loaded; what the state then lacks
// is loaded by the next exit that needs it.
func TestSiteExitBeforeLoad(t *testing.T) {
	p, c, _, _ := newSitePath(t)
	const win = devices.TestWindowLow
	seq := uint64(0)
	read := func(gpa uint64) error {
		seq++
		return p.MMIORead(mmioExit(seq, gpa, 4, false, 0))
	}
	for range 2 {
		if err := read(win); err != nil {
			t.Fatal(err)
		}
	}
	if p.exit.loaded || p.Stats().MMIO.Remembered != 1 {
		t.Fatalf("a repeated read: loaded %v, %d remembered; want it answered before the load", p.exit.loaded, p.Stats().MMIO.Remembered)
	}
	// RCX places nothing: still answered so. RBX moves: the whole path,
	// with the registers of this exit, not those the state last had.
	c.regs.RCX = 7
	if err := read(win); err != nil || p.exit.loaded {
		t.Fatalf("RCX changed: %v, loaded %v", err, p.exit.loaded)
	}
	c.regs.RBX = win + 0x20
	if err := read(win + 0x20); err != nil {
		t.Fatalf("RBX moved, KVM agrees: %v", err)
	}
	if !p.exit.loaded || p.exit.st.GPR[x86.RCX] != 7 || p.exit.st.GPR[x86.RBX] != win+0x20 {
		t.Errorf("after the whole path: loaded %v, RCX %#x, RBX %#x", p.exit.loaded, p.exit.st.GPR[x86.RCX], p.exit.st.GPR[x86.RBX])
	}
	if s := p.Stats(); s.MMIO.Remembered != 2 || s.MMIO.Agreed != 4 || len(s.Modes) != 1 || s.Modes[0].Exits != 4 {
		t.Errorf("%+v, modes %+v", s.MMIO, s.Modes)
	}
}

// pkruCPU is tableCPU whose XSAVE area holds PKRU at pkruAt.
type pkruCPU struct {
	*tableCPU
	pkru uint32
}

const pkruAt = 0xa80

func (c *pkruCPU) GetXSave(x *kvm.XSave) error {
	binary.LittleEndian.PutUint32(x.Bytes()[pkruAt:], c.pkru)
	return nil
}

// Under CR4.PKE, PKRU changes without an exit and only a load reads it:
// no exit is answered before its load, and a kept site whose accesses
// PKRU now denies takes the whole path.
func TestSiteExitPKRU(t *testing.T) {
	p, c, ram, pte := newSitePath(t)
	const win = devices.TestWindowLow
	// The window a user-mode page (U at every level), of protection key 0.
	for _, e := range []struct{ gpa, v uint64 }{{0x10000, 0x11007}, {0x11000, 0x12007}, {0x12000, 0x13007}, {pte(win >> 12), win | 7}} {
		if err := ram.WriteUint64(e.gpa, e.v); err != nil {
			t.Fatal(err)
		}
	}
	pc := &pkruCPU{tableCPU: c}
	cfg := p.cfg
	cfg.CPU, cfg.PKRUOffset, cfg.Stats = pc, pkruAt, nil
	p = New(cfg)
	c.synced.CR4 |= x86.CR4PKE
	seq := uint64(0)
	read := func() error {
		seq++
		return p.MMIORead(mmioExit(seq, win, 4, false, 0))
	}
	for range 2 {
		if err := read(); err != nil {
			t.Fatal(err)
		}
	}
	if !p.exit.loaded || p.Stats().MMIO.Remembered != 1 {
		t.Fatalf("under CR4.PKE: loaded %v, %d remembered; want the site's verdict after a load", p.exit.loaded, p.Stats().MMIO.Remembered)
	}
	pc.pkru = 1 // AD for key 0: a data access to the window faults
	if err := read(); err == nil || p.Stats().MMIO.Remembered != 1 {
		t.Errorf("PKRU denies the access: %v, %d remembered; want the whole path's disagreement", err, p.Stats().MMIO.Remembered)
	}
}

// An exit answered before its load logs the mode of the last load's
// state, which is the exit's: a site kept under another RFLAGS.VM than the
// last load's no longer holds.
func TestSiteExitMode(t *testing.T) {
	// mov 0x10(%bx),%ax; mov %ax,0x10(%bx) in 16-bit protected mode and,
	// with RFLAGS.VM, virtual-8086 mode: DS's base 0xd0000 either way.
	p, c := newSyncPath(t, []byte{0x8b, 0x47, 0x10, 0x89, 0x47, 0x10})
	c.synced.CR0 |= x86.CR0PE
	c.regs.RBX, c.regs.RAX = 0x20, 0x1234
	seq := uint64(0)
	exit := func(rip uint64, write bool) {
		t.Helper()
		seq++
		c.regs.RIP = rip
		if err := mmioEntry(p, mmioExit(seq, 0xd0030, 2, write, 0x1234)); err != nil {
			t.Fatal(err)
		}
	}
	exit(0x1000, false)
	exit(0x1000, false) // kept under RFLAGS.VM = 0
	c.regs.RFLAGS |= x86.FlagVM
	exit(0x1006, true) // the state built in virtual-8086 mode
	c.regs.RFLAGS &^= x86.FlagVM
	exit(0x1000, false)
	s := p.Stats()
	var got []string
	for _, m := range s.Modes {
		got = append(got, fmt.Sprintf("%v×%d", m.Mode, m.Exits))
	}
	if want := "[protected16×2 vm86×1 protected16×1]"; fmt.Sprint(got) != want {
		t.Errorf("modes %v, want %s", got, want)
	}
}
