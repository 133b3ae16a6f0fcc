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

// BenchmarkMMIOExitsInterleaved runs b.N MMIO exits through each of three
// VMs, with -verify off, strict and exec, alternating chunks of up to
// 50,000 exits so that machine noise falls on all alike. It reports ns per exit
// of each and their ratios to off; ns/op is per exit of the three.
func BenchmarkMMIOExitsInterleaved(b *testing.B) {
	kvmtest.Require(b)
	// At least 20 rounds, so that a short run (the nested KVM) still
	// interleaves.
	chunk := min(max(b.N/20, 1000), 50000)
	type side struct {
		m     *machine.Machine
		own   *machine.Own
		exits uint64
		time  time.Duration
	}
	levels := []ownpath.Verify{ownpath.VerifyOff, ownpath.VerifyStrict, ownpath.VerifyExec}
	var sides [3]side
	for i, v := range levels {
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
	for i := 1; i < len(sides); i++ {
		if st := sides[i].own.Stats(); st.MMIO.Disagreed != 0 {
			b.Fatalf("-verify %v: %d disagreements", levels[i], st.MMIO.Disagreed)
		}
	}
	if st := sides[2].own.Stats(); st.Results.Checked != st.MMIO.Reads+st.MMIO.Writes {
		b.Fatalf("-verify exec checked %d results of %d MMIO exits", st.Results.Checked, st.MMIO.Reads+st.MMIO.Writes)
	}
	off := float64(sides[0].time.Nanoseconds()) / float64(sides[0].exits)
	b.ReportMetric(off, "ns/exit-off")
	for i := 1; i < len(sides); i++ {
		ns := float64(sides[i].time.Nanoseconds()) / float64(sides[i].exits)
		b.ReportMetric(ns, "ns/exit-"+levels[i].String())
		b.ReportMetric(ns/off, levels[i].String()+"/off")
	}
}

// BenchmarkMMIOExits runs b.N MMIO exits (half writes, half reads) through
// the own MMIO path with -verify off, strict and exec, one after the other: ns/op is ns
// per exit, allocs/op allocations per exit. Run with -benchtime 1000000x
// for the 1,000,000-access loop of BENCHMARKS.md.
func BenchmarkMMIOExits(b *testing.B) {
	kvmtest.Require(b)
	for _, v := range []ownpath.Verify{ownpath.VerifyOff, ownpath.VerifyStrict, ownpath.VerifyExec} {
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
