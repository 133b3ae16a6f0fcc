package tests

import (
	"testing"
	"time"

	"walkvm/boot"
	"walkvm/internal/kvmtest"
	"walkvm/kvm"
	"walkvm/machine"
	"walkvm/ownpath"
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

// BenchmarkMMIOExitsInterleaved runs b.N MMIO exits through each of two
// VMs, one with -verify off and one with strict, alternating chunks of
// 50,000 exits so that machine noise falls on both alike. It reports ns per
// exit of each and their ratio; ns/op is per exit of the pair.
func BenchmarkMMIOExitsInterleaved(b *testing.B) {
	kvmtest.Require(b)
	const chunk = 50000
	type side struct {
		m     *machine.Machine
		own   *machine.Own
		exits uint64
		time  time.Duration
	}
	var sides [2]side
	for i, v := range []ownpath.Verify{ownpath.VerifyOff, ownpath.VerifyStrict} {
		m, err := machine.New(machine.Config{MemSize: 16 << 20, Image: boot.Image{Data: mmioLoop, Load: 0x1000, Mode: boot.Long}})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		own, err := m.OwnPath(v, nil)
		if err != nil {
			b.Fatal(err)
		}
		sides[i] = side{m: m, own: own}
	}
	var start kvm.Regs
	if err := sides[0].m.CPU.GetRegs(&start); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		for i := range sides {
			s := &sides[i]
			regs := start
			regs.RCX = uint64(max(n/2, 1))
			if err := s.m.CPU.SetRegs(&regs); err != nil {
				b.Fatal(err)
			}
			before := s.own.Stats().Exits.MMIO
			t0 := time.Now()
			res := s.m.RunOwn(s.own, time.Minute)
			s.time += time.Since(t0)
			if res.ExitStatus() != 0 {
				b.Fatalf("status %d: %v", res.ExitStatus(), res.Err)
			}
			s.exits += s.own.Stats().Exits.MMIO - before
		}
	}
	b.StopTimer()
	if sides[1].own.Stats().MMIO.Disagreed != 0 {
		b.Fatalf("%d disagreements", sides[1].own.Stats().MMIO.Disagreed)
	}
	off := float64(sides[0].time.Nanoseconds()) / float64(sides[0].exits)
	strict := float64(sides[1].time.Nanoseconds()) / float64(sides[1].exits)
	b.ReportMetric(off, "ns/exit-off")
	b.ReportMetric(strict, "ns/exit-strict")
	b.ReportMetric(strict/off, "strict/off")
}

// BenchmarkMMIOExits runs b.N MMIO exits (half writes, half reads) through
// the own MMIO path with -verify off and strict, side by side: ns/op is ns
// per exit, allocs/op allocations per exit. Run with -benchtime 1000000x
// for the 1,000,000-access loop of BENCHMARKS.md.
func BenchmarkMMIOExits(b *testing.B) {
	kvmtest.Require(b)
	for _, v := range []ownpath.Verify{ownpath.VerifyOff, ownpath.VerifyStrict} {
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
			own, err := m.OwnPath(v, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			res := m.RunOwn(own, 10*time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			if res.ExitStatus() != 0 {
				b.Fatalf("status %d: %v", res.ExitStatus(), res.Err)
			}
			if own.Stats().MMIO.Disagreed != 0 {
				b.Fatalf("%d disagreements", own.Stats().MMIO.Disagreed)
			}
			b.ReportMetric(float64(own.Stats().Exits.MMIO)/elapsed.Seconds(), "exits/s")
		})
	}
}
