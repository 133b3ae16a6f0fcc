package machine

import (
	"testing"

	"walkvm/internal/kvmtest"
	"walkvm/kvm"
)

// The guest never sees AVX-512 or AMX, whatever the host has.
func TestModelCPUIDHidesAVX512(t *testing.T) {
	kvmtest.Require(t)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	id, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	entries := id.Entries()
	for i := range entries {
		if entries[i].Function == 7 && entries[i].Index == 0 {
			entries[i].Ebx |= 1 << 16 // pretend the host has AVX512F
		}
	}
	modelCPUID(id)
	if e, ok := id.Lookup(7, 0); ok && e.Ebx&(1<<16) != 0 {
		t.Errorf("AVX512F still in CPUID 7.0 EBX %#x", e.Ebx)
	}
	if e, ok := id.Lookup(0xd, 0); ok && e.Eax&(7<<5) != 0 {
		t.Errorf("AVX-512 XCR0 components still in CPUID 0xD EAX %#x", e.Eax)
	}
}
