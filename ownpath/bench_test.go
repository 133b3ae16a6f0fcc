package ownpath

import "testing"

// BenchmarkExit times the path's own work for one MMIO exit (no KVM: the
// vCPU is a fake whose completion returns at once), at each verify level,
// for a write exit (mov %ax,(%bx), found behind RIP) and a read exit
// (mov (%bx),%ax). Under exec the read exit includes executing the
// instruction on a copy and comparing; KVM's own cost of completing it
// (one more KVM_RUN) is in tests' BenchmarkMMIOExitsInterleaved.
func BenchmarkExit(b *testing.B) {
	for _, v := range []Verify{VerifyOff, VerifyStrict, VerifyExec} {
		for _, write := range []bool{true, false} {
			name := "read"
			if write {
				name = "write"
			}
			b.Run(name+"/verify="+v.String(), func(b *testing.B) {
				p, cpu, w := newExecPath(b, []byte{0x89, 0x07, 0x8b, 0x07})
				if err := w.Write(0, []byte{0x34, 0x12}); err != nil {
					b.Fatal(err)
				}
				p.cfg.Verify = v
				cpu.regs.RAX = 0x1234
				start := cpu.regs
				cpu.after = start
				cpu.after.RIP = 0x1004
				e := mmioExit(0, 0xd0000, 2, write, 0x1234)
				rip := uint64(0x1002) // past the write, at the read
				b.ReportAllocs()
				for b.Loop() {
					cpu.regs, cpu.completed = start, false
					cpu.regs.RIP = rip
					e.Seq++
					if err := mmioEntry(p, e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
