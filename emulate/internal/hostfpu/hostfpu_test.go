package hostfpu

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestX87 loads 1.5 and adds 2.5 on the host's x87 unit.
func TestX87(t *testing.T) {
	if !Available {
		t.Skip("no host x87 stubs on this architecture")
	}
	var img [ImageSize]byte
	var mem [MemSize]byte
	le := binary.LittleEndian
	le.PutUint16(img[0:], 0x037F)
	le.PutUint32(img[24:], 0x1F80)
	le.PutUint32(mem[:], math.Float32bits(1.5))
	if !X87(0xD9, 0, &img, &mem) { // fld m32fp
		t.Fatal("no stub for fld m32fp")
	}
	if fsw, tw := le.Uint16(img[2:]), img[4]; fsw != 0x3800 || tw != 0x80 {
		t.Fatalf("after fld: fsw %#x ftw %#x", fsw, tw)
	}
	le.PutUint32(mem[:], math.Float32bits(2.5))
	X87(0xD8, 0, &img, &mem) // fadd m32fp
	if m, se := le.Uint64(img[32:]), le.Uint16(img[40:]); m != 1<<63 || se != 0x4001 {
		t.Fatalf("st(0) = %#x:%#x, want 4.0", se, m)
	}
	clear(mem[:])
	X87(0xD9, 3, &img, &mem) // fstp m32fp
	if got := math.Float32frombits(le.Uint32(mem[:])); got != 4 || le.Uint16(img[2:])&0x3800 != 0 {
		t.Fatalf("fstp stored %v, fsw %#x", got, le.Uint16(img[2:]))
	}
	if X87(0xD9, 4, &img, &mem) || HasX87(0xD9, 1) {
		t.Error("a stub for fldenv or an undefined form")
	}
}

// TestVec adds a memory operand to XMM1 with ADDPS on the host.
func TestVec(t *testing.T) {
	if !Available {
		t.Skip("no host vector unit on this architecture")
	}
	var c VecContext
	le := binary.LittleEndian
	le.PutUint16(c.Img[0:], 0x037F)
	le.PutUint32(c.Img[24:], 0x1F80)
	le.PutUint64(c.Img[512:], 7) // XSTATE_BV
	le.PutUint32(c.Img[160+16:], math.Float32bits(1.5))
	le.PutUint32(c.Mem[:], math.Float32bits(2.25))
	c.Flags = 0x202
	var j JIT
	if err := j.Vec([]byte{0x0f, 0x58, 0x0f}, &c); err != nil { // addps (%rdi), %xmm1
		t.Fatal(err)
	}
	if got := math.Float32frombits(le.Uint32(c.Img[160+16:])); got != 3.75 {
		t.Fatalf("xmm1[0] = %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = j.Vec([]byte{0x0f, 0x58, 0x0f}, &c) }); n != 0 {
		t.Errorf("%v allocations per Vec", n)
	}
}
