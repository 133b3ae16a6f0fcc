package vcpu

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"walkvm/kvm"
	"walkvm/mmu"
)

func TestStatsOutput(t *testing.T) {
	s := NewStats()
	s.CountExit(kvm.ExitMMIO, false)
	s.CountExit(kvm.ExitIO, false)
	s.CountExit(kvm.ExitInternalError, true)
	s.CountWalk(&mmu.Walk{Walker: mmu.Paging64, Levels: 4})
	s.CountWalk(&mmu.Walk{Walker: mmu.Paging64, Levels: 3})
	s.CountWalk(&mmu.Walk{Walker: mmu.Nonpaging})
	s.Modes.Observe(ModeReal, 0, 0x1000)
	s.Modes.Observe(ModeLong64, 0x18, 0x2000)
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"3 total: 1 mmio, 1 io, 0 hlt, 1 emulation failure",
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
	if modes := j["modes"].([]any); len(modes) != 2 || modes[1].(map[string]any)["first_rip"] != "0018:0x2000" {
		t.Errorf("json modes %v", j["modes"])
	}
}
