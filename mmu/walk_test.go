package mmu

import (
	"errors"
	"testing"

	"walkvm/x86"
)

const (
	fP  = 1 << 0
	fRW = 1 << 1
	fUS = 1 << 2
	fA  = 1 << 5
	fD  = 1 << 6
	fPS = 1 << 7
	fNX = 1 << 63

	fPRW  = fP | fRW
	fPRWU = fP | fRW | fUS
)

// Reset classifies with x86.PagingOf and refuses what x86.CheckModeRegs
// refuses.
func TestResetPaging(t *testing.T) {
	tests := []struct {
		name    string
		s       State
		want    x86.Paging
		wantErr bool
	}{
		{"real", State{}, x86.PagingNone, false},
		{"protected", State{CR0: cr0Prot}, x86.PagingNone, false},
		{"32-bit", State{CR0: cr0Paging}, x86.Paging32, false},
		{"PAE", State{CR0: cr0Paging, CR4: x86.CR4PAE}, x86.PagingPAE, false},
		{"4-level", State{CR0: cr0Paging, CR4: x86.CR4PAE, EFER: eferLong}, x86.Paging4Level, false},
		{"5-level", State{CR0: cr0Paging, CR4: x86.CR4PAE | x86.CR4LA57, EFER: eferLong}, x86.Paging5Level, false},
		{"PG without PE", State{CR0: x86.CR0PG}, 0, true},
		{"LMA without PAE", State{CR0: cr0Paging, EFER: eferLong}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Context
			err := c.Reset(&tt.s, Features{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && c.Paging() != tt.want {
				t.Errorf("paging = %v, want %v", c.Paging(), tt.want)
			}
		})
	}
}

func TestCPUIDHelpers(t *testing.T) {
	tests := []struct {
		name    string
		entries []x86.CPUIDEntry
		want    Features
	}{
		{"absent", nil, Features{MaxPhyAddr: 36}},
		{"zero", []x86.CPUIDEntry{{Function: 0x80000000, EAX: 0x80000008}, {Function: 0x80000008}}, Features{MaxPhyAddr: 36}},
		{"39 bits, 1G, PSE-36, Intel", []x86.CPUIDEntry{
			{Function: 0, EBX: 0x756e6547, EDX: 0x49656e69, ECX: 0x6c65746e},
			{Function: 1, EDX: 1 << 17},
			{Function: 0x80000000, EAX: 0x80000008},
			{Function: 0x80000001, EDX: 1 << 26},
			{Function: 0x80000008, EAX: 0x3027},
		}, Features{MaxPhyAddr: 0x27, GBPages: true, PSE36: true}},
		{"AMD", []x86.CPUIDEntry{
			{Function: 0, EBX: 0x68747541, EDX: 0x69746e65, ECX: 0x444d4163},
			{Function: 0x80000000, EAX: 0x80000020},
			{Function: 0x80000008, EAX: 0x3030},
		}, Features{MaxPhyAddr: 48, AMD: true}},
		{"Hygon", []x86.CPUIDEntry{{Function: 0, EBX: 0x6f677948, EDX: 0x6e65476e, ECX: 0x656e6975}}, Features{MaxPhyAddr: 36, AMD: true}},
		{"0x80000008 beyond the maximum extended leaf", []x86.CPUIDEntry{{Function: 0x80000000, EAX: 0x80000004}, {Function: 0x80000008, EAX: 40}}, Features{MaxPhyAddr: 36}},
		{"0x80000000 not listed", []x86.CPUIDEntry{{Function: 0x80000008, EAX: 40}}, Features{MaxPhyAddr: 36}},
		{"other index ignored", []x86.CPUIDEntry{{Function: 0x80000000, EAX: 0x80000008}, {Function: 0x80000008, Index: 1, EAX: 40}}, Features{MaxPhyAddr: 36}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FeaturesFromCPUID(tt.entries); got != tt.want {
				t.Errorf("FeaturesFromCPUID = %+v, want %+v", got, tt.want)
			}
		})
	}
	var c Context
	if err := c.Reset(state4(0x1000), Features{MaxPhyAddr: 53}); err == nil {
		t.Error("MAXPHYADDR 53 accepted")
	}
}

func TestNonpaging(t *testing.T) {
	mem := NewSliceMemory(0, 4096)
	tests := []struct {
		name string
		s    State
		la   uint64
		want uint64
	}{
		{"real mode top of HMA", State{}, 0x10FFEF, 0x10FFEF},
		{"real mode above 4G truncated", State{}, 0x1_0000_1234, 0x1234},
		{"protected", State{CR0: cr0Prot}, 0xFEE00000, 0xFEE00000},
		{"virtual-8086", State{CR0: cr0Prot, RFLAGS: x86.FlagVM}, 0x12345, 0x12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustReset(t, &tt.s, Features{})
			for _, acc := range []x86.Access{x86.AccessRead, x86.AccessWrite, x86.AccessFetch} {
				var w Walk
				if err := c.WalkCommit(mem, tt.la, acc, &w); err != nil {
					t.Fatal(err)
				}
				if w.GPA != tt.want || w.Walker != Nonpaging || w.Levels != 0 || w.N != 0 || w.Perm != PermRead|PermWrite|PermExec|PermUser {
					t.Errorf("%v: %s", acc, w.String())
				}
			}
		})
	}
}

func TestPaging4Sizes(t *testing.T) {
	const la = 0x00007f12_3456_7abc
	tests := []struct {
		name   string
		leaf   int
		target uint64
		flags  []uint64
		gb     bool
		want   uint64
		size   uint64
	}{
		{"4K", 1, 0x200000, []uint64{fPRWU, fPRWU, fPRWU, fPRWU}, false, 0x200abc, 4 << 10},
		{"2M", 2, 0x400000, []uint64{fPRWU, fPRWU, fPRWU | fPS}, false, 0x400000 | la&0x1FFFFF, 2 << 20},
		{"2M PAT bit 12 is not address", 2, 0x400000 | 1<<12, []uint64{fPRWU, fPRWU, fPRWU | fPS}, false, 0x400000 | la&0x1FFFFF, 2 << 20},
		{"1G", 3, 0x40000000, []uint64{fPRWU, fPRWU | fPS}, true, 0x40000000 | la&0x3FFFFFFF, 1 << 30},
		{"4K high GPA", 1, 0xF_FFFF_F000, []uint64{fPRWU, fPRWU, fPRWU, fPRWU}, false, 0xF_FFFF_Fabc, 4 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(8, 9)
			root := tb.alloc()
			gpas := tb.mapAddr(root, 4, tt.leaf, la, tt.target, tt.flags...)
			c := mustReset(t, state4(root), Features{MaxPhyAddr: 36, GBPages: tt.gb})
			var w Walk
			if err := c.Walk(tb.mem, la, x86.AccessRead, &w); err != nil {
				t.Fatal(err)
			}
			if w.GPA != tt.want || w.PageSize != tt.size {
				t.Errorf("got gpa %#x size %#x, want %#x %#x", w.GPA, w.PageSize, tt.want, tt.size)
			}
			if w.Walker != Paging64 || w.Levels != 4 || int(w.N) != 5-tt.leaf || w.Addr != la {
				t.Errorf("walker %v levels %d n %d addr %#x", w.Walker, w.Levels, w.N, w.Addr)
			}
			if w.Perm != PermRead|PermWrite|PermExec|PermUser {
				t.Errorf("perm %v", w.Perm)
			}
			table := root
			for i := 0; i < int(w.N); i++ {
				e := w.Entries[i]
				l := 4 - i
				idx := (uint64(la) >> (12 + 9*uint(l-1))) & 511
				if int(e.Level) != l || e.Index != uint16(idx) || e.TableGPA != table || e.EntryGPA != gpas[i] || e.EntryGPA != table+idx*8 {
					t.Errorf("entry %d: %+v (table %#x idx %#x gpa %#x)", i, e, table, idx, gpas[i])
				}
				if v, _ := tb.mem.ReadUint64(e.EntryGPA); v != e.Value {
					t.Errorf("entry %d value %#x, memory %#x", i, e.Value, v)
				}
				table = e.Value & 0xFFFFFFFFFF000
			}
		})
	}
}

// permCase is one translation under a modified 4-level state.
type permCase struct {
	name  string
	flags [4]uint64 // PML4E, PDPTE, PDE, PTE flags
	mod   func(s *State)
	f     *Features
	cpl   uint8
	acc   x86.Access
	code  int32 // expected #PF error code, -1 for success
}

func runPaging4(t *testing.T, tc permCase) (*Walk, error) {
	const la = 0x0000_5555_1234_5678
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 1, la, 0x300000, tc.flags[:]...)
	s := state4(root)
	s.CPL = tc.cpl
	if tc.mod != nil {
		tc.mod(s)
	}
	f := Features{MaxPhyAddr: 36}
	if tc.f != nil {
		f = *tc.f
	}
	c := mustReset(t, s, f)
	w := new(Walk)
	err := c.Walk(tb.mem, la, tc.acc, w)
	return w, err
}

func checkCase(t *testing.T, w *Walk, err error, code int32) {
	t.Helper()
	if code < 0 {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	if got := pfCode(t, err); got != uint32(code) {
		t.Fatalf("error code %#x, want %#x (%v)", got, code, err)
	}
	if w.Fault.Addr != w.Addr {
		t.Errorf("CR2 %#x, want %#x", w.Fault.Addr, w.Addr)
	}
}

func TestPaging4Permissions(t *testing.T) {
	all := [4]uint64{fPRWU, fPRWU, fPRWU, fPRWU}
	sup := [4]uint64{fPRW, fPRW, fPRW, fPRW}
	roLeaf := [4]uint64{fPRWU, fPRWU, fPRWU, fP | fUS}
	noWP := func(s *State) { s.CR0 &^= x86.CR0WP }
	noNXE := func(s *State) { s.EFER &^= x86.EFERNXE }
	smep := func(s *State) { s.CR4 |= x86.CR4SMEP }
	smap := func(s *State) { s.CR4 |= x86.CR4SMAP }
	smapAC := func(s *State) { s.CR4 |= x86.CR4SMAP; s.RFLAGS |= x86.FlagAC }
	const key3 = 3 << 59
	pkru := func(v uint32) func(*State) {
		return func(s *State) { s.CR4 |= x86.CR4PKE; s.PKRU = v }
	}
	ad3, wd3 := uint32(1<<6), uint32(1<<7)
	pkLeaf := [4]uint64{fPRWU, fPRWU, fPRWU, fPRWU | key3}
	const (
		P, W, U, R, I, K = x86.PFErrPresent, x86.PFErrWrite, x86.PFErrUser, x86.PFErrReserved, x86.PFErrFetch, x86.PFErrPK
	)
	tests := []permCase{
		{"supervisor read supervisor page", sup, nil, nil, 0, x86.AccessRead, -1},
		{"supervisor write supervisor page", sup, nil, nil, 0, x86.AccessWrite, -1},
		{"supervisor fetch supervisor page", sup, nil, nil, 0, x86.AccessFetch, -1},
		{"user read supervisor page", sup, nil, nil, 3, x86.AccessRead, P | U},
		{"user fetch supervisor page", sup, nil, nil, 3, x86.AccessFetch, P | U | I},
		{"user read user page", all, nil, nil, 3, x86.AccessRead, -1},
		{"user write user page", all, nil, nil, 3, x86.AccessWrite, -1},
		{"user read, U/S clear in PDE only", [4]uint64{fPRWU, fPRWU, fPRW, fPRWU}, nil, nil, 3, x86.AccessRead, P | U},
		{"user read, U/S clear in PML4E only", [4]uint64{fPRW, fPRWU, fPRWU, fPRWU}, nil, nil, 3, x86.AccessRead, P | U},
		{"user write read-only PTE", roLeaf, nil, nil, 3, x86.AccessWrite, P | W | U},
		{"user write, R/W clear in PML4E", [4]uint64{fP | fUS, fPRWU, fPRWU, fPRWU}, nil, nil, 3, x86.AccessWrite, P | W | U},
		{"user read read-only", roLeaf, nil, nil, 3, x86.AccessRead, -1},
		{"supervisor write read-only, WP=1", roLeaf, nil, nil, 0, x86.AccessWrite, P | W},
		{"supervisor write read-only, WP=0", roLeaf, noWP, nil, 0, x86.AccessWrite, -1},
		{"user write read-only, WP=0", roLeaf, noWP, nil, 3, x86.AccessWrite, P | W | U},
		{"CPL 1 is supervisor", roLeaf, nil, nil, 1, x86.AccessWrite, P | W},
		{"fetch XD PTE", [4]uint64{fPRW, fPRW, fPRW, fPRW | fNX}, nil, nil, 0, x86.AccessFetch, P | I},
		{"fetch XD PDPTE", [4]uint64{fPRW, fPRW | fNX, fPRW, fPRW}, nil, nil, 0, x86.AccessFetch, P | I},
		{"read XD page", [4]uint64{fPRW, fPRW, fPRW, fPRW | fNX}, nil, nil, 0, x86.AccessRead, -1},
		{"XD without NXE is reserved", [4]uint64{fPRW, fPRW, fPRW, fPRW | fNX}, noNXE, nil, 0, x86.AccessRead, P | R},
		{"XD without NXE, fetch: no I/D", [4]uint64{fPRW, fPRW, fPRW, fPRW | fNX}, noNXE, nil, 0, x86.AccessFetch, P | R},
		{"fetch not present, NXE=0 SMEP=0: no I/D", [4]uint64{fPRW, fPRW, fPRW, 0}, noNXE, nil, 0, x86.AccessFetch, 0},
		{"fetch not present, NXE=1: I/D", [4]uint64{fPRW, fPRW, fPRW, 0}, nil, nil, 0, x86.AccessFetch, I},
		{"fetch not present, SMEP=1 NXE=0: I/D", [4]uint64{fPRW, fPRW, fPRW, 0}, func(s *State) { noNXE(s); smep(s) }, nil, 0, x86.AccessFetch, I},
		{"user write not present", [4]uint64{fPRWU, 0, 0, 0}, nil, nil, 3, x86.AccessWrite, W | U},
		{"not present PDE", [4]uint64{fPRWU, fPRWU, fRW | fUS, fPRWU}, nil, nil, 0, x86.AccessRead, 0},
		{"SMEP: supervisor fetch user page", all, smep, nil, 0, x86.AccessFetch, P | I},
		{"SMEP: supervisor read user page", all, smep, nil, 0, x86.AccessRead, -1},
		{"SMEP: user fetch user page", all, smep, nil, 3, x86.AccessFetch, -1},
		{"SMEP off: supervisor fetch user page", all, nil, nil, 0, x86.AccessFetch, -1},
		{"SMEP: supervisor fetch, U/S clear above", [4]uint64{fPRW, fPRWU, fPRWU, fPRWU}, smep, nil, 0, x86.AccessFetch, -1},
		{"SMAP: supervisor read user page", all, smap, nil, 0, x86.AccessRead, P},
		{"SMAP: supervisor write user page", all, smap, nil, 0, x86.AccessWrite, P | W},
		{"SMAP: AC=1 overrides", all, smapAC, nil, 0, x86.AccessWrite, -1},
		{"SMAP: implicit read, AC=1", all, smapAC, nil, 0, x86.AccessRead | x86.AccessImplicit, P},
		{"SMAP: implicit read at CPL 3 has U/S=0", all, smapAC, nil, 3, x86.AccessRead | x86.AccessImplicit, P},
		{"SMAP: supervisor fetch not SMAP", all, smap, nil, 0, x86.AccessFetch, -1},
		{"SMAP: supervisor page fine", sup, smap, nil, 0, x86.AccessWrite, -1},
		{"SMAP off: supervisor read user page", all, nil, nil, 0, x86.AccessRead, -1},
		{"SMAP: user read user page", all, smap, nil, 3, x86.AccessRead, -1},
		{"SMAP with WP=0: supervisor write read-only user page", roLeaf, func(s *State) { smap(s); noWP(s) }, nil, 0, x86.AccessWrite, P | W},
		{"implicit at CPL 3 to supervisor page", sup, nil, nil, 3, x86.AccessRead | x86.AccessImplicit, -1},
		{"implicit write at CPL 3, read-only, WP=1", [4]uint64{fPRW, fPRW, fPRW, fP}, nil, nil, 3, x86.AccessWrite | x86.AccessImplicit, P | W},
		{"PK: user read, AD", pkLeaf, pkru(ad3), nil, 3, x86.AccessRead, P | U | K},
		{"PK: user write, AD", pkLeaf, pkru(ad3), nil, 3, x86.AccessWrite, P | W | U | K},
		{"PK: user write, WD", pkLeaf, pkru(wd3), nil, 3, x86.AccessWrite, P | W | U | K},
		{"PK: user read, WD", pkLeaf, pkru(wd3), nil, 3, x86.AccessRead, -1},
		{"PK: user fetch, AD", pkLeaf, pkru(ad3 | wd3), nil, 3, x86.AccessFetch, -1},
		{"PK: supervisor read user page, AD", pkLeaf, pkru(ad3), nil, 0, x86.AccessRead, P | K},
		{"PK: supervisor write, WD, WP=1", pkLeaf, pkru(wd3), nil, 0, x86.AccessWrite, P | W | K},
		{"PK: supervisor write, WD, WP=0", pkLeaf, func(s *State) { pkru(wd3)(s); noWP(s) }, nil, 0, x86.AccessWrite, -1},
		{"PK: supervisor page ignores keys", [4]uint64{fPRW, fPRW, fPRW, fPRW | key3}, pkru(ad3 | wd3), nil, 0, x86.AccessWrite, -1},
		{"PK: other key", pkLeaf, pkru(1<<2 | 1<<3), nil, 3, x86.AccessWrite, -1},
		{"PK: key 0 AD", all, pkru(1), nil, 3, x86.AccessRead, P | U | K},
		{"PK: CR4.PKE=0", pkLeaf, func(s *State) { s.PKRU = ad3 | wd3 }, nil, 3, x86.AccessRead, -1},
		{"PK and R/W both", [4]uint64{fPRWU, fPRWU, fPRWU, fP | fUS | key3}, pkru(wd3), nil, 3, x86.AccessWrite, P | W | U | K},
		{"PK: not present has no PK", [4]uint64{fPRWU, fPRWU, fPRWU, fRW | fUS | key3}, pkru(ad3), nil, 3, x86.AccessRead, U},
		{"PK: SMAP and PK", pkLeaf, func(s *State) { pkru(ad3)(s); smap(s) }, nil, 0, x86.AccessRead, P | K},
		{"reserved: PTE bit above MAXPHYADDR", [4]uint64{fPRW, fPRW, fPRW, fPRW | 1<<36}, nil, nil, 0, x86.AccessRead, P | R},
		{"reserved: PML4E bit 51", [4]uint64{fPRW | 1<<51, fPRW, fPRW, fPRW}, nil, nil, 0, x86.AccessRead, P | R},
		{"not reserved: bit 39 with MAXPHYADDR 40", [4]uint64{fPRW, fPRW, fPRW, fPRW | 1<<39}, nil, &Features{MaxPhyAddr: 40}, 0, x86.AccessRead, -1},
		{"reserved: PS in PML4E", [4]uint64{fPRW | fPS, fPRW, fPRW, fPRW}, nil, nil, 0, x86.AccessRead, P | R},
		{"reserved: PS in PDPTE without 1G pages", [4]uint64{fPRW, fPRW | fPS, fPRW, fPRW}, nil, nil, 0, x86.AccessRead, P | R},
		{"ignored: bits 62:52 of a PTE", [4]uint64{fPRW | 0x7FF<<52, fPRW, fPRW, fPRW | 0x7FF<<52}, nil, nil, 0, x86.AccessRead, -1},
		{"ignored: bit 8 (G) of PML4E", [4]uint64{fPRW | 1<<8, fPRW, fPRW, fPRW}, nil, nil, 0, x86.AccessRead, -1},
		{"AMD: bit 8 of PML4E reserved", [4]uint64{fPRW | 1<<8, fPRW, fPRW, fPRW}, nil, &Features{AMD: true}, 0, x86.AccessRead, P | R},
		{"AMD: bit 8 of PDPTE ignored", [4]uint64{fPRW, fPRW | 1<<8, fPRW | 1<<8, fPRW | 1<<8}, nil, &Features{AMD: true}, 0, x86.AccessRead, -1},
		{"reserved: user write sets W and U too", [4]uint64{fPRWU, fPRWU, fPRWU, fPRWU | 1<<40}, nil, nil, 3, x86.AccessWrite, P | W | U | R},
		{"reserved beats rights", [4]uint64{fP, fP, fP, fP | 1<<40}, nil, nil, 3, x86.AccessWrite, P | W | U | R},
		{"reserved fetch with NXE", [4]uint64{fPRW, fPRW, fPRW | 1<<45, fPRW}, nil, nil, 0, x86.AccessFetch, P | R | I},
		{"not present beats reserved bits", [4]uint64{fPRW, fPRW, fPRW, fRW | 1<<45}, nil, nil, 0, x86.AccessRead, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := runPaging4(t, tc)
			checkCase(t, w, err, tc.code)
		})
	}
}

func TestLargePageReserved(t *testing.T) {
	const la = 0x0000_0040_2345_6789
	tests := []struct {
		name   string
		leaf   int
		target uint64
		gb     bool
		code   int32
	}{
		{"2M bit 13", 2, 0x400000 | 1<<13, false, x86.PFErrPresent | x86.PFErrReserved},
		{"2M bit 20", 2, 0x400000 | 1<<20, false, x86.PFErrPresent | x86.PFErrReserved},
		{"2M bit 12 is PAT", 2, 0x400000 | 1<<12, false, -1},
		{"1G bit 29", 3, 0x40000000 | 1<<29, true, x86.PFErrPresent | x86.PFErrReserved},
		{"1G bit 13", 3, 0x40000000 | 1<<13, true, x86.PFErrPresent | x86.PFErrReserved},
		{"1G bit 12 is PAT", 3, 0x40000000 | 1<<12, true, -1},
		{"1G without 1G pages", 3, 0x40000000, false, x86.PFErrPresent | x86.PFErrReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(8, 9)
			root := tb.alloc()
			fl := []uint64{fPRW, fPRW, fPRW | fPS}
			if tt.leaf == 3 {
				fl = []uint64{fPRW, fPRW | fPS}
			}
			tb.mapAddr(root, 4, tt.leaf, la, tt.target, fl...)
			c := mustReset(t, state4(root), Features{MaxPhyAddr: 36, GBPages: tt.gb})
			w := new(Walk)
			err := c.Walk(tb.mem, la, x86.AccessRead, w)
			checkCase(t, w, err, tt.code)
		})
	}
}

func TestCanonical(t *testing.T) {
	const la48 = 0x0000_7fff_ffff_f000
	tests := []struct {
		name   string
		s      func(root uint64) *State
		la     uint64
		acc    x86.Access
		vector int // -1: walk happens (and succeeds)
	}{
		{"canonical low", state4, la48, x86.AccessRead, -1},
		{"non-canonical", state4, 0x0000_8000_0000_0000, x86.AccessRead, x86.VectorGP},
		{"non-canonical stack", state4, 0x0000_8000_0000_0000, x86.AccessRead | x86.AccessStack, x86.VectorSS},
		{"non-canonical fetch", state4, 0xff00_0000_0000_0000, x86.AccessFetch, x86.VectorGP},
		{"5-level: 57-bit canonical", state5, 0x00ff_0000_0000_0000 | la48, x86.AccessRead, -1},
		{"5-level: non-canonical", state5, 0x0100_0000_0000_0000, x86.AccessWrite, x86.VectorGP},
		{"compatibility mode truncates", func(r uint64) *State { s := state4(r); s.CSL = false; return s }, 0xdead_0000_0000_0000 | la48&0xFFFFFFFF, x86.AccessRead, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(8, 9)
			root := tb.alloc()
			s := tt.s(root)
			top := 4
			if s.CR4&x86.CR4LA57 != 0 {
				top = 5
			}
			want := tt.la
			if !s.CSL {
				want &= 0xFFFFFFFF
			}
			fl := make([]uint64, top)
			for i := range fl {
				fl[i] = fPRWU
			}
			tb.mapAddr(root, top, 1, want, 0x5000, fl...)
			c := mustReset(t, s, Features{})
			var w Walk
			err := c.Walk(tb.mem, tt.la, tt.acc, &w)
			if tt.vector < 0 {
				if err != nil {
					t.Fatal(err)
				}
				if w.Addr != want || w.GPA != 0x5000|want&0xFFF || int(w.N) != top {
					t.Errorf("walk %s", w.String())
				}
				return
			}
			var ex *x86.Exception
			if !errors.As(err, &ex) || int(ex.Vector) != tt.vector || ex.ErrorCode != 0 || !ex.HasErrorCode {
				t.Fatalf("got %v, want vector %d with error code 0", err, tt.vector)
			}
			if w.N != 0 {
				t.Errorf("walked %d entries for a non-canonical address", w.N)
			}
		})
	}
}

func TestPaging5(t *testing.T) {
	const la = 0x00ab_cdef_1234_5678
	for _, leaf := range []int{1, 2, 3} {
		tb := newTables(8, 9)
		root := tb.alloc()
		fl := []uint64{fPRWU, fPRWU, fPRWU, fPRWU, fPRWU}[:6-leaf]
		size := uint64(1) << (12 + 9*(leaf-1))
		target := uint64(0x40000000)
		if leaf > 1 {
			fl[len(fl)-1] |= fPS
		}
		tb.mapAddr(root, 5, leaf, la, target, fl...)
		c := mustReset(t, state5(root), Features{GBPages: true})
		var w Walk
		if err := c.Walk(tb.mem, la, x86.AccessWrite, &w); err != nil {
			t.Fatalf("leaf %d: %v", leaf, err)
		}
		if w.GPA != target|la&(size-1) || w.PageSize != size || w.Levels != 5 || int(w.N) != 6-leaf {
			t.Errorf("leaf %d: %s", leaf, w.String())
		}
		if w.Entries[0].Level != 5 || w.Entries[0].Index != uint16(la>>48&511) {
			t.Errorf("PML5E %+v", w.Entries[0])
		}
	}
	// PS in a PML5E is reserved.
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 5, 5, la, 0, fPRW|fPS)
	c := mustReset(t, state5(root), Features{GBPages: true})
	var w Walk
	if code := pfCode(t, c.Walk(tb.mem, la, x86.AccessRead, &w)); code != x86.PFErrPresent|x86.PFErrReserved {
		t.Errorf("PS in PML5E: code %#x", code)
	}
}

func TestPaging32(t *testing.T) {
	const la = 0x8765_4321
	const (
		P, W, U, R, I = x86.PFErrPresent, x86.PFErrWrite, x86.PFErrUser, x86.PFErrReserved, x86.PFErrFetch
	)
	tests := []struct {
		name   string
		leaf   int
		target uint64
		flags  []uint64
		mod    func(*State)
		f      Features
		la     uint64
		cpl    uint8
		acc    x86.Access
		gpa    uint64
		size   uint64
		code   int32
	}{
		{name: "4K", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fPRWU}, gpa: 0x123321, size: 4 << 10, code: -1},
		{name: "4K, linear address truncated", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fPRWU}, la: 0xffff_ffff_0000_0000, gpa: 0x123321, size: 4 << 10, code: -1},
		{name: "4K, no reserved bits", leaf: 1, target: 0xFFFFF000, flags: []uint64{fPRWU | 0xF00, fPRWU | 0xF80}, gpa: 0xFFFFF321, size: 4 << 10, code: -1},
		{name: "4M", leaf: 2, target: 0x00C00000, flags: []uint64{fPRWU | fPS}, gpa: 0x00C00000 | la&0x3FFFFF, size: 4 << 20, code: -1},
		{name: "4M PAT bit 12", leaf: 2, target: 0x00C00000 | 1<<12, flags: []uint64{fPRWU | fPS}, gpa: 0x00C00000 | la&0x3FFFFF, size: 4 << 20, code: -1},
		{name: "4M without PSE-36: bit 13 reserved", leaf: 2, target: 0x00C00000 | 1<<13, flags: []uint64{fPRWU | fPS}, code: P | R},
		{name: "PSE-36, MAXPHYADDR 36", leaf: 2, target: 0x00C00000 | 0xF<<13, flags: []uint64{fPRWU | fPS}, f: Features{PSE36: true}, gpa: 0xF_00C00000 | la&0x3FFFFF, size: 4 << 20, code: -1},
		{name: "PSE-36, MAXPHYADDR 36: bit 17 reserved", leaf: 2, target: 0x00C00000 | 1<<17, flags: []uint64{fPRWU | fPS}, f: Features{PSE36: true}, code: P | R},
		{name: "PSE-36, MAXPHYADDR 40", leaf: 2, target: 0x00C00000 | 0xFF<<13, flags: []uint64{fPRWU | fPS}, f: Features{PSE36: true, MaxPhyAddr: 40}, gpa: 0xFF_00C00000 | la&0x3FFFFF, size: 4 << 20, code: -1},
		{name: "PSE-36, MAXPHYADDR 46 still 40 bits", leaf: 2, target: 0x00C00000 | 0x81<<13, flags: []uint64{fPRWU | fPS}, f: Features{PSE36: true, MaxPhyAddr: 46}, gpa: 0x81_00C00000 | la&0x3FFFFF, size: 4 << 20, code: -1},
		{name: "PSE-36: bit 21 always reserved", leaf: 2, target: 0x00C00000 | 1<<21, flags: []uint64{fPRWU | fPS}, f: Features{PSE36: true, MaxPhyAddr: 46}, code: P | R},
		{name: "PSE-36 reserved fault at CPL 3 write", leaf: 2, target: 0x00C00000 | 1<<21, flags: []uint64{fPRWU | fPS}, f: Features{PSE36: true}, cpl: 3, acc: x86.AccessWrite, code: P | W | U | R},
		{name: "user read supervisor PDE", leaf: 1, target: 0x123000, flags: []uint64{fPRW, fPRWU}, cpl: 3, code: P | U},
		{name: "user write read-only PTE", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fP | fUS}, cpl: 3, acc: x86.AccessWrite, code: P | W | U},
		{name: "supervisor write read-only WP=0", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fP | fUS}, mod: func(s *State) { s.CR0 &^= x86.CR0WP }, acc: x86.AccessWrite, gpa: 0x123321, size: 4 << 10, code: -1},
		{name: "not present PTE", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fRW}, cpl: 3, acc: x86.AccessWrite, code: W | U},
		{name: "fetch not present, NXE=1 has no I/D without PAE", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, 0}, mod: func(s *State) { s.EFER = x86.EFERNXE }, acc: x86.AccessFetch, code: 0},
		{name: "fetch not present, SMEP: I/D", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, 0}, mod: func(s *State) { s.CR4 |= x86.CR4SMEP }, acc: x86.AccessFetch, code: I},
		{name: "SMEP: supervisor fetch user page", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fPRWU}, mod: func(s *State) { s.CR4 |= x86.CR4SMEP }, acc: x86.AccessFetch, code: P | I},
		{name: "SMAP: supervisor write user page", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fPRWU}, mod: func(s *State) { s.CR4 |= x86.CR4SMAP }, acc: x86.AccessWrite, code: P | W},
		{name: "PKE ignored without long mode", leaf: 1, target: 0x123000, flags: []uint64{fPRWU, fPRWU}, mod: func(s *State) { s.CR4 |= x86.CR4PKE; s.PKRU = 3 }, cpl: 3, gpa: 0x123321, size: 4 << 10, code: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(4, 10)
			root := tb.alloc()
			la := la | tt.la
			tb.mapAddr(root, 2, tt.leaf, la, tt.target, tt.flags...)
			s := state32(root)
			s.CPL = tt.cpl
			if tt.mod != nil {
				tt.mod(s)
			}
			c := mustReset(t, s, tt.f)
			w := new(Walk)
			err := c.Walk(tb.mem, la, tt.acc, w)
			checkCase(t, w, err, tt.code)
			if err != nil {
				return
			}
			if w.GPA != tt.gpa || w.PageSize != tt.size || w.Walker != Paging32 || w.Levels != 2 || int(w.N) != 3-tt.leaf {
				t.Errorf("got %s, want gpa %#x size %#x", w.String(), tt.gpa, tt.size)
			}
			if w.Perm&PermExec == 0 {
				t.Errorf("32-bit paging has no XD: perm %v", w.Perm)
			}
		})
	}
}

// Without CR4.PSE, PS in a PDE is ignored: the PDE points to a page table.
func TestPaging32PSIgnoredWithoutPSE(t *testing.T) {
	const la = 0x0040_1abc
	tb := newTables(4, 10)
	root := tb.alloc()
	pt := tb.alloc()
	tb.put(root+(la>>22)*4, pt|fPRW|fPS)
	tb.put(pt+((la>>12)&1023)*4, 0x777000|fPRW)
	s := state32(root)
	s.CR4 = 0
	c := mustReset(t, s, Features{PSE36: true})
	var w Walk
	if err := c.Walk(tb.mem, la, x86.AccessRead, &w); err != nil {
		t.Fatal(err)
	}
	if w.GPA != 0x777abc || w.PageSize != 4096 || w.N != 2 {
		t.Errorf("walk %s", w.String())
	}
}

func TestPAE(t *testing.T) {
	const la = 0xC012_3456
	const (
		P, W, U, R, I = x86.PFErrPresent, x86.PFErrWrite, x86.PFErrUser, x86.PFErrReserved, x86.PFErrFetch
	)
	type pdpteSrc int
	const (
		fromMemory pdpteSrc = iota
		fromRegs
		regsDiffer // registers map elsewhere than memory
	)
	tests := []struct {
		name  string
		leaf  int
		pdpte uint64 // flags of the PDPTE
		flags []uint64
		src   pdpteSrc
		mod   func(*State)
		cpl   uint8
		acc   x86.Access
		gpa   uint64
		size  uint64
		code  int32
	}{
		{name: "4K from memory", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU}, gpa: 0x200456, size: 4 << 10, code: -1},
		{name: "4K from registers", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU}, src: fromRegs, gpa: 0x200456, size: 4 << 10, code: -1},
		{name: "registers win over memory", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU}, src: regsDiffer, gpa: 0x900456, size: 4 << 10, code: -1},
		{name: "2M", leaf: 2, pdpte: fP, flags: []uint64{fPRWU | fPS}, gpa: 0x200000 | la&0x1FFFFF, size: 2 << 20, code: -1},
		{name: "PDPTE not present", leaf: 1, pdpte: 0, flags: []uint64{fPRWU, fPRWU}, cpl: 3, acc: x86.AccessWrite, code: W | U},
		{name: "PDPTE not present in registers", leaf: 1, pdpte: 0, flags: []uint64{fPRWU, fPRWU}, src: fromRegs, code: 0},
		{name: "PDPTE reserved bit 1", leaf: 1, pdpte: fP | fRW, flags: []uint64{fPRWU, fPRWU}, code: P | R},
		{name: "PDPTE reserved bit 2 (no U/S)", leaf: 1, pdpte: fP | fUS, flags: []uint64{fPRWU, fPRWU}, src: fromRegs, code: P | R},
		{name: "PDPTE reserved bit 7", leaf: 1, pdpte: fP | fPS, flags: []uint64{fPRWU, fPRWU}, code: P | R},
		{name: "PDPTE reserved bit 63 (no XD)", leaf: 1, pdpte: fP | fNX, flags: []uint64{fPRWU, fPRWU}, acc: x86.AccessFetch, code: P | R | I},
		{name: "PDPTE above MAXPHYADDR", leaf: 1, pdpte: fP | 1<<40, flags: []uint64{fPRWU, fPRWU}, code: P | R},
		{name: "PDPTE ignored bits 11:9", leaf: 1, pdpte: fP | 0xE00, flags: []uint64{fPRWU, fPRWU}, gpa: 0x200456, size: 4 << 10, code: -1},
		{name: "PDE bit 52 reserved in PAE", leaf: 1, pdpte: fP, flags: []uint64{fPRWU | 1<<52, fPRWU}, code: P | R},
		{name: "PTE bit 62 reserved in PAE", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU | 1<<62}, code: P | R},
		{name: "2M bit 13 reserved", leaf: 2, pdpte: fP, flags: []uint64{fPRWU | fPS | 1<<13}, code: P | R},
		{name: "XD with NXE", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU | fNX}, acc: x86.AccessFetch, code: P | I},
		{name: "XD without NXE reserved", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU | fNX}, mod: func(s *State) { s.EFER = 0 }, code: P | R},
		{name: "user write read-only PDE", leaf: 1, pdpte: fP, flags: []uint64{fP | fUS, fPRWU}, cpl: 3, acc: x86.AccessWrite, code: P | W | U},
		{name: "PDPTE flags do not restrict", leaf: 1, pdpte: fP, flags: []uint64{fPRWU, fPRWU}, cpl: 3, acc: x86.AccessWrite, gpa: 0x200456, size: 4 << 10, code: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(8, 9)
			pdpt := uint64(0x1FE0) // 32-byte aligned, not page aligned
			tb.next = 0x2000
			pd := tb.alloc()
			tb.put(pdpt+3*8, pd|tt.pdpte)
			tb.mapAddr(pd, 2, tt.leaf, la, 0x200000, tt.flags...)
			s := statePAE(pdpt | 0x18) // CR3 bits 4:0 are not address
			s.CPL = tt.cpl
			switch tt.src {
			case fromRegs:
				s.HasPDPTEs = true
				s.PDPTEs[3] = pd | tt.pdpte
				tb.put(pdpt+3*8, 0) // memory says not present: must not be read
			case regsDiffer:
				pd2 := tb.alloc()
				tb.mapAddr(pd2, 2, tt.leaf, la, 0x900000, tt.flags...)
				s.HasPDPTEs = true
				s.PDPTEs[3] = pd2 | tt.pdpte
			}
			if tt.mod != nil {
				tt.mod(s)
			}
			c := mustReset(t, s, Features{MaxPhyAddr: 36})
			w := new(Walk)
			err := c.Walk(tb.mem, la, tt.acc, w)
			if w.N < 1 || w.Entries[0].Level != 3 || w.Entries[0].Index != 3 || w.Entries[0].TableGPA != pdpt || w.Entries[0].EntryGPA != pdpt+24 || w.Entries[0].FromRegister != (tt.src != fromMemory) {
				t.Errorf("PDPTE entry %+v", w.Entries[0])
			}
			checkCase(t, w, err, tt.code)
			if err != nil {
				return
			}
			if w.GPA != tt.gpa || w.PageSize != tt.size || w.Walker != Paging64 || w.Levels != 3 || int(w.N) != 4-tt.leaf {
				t.Errorf("got %s, want gpa %#x size %#x", w.String(), tt.gpa, tt.size)
			}
		})
	}
}

func TestLoadPDPTEs(t *testing.T) {
	mem := NewSliceMemory(0, 0x2000)
	base := uint64(0x1020)
	vals := [4]uint64{0x3001, 0, 0x4000 | 0x6, 0x5001 | 0xE00}
	for i, v := range vals {
		mem.WriteUint64(base+uint64(i)*8, v)
	}
	got, err := LoadPDPTEs(mem, base|0x8, Features{})
	if err != nil || got != vals {
		t.Fatalf("LoadPDPTEs = %x, %v", got, err)
	}
	mem.WriteUint64(base+8, 1|1<<5)
	_, err = LoadPDPTEs(mem, base, Features{})
	var ex *x86.Exception
	if !errors.As(err, &ex) || ex.Vector != x86.VectorGP || ex.ErrorCode != 0 {
		t.Errorf("reserved PDPTE: %v, want #GP(0)", err)
	}
	if _, err := LoadPDPTEs(mem, 0x3000, Features{}); !errors.Is(err, ErrNotRAM) {
		t.Errorf("PDPT beyond RAM: %v", err)
	}
}

func TestAccessedDirty(t *testing.T) {
	tests := []struct {
		name      string
		entry     int // bytes
		bits      uint
		top, leaf int
		s         func(uint64) *State
		acc       x86.Access
		wantA     bool
		wantD     bool
	}{
		{"4-level read", 8, 9, 4, 1, state4, x86.AccessRead, true, false},
		{"4-level write", 8, 9, 4, 1, state4, x86.AccessWrite, true, true},
		{"4-level fetch", 8, 9, 4, 1, state4, x86.AccessFetch, true, false},
		{"4-level 2M write", 8, 9, 4, 2, state4, x86.AccessWrite, true, true},
		{"4-level write, Walk only looks", 8, 9, 4, 1, state4, x86.AccessWrite, false, false},
		{"32-bit write", 4, 10, 2, 1, state32, x86.AccessWrite, true, true},
		{"32-bit 4M write", 4, 10, 2, 2, state32, x86.AccessWrite, true, true},
		{"5-level write", 8, 9, 5, 1, state5, x86.AccessWrite, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const la = 0x1234_5678
			tb := newTables(tt.entry, tt.bits)
			root := tb.alloc()
			fl := make([]uint64, tt.top-tt.leaf+1)
			for i := range fl {
				fl[i] = fPRW
			}
			if tt.leaf > 1 {
				fl[len(fl)-1] |= fPS
			}
			// Bits 11:9 are ignored: A/D updates must keep them.
			fl[0] |= 0xE00
			gpas := tb.mapAddr(root, tt.top, tt.leaf, la, 0x400000, fl...)
			before := make([]uint64, len(gpas))
			for i, g := range gpas {
				before[i] = tb.get(g)
			}
			c := mustReset(t, tt.s(root), Features{})
			var w Walk
			walk := c.Walk
			if tt.wantA {
				walk = c.WalkCommit
			}
			if err := walk(tb.mem, la, tt.acc, &w); err != nil {
				t.Fatal(err)
			}
			for i, g := range gpas {
				v := tb.get(g)
				want := before[i]
				if tt.wantA {
					want |= fA
				}
				if tt.wantD && i == len(gpas)-1 {
					want |= fD
				}
				if v != want || w.Entries[i].Value != v {
					t.Errorf("entry %d: memory %#x walk %#x, want %#x", i, v, w.Entries[i].Value, want)
				}
			}
		})
	}
}

func TestAccessedDirtyPAE(t *testing.T) {
	tb := newTables(8, 9)
	pdpt := tb.alloc()
	pd := tb.alloc()
	tb.put(pdpt, pd|fP)
	gpas := tb.mapAddr(pd, 2, 1, 0x1000, 0x5000, fPRW, fPRW)
	c := mustReset(t, statePAE(pdpt), Features{})
	var w Walk
	if err := c.WalkCommit(tb.mem, 0x1000, x86.AccessWrite, &w); err != nil {
		t.Fatal(err)
	}
	if v := tb.get(pdpt); v != pd|fP {
		t.Errorf("PDPTE changed to %#x", v)
	}
	if v := tb.get(gpas[0]); v&(fA|fD) != fA {
		t.Errorf("PDE %#x", v)
	}
	if v := tb.get(gpas[1]); v&(fA|fD) != fA|fD {
		t.Errorf("PTE %#x", v)
	}
}

// A faulting walk changes nothing, even with WalkCommit.
func TestAccessedDirtyNotOnFault(t *testing.T) {
	const la = 0x7000
	tb := newTables(8, 9)
	root := tb.alloc()
	gpas := tb.mapAddr(root, 4, 1, la, 0x5000, fPRW, fPRW, fPRW, fP)
	c := mustReset(t, state4(root), Features{})
	var w Walk
	if code := pfCode(t, c.WalkCommit(tb.mem, la, x86.AccessWrite, &w)); code != x86.PFErrPresent|x86.PFErrWrite {
		t.Fatalf("code %#x", code)
	}
	for i, g := range gpas {
		if tb.get(g)&(fA|fD) != 0 {
			t.Errorf("entry %d got A/D on a fault", i)
		}
	}
}

func TestMemoryErrors(t *testing.T) {
	const la = 0x40_0000_0000
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 3, la, 0x7000_0000, fPRW, fPRW) // PDPTE points at a PD outside RAM
	c := mustReset(t, state4(root), Features{})
	var w Walk
	err := c.Walk(tb.mem, la, x86.AccessRead, &w)
	var me *MemoryError
	if !errors.As(err, &me) || !errors.Is(err, ErrNotRAM) {
		t.Fatalf("got %v, want MemoryError wrapping ErrNotRAM", err)
	}
	if me.Level != 2 || me.EntryGPA != 0x7000_0000 || me.Addr != la || me.Walker != Paging64 || me.Write {
		t.Errorf("MemoryError %+v", me)
	}
	if w.N != 2 {
		t.Errorf("N = %d", w.N)
	}
	// CR3 beyond RAM.
	c = mustReset(t, state4(0xFFFF_F000), Features{})
	if err := c.Walk(tb.mem, la, x86.AccessRead, &w); !errors.As(err, &me) || me.Level != 4 {
		t.Errorf("CR3 outside RAM: %v", err)
	}
	// PAE PDPT beyond RAM.
	c = mustReset(t, statePAE(0xFFFF_FFE0), Features{})
	if err := c.Walk(tb.mem, 0xC0000000, x86.AccessRead, &w); !errors.As(err, &me) || me.Level != 3 {
		t.Errorf("PDPT outside RAM: %v", err)
	}
	// A/D write failing is a MemoryError with x86.AccessWrite set.
	tb2 := newTables(8, 9)
	root2 := tb2.alloc()
	tb2.mapAddr(root2, 4, 1, la, 0x5000, fPRW, fPRW, fPRW, fPRW)
	ro := &readOnly{tb2.mem}
	c = mustReset(t, state4(root2), Features{})
	if err := c.WalkCommit(ro, la, x86.AccessWrite, &w); !errors.As(err, &me) || !me.Write || me.Level != 4 {
		t.Errorf("A/D write failure: %v", err)
	}
	if err := c.Walk(tb.mem, la, x86.AccessWrite|x86.AccessFetch, &w); err == nil {
		t.Error("write+fetch accepted")
	}
}

type readOnly struct{ m *SliceMemory }

func (r *readOnly) ReadUint32(gpa uint64) (uint32, error) { return r.m.ReadUint32(gpa) }
func (r *readOnly) ReadUint64(gpa uint64) (uint64, error) { return r.m.ReadUint64(gpa) }
func (r *readOnly) CompareAndSwapUint32(gpa uint64, old, new uint32) (bool, error) {
	return false, errors.New("read-only")
}
func (r *readOnly) CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error) {
	return false, errors.New("read-only")
}

func TestSliceMemoryBounds(t *testing.T) {
	m := &SliceMemory{Base: 0x1000, Data: make([]byte, 16)}
	for _, gpa := range []uint64{0, 0xFFF, 0x100C, 0x1010, ^uint64(0), ^uint64(0) - 3} {
		if _, err := m.ReadUint64(gpa); !errors.Is(err, ErrNotRAM) {
			t.Errorf("ReadUint64(%#x) = %v", gpa, err)
		}
	}
	if err := m.WriteUint32(0x100C, 0xdeadbeef); err != nil {
		t.Fatal(err)
	}
	if v, err := m.ReadUint32(0x100C); v != 0xdeadbeef || err != nil {
		t.Errorf("ReadUint32 = %#x, %v", v, err)
	}
	if _, err := m.ReadUint32(0x100D); !errors.Is(err, ErrNotRAM) {
		t.Errorf("read crossing the end: %v", err)
	}
}

// The context recomputes its tables when CR0/CR4/EFER change and reuses
// them otherwise; CPL, AC and PKRU are taken on every Reset.
func TestResetReuse(t *testing.T) {
	const la = 0x1000
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 1, la, 0x5000, fPRWU, fPRWU, fPRWU, fPRWU)
	s := state4(root)
	var c Context
	var w Walk
	for i, step := range []struct {
		mod  func(*State)
		acc  x86.Access
		code int32
	}{
		{func(s *State) {}, x86.AccessRead, -1},
		{func(s *State) { s.CR4 |= x86.CR4SMAP }, x86.AccessRead, x86.PFErrPresent},
		{func(s *State) { s.RFLAGS |= x86.FlagAC }, x86.AccessRead, -1},
		{func(s *State) { s.CPL = 3; s.RFLAGS = 0 }, x86.AccessRead, -1},
		{func(s *State) { s.CR4 |= x86.CR4PKE; s.PKRU = 1 }, x86.AccessRead, x86.PFErrPresent | x86.PFErrUser | x86.PFErrPK},
		{func(s *State) { s.PKRU = 0 }, x86.AccessRead, -1},
		{func(s *State) { s.CR4 &^= x86.CR4PAE }, x86.AccessRead, -2},
	} {
		step.mod(s)
		if err := c.Reset(s, Features{}); err != nil {
			if step.code == -2 {
				continue
			}
			t.Fatal(err)
		}
		err := c.Walk(tb.mem, la, step.acc, &w)
		if step.code < 0 && err != nil || step.code >= 0 && (err == nil || pfCode(t, err) != uint32(step.code)) {
			t.Errorf("step %d: %v, want %d", i, err, step.code)
		}
	}
	if err := c.ResetEPT(0x1000|3<<3|6, EPTFeatures{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(state4(root), Features{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Walk(tb.mem, la, x86.AccessRead, &w); err != nil || w.Walker != Paging64 {
		t.Errorf("after EPT: %v %v", err, w.Walker)
	}
}

// Unchanged: a walk is unchanged while every entry it read from memory
// holds the value it read, in 32-bit (4-byte entries), PAE (the PDPTE
// read from memory) and 4-level paging; a committing walk that set flags
// never is; Gen moves at every reset.
func TestUnchanged(t *testing.T) {
	const la = 0x40_1234
	for _, c := range []struct {
		name  string
		bytes int
		bits  uint
		top   int
		state func(uint64) *State
	}{
		{"32-bit", 4, 10, 2, state32},
		{"PAE", 8, 9, 3, statePAE},
		{"4-level", 8, 9, 4, state4},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTables(c.bytes, c.bits)
			root := tb.alloc()
			flags := make([]uint64, c.top)
			for i := range flags {
				flags[i] = fPRWU
			}
			if c.name == "PAE" {
				flags[0] = 1 // a PDPTE has no R/W or U/S
			}
			gpas := tb.mapAddr(root, c.top, 1, la, 0x80000, flags...)
			s := c.state(root)
			ctx := mustReset(t, s, Features{MaxPhyAddr: 36})
			gen := ctx.Gen()
			var w Walk
			if err := ctx.Walk(tb.mem, la, x86.AccessRead, &w); err != nil {
				t.Fatal(err)
			}
			if !ctx.Unchanged(tb.mem, &w) {
				t.Fatal("a walk just made is changed")
			}
			leaf := gpas[len(gpas)-1]
			tb.put(leaf, 0x90000|fPRWU)
			if ctx.Unchanged(tb.mem, &w) {
				t.Error("the PTE changed, the walk is unchanged")
			}
			tb.put(leaf, 0x80000|fPRWU)
			if !ctx.Unchanged(tb.mem, &w) {
				t.Error("the PTE is back, the walk is changed")
			}
			if err := ctx.WalkCommit(tb.mem, la, x86.AccessWrite, &w); err != nil {
				t.Fatal(err)
			}
			if ctx.Unchanged(tb.mem, &w) {
				t.Error("a walk that set accessed and dirty flags is unchanged")
			}
			if err := ctx.Reset(s, Features{MaxPhyAddr: 36}); err != nil || ctx.Gen() == gen {
				t.Errorf("Reset: %v, Gen %d, was %d", err, ctx.Gen(), gen)
			}
		})
	}
}
