package tests

import (
	"testing"

	"walkvm/devices"
	"walkvm/guest"
	"walkvm/internal/kvmtest"
	"walkvm/ownpath"
)

// TestGuestsExec runs every embedded guest under -verify exec: walkvm
// executes each MMIO instruction itself and compares its result with
// KVM's. Every guest must pass (or skip with its measured reason: in the
// nested runner, whose CPU model has no AVX, avxmmio skips) with 0
// disagreements, the same device accesses as under warn, and results
// checked wherever it reads MMIO.
func TestGuestsExec(t *testing.T) {
	kvmtest.Require(t)
	for _, g := range guest.All() {
		t.Run(g.Name, func(t *testing.T) {
			r := runGuestVerify(t, g, ownpath.VerifyExec)
			st := r.own.Stats()
			if st.MMIO.Disagreed != 0 || st.Results.Disagreed != 0 {
				t.Fatalf("under -verify exec: %d disagreements (%d results)\n%v", st.MMIO.Disagreed, st.Results.Disagreed, r)
			}
			switch r.res.ExitStatus() {
			case g.PassStatus():
			case devices.StatusSkipped:
				_, why := r.declined()
				if why == "" {
					t.Fatalf("guest exited with the skip status without reporting why\n%v", r)
				}
				if kvmtest.Nested() && mustRunNested[g.Name] {
					t.Fatalf("inside the nested runner every legacy mode must work, but %s", why)
				}
				t.Skip(why)
			default:
				t.Fatalf("%v", r)
			}
			if st.MMIO.Reads > 0 && st.Results.Checked == 0 {
				t.Errorf("%d MMIO reads, no result checked: %+v", st.MMIO.Reads, st.Results)
			}
			t.Logf("results: %d checked, %d not executed by walkvm; %d MMIO reads, %d writes, %d completed in userspace",
				st.Results.Checked, st.Results.Unchecked, st.MMIO.Reads, st.MMIO.Writes, st.MMIO.CompletedInUserspace)
			if check := guestChecks[g.Name]; check != nil {
				check(t, r)
			}
		})
	}
}
