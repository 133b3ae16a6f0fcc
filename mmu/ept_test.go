package mmu

import (
	"errors"
	"testing"
	"walkvm/x86"
)

const (
	eR, eW, eX = 1, 2, 4
	eRWX       = eR | eW | eX
	eWB        = 6 << 3
)

func TestEPT(t *testing.T) {
	const gpa = 0x0000_00ab_cdef_1234
	type want struct {
		gpa, size uint64
		perm      Perm
		memType   uint8
		qual      int64 // violation qualification, -1 none
		misconfig bool
	}
	ok := func(g, size uint64, p Perm) want { return want{gpa: g, size: size, perm: p, memType: 6, qual: -1} }
	viol := func(q uint64) want { return want{qual: int64(q)} }
	misc := want{qual: -1, misconfig: true}
	rwx := PermRead | PermWrite | PermExec
	tests := []struct {
		name   string
		levels int
		leaf   int
		target uint64
		flags  []uint64
		f      EPTFeatures
		acc    x86.Access
		want   want
	}{
		{"4K read", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eRWX | eWB}, EPTFeatures{}, x86.AccessRead, ok(0x5234, 4<<10, rwx)},
		{"2M write", 4, 2, 0x200000, []uint64{eRWX, eRWX, eRWX | eWB | 0x80}, EPTFeatures{}, x86.AccessWrite, ok(0x200000|gpa&0x1FFFFF, 2<<20, rwx)},
		{"1G fetch", 4, 3, 0x40000000, []uint64{eRWX, eRWX | eWB | 0x80}, EPTFeatures{GBPages: true}, x86.AccessFetch, ok(0x40000000|gpa&0x3FFFFFFF, 1<<30, rwx)},
		{"1G without support", 4, 3, 0x40000000, []uint64{eRWX, eRWX | eWB | 0x80}, EPTFeatures{}, x86.AccessRead, misc},
		{"5-level 4K", 5, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eRWX, eRWX | eWB}, EPTFeatures{}, x86.AccessRead, ok(0x5234, 4<<10, rwx)},
		{"UC leaf", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eRWX}, EPTFeatures{}, x86.AccessRead, want{gpa: 0x5234, size: 4 << 10, perm: rwx, qual: -1}},
		{"read-only: write violates", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eR | eWB}, EPTFeatures{}, x86.AccessWrite, viol(EPTQualWrite | EPTQualReadable)},
		{"no X above: fetch violates", 4, 1, 0x5000, []uint64{eRWX, eR | eW, eRWX, eRWX | eWB}, EPTFeatures{}, x86.AccessFetch, viol(EPTQualFetch | EPTQualReadable | EPTQualWritable)},
		{"read-execute read", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eR | eX | eWB}, EPTFeatures{}, x86.AccessRead, ok(0x5234, 4<<10, PermRead|PermExec)},
		{"not present PDE", 4, 1, 0x5000, []uint64{eRWX, eRWX, 0, eRWX | eWB}, EPTFeatures{}, x86.AccessRead, viol(EPTQualRead)},
		{"execute-only supported: read violates", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eX | eWB}, EPTFeatures{ExecOnly: true}, x86.AccessRead, viol(EPTQualRead | EPTQualExecutable)},
		{"execute-only supported: fetch", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eX | eWB}, EPTFeatures{ExecOnly: true}, x86.AccessFetch, ok(0x5234, 4<<10, PermExec)},
		{"execute-only unsupported", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eX | eWB}, EPTFeatures{}, x86.AccessFetch, misc},
		{"write-only", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eW | eWB}, EPTFeatures{}, x86.AccessWrite, misc},
		{"write-execute", 4, 1, 0x5000, []uint64{eRWX, eW | eX, eRWX, eRWX | eWB}, EPTFeatures{}, x86.AccessWrite, misc},
		{"memory type 2", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eRWX | 2<<3}, EPTFeatures{}, x86.AccessRead, misc},
		{"memory type 7", 4, 2, 0x200000, []uint64{eRWX, eRWX, eRWX | 7<<3 | 0x80}, EPTFeatures{}, x86.AccessRead, misc},
		{"bit 3 in PML4E", 4, 1, 0x5000, []uint64{eRWX | 1<<3, eRWX, eRWX, eRWX | eWB}, EPTFeatures{}, x86.AccessRead, misc},
		{"bit 7 in PML4E", 4, 1, 0x5000, []uint64{eRWX | 1<<7, eRWX, eRWX, eRWX | eWB}, EPTFeatures{}, x86.AccessRead, misc},
		{"bit 6 in non-leaf PDE", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX | 1<<6, eRWX | eWB}, EPTFeatures{}, x86.AccessRead, misc},
		{"bit above MAXPHYADDR", 4, 1, 0x5000, []uint64{eRWX, eRWX, eRWX, eRWX | eWB | 1<<40}, EPTFeatures{}, x86.AccessRead, misc},
		{"2M bit 12", 4, 2, 0x200000 | 1<<12, []uint64{eRWX, eRWX, eRWX | eWB | 0x80}, EPTFeatures{}, x86.AccessRead, misc},
		{"IPAT and ignored bits", 4, 1, 0x5000, []uint64{eRWX | 0xC00, eRWX, eRWX, eRWX | eWB | 1<<6 | 1<<7 | 0xC00}, EPTFeatures{}, x86.AccessRead, ok(0x5234, 4<<10, rwx)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(8, 9)
			root := tb.alloc()
			tb.mapAddr(root, tt.levels, tt.leaf, gpa, tt.target, tt.flags...)
			eptp := root | 6 | uint64(tt.levels-1)<<3
			var c Context
			if err := c.ResetEPT(eptp, tt.f); err != nil {
				t.Fatal(err)
			}
			var w Walk
			err := c.Walk(tb.mem, gpa, tt.acc, &w)
			ref := refWalkEPT(tb.mem, eptp, tt.f, gpa, tt.acc)
			compare(t, &w, err, ref, tt.acc)
			var ev *EPTViolation
			var em *EPTMisconfig
			switch {
			case tt.want.misconfig:
				if !errors.As(err, &em) || em.GPA != gpa {
					t.Fatalf("got %v, want misconfiguration", err)
				}
			case tt.want.qual >= 0:
				if !errors.As(err, &ev) || ev.Qualification != uint64(tt.want.qual) || ev.GPA != gpa {
					t.Fatalf("got %v, want violation %#x", err, tt.want.qual)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if w.GPA != tt.want.gpa || w.PageSize != tt.want.size || w.Perm != tt.want.perm || w.MemType != tt.want.memType {
					t.Errorf("got %s memtype %d", w.String(), w.MemType)
				}
				if w.Walker != EPT || int(w.Levels) != tt.levels || int(w.N) != tt.levels-tt.leaf+1 {
					t.Errorf("walker %v levels %d n %d", w.Walker, w.Levels, w.N)
				}
			}
		})
	}
}

func TestEPTAccessedDirty(t *testing.T) {
	for _, ad := range []bool{false, true} {
		tb := newTables(8, 9)
		root := tb.alloc()
		gpas := tb.mapAddr(root, 4, 1, 0x1000, 0x5000, eRWX, eRWX, eRWX, eRWX|eWB)
		eptp := root | 6 | 3<<3
		if ad {
			eptp |= 1 << 6
		}
		var c Context
		if err := c.ResetEPT(eptp, EPTFeatures{}); err != nil {
			t.Fatal(err)
		}
		var w Walk
		if err := c.WalkCommit(tb.mem, 0x1000, x86.AccessWrite, &w); err != nil {
			t.Fatal(err)
		}
		for i, g := range gpas {
			v := tb.get(g)
			var want uint64
			if ad {
				want = 1 << 8
				if i == 3 {
					want |= 1 << 9
				}
			}
			if v&(3<<8) != want {
				t.Errorf("A/D enabled %v: entry %d = %#x", ad, i, v)
			}
		}
	}
}

func TestResetEPTErrors(t *testing.T) {
	var c Context
	for _, eptp := range []uint64{0x1000 | 6 | 2<<3, 0x1000 | 6 | 5<<3, 0x1000 | 1 | 3<<3} {
		if err := c.ResetEPT(eptp, EPTFeatures{}); err == nil {
			t.Errorf("EPTP %#x accepted", eptp)
		}
	}
	if err := c.ResetEPT(0x1000|3<<3, EPTFeatures{}); err != nil {
		t.Errorf("UC EPTP: %v", err)
	}
}
