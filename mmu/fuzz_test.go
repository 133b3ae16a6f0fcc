package mmu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"walkvm/x86"
)

// foldMemory is RAM below limit whose contents repeat data: random entries
// then point at readable random tables most of the time, and at non-RAM
// when they reach limit.
type foldMemory struct {
	data  []byte // length a multiple of 8
	limit uint64
}

func (m *foldMemory) off(gpa uint64, n uint64) (uint64, error) {
	if gpa >= m.limit || gpa+n > m.limit || gpa%n != 0 {
		return 0, fmt.Errorf("gpa %#x: %w", gpa, ErrNotRAM)
	}
	return gpa % uint64(len(m.data)), nil
}

func (m *foldMemory) ReadUint32(gpa uint64) (uint32, error) {
	o, err := m.off(gpa, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(m.data[o:]), nil
}

func (m *foldMemory) ReadUint64(gpa uint64) (uint64, error) {
	o, err := m.off(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(m.data[o:]), nil
}

// The fuzzer runs one walk at a time: compare-and-swap needs no atomics.
func (m *foldMemory) CompareAndSwapUint32(gpa uint64, old, new uint32) (bool, error) {
	o, err := m.off(gpa, 4)
	if err != nil {
		return false, err
	}
	if binary.LittleEndian.Uint32(m.data[o:]) != old {
		return false, nil
	}
	binary.LittleEndian.PutUint32(m.data[o:], new)
	return true, nil
}

func (m *foldMemory) CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error) {
	o, err := m.off(gpa, 8)
	if err != nil {
		return false, err
	}
	if binary.LittleEndian.Uint64(m.data[o:]) != old {
		return false, nil
	}
	binary.LittleEndian.PutUint64(m.data[o:], new)
	return true, nil
}

// Control bits of the fuzz input.
const (
	fzWP = 1 << iota
	fzPSE
	fzNXE
	fzSMEP
	fzSMAP
	fzPKE
	fzAC
	fzCSL
	fzVM
	fzGB
	fzPSE36
	fzPDPTEs
	fzEPTAD
	fzExecOnly
	fzImplicit
	fzStack
	fzEPT5
	fzAMD
)

// checkAgainstRef runs the walker and the reference on the same input and
// reports any difference, plus the invariants every result must satisfy.
func checkAgainstRef(t *testing.T, mem Memory, c *Context, s *State, f Features, la uint64, acc x86.Access) error {
	t.Helper()
	var w Walk
	err := c.Walk(mem, la, acc, &w)
	ref := refWalk(mem, s, f, la, acc)
	compare(t, &w, err, ref, acc)
	if err == nil && w.Walker != Nonpaging {
		if w.Levels != uint8(c.paging.Levels()) || w.N == 0 || w.N > w.Levels {
			t.Errorf("levels %d n %d for %v", w.Levels, w.N, c.paging)
		}
	}
	return err
}

func compare(t *testing.T, w *Walk, err error, ref refResult, acc x86.Access) {
	t.Helper()
	var ex *x86.Exception
	var me *MemoryError
	var ev *EPTViolation
	var em *EPTMisconfig
	switch {
	case err == nil:
		if !ref.ok {
			t.Fatalf("walker ok (%s), reference %+v", w.String(), ref)
		}
		if w.GPA != ref.gpa || w.PageSize != ref.size || w.Perm != ref.perm {
			t.Fatalf("walker %s, reference gpa %#x size %#x perm %v", w.String(), ref.gpa, ref.size, ref.perm)
		}
		if w.GPA&(w.PageSize-1) != w.Addr&(w.PageSize-1) {
			t.Fatalf("page offset not kept: %s", w.String())
		}
	case errors.As(err, &ex):
		if int(ex.Vector) != ref.vector || ex.ErrorCode != ref.code {
			t.Fatalf("walker %v, reference %+v", err, ref)
		}
		if ex.Vector == x86.VectorPF {
			validPFCode(t, ex.ErrorCode, acc)
			if ex.Addr != w.Addr {
				t.Fatalf("CR2 %#x, address %#x", ex.Addr, w.Addr)
			}
		}
	case errors.As(err, &me):
		if !ref.memErr || !errors.Is(err, ErrNotRAM) {
			t.Fatalf("walker %v, reference %+v", err, ref)
		}
	case errors.As(err, &ev):
		if !ref.eptFault || ev.Qualification != ref.eptQual {
			t.Fatalf("walker %v, reference %+v", err, ref)
		}
	case errors.As(err, &em):
		if !ref.eptMisc {
			t.Fatalf("walker %v, reference %+v", err, ref)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// validPFCode checks the architectural constraints on a #PF error code.
func validPFCode(t *testing.T, code uint32, acc x86.Access) {
	t.Helper()
	const known = x86.PFErrPresent | x86.PFErrWrite | x86.PFErrUser | x86.PFErrReserved | x86.PFErrFetch | x86.PFErrPK
	switch {
	case code&^known != 0:
		t.Fatalf("unknown bits in %#x", code)
	case code&x86.PFErrReserved != 0 && code&x86.PFErrPresent == 0:
		t.Fatalf("RSVD without P: %#x", code)
	case code&x86.PFErrPK != 0 && (code&x86.PFErrPresent == 0 || code&(x86.PFErrFetch|x86.PFErrReserved) != 0):
		t.Fatalf("PK with a not-present, reserved or fetch fault: %#x", code)
	case (code&x86.PFErrWrite != 0) != (acc&x86.AccessWrite != 0):
		t.Fatalf("W/R %#x for access %#x", code, acc)
	case code&x86.PFErrFetch != 0 && acc&x86.AccessFetch == 0:
		t.Fatalf("I/D for a data access: %#x", code)
	case code&x86.PFErrUser != 0 && acc&x86.AccessImplicit != 0:
		t.Fatalf("U/S for an implicit access: %#x", code)
	}
}

func fuzzState(modeSel uint8, ctl uint32, cpl uint8, cr3 uint64, pkru uint32, maxPhy uint8) (*State, Features) {
	s := &State{CR3: cr3, CPL: cpl & 3, PKRU: pkru}
	f := Features{MaxPhyAddr: 32 + maxPhy%21, GBPages: ctl&fzGB != 0, PSE36: ctl&fzPSE36 != 0, AMD: ctl&fzAMD != 0}
	switch modeSel % 6 {
	case 1:
		s.CR0 = cr0Prot
	case 2:
		s.CR0 = cr0Paging
	case 3:
		s.CR0, s.CR4 = cr0Paging, x86.CR4PAE
	case 4:
		s.CR0, s.CR4, s.EFER = cr0Paging, x86.CR4PAE, x86.EFERLME|x86.EFERLMA
	case 5:
		s.CR0, s.CR4, s.EFER = cr0Paging, x86.CR4PAE|x86.CR4LA57, x86.EFERLME|x86.EFERLMA
	}
	if ctl&fzWP == 0 {
		s.CR0 &^= x86.CR0WP
	}
	for _, b := range []struct {
		bit uint32
		cr4 uint64
	}{{fzPSE, x86.CR4PSE}, {fzSMEP, x86.CR4SMEP}, {fzSMAP, x86.CR4SMAP}, {fzPKE, x86.CR4PKE}} {
		if ctl&b.bit != 0 {
			s.CR4 |= b.cr4
		}
	}
	if ctl&fzNXE != 0 {
		s.EFER |= x86.EFERNXE
	}
	if ctl&fzAC != 0 {
		s.RFLAGS |= x86.FlagAC
	}
	if ctl&fzVM != 0 && s.EFER&x86.EFERLMA == 0 {
		s.RFLAGS |= x86.FlagVM
	}
	s.CSL = ctl&fzCSL != 0
	return s, f
}

func fuzzAccess(accSel uint8, ctl uint32) x86.Access {
	acc := [3]x86.Access{x86.AccessRead, x86.AccessWrite, x86.AccessFetch}[accSel%3]
	if ctl&fzImplicit != 0 {
		acc |= x86.AccessImplicit
	}
	if ctl&fzStack != 0 {
		acc |= x86.AccessStack
	}
	return acc
}

func fuzzMemory(data []byte) *foldMemory {
	if len(data) > 1<<16 {
		data = data[:1<<16]
	}
	buf := make([]byte, (len(data)+7)&^7+64)
	copy(buf, data)
	return &foldMemory{data: buf, limit: 1 << 32}
}

// FuzzWalk walks random memory under random control registers: the walker
// never panics, agrees with the naive reference, reports only valid error
// codes, and with WalkCommit changes nothing but A/D flags of the
// entries it walked.
func FuzzWalk(f *testing.F) {
	// Seeds: a 4-level identity-ish table, a 32-bit one, EPT.
	seed := make([]byte, 4096)
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], uint64(i)<<9|0x67)
	}
	f.Add(uint8(4), uint32(fzWP|fzNXE|fzCSL), uint8(0), uint64(0), uint64(0x1234567), uint32(0), uint8(4), uint8(0), seed)
	f.Add(uint8(2), uint32(fzPSE|fzPSE36), uint8(3), uint64(0x1000), uint64(0x80000000), uint32(0), uint8(8), uint8(1), seed)
	f.Add(uint8(3), uint32(fzPDPTEs|fzNXE|fzSMEP), uint8(0), uint64(0x20), uint64(0xC0001000), uint32(0), uint8(0), uint8(2), seed)
	f.Add(uint8(5), uint32(fzPKE|fzSMAP|fzCSL|fzGB), uint8(3), uint64(0), uint64(0xff00_0000_0000_1000), uint32(0x55555555), uint8(10), uint8(1), seed)
	f.Add(uint8(6), uint32(fzEPTAD|fzGB), uint8(0), uint64(0x18), uint64(0x1234000), uint32(0), uint8(4), uint8(1), seed)
	f.Add(uint8(0), uint32(0), uint8(0), uint64(0), uint64(0x10FFEF), uint32(0), uint8(0), uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, modeSel uint8, ctl uint32, cpl uint8, cr3, la uint64, pkru uint32, maxPhy uint8, accSel uint8, data []byte) {
		mem := fuzzMemory(data)
		acc := fuzzAccess(accSel, ctl)
		var c Context
		if modeSel%7 == 6 {
			fuzzEPT(t, mem, ctl, cr3, la, maxPhy, acc)
			return
		}
		s, feat := fuzzState(modeSel, ctl, cpl, cr3, pkru, maxPhy)
		if ctl&fzPDPTEs != 0 {
			for i := range s.PDPTEs {
				s.PDPTEs[i], _ = mem.ReadUint64(uint64(i) * 8)
			}
			s.HasPDPTEs = true
		}
		if err := c.Reset(s, feat); err != nil {
			t.Fatalf("Reset(%+v): %v", s, err)
		}
		checkAgainstRef(t, mem, &c, s, feat, la, acc)
		checkAccessedDirty(t, mem, &c, la, acc)
	})
}

func fuzzEPT(t *testing.T, mem *foldMemory, ctl uint32, eptp, gpa uint64, maxPhy uint8, acc x86.Access) error {
	f := EPTFeatures{MaxPhyAddr: 32 + maxPhy%21, GBPages: ctl&fzGB != 0, ExecOnly: ctl&fzExecOnly != 0}
	eptp = eptp&^0xFFF | 6 | 3<<3
	if ctl&fzEPT5 != 0 {
		eptp += 1 << 3
	}
	if ctl&fzEPTAD != 0 {
		eptp |= 1 << 6
	}
	var c Context
	if err := c.ResetEPT(eptp, f); err != nil {
		t.Fatal(err)
	}
	var w Walk
	err := c.Walk(mem, gpa, acc, &w)
	ref := refWalkEPT(mem, eptp, f, gpa, acc)
	compare(t, &w, err, ref, acc)
	checkAccessedDirty(t, mem, &c, gpa, acc)
	return err
}

// checkAccessedDirty walks again with WalkCommit and checks that the
// only bytes that changed are A/D flags of the walked entries.
func checkAccessedDirty(t *testing.T, mem *foldMemory, c *Context, la uint64, acc x86.Access) {
	t.Helper()
	before := bytes.Clone(mem.data)
	var w Walk
	err := c.WalkCommit(mem, la, acc, &w)
	if err != nil {
		if !bytes.Equal(before, mem.data) {
			t.Fatalf("memory changed by a failed walk: %v", err)
		}
		return
	}
	f, ok := c.Format()
	if !ok {
		if !bytes.Equal(before, mem.data) {
			t.Fatal("memory changed without paging")
		}
		return
	}
	changed := !bytes.Equal(before, mem.data)
	if changed {
		allowed := make([]byte, len(before))
		for i := 0; i < int(w.N); i++ {
			e := w.Entries[i]
			if e.FromRegister {
				continue
			}
			o := e.EntryGPA % uint64(len(before))
			for b := 0; b < int(f.EntryBytes); b++ {
				allowed[o+uint64(b)] |= byte((f.Accessed | f.Dirty) >> (8 * b))
			}
		}
		for i := range before {
			if (before[i]^mem.data[i])&^allowed[i] != 0 {
				t.Fatalf("byte %#x changed %#x -> %#x outside A/D", i, before[i], mem.data[i])
			}
		}
	}
	if f.Walker == EPT && !c.ad && changed {
		t.Fatal("EPT without A/D enabled changed memory")
	}
	// The leaf's memory value must have A (and D for writes) now.
	if w.N > 0 && (f.Walker != EPT || c.ad) {
		leaf := w.Entries[w.N-1]
		var v uint64
		if f.EntryBytes == 4 {
			x, _ := mem.ReadUint32(leaf.EntryGPA)
			v = uint64(x)
		} else {
			v, _ = mem.ReadUint64(leaf.EntryGPA)
		}
		want := f.Accessed
		if acc&x86.AccessWrite != 0 {
			want |= f.Dirty
		}
		if v&want != want {
			t.Fatalf("leaf %#x lacks A/D after %v", v, acc)
		}
	}
}

// TestPermissionsExhaustive compares the walker's precomputed permission
// table with the reference's direct rules for every combination of leaf
// rights, access, privilege and the control bits that matter.
func TestPermissionsExhaustive(t *testing.T) {
	const la = 0x0000_1234_5678_9000
	tb := newTables(8, 9)
	root := tb.alloc()
	gpas := tb.mapAddr(root, 4, 1, la, 0x200000, fPRWU, fPRWU, fPRWU, fPRWU)
	leafGPA := gpas[3]
	var c Context
	n := 0
	for leaf := uint64(0); leaf < 8; leaf++ {
		e := uint64(0x200000|fP|3<<59) | (leaf&1)<<1 | (leaf&2)<<1 | (leaf&4)<<61
		tb.put(leafGPA, e)
		for ctl := uint32(0); ctl < 1<<7; ctl++ {
			for _, pkru := range []uint32{0, 1 << 6, 2 << 6, 3 << 6} {
				for _, cpl := range []uint8{0, 3} {
					s, f := fuzzState(4, ctl|fzCSL, cpl, root, pkru, 4)
					if err := c.Reset(s, f); err != nil {
						t.Fatal(err)
					}
					for _, acc := range []x86.Access{x86.AccessRead, x86.AccessWrite, x86.AccessFetch, x86.AccessRead | x86.AccessImplicit, x86.AccessWrite | x86.AccessImplicit} {
						checkAgainstRef(t, tb.mem, &c, s, f, la, acc)
						n++
					}
				}
			}
		}
	}
	t.Logf("%d combinations", n)
}

// TestRandomTables compares walker and reference over many random tables
// in every mode (a deterministic complement to FuzzWalk).
func TestRandomTables(t *testing.T) {
	rng := uint64(0x9E3779B97F4A7C15)
	next := func() uint64 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return rng
	}
	data := make([]byte, 1<<14)
	outcomes := map[string]int{}
	tally := func(mode string, err error) {
		var ex *x86.Exception
		switch {
		case err == nil:
			mode += " ok"
		case errors.As(err, &ex):
			mode += " " + x86.VectorName(ex.Vector)
		default:
			mode += fmt.Sprintf(" %T", err)
		}
		outcomes[mode]++
	}
	defer func() { t.Log(outcomes) }()
	// entry makes a plausible entry: mostly present, pointing inside the
	// first 16 KiB, with now and then a reserved or odd bit.
	entry := func() uint64 {
		v, r := next(), next()
		e := (v>>20)&0x3000 | v&0xFFF
		if r&7 != 0 {
			e |= 1
		}
		if r&0x30 != 0 {
			e &^= 0x80
		}
		if r>>8&15 == 0 {
			e |= 1 << (12 + r>>16%52)
		}
		if r>>20&7 == 0 {
			e |= 1 << 63
		}
		if r>>23&3 == 0 {
			e |= (r >> 25 & 15) << 59
		}
		switch r >> 30 & 3 {
		case 0, 1:
			e &^= 0x78 // EPT: no memory type, bits 6:3 clear
		case 2:
			e = e&^0x38 | 6<<3 // EPT: WB
		}
		return e
	}
	var mem *foldMemory
	var modeSel uint8
	for i := 0; i < 20000; i++ {
		// New tables every 16 walks.
		if i%16 == 0 {
			modeSel = uint8(next() % 7)
			for j := 0; j < len(data); j += 8 {
				if modeSel == 2 {
					binary.LittleEndian.PutUint32(data[j:], uint32(entry()))
					binary.LittleEndian.PutUint32(data[j+4:], uint32(entry()))
				} else {
					binary.LittleEndian.PutUint64(data[j:], entry())
				}
			}
			mem = fuzzMemory(data)
		}
		ctl := uint32(next())
		acc := fuzzAccess(uint8(next()), ctl)
		la := next()
		switch next() & 3 {
		case 0:
			la &= 0x7FFF_FFFF_FFFF
		case 1, 2:
			la &= 0xFFFF_FFFF
		}
		if modeSel == 6 {
			tally("ept", fuzzEPT(t, mem, ctl, next()&0x3000, la, uint8(next()), acc))
			continue
		}
		s, f := fuzzState(modeSel, ctl, uint8(next()), next()&0x3FFF, uint32(next()), uint8(next()))
		if ctl&fzPDPTEs != 0 {
			for k := range s.PDPTEs {
				s.PDPTEs[k] = next()&0x3000 | 1
			}
			s.HasPDPTEs = true
		}
		var c Context
		if err := c.Reset(s, f); err != nil {
			t.Fatal(err)
		}
		tally(c.Paging().String(), checkAgainstRef(t, mem, &c, s, f, la, acc))
		checkAccessedDirty(t, mem, &c, la, acc)
		if t.Failed() {
			return
		}
	}
}
