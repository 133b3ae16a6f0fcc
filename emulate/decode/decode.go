package decode

import "walkvm/x86"

//go:generate go run mkops.go

// Decode decodes the instruction at the start of b in mode and fills inst.
// It returns ErrTruncated if b ends before the instruction does, an
// *x86.Exception (#UD, or #GP(0) past 15 bytes) for an encoding the CPU
// rejects, and nil otherwise. It allocates nothing.
func Decode(b []byte, mode Mode, inst *Inst) error {
	*inst = Inst{Mode: mode}
	return x86.UD("decode: not implemented yet")
}
