package tests

import (
	"testing"
	"time"

	"walkvm/boot"
	"walkvm/internal/kvmtest"
	"walkvm/kvm"
	"walkvm/machine"
	"walkvm/vcpu"
)

// mmioLoop writes and reads the MMIO test window RCX times each (long mode):
//
//	mov $0xff000000,%ebx
//	1: mov %eax,(%rbx); mov (%rbx),%eax; dec %ecx; jne 1b
//	mov $0,%al; out %al,$0xf4
var mmioLoop = []byte{
	0xbb, 0x00, 0x00, 0x00, 0xff,
	0x89, 0x03, 0x8b, 0x03, 0xff, 0xc9, 0x75, 0xf8,
	0xb0, 0x00, 0xe6, 0xf4,
}

// BenchmarkMMIOExits runs b.N MMIO exits (half writes, half reads) through
// the own MMIO path with -verify off and strict, side by side: ns/op is ns
// per exit, allocs/op allocations per exit. Run with -benchtime 1000000x
// for the 1,000,000-access loop of BENCHMARKS.md.
func BenchmarkMMIOExits(b *testing.B) {
	kvmtest.Require(b)
	for _, v := range []vcpu.Verify{vcpu.VerifyOff, vcpu.VerifyStrict} {
		b.Run("verify="+v.String(), func(b *testing.B) {
			m, err := machine.New(machine.Config{MemSize: 16 << 20, Image: boot.Image{Data: mmioLoop, Load: 0x1000, Mode: boot.Long}})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var regs kvm.Regs
			if err := m.CPU.GetRegs(&regs); err != nil {
				b.Fatal(err)
			}
			regs.RCX = uint64(max(b.N/2, 1))
			if err := m.CPU.SetRegs(&regs); err != nil {
				b.Fatal(err)
			}
			own, err := m.OwnPath(v)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			res := m.RunOwn(own, 10*time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			if res.Status != 0 {
				b.Fatalf("status %d: %v", res.Status, res.Err)
			}
			if own.Stats.MMIO.Disagreed != 0 {
				b.Fatalf("%d disagreements", own.Stats.MMIO.Disagreed)
			}
			b.ReportMetric(float64(own.Stats.Exits.MMIO)/elapsed.Seconds(), "exits/s")
		})
	}
}
