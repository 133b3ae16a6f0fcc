package emulate

import (
	"walkvm/emulate/decode"

	"golang.org/x/arch/x86/x86asm"
)

// Disasm spells the instruction at the start of b in AT&T syntax for traces,
// with pc its address (for RIP-relative and branch targets). It allocates;
// keep it off the hot path.
func Disasm(b []byte, mode decode.Mode, pc uint64) string {
	in, err := x86asm.Decode(b, int(mode))
	if err != nil {
		return "(bad)"
	}
	return x86asm.GNUSyntax(in, pc, nil)
}
