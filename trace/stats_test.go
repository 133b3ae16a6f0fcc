package trace

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"walkvm/kvm"
	"walkvm/mmu"
)

func TestStatsOutput(t *testing.T) {
	s := NewStats(0)
	s.CountExit(kvm.KindMMIO)
	s.CountExit(kvm.KindIO)
	s.CountExit(kvm.KindEmulationFailure)
	s.CountUnassigned(true, false)
	s.CountWalk(&mmu.Walk{Walker: mmu.Paging64, Levels: 4})
	s.CountWalk(&mmu.Walk{Walker: mmu.Paging64, Levels: 3})
	s.CountWalk(&mmu.Walk{Walker: mmu.Nonpaging})
	s.ObserveMode(ModeReal, 0, 0x1000)
	s.ObserveMode(ModeLong64, 0x18, 0x2000)
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"3 total: 1 mmio, 1 io, 0 hlt, 1 emulation failure",
		"1 port reads, 0 port writes, 0 MMIO reads",
		"nonpaging 1, paging32 0, paging64 2 (3-level 1, 4-level 1, 5-level 0)",
		"real         first at 0000:0x1000, 1 exits",
		"long64       first at 0018:0x2000, 1 exits",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text stats lack %q:\n%s", want, text.String())
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	walks := j["walks"].(map[string]any)
	if walks["paging64"].(float64) != 2 || walks["paging64_levels"].(map[string]any)["3"].(float64) != 1 {
		t.Errorf("json walks %v", walks)
	}
	if modes := j["modes"].([]any); len(modes) != 2 || modes[1].(map[string]any)["first_rip"] != "0018:0x2000" ||
		modes[1].(map[string]any)["mode"] != "long64" {
		t.Errorf("json modes %v", j["modes"])
	}
	if j["unassigned"].(map[string]any)["port_reads"].(float64) != 1 || j["vcpu"].(float64) != 0 {
		t.Errorf("json: %s", b)
	}
	if _, ok := j["vcpus"]; ok {
		t.Errorf("one vCPU's stats list vcpus: %s", b)
	}
}

// A total over several vCPUs sums every counter, keeps the boot vCPU's
// modes and lists each vCPU.
func TestTotal(t *testing.T) {
	a, b := NewStats(0), NewStats(1)
	a.CountExit(kvm.KindMMIO)
	b.CountExit(kvm.KindMMIO)
	b.CountExit(kvm.KindHLT)
	a.MMIO.Agreed, b.MMIO.Agreed = 2, 3
	b.CountWalk(&mmu.Walk{Walker: mmu.Paging64, Levels: 5})
	a.CountUnassigned(false, true)
	a.ObserveMode(ModeReal, 0, 0x1000)
	b.ObserveMode(ModeLong64, 0x18, 0x2000)
	if one := Total([]*Stats{a}); one != a {
		t.Errorf("total of one vCPU is not its own stats")
	}
	tot := Total([]*Stats{a, b})
	if tot.Exits.Total != 3 || tot.Exits.MMIO != 2 || tot.Exits.HLT != 1 || tot.MMIO.Agreed != 5 ||
		tot.Walks.Paging64Levels[5] != 1 || tot.Unassigned.MMIOWrites != 1 || tot.VCPU != -1 {
		t.Errorf("total %+v", tot)
	}
	if got := tot.ModeNames(); len(got) != 1 || got[0] != "real" || len(tot.VCPUs) != 2 {
		t.Errorf("total modes %v, vcpus %d", got, len(tot.VCPUs))
	}
	var text bytes.Buffer
	if err := tot.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "vcpu 1:") {
		t.Errorf("text lacks the per-vCPU tables:\n%s", text.String())
	}
}

// CountMMIO counts each access as a read or a write, and those nothing
// was mapped at as unassigned too.
func TestCountMMIO(t *testing.T) {
	s := NewStats(0)
	for _, c := range []struct{ write, mapped bool }{
		{false, true}, {false, true}, {true, true}, {false, false}, {true, false}, {true, false},
	} {
		s.CountMMIO(c.write, c.mapped)
	}
	if s.MMIO.Reads != 3 || s.MMIO.Writes != 3 || s.Unassigned.MMIOReads != 1 || s.Unassigned.MMIOWrites != 2 ||
		s.Unassigned.PortReads+s.Unassigned.PortWrites != 0 {
		t.Errorf("counted %+v %+v", s.MMIO, s.Unassigned)
	}
}
