package emulate

import (
	"math"
	"math/rand/v2"
	"testing"

	"walkvm/emulate/internal/hostcpu"
)

// ext80Samples are extended values at the edges of the binary32 and
// binary64 ranges, special encodings and random values.
func ext80Samples(rng *rand.Rand) []Ext80 {
	var s []Ext80
	mants := []uint64{0, 1, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xC000000000000000,
		0x8000000000000001, 0x80000080_00000000, 0x80000080_00000001, 0x80000180_00000000,
		0xFFFFFF80_00000000, 0xFFFFFF7F_FFFFFFFF, 0x80000000_00000400, 0x80000000_00000C00,
		0xFFFFFFFF_FFFFF800, 0x7FFFFFFFFFFFFFFF, 0x4000000000000000, 0xA000000000000000}
	exps := []int{0, 1, 0x7FFF, 16383, 16383 + 127, 16383 + 128, 16383 - 126, 16383 - 127,
		16383 - 149, 16383 - 150, 16383 - 151, 16383 + 1023, 16383 + 1024, 16383 - 1022,
		16383 - 1023, 16383 - 1074, 16383 - 1075, 16383 - 1076, 16383 - 160, 16383 - 1100}
	for _, m := range mants {
		for _, e := range exps {
			for _, sg := range []uint16{0, 0x8000} {
				s = append(s, Ext80{Mant: m, SE: sg | uint16(e)})
			}
		}
	}
	for range 3000 {
		e := 16383 + rng.IntN(2300) - 1150
		s = append(s, Ext80{Mant: rng.Uint64() | 1<<63>>rng.IntN(2), SE: uint16(e) | uint16(rng.IntN(2))<<15})
	}
	return s
}

func TestExt80StoreHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	samples := ext80Samples(rng)
	for rc := uint8(0); rc < 4; rc++ {
		fcw := uint16(fcwInit) | uint16(rc)<<10
		for _, e := range samples {
			hb, hfsw := hostcpu.FST(e.Bytes(), 4, fcw)
			got, exc, up := Ext80ToFloat32(e, rc)
			want := uint32(hb[0]) | uint32(hb[1])<<8 | uint32(hb[2])<<16 | uint32(hb[3])<<24
			if got != want || exc != hfsw&fswExc || up != (hfsw&FSWC1 != 0) {
				t.Fatalf("fst m32 %#04x:%#016x rc %d: got %#08x exc %#x c1 %v, host %#08x fsw %#x",
					e.SE, e.Mant, rc, got, exc, up, want, hfsw)
			}
			hb, hfsw = hostcpu.FST(e.Bytes(), 8, fcw)
			got64, exc, up := Ext80ToFloat64(e, rc)
			var want64 uint64
			for i := 7; i >= 0; i-- {
				want64 = want64<<8 | uint64(hb[i])
			}
			if got64 != want64 || exc != hfsw&fswExc || up != (hfsw&FSWC1 != 0) {
				t.Fatalf("fst m64 %#04x:%#016x rc %d: got %#016x exc %#x c1 %v, host %#016x fsw %#x",
					e.SE, e.Mant, rc, got64, exc, up, want64, hfsw)
			}
		}
	}
}

func TestExt80LoadHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var in []uint64
	for _, f := range []float64{0, 1, -1, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-310, 3.14} {
		in = append(in, math.Float64bits(f))
	}
	in = append(in, 0x7FF0000000000001, 0xFFF4000000000000, 0x7FF8000000000001, 0x000FFFFFFFFFFFFF, 0x8000000000000001)
	for range 2000 {
		in = append(in, rng.Uint64())
	}
	for _, v := range in {
		var src [8]byte
		for i := range 8 {
			src[i] = byte(v >> (8 * i))
		}
		he, hfsw := hostcpu.FLD(src, 8, fcwInit)
		e, exc := Float64ToExt80(v)
		if e.Bytes() != he || exc != hfsw&fswExc {
			t.Fatalf("fld m64 %#016x: got %x exc %#x, host %x fsw %#x", v, e.Bytes(), exc, he, hfsw)
		}
		he, hfsw = hostcpu.FLD(src, 4, fcwInit)
		e, exc = Float32ToExt80(uint32(v))
		if e.Bytes() != he || exc != hfsw&fswExc {
			t.Fatalf("fld m32 %#08x: got %x exc %#x, host %x fsw %#x", uint32(v), e.Bytes(), exc, he, hfsw)
		}
	}
}
