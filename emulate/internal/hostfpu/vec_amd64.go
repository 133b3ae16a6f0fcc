//go:build amd64

package hostfpu

import (
	"errors"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vecrun runs the code at code (an instruction and RET) with c (the
// layout vec_amd64.s documents; c 64-byte aligned).
//
//go:noescape
func vecrun(code uintptr, c *VecContext)

// JIT runs one encoded instruction at a time from an executable page of its
// own. The zero value is ready; the page is mapped on first use and unmapped
// when the JIT is collected. A JIT is not safe for concurrent use.
type JIT struct {
	page []byte
}

// Vec runs code, one instruction whose memory operand is [RDI] and whose
// GPR operand (if any) is RBX, with c, and leaves in c what the CPU left.
// The caller guarantees that the host supports the instruction and that it
// cannot fault: SIMD exceptions masked in the image's MXCSR, no unmasked x87
// exception pending, the operand within Mem.
func (j *JIT) Vec(code []byte, c *VecContext) error {
	if len(code) > 32 {
		return errors.New("hostfpu: instruction longer than 32 bytes")
	}
	if j.page == nil {
		p, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		j.page = p
		runtime.AddCleanup(j, func(p []byte) { _ = unix.Munmap(p) }, p)
	}
	n := copy(j.page, code)
	j.page[n] = 0xC3 // RET
	var buf [unsafe.Sizeof(VecContext{}) + 64]byte
	off := (64 - uintptr(unsafe.Pointer(&buf[0]))&63) & 63
	a := (*VecContext)(unsafe.Pointer(&buf[off]))
	*a = *c
	vecrun(uintptr(unsafe.Pointer(&j.page[0])), a)
	*c = *a
	return nil
}

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func xgetbv0() uint64

// HostFeatures reads what the host can run.
func HostFeatures() Features {
	var f Features
	bit := func(v uint32, n uint) bool { return v>>n&1 != 0 }
	_, _, c1, _ := cpuid(1, 0)
	_, b7, c7, _ := cpuid(7, 0)
	f.SSE = bit(c1, 0) && bit(c1, 9) && bit(c1, 19) && bit(c1, 20) // SSE3, SSSE3, SSE4.1, SSE4.2
	f.AES, f.PCLMUL, f.SHA = bit(c1, 25), bit(c1, 1), bit(b7, 29)
	if bit(c1, 27) && xgetbv0()&6 == 6 { // OSXSAVE, XCR0 SSE and AVX
		f.AVX = bit(c1, 28) && bit(b7, 5) && bit(c1, 12) && bit(c1, 29) // AVX, AVX2, FMA, F16C
		f.VAES, f.VPCLMUL = bit(c7, 9), bit(c7, 10)
	}
	return f
}
