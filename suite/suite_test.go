package suite

import (
	"strings"
	"testing"

	"walkvm/devices"
	"walkvm/guest"
	"walkvm/internal/kvmtest"
	"walkvm/ownpath"
)

func event(kind devices.EventKind, args ...uint32) devices.Event {
	e := devices.Event{Kind: kind, NArgs: len(args)}
	copy(e.Args[:], args)
	return e
}

func TestSkipReason(t *testing.T) {
	for _, c := range []struct {
		events []devices.Event
		want   string
	}{
		{[]devices.Event{event(devices.EventRefused, uint32(guest.StagePaging32), 13, 0)}, "host refused legacy 32-bit paging (#GP(0x0) entering it)"},
		{[]devices.Event{event(devices.EventUnsupported, uint32(guest.StageLA57))}, "the guest's CPUID lacks 5-level paging (CR4.LA57)"},
		{[]devices.Event{event(devices.EventStage, uint32(guest.StageReal))}, "without saying why"},
	} {
		if got := SkipReason(c.events); !strings.Contains(got, c.want) {
			t.Errorf("SkipReason = %q, want it to contain %q", got, c.want)
		}
	}
	if got := Exception(6, 0); got != "#UD" {
		t.Errorf("Exception(6) = %q", got)
	}
}

func TestRunHello(t *testing.T) {
	kvmtest.Require(t)
	g, err := guest.Lookup("hello")
	if err != nil {
		t.Fatal(err)
	}
	o := Run(g, Options{Verify: ownpath.VerifyStrict})
	if o.Verdict != Pass || o.Stats.MMIO.Agreed == 0 {
		t.Fatalf("verdict %s (%s), stats %+v", o.Verdict, o.Reason, o.Stats.MMIO)
	}
	if m := o.Modes(); len(m) != 1 || m[0] != "real" {
		t.Errorf("modes %v", m)
	}
}

func TestRunMissingOutputFails(t *testing.T) {
	kvmtest.Require(t)
	g, err := guest.Lookup("hello")
	if err != nil {
		t.Fatal(err)
	}
	g.Output = "something the guest never prints\n"
	if o := Run(g, Options{Verify: ownpath.VerifyStrict}); o.Verdict != Fail || !strings.Contains(o.Reason, "console") {
		t.Fatalf("verdict %s (%s), want a console failure", o.Verdict, o.Reason)
	}
}
