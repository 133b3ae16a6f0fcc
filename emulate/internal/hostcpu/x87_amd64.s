#include "textflag.h"

// The x87 helpers take a *x87Frame: In at 0, Out at 16, FCW at 32, FSW at
// 34. Instructions are spelled as bytes so that the encodings are exactly
// the ones the emulator models.

// func fst32(p *x87Frame)
TEXT ·fst32(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	BYTE $0xDB; BYTE $0xE3               // fninit
	BYTE $0xD9; BYTE $0x68; BYTE $0x20   // fldcw 32(ax)
	BYTE $0xDB; BYTE $0x28               // fld tbyte (ax)
	BYTE $0xDB; BYTE $0xE2               // fnclex
	BYTE $0xD9; BYTE $0x58; BYTE $0x10   // fstp dword 16(ax)
	BYTE $0xDD; BYTE $0x78; BYTE $0x22   // fnstsw 34(ax)
	BYTE $0xDB; BYTE $0xE3               // fninit
	RET

// func fst64(p *x87Frame)
TEXT ·fst64(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	BYTE $0xDB; BYTE $0xE3               // fninit
	BYTE $0xD9; BYTE $0x68; BYTE $0x20   // fldcw 32(ax)
	BYTE $0xDB; BYTE $0x28               // fld tbyte (ax)
	BYTE $0xDB; BYTE $0xE2               // fnclex
	BYTE $0xDD; BYTE $0x58; BYTE $0x10   // fstp qword 16(ax)
	BYTE $0xDD; BYTE $0x78; BYTE $0x22   // fnstsw 34(ax)
	BYTE $0xDB; BYTE $0xE3               // fninit
	RET

// func fld32(p *x87Frame)
TEXT ·fld32(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	BYTE $0xDB; BYTE $0xE3               // fninit
	BYTE $0xD9; BYTE $0x68; BYTE $0x20   // fldcw 32(ax)
	BYTE $0xD9; BYTE $0x00               // fld dword (ax)
	BYTE $0xDD; BYTE $0x78; BYTE $0x22   // fnstsw 34(ax)
	BYTE $0xDB; BYTE $0x78; BYTE $0x10   // fstp tbyte 16(ax)
	BYTE $0xDB; BYTE $0xE3               // fninit
	RET

// func fld64(p *x87Frame)
TEXT ·fld64(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	BYTE $0xDB; BYTE $0xE3               // fninit
	BYTE $0xD9; BYTE $0x68; BYTE $0x20   // fldcw 32(ax)
	BYTE $0xDD; BYTE $0x00               // fld qword (ax)
	BYTE $0xDD; BYTE $0x78; BYTE $0x22   // fnstsw 34(ax)
	BYTE $0xDB; BYTE $0x78; BYTE $0x10   // fstp tbyte 16(ax)
	BYTE $0xDB; BYTE $0xE3               // fninit
	RET
