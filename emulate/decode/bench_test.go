package decode

import "testing"

// Typical MMIO accesses in each mode.
var benchCases = []struct {
	name string
	mode Mode
	b    []byte
}{
	{"16/mov_0x8(bx,si),ax", Mode16, []byte{0x8B, 0x40, 0x08}},
	{"32/mov_eax,0x10(ebx,ecx,4)", Mode32, []byte{0x89, 0x44, 0x8B, 0x10}},
	{"64/mov_rax,(rdx)", Mode64, []byte{0x48, 0x89, 0x02}},
	{"64/mov_rip+0x1000,eax", Mode64, []byte{0x8B, 0x05, 0x00, 0x10, 0x00, 0x00}},
	{"64/rep_movsb", Mode64, []byte{0xF3, 0xA4}},
	{"64/vmovdqu_ymm0,(rdi)", Mode64, []byte{0xC5, 0xFE, 0x6F, 0x07}},
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			var inst Inst
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := Decode(bc.b, bc.mode, &inst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
