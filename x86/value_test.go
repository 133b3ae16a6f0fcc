package x86

import "testing"

// Value reads any length up to 8 as little-endian.
func TestValue(t *testing.T) {
	b := []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	for n, want := range []uint64{0, 0x11, 0x2211, 0x332211, 0x44332211, 0x5544332211, 0x665544332211,
		0x77665544332211, 0x8877665544332211} {
		if got := Value(b[:n]); got != want {
			t.Errorf("Value of %d bytes = %#x, want %#x", n, got, want)
		}
	}
}
