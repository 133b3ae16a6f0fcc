//go:build amd64

package hostcpu

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func xgetbv0() uint64

// CPUID runs CPUID with EAX = leaf and ECX = sub.
func CPUID(leaf, sub uint32) (a, b, c, d uint32) { return cpuid(leaf, sub) }

// XCR0 is the host's XCR0 (XGETBV with ECX = 0); call it only when CPUID
// reports OSXSAVE.
func XCR0() uint64 { return xgetbv0() }

// Features are the host CPU features the differential test asks about.
type Features struct {
	SSE3, SSSE3, SSE41, SSE42, POPCNT, MOVBE, AES, PCLMUL, OSXSAVE, AVX, F16C, FMA bool
	AVX2, BMI1, BMI2, ADX, SHA, MOVDIRI, MOVDIR64B, LZCNT, XSAVEOPT                bool
	AMD                                                                            bool
}

// HostFeatures reads the host's CPUID.
func HostFeatures() Features {
	var f Features
	_, b0, c0, d0 := cpuid(0, 0)
	f.AMD = b0 == 0x68747541 && d0 == 0x69746e65 && c0 == 0x444d4163 // "AuthenticAMD"
	_, _, c1, _ := cpuid(1, 0)
	bit := func(v uint32, n uint) bool { return v>>n&1 != 0 }
	f.SSE3, f.PCLMUL, f.SSSE3, f.FMA = bit(c1, 0), bit(c1, 1), bit(c1, 9), bit(c1, 12)
	f.SSE41, f.SSE42, f.MOVBE, f.POPCNT = bit(c1, 19), bit(c1, 20), bit(c1, 22), bit(c1, 23)
	f.AES, f.OSXSAVE, f.F16C = bit(c1, 25), bit(c1, 27), bit(c1, 29)
	if f.OSXSAVE && xgetbv0()&6 == 6 {
		f.AVX = bit(c1, 28)
	}
	_, b7, c7, _ := cpuid(7, 0)
	f.BMI1, f.BMI2, f.ADX, f.SHA = bit(b7, 3), bit(b7, 8), bit(b7, 19), bit(b7, 29)
	f.AVX2 = f.AVX && bit(b7, 5)
	f.MOVDIRI, f.MOVDIR64B = bit(c7, 27), bit(c7, 28)
	if a, _, _, _ := cpuid(0x80000000, 0); a >= 0x80000001 {
		_, _, c, _ := cpuid(0x80000001, 0)
		f.LZCNT = bit(c, 5)
	}
	a, _, _, _ := cpuid(0xD, 1)
	f.XSAVEOPT = bit(a, 0)
	return f
}
