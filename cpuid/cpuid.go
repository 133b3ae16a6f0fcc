// Package cpuid builds the CPUID table a guest's vCPUs see: KVM's supported
// CPUID shaped by a `-cpu` model string (host, max, qemu64 and the named
// models kvm-unit-tests asks for, with +feature / -feature / vendor= /
// phys-bits= knobs), less what walkvm's decoder does not model, with each
// vCPU's APIC ID in the topology leaves.
package cpuid

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"walkvm/kvm"
)

// Register names a CPUID output register.
type Register uint8

// The output registers.
const (
	EAX Register = iota
	EBX
	ECX
	EDX
)

// Bit is one feature flag: leaf, subleaf, register and bit number.
type Bit struct {
	Leaf, Subleaf uint32
	Reg           Register
	N             uint8
}

// Features are the flags `-cpu` can name, by QEMU's names (as in
// kvm-unit-tests' unittests.cfg).
var Features = map[string]Bit{
	"fpu":          {1, 0, EDX, 0},
	"pse":          {1, 0, EDX, 3},
	"tsc":          {1, 0, EDX, 4},
	"pae":          {1, 0, EDX, 6},
	"apic":         {1, 0, EDX, 9},
	"pge":          {1, 0, EDX, 13},
	"pse36":        {1, 0, EDX, 17},
	"sse3":         {1, 0, ECX, 0},
	"pclmulqdq":    {1, 0, ECX, 1},
	"monitor":      {1, 0, ECX, 3},
	"vmx":          {1, 0, ECX, 5},
	"ssse3":        {1, 0, ECX, 9},
	"fma":          {1, 0, ECX, 12},
	"cx16":         {1, 0, ECX, 13},
	"pcid":         {1, 0, ECX, 17},
	"sse4.1":       {1, 0, ECX, 19},
	"sse4.2":       {1, 0, ECX, 20},
	"x2apic":       {1, 0, ECX, 21},
	"movbe":        {1, 0, ECX, 22},
	"popcnt":       {1, 0, ECX, 23},
	"tsc-deadline": {1, 0, ECX, 24},
	"aes":          {1, 0, ECX, 25},
	"xsave":        {1, 0, ECX, 26},
	"avx":          {1, 0, ECX, 28},
	"f16c":         {1, 0, ECX, 29},
	"rdrand":       {1, 0, ECX, 30},
	"hypervisor":   {1, 0, ECX, 31},
	"fsgsbase":     {7, 0, EBX, 0},
	"tsc-adjust":   {7, 0, EBX, 1},
	"bmi1":         {7, 0, EBX, 3},
	"hle":          {7, 0, EBX, 4},
	"avx2":         {7, 0, EBX, 5},
	"smep":         {7, 0, EBX, 7},
	"bmi2":         {7, 0, EBX, 8},
	"erms":         {7, 0, EBX, 9},
	"invpcid":      {7, 0, EBX, 10},
	"rtm":          {7, 0, EBX, 11},
	"mpx":          {7, 0, EBX, 14},
	"rdseed":       {7, 0, EBX, 18},
	"adx":          {7, 0, EBX, 19},
	"smap":         {7, 0, EBX, 20},
	"clflushopt":   {7, 0, EBX, 23},
	"umip":         {7, 0, ECX, 2},
	"pku":          {7, 0, ECX, 3},
	"la57":         {7, 0, ECX, 16},
	"rdpid":        {7, 0, ECX, 22},
	"movdiri":      {7, 0, ECX, 27},
	"movdir64b":    {7, 0, ECX, 28},
	"xsaveopt":     {0xd, 1, EAX, 0},
	"xsavec":       {0xd, 1, EAX, 1},
	"xsaves":       {0xd, 1, EAX, 3},
	"lahf-lm":      {0x80000001, 0, ECX, 0},
	"svm":          {0x80000001, 0, ECX, 2},
	"abm":          {0x80000001, 0, ECX, 5},
	"sse4a":        {0x80000001, 0, ECX, 6},
	"skinit":       {0x80000001, 0, ECX, 12},
	"syscall":      {0x80000001, 0, EDX, 11},
	"nx":           {0x80000001, 0, EDX, 20},
	"pdpe1gb":      {0x80000001, 0, EDX, 26},
	"rdtscp":       {0x80000001, 0, EDX, 27},
	"lm":           {0x80000001, 0, EDX, 29},
	"npt":          {0x8000000a, 0, EDX, 0},
	"rdpru":        {0x80000008, 0, EBX, 4},
}

// hidden are what walkvm's decoder does not model: AVX-512 (EVEX) and AMX.
// Without their XCR0 components a guest cannot enable them, so an EVEX or
// AMX instruction is #UD on the CPU too, and walkvm's #UD for it, when KVM's
// emulator hands one over, is what the hardware would have raised.
var hidden = []struct {
	leaf, subleaf      uint32
	eax, ebx, ecx, edx uint32
}{
	// 7.0: AVX512F DQ IFMA PF ER CD BW VL (EBX); AVX512_VBMI VBMI2 VNNI
	// BITALG VPOPCNTDQ (ECX); AVX512_4VNNIW 4FMAPS VP2INTERSECT, AMX-BF16
	// FP16 AMX-TILE AMX-INT8 (EDX).
	{leaf: 7, subleaf: 0,
		ebx: 1<<16 | 1<<17 | 1<<21 | 1<<26 | 1<<27 | 1<<28 | 1<<30 | 1<<31,
		ecx: 1<<1 | 1<<6 | 1<<11 | 1<<12 | 1<<14,
		edx: 1<<2 | 1<<3 | 1<<8 | 1<<22 | 1<<23 | 1<<24 | 1<<25},
	// 7.1: AVX512_BF16 (EAX).
	{leaf: 7, subleaf: 1, eax: 1 << 5},
	// 0xD.0: XCR0 opmask, ZMM_Hi256, Hi16_ZMM, XTILECFG, XTILEDATA.
	{leaf: 0xd, subleaf: 0, eax: 1<<5 | 1<<6 | 1<<7 | 1<<17 | 1<<18},
}

// qemu64 is QEMU's qemu64 model under KVM (target/i386/cpu.c: PPRO
// features, MTRR, CLFLUSH, MCA, PSE36; SSE3, CX16; LM, SYSCALL, NX;
// LAHF_LM, ABM, SSE4A; plus what QEMU's KVM defaults add: x2apic and the
// hypervisor bit). Named models walkvm has no table for are this with
// their explicit knobs applied: kvm-unit-tests names a model for its vendor,
// phys-bits or a feature delta, which are honoured exactly.
var qemu64 = map[[3]uint32]uint32{ // {leaf, subleaf, reg}: allowed bits
	{1, 0, uint32(EDX)}:          0x078bfbff,
	{1, 0, uint32(ECX)}:          1<<0 | 1<<13 | 1<<21 | 1<<31,
	{7, 0, uint32(EBX)}:          0,
	{7, 0, uint32(ECX)}:          0,
	{7, 0, uint32(EDX)}:          0,
	{0x80000001, 0, uint32(EDX)}: 1<<11 | 1<<20 | 1<<29 | amdAliases,
	{0x80000001, 0, uint32(ECX)}: 1<<0 | 1<<5 | 1<<6,
}

// amdAliases are the leaf-1 EDX bits AMD CPUs repeat in 0x80000001 EDX
// (QEMU's CPUID_EXT2_AMD_ALIASES).
const amdAliases = 0x0183f3ff

// knownModels are the base models `-cpu` accepts.
var knownModels = []string{"host", "max", "qemu64", "Opteron_G1", "IvyBridge", "Skylake-Server"}

// ignoredKnobs change nothing a guest of walkvm can observe.
var ignoredKnobs = []string{"host-phys-bits", "host-phys-bits=off", "migratable=no", "check", "enforce"}

// Model is a parsed `-cpu` string.
type Model struct {
	Base     string
	Set      []string // +feature
	Clear    []string // -feature
	Vendor   string   // vendor=…, "" for the host's
	PhysBits int      // phys-bits=…, 0 for the host's
}

// Parse reads "MODEL[,+feat|-feat|feat=on|feat=off|vendor=V|phys-bits=N…]".
// It refuses unknown models, features and knobs, naming them.
func Parse(spec string) (Model, error) {
	parts := strings.Split(spec, ",")
	m := Model{Base: parts[0]}
	if !slices.Contains(knownModels, m.Base) {
		return Model{}, fmt.Errorf("-cpu %q: unknown model %q (walkvm offers %s)", spec, m.Base, strings.Join(knownModels, ", "))
	}
	for _, p := range parts[1:] {
		name, val, hasVal := strings.Cut(p, "=")
		switch {
		case slices.Contains(ignoredKnobs, p):
		case name == "vendor" && hasVal:
			if len(val) != 12 {
				return Model{}, fmt.Errorf("-cpu %q: vendor %q is not 12 characters", spec, val)
			}
			m.Vendor = val
		case name == "phys-bits" && hasVal:
			n, err := strconv.Atoi(val)
			if err != nil || n < 32 || n > 52 {
				return Model{}, fmt.Errorf("-cpu %q: phys-bits %q is not a number in 32..52", spec, val)
			}
			m.PhysBits = n
		case strings.HasPrefix(p, "+"), hasVal && val == "on":
			f := strings.TrimPrefix(name, "+")
			if err := checkFeature(spec, f); err != nil {
				return Model{}, err
			}
			m.Set = append(m.Set, f)
		case strings.HasPrefix(p, "-"), hasVal && val == "off":
			f := strings.TrimPrefix(name, "-")
			if err := checkFeature(spec, f); err != nil {
				return Model{}, err
			}
			m.Clear = append(m.Clear, f)
		default:
			return Model{}, fmt.Errorf("-cpu %q: unknown option %q", spec, p)
		}
	}
	return m, nil
}

// ErrUnknownFeature is wrapped by Parse's error for a feature name walkvm
// does not know.
var ErrUnknownFeature = fmt.Errorf("unknown CPU feature")

func checkFeature(spec, f string) error {
	if _, ok := Features[f]; !ok {
		return fmt.Errorf("-cpu %q: %w %q", spec, ErrUnknownFeature, f)
	}
	return nil
}

// Host facts the model needs besides KVM's supported CPUID.
type Host struct {
	// TSCDeadline is KVM_CAP_TSC_DEADLINE_TIMER: KVM's supported CPUID
	// does not carry the TSC-deadline bit; a VMM sets it when the in-kernel
	// LAPIC can emulate it.
	TSCDeadline bool
}

// Build returns the guest's CPUID for m from KVM's supported entries (which
// it does not change), and warnings for requested features KVM cannot give
// (QEMU drops those too, with a warning).
func (m Model) Build(supported []kvm.CPUIDEntry, host Host) ([]kvm.CPUIDEntry, []string) {
	out := slices.Clone(supported)
	var warnings []string
	// KVM does not report the hypervisor bit but a guest needs it to find
	// KVM's leaves at 0x40000000 (Linux: kvm-clock instead of calibrating
	// the TSC against the PIT); QEMU sets it the same way.
	setBit(out, Features["hypervisor"], true)
	if host.TSCDeadline {
		setBit(out, Features["tsc-deadline"], true)
	}
	if m.Base != "host" && m.Base != "max" {
		for k, allowed := range qemu64 {
			if e := find(out, k[0], k[1]); e != nil {
				*reg(e, Register(k[2])) &= allowed
			}
		}
	}
	for _, f := range m.Set {
		b := Features[f]
		if !hasBit(supported, b) && !(f == "tsc-deadline" && host.TSCDeadline) {
			warnings = append(warnings, fmt.Sprintf("KVM does not support CPU feature %q: not offered", f))
			continue
		}
		setBit(out, b, true)
	}
	for _, f := range m.Clear {
		setBit(out, Features[f], false)
	}
	for _, h := range hidden {
		if e := find(out, h.leaf, h.subleaf); e != nil {
			e.Eax &^= h.eax
			e.Ebx &^= h.ebx
			e.Ecx &^= h.ecx
			e.Edx &^= h.edx
		}
	}
	if m.Vendor != "" {
		if e := find(out, 0, 0); e != nil {
			v := []byte(m.Vendor)
			e.Ebx, e.Edx, e.Ecx = le32(v[0:4]), le32(v[4:8]), le32(v[8:12])
		}
	}
	if m.PhysBits != 0 {
		if e := find(out, 0x80000008, 0); e != nil {
			e.Eax = e.Eax&^0xff | uint32(m.PhysBits)
		}
	}
	return out, warnings
}

// ForVCPU returns a copy of entries for the vCPU with the given APIC ID in
// a machine of n vCPUs: leaf 1 EBX[31:24] (initial APIC ID) and [23:16]
// (logical processors per package), leaf 0xB and 0x1F EDX (x2APIC ID) and
// AMD's 0x8000001E EAX (extended APIC ID).
func ForVCPU(entries []kvm.CPUIDEntry, apicID uint32, n int) []kvm.CPUIDEntry {
	out := slices.Clone(entries)
	for i := range out {
		e := &out[i]
		switch e.Function {
		case 1:
			e.Ebx = e.Ebx&0x0000ffff | apicID<<24 | uint32(min(n, 255))<<16
			if n > 1 {
				e.Edx |= 1 << 28 // HTT: the count in EBX[23:16] is valid
			}
		case 0xb, 0x1f:
			e.Edx = apicID
		case 0x8000001e:
			e.Eax = apicID
		}
	}
	return out
}

// Has reports whether entries have feature f (a name in Features).
func Has(entries []kvm.CPUIDEntry, f string) bool {
	b, ok := Features[f]
	return ok && hasBit(entries, b)
}

func find(entries []kvm.CPUIDEntry, leaf, subleaf uint32) *kvm.CPUIDEntry {
	for i := range entries {
		e := &entries[i]
		// KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1.
		if e.Function == leaf && (e.Flags&1 == 0 || e.Index == subleaf) {
			return e
		}
	}
	return nil
}

func reg(e *kvm.CPUIDEntry, r Register) *uint32 {
	switch r {
	case EAX:
		return &e.Eax
	case EBX:
		return &e.Ebx
	case ECX:
		return &e.Ecx
	}
	return &e.Edx
}

func hasBit(entries []kvm.CPUIDEntry, b Bit) bool {
	e := find(entries, b.Leaf, b.Subleaf)
	return e != nil && *reg(e, b.Reg)&(1<<b.N) != 0
}

func setBit(entries []kvm.CPUIDEntry, b Bit, on bool) {
	e := find(entries, b.Leaf, b.Subleaf)
	if e == nil {
		return
	}
	if on {
		*reg(e, b.Reg) |= 1 << b.N
	} else {
		*reg(e, b.Reg) &^= 1 << b.N
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
