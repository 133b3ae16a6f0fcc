// Package hostfpu runs one floating-point instruction with a memory operand
// on the host's own x87 unit, for the emulator: the guest's x87 state goes
// in as an FXSAVE64 image, the instruction runs on a copy of its memory
// operand, and the image and operand come back as the CPU left them, with
// its precision and rounding control, exception flags, condition codes and
// stack. The vCPU runs on the same CPU model, so this is the guest's own
// arithmetic, bit for bit.
//
// The host must never take the exception the guest would: callers check
// for a pending unmasked x87 exception (#MF) first; an unmasked exception
// the instruction raises only sets ES in the image (the #MF belongs to the
// next waiting instruction), so the host does not fault.
package hostfpu

// ImageSize is the size of an FXSAVE64 image.
const ImageSize = 512

// MemSize is the largest memory operand of an x87 form with a stub (m80).
const MemSize = 16

// x87Valid marks the forms with a stub: the arithmetic, compare, load and
// store forms of D8-DF. Environment and control forms (FLDENV, FLDCW,
// FNSTENV, FNSTCW, FRSTOR, FNSAVE, FNSTSW) have mode-dependent memory
// layouts and are the emulator's own; D9 /1, DB /4 and DB /6 are undefined.
var x87Valid = func() (v [64]bool) {
	for i := range v {
		v[i] = true
	}
	for _, i := range []int{1*8 + 1, 1*8 + 4, 1*8 + 5, 1*8 + 6, 1*8 + 7, 3*8 + 4, 3*8 + 6, 5*8 + 4, 5*8 + 6, 5*8 + 7} {
		v[i] = false
	}
	return
}()

// HasX87 reports whether X87 runs escape esc (D8-DF) with ModRM.reg reg.
func HasX87(esc, reg uint8) bool {
	return Available && esc >= 0xD8 && esc <= 0xDF && reg < 8 && x87Valid[int(esc-0xD8)*8+int(reg)]
}
