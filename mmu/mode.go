package mmu

import (
	"fmt"

	"walkvm/x86"
)

// State is the architectural state a translation depends on, as the vCPU
// has it (KVM_GET_SREGS2, KVM_GET_REGS, CPL from SS.DPL, PKRU from XSAVE).
type State struct {
	CR0, CR3, CR4, EFER uint64
	RFLAGS              uint64 // AC and VM matter
	CPL                 uint8  // forced to 3 in virtual-8086 mode
	CSL, CSD            bool   // CS.L and CS.D: 64-bit code vs. compatibility mode
	PKRU                uint32

	// PDPTEs are the PAE PDPTE registers (KVM_GET_SREGS2 with
	// KVM_SREGS2_FLAGS_PDPTRS_VALID). Without them (HasPDPTEs false) a PAE
	// walk reads the PDPTEs from memory at CR3, as they were when loaded if
	// the guest has not changed them since.
	PDPTEs    [4]uint64
	HasPDPTEs bool
}

// Mode is the operating mode of s (x86.ModeOf).
func (s *State) Mode() x86.Mode { return x86.ModeOf(s.CR0, s.EFER, s.RFLAGS, s.CSL, s.CSD) }

// Features are what the guest's CPUID says about paging.
type Features struct {
	MaxPhyAddr uint8 // MAXPHYADDR, CPUID 0x80000008 EAX[7:0]; 0 means 36
	GBPages    bool  // 1-GByte pages, CPUID 0x80000001 EDX[26]
	PSE36      bool  // PSE-36, CPUID 0x1 EDX[17]
	// AMD says the guest CPU is AMD or Hygon (CPUID 0 vendor), whose
	// PML4Es and PML5Es reserve bit 8 (AMD APM Vol. 2 §5.3.3, "MBZ"; KVM's
	// nonleaf_bit8_rsvd). Intel ignores that bit.
	AMD bool
}

// FeaturesFromCPUID collects the paging features of a guest CPUID.
func FeaturesFromCPUID(entries []x86.CPUIDEntry) Features {
	f := Features{MaxPhyAddr: x86.MaxPhyAddr(entries)}
	if e, ok := x86.FindCPUID(entries, 0); ok {
		// "AuthenticAMD" and "HygonGenuine" in EBX, EDX, ECX.
		f.AMD = e.EBX == 0x68747541 && e.EDX == 0x69746e65 && e.ECX == 0x444d4163 ||
			e.EBX == 0x6f677948 && e.EDX == 0x6e65476e && e.ECX == 0x656e6975
	}
	if e, ok := x86.FindCPUID(entries, 1); ok {
		f.PSE36 = e.EDX&(1<<17) != 0
	}
	if e, ok := x86.FindCPUID(entries, 0x80000001); ok {
		f.GBPages = e.EDX&(1<<26) != 0
	}
	return f
}

// PhysAddrBits is MAXPHYADDR: MaxPhyAddr, or x86.DefaultMaxPhyAddr for 0;
// an error outside 32..52.
func (f Features) PhysAddrBits() (uint8, error) { return f.maxPhyAddr() }

func (f Features) maxPhyAddr() (uint8, error) {
	m := f.MaxPhyAddr
	if m == 0 {
		m = x86.DefaultMaxPhyAddr
	}
	if m < 32 || m > 52 {
		return 0, fmt.Errorf("mmu: MAXPHYADDR %d outside 32..52", m)
	}
	return m, nil
}

// PDPTE reserved bits in PAE paging (SDM Vol. 3A §4.4.1, Table 4-8): 2:1,
// 8:5 and 63:MAXPHYADDR.
func pdpteReserved(maxPhy uint8) uint64 {
	return bits(1, 2) | bits(5, 8) | bits(uint(maxPhy), 63)
}

// LoadPDPTEs does what MOV to CR3 (or to CR0/CR4 entering PAE paging) does
// with the PDPTEs (SDM Vol. 3A §4.4.1): it reads the four PDPTEs at CR3
// bits 31:5 and returns #GP(0) if a present one has a reserved bit set.
func LoadPDPTEs(mem Memory, cr3 uint64, f Features) ([4]uint64, error) {
	var p [4]uint64
	m, err := f.maxPhyAddr()
	if err != nil {
		return p, err
	}
	base := cr3 & 0xFFFFFFE0
	for i := range p {
		gpa := base + uint64(i)*8
		v, err := mem.ReadUint64(gpa)
		if err != nil {
			return p, &MemoryError{Walker: Paging64, Level: 3, EntryGPA: gpa, Err: err}
		}
		if v&1 != 0 && v&pdpteReserved(m) != 0 {
			return p, x86.GP(0, fmt.Sprintf("PDPTE %d (%#x) has reserved bits set", i, v))
		}
		p[i] = v
	}
	return p, nil
}

// bits is the mask of bits lo..hi inclusive; empty when lo > hi.
func bits(lo, hi uint) uint64 {
	if lo > hi || lo > 63 {
		return 0
	}
	return (^uint64(0) >> (63 - hi)) &^ (1<<lo - 1)
}
