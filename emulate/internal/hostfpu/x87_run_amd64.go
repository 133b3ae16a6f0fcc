//go:build amd64

package hostfpu

import "unsafe"

//go:generate python3 gen.py

// x87run calls stub idx (x87_amd64.s).
//
//go:noescape
func x87run(idx int, img *[ImageSize]byte, mem *[MemSize]byte)

// Available says whether the host can run the instructions (amd64).
const Available = true

// X87 runs the x87 memory form escape esc (D8H-DFH), ModRM.reg reg, with
// the FXSAVE64 image img and the memory operand mem, and leaves in them
// what the CPU left. The image's MXCSR must be valid (reserved bits clear)
// and no unmasked x87 exception may be pending in it. It reports false,
// running nothing, for a form without a stub (HasX87).
func X87(esc, reg uint8, img *[ImageSize]byte, mem *[MemSize]byte) bool {
	if !HasX87(esc, reg) {
		return false
	}
	// FXRSTOR64 and FXSAVE64 need a 16-byte aligned image.
	var buf [ImageSize + 16]byte
	off := (16 - uintptr(unsafe.Pointer(&buf[0]))&15) & 15
	a := (*[ImageSize]byte)(unsafe.Pointer(&buf[off]))
	*a = *img
	x87run(int(esc-0xD8)*8+int(reg), a, mem)
	*img = *a
	return true
}
