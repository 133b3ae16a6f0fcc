package x86

import "testing"

func TestIsCanonical(t *testing.T) {
	for _, c := range []struct {
		la   uint64
		bits uint
		want bool
	}{
		{0x00007fffffffffff, 48, true},
		{0x0000800000000000, 48, false},
		{0xffff800000000000, 48, true},
		{0xfeff800000000000, 48, false},
		{0x0000800000000000, 57, true},
		{0x01ffffffffffffff, 57, false},
		{0xff00000000000000, 57, true},
	} {
		if got := IsCanonical(c.la, c.bits); got != c.want {
			t.Errorf("IsCanonical(%#x, %d) = %v", c.la, c.bits, got)
		}
	}
}

func TestExceptionText(t *testing.T) {
	for _, c := range []struct {
		e    *Exception
		want string
	}{
		{PageFault(0x1000, PFErrWrite|PFErrUser, "read-only"), "#PF(0x6) at 0x1000: read-only"},
		{GP(0, ""), "#GP(0x0)"},
		{UD("movbe"), "#UD: movbe"},
		{StackFault("limit"), "#SS(0x0): limit"},
		{&Exception{Vector: 31}, "vector 31"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
	if RAX.String() != "rax" || R15.String() != "r15" || Reg(99).String() != "reg99" || GS.String() != "gs" {
		t.Error("register names")
	}
}
