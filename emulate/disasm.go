package emulate

import (
	"fmt"
	"walkvm/emulate/decode"

	"golang.org/x/arch/x86/x86asm"
)

// Disasm spells the instruction at the start of b in AT&T syntax for traces
// and logs, with pc its address (for RIP-relative and branch targets), using
// golang.org/x/arch/x86/x86asm. Where x86asm cannot decode bytes that
// walkvm's decoder accepts (decode/diff_test.go lists the encodings), it
// falls back to the decoder's own rendering (decode.Inst.String); bytes
// neither decodes are "(bad: reason)". It allocates; keep it off the hot
// path.
func Disasm(b []byte, mode decode.Mode, pc uint64) string {
	if len(b) > decode.MaxLen {
		b = b[:decode.MaxLen]
	}
	in, err := x86asm.Decode(b, int(mode))
	if err == nil && in.Op != 0 {
		return x86asm.GNUSyntax(in, pc, nil)
	}
	var inst decode.Inst
	if err := decode.Decode(b, mode, &inst); err != nil {
		return fmt.Sprintf("(bad: %v)", err)
	}
	return inst.String()
}
