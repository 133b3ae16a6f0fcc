package x86

// CPUIDEntry is one CPUID leaf as the guest sees it (the fields of
// KVM_SET_CPUID2's entries).
type CPUIDEntry struct {
	Function, Index    uint32
	EAX, EBX, ECX, EDX uint32
}

// DefaultMaxPhyAddr is MAXPHYADDR when CPUID leaf 0x80000008 is absent
// (SDM Vol. 3A §4.1.4).
const DefaultMaxPhyAddr = 36

// FindCPUID returns the entry for leaf fn, subleaf 0.
func FindCPUID(entries []CPUIDEntry, fn uint32) (CPUIDEntry, bool) {
	for _, e := range entries {
		if e.Function == fn && e.Index == 0 {
			return e, true
		}
	}
	return CPUIDEntry{}, false
}

// MaxPhyAddr derives MAXPHYADDR from CPUID leaf 0x80000008 EAX[7:0], or
// DefaultMaxPhyAddr when the leaf is absent (not listed, or above the
// maximum extended leaf that 0x80000000 EAX reports) or reports 0
// (SDM Vol. 3A §4.1.4; KVM's cpuid_query_maxphyaddr reads it the same way).
func MaxPhyAddr(entries []CPUIDEntry) uint8 {
	if max, ok := FindCPUID(entries, 0x80000000); !ok || max.EAX < 0x80000008 {
		return DefaultMaxPhyAddr
	}
	if e, ok := FindCPUID(entries, 0x80000008); ok && uint8(e.EAX) != 0 {
		return uint8(e.EAX)
	}
	return DefaultMaxPhyAddr
}
