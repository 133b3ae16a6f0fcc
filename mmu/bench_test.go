package mmu

import (
	"testing"
	"walkvm/x86"
)

func benchWalk(b *testing.B, mem Memory, c *Context, la uint64, acc x86.Access, wantErr bool) {
	b.Helper()
	w := new(Walk)
	if err := c.Walk(mem, la, acc, w); (err != nil) != wantErr {
		b.Fatalf("walk: %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Walk(mem, la, acc, w)
	}
}

func BenchmarkWalk4Level4K(b *testing.B) {
	const la = 0x0000_7f12_3456_7abc
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 1, la, 0x200000, fPRWU, fPRWU, fPRWU, fPRWU)
	benchWalk(b, tb.mem, mustReset(b, state4(root), Features{}), la, x86.AccessRead, false)
}

func BenchmarkWalk4Level2M(b *testing.B) {
	const la = 0x0000_7f12_3456_7abc
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 2, la, 0x200000, fPRWU, fPRWU, fPRWU|fPS)
	benchWalk(b, tb.mem, mustReset(b, state4(root), Features{}), la, x86.AccessWrite, false)
}

func BenchmarkWalk32(b *testing.B) {
	const la = 0x8765_4321
	tb := newTables(4, 10)
	root := tb.alloc()
	tb.mapAddr(root, 2, 1, la, 0x123000, fPRWU, fPRWU)
	benchWalk(b, tb.mem, mustReset(b, state32(root), Features{}), la, x86.AccessRead, false)
}

func BenchmarkWalkPAE(b *testing.B) {
	const la = 0xC012_3456
	tb := newTables(8, 9)
	pdpt := tb.alloc()
	pd := tb.alloc()
	tb.put(pdpt+3*8, pd|fP)
	tb.mapAddr(pd, 2, 1, la, 0x200000, fPRWU, fPRWU)
	benchWalk(b, tb.mem, mustReset(b, statePAE(pdpt), Features{}), la, x86.AccessRead, false)
}

// A user write to a read-only page: a full 4-level walk ending in #PF.
func BenchmarkWalkFault(b *testing.B) {
	const la = 0x0000_7f12_3456_7abc
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 1, la, 0x200000, fPRWU, fPRWU, fPRWU, fP|fUS)
	s := state4(root)
	s.CPL = 3
	benchWalk(b, tb.mem, mustReset(b, s, Features{}), la, x86.AccessWrite, true)
}

func BenchmarkWalkEPT4K(b *testing.B) {
	tb := newTables(8, 9)
	root := tb.alloc()
	tb.mapAddr(root, 4, 1, 0x1234_5678, 0x5000, eRWX, eRWX, eRWX, eRWX|eWB)
	var c Context
	if err := c.ResetEPT(root|6|3<<3, EPTFeatures{}); err != nil {
		b.Fatal(err)
	}
	benchWalk(b, tb.mem, &c, 0x1234_5678, x86.AccessRead, false)
}

// Reset with changed control registers: the permission table and
// reserved-bit masks are rebuilt.
func BenchmarkResetRebuild(b *testing.B) {
	s1, s2 := state4(0x1000), state4(0x1000)
	s2.CR4 |= 1 << 21
	var c Context
	b.ReportAllocs()
	for i := range b.N {
		s := s1
		if i&1 != 0 {
			s = s2
		}
		c.Reset(s, Features{})
	}
}

// Reset with unchanged control registers (new CPL, RFLAGS, CR3).
func BenchmarkResetSame(b *testing.B) {
	s := state4(0x1000)
	var c Context
	b.ReportAllocs()
	for i := range b.N {
		s.CPL = uint8(i & 3)
		c.Reset(s, Features{})
	}
}
