package ownpath

import (
	"unsafe"

	"walkvm/emulate"
	"walkvm/kvm"
	"walkvm/x86"
)

// stateFromKVM fills the emulator's view of the vCPU from KVM's registers.
// KVM orders the GPRs rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp; the
// emulator uses the encoding order.
func stateFromKVM(s *emulate.State, r *kvm.Regs, sr *kvm.Sregs2) {
	gprsOf(&s.GPR, r)
	s.RIP, s.RFLAGS = r.RIP, r.RFLAGS
	s.Seg[x86.ES] = segFromKVM(&sr.ES)
	s.Seg[x86.CS] = segFromKVM(&sr.CS)
	s.Seg[x86.SS] = segFromKVM(&sr.SS)
	s.Seg[x86.DS] = segFromKVM(&sr.DS)
	s.Seg[x86.FS] = segFromKVM(&sr.FS)
	s.Seg[x86.GS] = segFromKVM(&sr.GS)
	s.CR0, s.CR2, s.CR3, s.CR4, s.EFER = sr.CR0, sr.CR2, sr.CR3, sr.CR4, sr.EFER
	s.GDTR = emulate.TableReg{Base: sr.GDT.Base, Limit: sr.GDT.Limit}
	s.IDTR = emulate.TableReg{Base: sr.IDT.Base, Limit: sr.IDT.Limit}
	s.LDTR, s.TR = segFromKVM(&sr.LDT), segFromKVM(&sr.TR)
	s.PDPTEs, s.HasPDPTEs = sr.PDptrs, sr.Flags&kvm.Sregs2PDPTRsValid != 0
}

// sameSregs reports whether special registers a and b build the same
// exit state: all of them but CR8, IA32_APIC_BASE and the pending
// interrupts' bitmap, which the emulator does not read. The segments, the
// descriptor tables and CR0 to CR4 lie in one run of bytes before CR8,
// compared at once.
func sameSregs(a, b *kvm.Sregs) bool {
	return a.EFER == b.EFER && sregsHead(a) == sregsHead(b)
}

// sregsHead views struct kvm_sregs up to CR8 as a string of its bytes.
func sregsHead(s *kvm.Sregs) string {
	return unsafe.String((*byte)(unsafe.Pointer(s)), unsafe.Offsetof(s.CR8))
}

func segFromKVM(k *kvm.Segment) x86.Segment {
	return x86.Segment{
		Base: k.Base, Limit: k.Limit, Selector: k.Selector, Type: k.Typ, S: k.S != 0, DPL: k.DPL,
		Present: k.Present != 0, DB: k.DB != 0, L: k.L != 0, G: k.G != 0, Unusable: k.Unusable != 0,
	}
}

// regsFromState is stateFromKVM's inverse for what an instruction changes.
func regsFromState(r *kvm.Regs, s *emulate.State) {
	g := &s.GPR
	r.RAX, r.RCX, r.RDX, r.RBX = g[x86.RAX], g[x86.RCX], g[x86.RDX], g[x86.RBX]
	r.RSP, r.RBP, r.RSI, r.RDI = g[x86.RSP], g[x86.RBP], g[x86.RSI], g[x86.RDI]
	r.R8, r.R9, r.R10, r.R11 = g[x86.R8], g[x86.R9], g[x86.R10], g[x86.R11]
	r.R12, r.R13, r.R14, r.R15 = g[x86.R12], g[x86.R13], g[x86.R14], g[x86.R15]
	r.RIP, r.RFLAGS = s.RIP, s.RFLAGS
}

// sregs2From widens KVM_GET_SREGS's answer (or the synced copy) into d,
// without PDPTEs.
func sregs2From(d *kvm.Sregs2, s *kvm.Sregs) {
	*d = kvm.Sregs2{
		CS: s.CS, DS: s.DS, ES: s.ES, FS: s.FS, GS: s.GS, SS: s.SS, TR: s.TR, LDT: s.LDT,
		GDT: s.GDT, IDT: s.IDT, CR0: s.CR0, CR2: s.CR2, CR3: s.CR3, CR4: s.CR4, CR8: s.CR8,
		EFER: s.EFER, APICBase: s.ApicBase,
	}
}

// fpuBytes views struct kvm_fpu as the bytes the emulator marshals.
func fpuBytes(f *kvm.FPU) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(f)), unsafe.Sizeof(*f))
}

// kvmGPR is where struct kvm_regs keeps each general register, by its
// encoding (x86.RAX...): KVM orders them rax, rbx, rcx, rdx, rsi, rdi,
// rsp, rbp, r8 to r15, then rip and rflags.
var kvmGPR = [x86.NumGPR]uint8{
	x86.RAX: 0, x86.RCX: 2, x86.RDX: 3, x86.RBX: 1, x86.RSP: 6, x86.RBP: 7, x86.RSI: 4, x86.RDI: 5,
	x86.R8: 8, x86.R9: 9, x86.R10: 10, x86.R11: 11, x86.R12: 12, x86.R13: 13, x86.R14: 14, x86.R15: 15,
}

// kvmRegWords is struct kvm_regs as its 18 quadwords.
type kvmRegWords = [18]uint64

// struct kvm_regs is 18 quadwords (KVM's ABI), so that gprOf may index it.
var (
	_ [unsafe.Sizeof(kvmRegWords{}) - unsafe.Sizeof(kvm.Regs{})]struct{}
	_ [unsafe.Sizeof(kvm.Regs{}) - unsafe.Sizeof(kvmRegWords{})]struct{}
)

// gprOf reads general register i (by its encoding) from KVM's registers.
func gprOf(r *kvm.Regs, i int) uint64 {
	return (*kvmRegWords)(unsafe.Pointer(r))[kvmGPR[i]]
}

// gprsOf orders KVM's general registers by encoding into g, as kvmGPR
// places them (TestKVMGPR).
func gprsOf(g *[x86.NumGPR]uint64, r *kvm.Regs) {
	*g = [x86.NumGPR]uint64{
		x86.RAX: r.RAX, x86.RCX: r.RCX, x86.RDX: r.RDX, x86.RBX: r.RBX,
		x86.RSP: r.RSP, x86.RBP: r.RBP, x86.RSI: r.RSI, x86.RDI: r.RDI,
		x86.R8: r.R8, x86.R9: r.R9, x86.R10: r.R10, x86.R11: r.R11,
		x86.R12: r.R12, x86.R13: r.R13, x86.R14: r.R14, x86.R15: r.R15,
	}
}
