package cpuid

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"walkvm/kvm"
)

// supported is a small KVM_GET_SUPPORTED_CPUID answer: an Intel host with
// x2apic, pcid, avx, invpcid, smep, smap, avx512f, pku, la57 and leaf 0xB.
func supported() []kvm.CPUIDEntry {
	return []kvm.CPUIDEntry{
		{Function: 0, Eax: 0xd, Ebx: le32([]byte("Genu")), Edx: le32([]byte("ineI")), Ecx: le32([]byte("ntel"))},
		{Function: 1, Eax: 0x306a9, Ebx: 0x00000800, Ecx: 1<<0 | 1<<17 | 1<<21 | 1<<26 | 1<<28, Edx: 0x078bfbff}, // KVM reports no hypervisor bit
		{Function: 7, Flags: 1, Index: 0, Ebx: 1<<7 | 1<<10 | 1<<16 | 1<<20, Ecx: 1<<3 | 1<<16},
		{Function: 0xb, Flags: 1, Index: 0, Eax: 1, Ebx: 1, Ecx: 0x100},
		{Function: 0xb, Flags: 1, Index: 1, Eax: 4, Ebx: 2, Ecx: 0x201},
		{Function: 0xd, Flags: 1, Index: 0, Eax: 0xe7},
		{Function: 0x80000001, Ecx: 1, Edx: 1<<11 | 1<<20 | 1<<26 | 1<<29},
		{Function: 0x80000008, Eax: 0x3027},
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		spec    string
		want    Model
		wantErr string
	}{
		{spec: "host", want: Model{Base: "host"}},
		{spec: "max,+x2apic,-pcid", want: Model{Base: "max", Set: []string{"x2apic"}, Clear: []string{"pcid"}}},
		{spec: "qemu64,-x2apic,+tsc-deadline", want: Model{Base: "qemu64", Set: []string{"tsc-deadline"}, Clear: []string{"x2apic"}}},
		{spec: "IvyBridge,phys-bits=36,host-phys-bits=off", want: Model{Base: "IvyBridge", PhysBits: 36}},
		{spec: "Opteron_G1,vendor=AuthenticAMD", want: Model{Base: "Opteron_G1", Vendor: "AuthenticAMD"}},
		{spec: "max,la57=on,pku=off", want: Model{Base: "max", Set: []string{"la57"}, Clear: []string{"pku"}}},
		{spec: "pentium", wantErr: `-cpu "pentium": unknown model "pentium"`},
		{spec: "host,+warp", wantErr: `-cpu "host,+warp": unknown CPU feature "warp"`},
		{spec: "host,vendor=Intel", wantErr: `vendor "Intel" is not 12 characters`},
		{spec: "host,phys-bits=x", wantErr: `phys-bits "x" is not a number in 32..52`},
		{spec: "host,turbo", wantErr: `unknown option "turbo"`},
	} {
		t.Run(c.spec, func(t *testing.T) {
			m, err := Parse(c.spec)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Base != c.want.Base || m.Vendor != c.want.Vendor || m.PhysBits != c.want.PhysBits ||
				!slices.Equal(m.Set, c.want.Set) || !slices.Equal(m.Clear, c.want.Clear) {
				t.Errorf("Parse = %+v, want %+v", m, c.want)
			}
		})
	}
	if _, err := Parse("host,+warp"); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("unknown feature error %v does not wrap ErrUnknownFeature", err)
	}
}

func TestBuild(t *testing.T) {
	for _, c := range []struct {
		spec     string
		host     Host
		has, not []string
		warnings int
	}{
		{spec: "host", has: []string{"x2apic", "pcid", "avx", "invpcid", "smep", "smap", "pku", "la57", "hypervisor"}, not: []string{"tsc-deadline"}},
		{spec: "host,-hypervisor", not: []string{"hypervisor"}},
		{spec: "host", host: Host{TSCDeadline: true}, has: []string{"tsc-deadline"}},
		{spec: "max,-pcid,-invpcid", has: []string{"x2apic"}, not: []string{"pcid", "invpcid"}},
		{spec: "qemu64", has: []string{"x2apic", "sse3", "lm", "nx", "syscall", "hypervisor"}, not: []string{"pcid", "avx", "invpcid", "smep", "la57", "xsave"}},
		{spec: "qemu64,+pcid,+invpcid", has: []string{"pcid", "invpcid"}, not: []string{"avx"}},
		{spec: "qemu64,-x2apic,+tsc-deadline", host: Host{TSCDeadline: true}, has: []string{"tsc-deadline"}, not: []string{"x2apic"}},
		{spec: "qemu64,+tsc-deadline", not: []string{"tsc-deadline"}, warnings: 1},
		{spec: "max,+svm", not: []string{"svm"}, warnings: 1},
	} {
		t.Run(c.spec, func(t *testing.T) {
			m, err := Parse(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			in := supported()
			got, warnings := m.Build(in, c.host)
			for _, f := range c.has {
				if !Has(got, f) {
					t.Errorf("lacks %s", f)
				}
			}
			for _, f := range c.not {
				if Has(got, f) {
					t.Errorf("has %s", f)
				}
			}
			if len(warnings) != c.warnings {
				t.Errorf("warnings %q, want %d", warnings, c.warnings)
			}
			if Has(got, "avx512f") {
				t.Error("AVX-512 must stay hidden")
			}
			if e := find(got, 7, 0); e.Ebx&(1<<16) != 0 {
				t.Error("AVX-512F (7.0 EBX bit 16) must stay hidden")
			}
			if e := find(got, 0xd, 0); e.Eax&0xe0 != 0 {
				t.Errorf("XCR0 components %#x offer AVX-512 state", e.Eax)
			}
			if in[1].Ecx != supported()[1].Ecx {
				t.Error("Build changed its input")
			}
		})
	}
}

func TestBuildVendorAndPhysBits(t *testing.T) {
	m, err := Parse("Opteron_G1,vendor=AuthenticAMD,phys-bits=36")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := m.Build(supported(), Host{})
	e := find(got, 0, 0)
	var v []byte
	for _, r := range []uint32{e.Ebx, e.Edx, e.Ecx} {
		v = append(v, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	if string(v) != "AuthenticAMD" {
		t.Errorf("vendor %q", v)
	}
	if pb := find(got, 0x80000008, 0).Eax; pb != 0x3024 {
		t.Errorf("0x80000008 EAX %#x, want 0x3024 (linear 48, physical 36)", pb)
	}
}

func TestForVCPU(t *testing.T) {
	in := supported()
	got := ForVCPU(in, 3, 4)
	if e := find(got, 1, 0); e.Ebx>>24 != 3 || e.Ebx>>16&0xff != 4 || e.Ebx&0xffff != 0x0800 || e.Edx&(1<<28) == 0 {
		t.Errorf("leaf 1 EBX %#x EDX %#x: want APIC ID 3, 4 logical, CLFLUSH size kept, HTT", e.Ebx, e.Edx)
	}
	for _, sub := range []uint32{0, 1} {
		if e := find(got, 0xb, sub); e.Edx != 3 {
			t.Errorf("leaf 0xB.%d EDX %d, want x2APIC ID 3", sub, e.Edx)
		}
	}
	if find(in, 1, 0).Ebx>>24 != 0 {
		t.Error("ForVCPU changed its input")
	}
}
