package devices

import (
	"encoding/binary"
	"testing"
)

func reportArgs(t *testing.T, r *Report, kind EventKind, args ...uint32) {
	t.Helper()
	var b [4]byte
	for _, a := range args {
		binary.LittleEndian.PutUint32(b[:], a)
		if err := r.Write(0, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Write(1, []byte{byte(kind)}); err != nil {
		t.Fatal(err)
	}
}

func TestReport(t *testing.T) {
	r := NewReport()
	var magic [4]byte
	if err := r.Read(0, magic[:]); err != nil || binary.LittleEndian.Uint32(magic[:]) != ReportMagic || string(magic[:]) != "WKRP" {
		t.Fatalf("ARG port reads %q, %v", magic, err)
	}
	reportArgs(t, r, EventException, 14, 0x3, 0x401000, 0, 0x1234, 0xffff8000)
	reportArgs(t, r, EventStage, 8)
	reportArgs(t, r, EventRefused, 4, 13, 0)
	reportArgs(t, r, EventUnsupported, 10)
	reportArgs(t, r, EventValue, 6, 0xffffffff, 0)
	reportArgs(t, r, EventStage)                            // too few arguments
	reportArgs(t, r, EventKind(9), 1)                       // unknown kind
	reportArgs(t, r, EventStage, 1, 2, 3, 4, 5, 6, 7, 8, 9) // overflow
	r.Write(0, []byte{0x7f})                                // a byte-sized argument
	r.Write(0, []byte{0x34, 0x12})                          // a word-sized argument
	r.Write(1, []byte{byte(EventValue)})                    // one argument short
	r.Write(2, []byte{1})                                   // not a port of the protocol
	r.Write(1, []byte{1, 2})                                // a word to EVENT

	ev := r.Events()
	if len(ev) != 9 {
		t.Fatalf("recorded %d events: %v", len(ev), ev)
	}
	for _, c := range []struct {
		i    int
		want string
		ok   bool
	}{
		{0, "exception 14 error 0x3 cr2 0x401000 rip 0xffff800000001234", true},
		{1, "stage 8", true},
		{2, "refused stage 4: exception 13 error 0x0", true},
		{3, "unsupported 10", true},
		{4, "value 6 = 0xffffffff", true},
		{5, "malformed stage with 0 args [] (overflow false)", false},
		{6, "malformed event(9) with 1 args [0x1] (overflow false)", false},
		{7, "malformed stage with 8 args [0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8] (overflow true)", false},
		{8, "malformed value with 2 args [0x7f 0x1234] (overflow false)", false},
	} {
		if got := ev[c.i].String(); got != c.want || ev[c.i].WellFormed() != c.ok {
			t.Errorf("event %d: %q (well formed %v), want %q (%v)", c.i, got, ev[c.i].WellFormed(), c.want, c.ok)
		}
	}
	e := ev[0]
	if e.Vector() != 14 || e.ErrorCode() != 3 || e.CR2() != 0x401000 || e.RIP() != 0xffff800000001234 || e.Stage() != 0 || e.Value() != 0 {
		t.Errorf("exception accessors: %d %#x %#x %#x %d %#x", e.Vector(), e.ErrorCode(), e.CR2(), e.RIP(), e.Stage(), e.Value())
	}
	if e := ev[2]; e.Vector() != 13 || e.ErrorCode() != 0 || e.Stage() != 4 || e.CR2() != 0 {
		t.Errorf("refused accessors: %d %#x %d", e.Vector(), e.ErrorCode(), e.Stage())
	}
	if e := ev[4]; e.Value() != 0xffffffff || e.Stage() != 6 || e.Vector() != 0 {
		t.Errorf("value accessors: %#x %d", e.Value(), e.Stage())
	}
	if d, bad := r.Counts(); d != 0 || bad != 2 {
		t.Errorf("dropped %d, bad %d; want 0, 2", d, bad)
	}
	for i := 0; i < ReportLimit; i++ {
		reportArgs(t, r, EventStage, uint32(i))
	}
	if d, _ := r.Counts(); d != 9 || len(r.Events()) != ReportLimit {
		t.Errorf("full record: %d events, %d dropped", len(r.Events()), d)
	}
}

func BenchmarkReportEvent(b *testing.B) {
	r := NewReport()
	arg := []byte{1, 0, 0, 0}
	ev := []byte{byte(EventStage)}
	b.ReportAllocs()
	for b.Loop() {
		r.Write(0, arg)
		r.Write(1, ev)
	}
}
