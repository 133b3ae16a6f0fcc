package machine

import "walkvm/kvm"

// The guest's CPU is KVM's supported CPUID less what walkvm's decoder does
// not model: AVX-512 (EVEX) and AMX. Without their XCR0 components a guest
// cannot enable them, so an EVEX or AMX instruction is #UD on the CPU too,
// and walkvm's #UD for it, when KVM's emulator hands one over, is what the
// hardware would have raised.
var hiddenFeatures = []struct {
	fn, index          uint32
	eax, ebx, ecx, edx uint32
}{
	// 7.0: AVX512F DQ IFMA PF ER CD BW VL (EBX); AVX512_VBMI VBMI2 VNNI
	// BITALG VPOPCNTDQ (ECX); AVX512_4VNNIW 4FMAPS VP2INTERSECT, AMX-BF16
	// FP16 AMX-TILE AMX-INT8 (EDX).
	{fn: 7, index: 0,
		ebx: 1<<16 | 1<<17 | 1<<21 | 1<<26 | 1<<27 | 1<<28 | 1<<30 | 1<<31,
		ecx: 1<<1 | 1<<6 | 1<<11 | 1<<12 | 1<<14,
		edx: 1<<2 | 1<<3 | 1<<8 | 1<<22 | 1<<23 | 1<<24 | 1<<25},
	// 7.1: AVX512_BF16 (EAX).
	{fn: 7, index: 1, eax: 1 << 5},
	// 0xD.0: XCR0 opmask, ZMM_Hi256, Hi16_ZMM, XTILECFG, XTILEDATA.
	{fn: 0xd, index: 0, eax: 1<<5 | 1<<6 | 1<<7 | 1<<17 | 1<<18},
}

// modelCPUID clears the hidden features from id in place.
func modelCPUID(id *kvm.CPUID) {
	entries := id.Entries()
	for i := range entries {
		e := &entries[i]
		for _, h := range hiddenFeatures {
			if e.Function == h.fn && e.Index == h.index {
				e.Eax &^= h.eax
				e.Ebx &^= h.ebx
				e.Ecx &^= h.ecx
				e.Edx &^= h.edx
			}
		}
	}
}
