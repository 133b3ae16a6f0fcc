package kvm

import (
	"testing"
	"unsafe"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
)

// The structs overlay kernel memory: their sizes and offsets are the ABI.
func TestABILayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"kvm_run header to exit union", unsafe.Offsetof(runHeader{}.Exit), 32},
		{"kvm_run.kvm_valid_regs", unsafe.Offsetof(runHeader{}.ValidRegs), 288},
		{"kvm_run.s.regs", unsafe.Offsetof(runHeader{}.Sync), 304},
		{"kvm_sync_regs", unsafe.Sizeof(syncRegs{}), 144 + 312 + 64},
		{"kvm_run.io", unsafe.Sizeof(IOExit{}), 16},
		{"kvm_run.mmio.len", unsafe.Offsetof(MMIOExit{}.Len), 16},
		{"kvm_run.mmio.is_write", unsafe.Offsetof(MMIOExit{}.IsWrite), 20},
		{"kvm_run.emulation_failure.insn_size", unsafe.Offsetof(EmulationFailure{}.InsnSize), 16},
		{"kvm_run.emulation_failure.insn_bytes", unsafe.Offsetof(EmulationFailure{}.InsnBytes), 17},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), 416},
		{"kvm_fpu.xmm", unsafe.Offsetof(FPU{}.XMM), 152},
		{"kvm_xsave", unsafe.Sizeof(XSave{}), 4096},
		{"kvm_enable_cap", unsafe.Sizeof(kvmEnableCap{}), 104},
		{"kvm_vcpu_events", unsafe.Sizeof(VCPUEvents{}), 64},
		{"kvm_regs", unsafe.Sizeof(Regs{}), 144},
		{"kvm_sregs", unsafe.Sizeof(Sregs{}), 312},
		{"kvm_sregs2", unsafe.Sizeof(Sregs2{}), 320},
		{"kvm_translation", unsafe.Sizeof(Translation{}), 24},
		{"kvm_cpuid2 header", cpuid2Header, 8},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry{}), 40},
		{"kvm_cpuid2 with KVM_MAX_CPUID_ENTRIES", unsafe.Sizeof(cpuid2{}), 8 + 256*40},
		{"kvm_pit_config", unsafe.Sizeof(pitConfig{}), 64},
		{"kvm_irq_level", unsafe.Sizeof(irqLevel{}), 8},
		{"kvm_pic_state", unsafe.Sizeof(PICState{}), 16},
		{"kvm_irqchip", unsafe.Sizeof(gokvm.IRQChip{}), 520},
		{"kvm_run.system_event", unsafe.Sizeof(systemEventExit{}), 136},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}
