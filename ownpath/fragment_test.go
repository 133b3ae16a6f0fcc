package ownpath

import (
	"testing"

	"walkvm/emulate"
)

func TestIsKVMFragment(t *testing.T) {
	one := func(gpa uint64, size uint16) *emulate.MemRef {
		return &emulate.MemRef{Size: size, N: 1, Pieces: [2]emulate.Piece{{GPA: gpa, Size: size}}}
	}
	split := &emulate.MemRef{Size: 4, N: 2, Pieces: [2]emulate.Piece{{GPA: 0x1ffe, Size: 2}, {GPA: 0x5000, Size: 2}}}
	for _, c := range []struct {
		a    *emulate.MemRef
		gpa  uint64
		n    int
		want bool
	}{
		{one(0x1000, 4), 0x1000, 4, true},
		{one(0x1000, 4), 0x1000, 2, false}, // a 2-byte store is not a 4-byte one
		{one(0x1000, 4), 0x1002, 2, false},
		{one(0x1000, 16), 0x1000, 8, true}, // movups: two 8-byte exits
		{one(0x1000, 16), 0x1008, 8, true},
		{one(0x1000, 16), 0x1004, 8, false},
		{one(0x1000, 10), 0x1008, 2, true}, // m80: 8 then 2
		{split, 0x1ffe, 2, true},
		{split, 0x5000, 2, true},
		{split, 0x1ffe, 4, false},
	} {
		if got := isKVMFragment(c.a, c.gpa, c.n); got != c.want {
			t.Errorf("%v: exit %#x/%d: %v, want %v", c.a, c.gpa, c.n, got, c.want)
		}
	}
}
