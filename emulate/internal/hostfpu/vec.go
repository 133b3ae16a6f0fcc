package hostfpu

// VecContext is the state a vector instruction runs with on the host: the
// x87, SSE and AVX state as a standard-format XSAVE image (components 0-2;
// its MXCSR is the one the instruction runs under), its memory operand,
// RAX, RCX, RDX and RBX (the implicit registers of PCMPESTRx and a GPR
// operand, which the caller maps to RBX) and the status flags.
type VecContext struct {
	Img   [1024]byte
	Mem   [64]byte
	GPR   [4]uint64 // RAX, RCX, RDX, RBX
	Flags uint64
}

// Features are the instruction groups the host can run, coarsely: a guest
// instruction goes to the host only when its whole group is there.
type Features struct {
	SSE           bool // SSE3, SSSE3, SSE4.1 and SSE4.2 (SSE2 is x86-64's)
	AES, PCLMUL   bool
	SHA           bool
	AVX           bool // AVX, AVX2, FMA and F16C, enabled by the OS
	VAES, VPCLMUL bool // their 256-bit forms
}
