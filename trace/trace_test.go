package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/mmu"
	"walkvm/x86"
)

func TestTracerRecord(t *testing.T) {
	var out bytes.Buffer
	tr := NewTracer(&out)
	r := &Record{Seq: 7, VCPU: 1, Reason: kvm.ExitMMIO, Mode: ModeLong64, CS: 0x18, RIP: 0x1000, CodeMode: decode.Mode64}
	r.SetInsn([]byte{0x89, 0x03})
	r.SetAccess(0xff000000, 0xff000000, 4)
	r.SetMMIO(0xff000000, 4, true, 0x1234)
	r.Walks = []mmu.Walk{{Walker: mmu.Paging64, Access: x86.AccessWrite, Addr: 0xff000000, GPA: 0xff000000}}
	r.Verdict = "agree"
	tr.Write(r)
	var j map[string]any
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for k, want := range map[string]any{"seq": 7.0, "vcpu": 1.0, "exit": "mmio", "mode": "long64", "cs_rip": "0018:0x1000",
		"bytes": "8903", "disasm": "mov %eax,(%rbx)", "gpa": "0xff000000", "kvm_gpa": "0xff000000", "size": 4.0,
		"direction": "write", "data": "0x1234", "verdict": "agree"} {
		if j[k] != want {
			t.Errorf("%s = %v, want %v", k, j[k], want)
		}
	}
	if w := j["walks"].([]any); len(w) != 1 || w[0].(map[string]any)["access"] != "write" {
		t.Errorf("walks %v", j["walks"])
	}
	r.Reset()
	if len(r.Insn()) != 0 || r.HasMMIO || r.Walks != nil {
		t.Errorf("Reset left %+v", r)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

// The first write error stops tracing and is kept.
func TestTracerError(t *testing.T) {
	w := &failWriter{}
	tr := NewTracer(w)
	tr.Write(&Record{Seq: 1})
	tr.Write(&Record{Seq: 2})
	if w.n != 1 || tr.Err() == nil {
		t.Fatalf("%d writes, err %v", w.n, tr.Err())
	}
}

// Several vCPUs share one tracer: every line stays whole.
func TestTracerShared(t *testing.T) {
	var out bytes.Buffer
	tr := NewTracer(&out)
	var wg sync.WaitGroup
	for v := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tr.Write(&Record{Seq: uint64(i + 1), VCPU: v, Reason: kvm.ExitIO})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("broken line %q", l)
		}
	}
}

// Every string the tracer writes is valid JSON, whatever bytes it holds:
// control bytes (which strconv.Quote writes as \a, \v, \x.. escapes that
// JSON has not) and invalid UTF-8 come back as encoding/json reads them.
func TestTracerEscapes(t *testing.T) {
	var out bytes.Buffer
	tr := NewTracer(&out)
	detail := "bell\a vt\v nul\x00 esc\x1b invalid\xff\xfe quote\" backslash\\ <tag>&"
	r := &Record{Seq: 1, Reason: kvm.ExitMMIO, Mode: ModeReal, CodeMode: decode.Mode16, Verdict: "dis\x01agree", Detail: detail}
	r.SetInsn([]byte{0x0f, 0xff, 0xff, 0xff}) // not an instruction: the disassembly says so
	tr.Write(r)
	var j struct{ Detail, Verdict, Disasm string }
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if want := strings.ToValidUTF8(detail, "\ufffd\ufffd"); j.Detail != want {
		t.Errorf("detail came back as %q, want %q", j.Detail, want)
	}
	if j.Verdict != "dis\x01agree" || j.Disasm == "" {
		t.Errorf("verdict %q, disasm %q", j.Verdict, j.Disasm)
	}
}

// The header line, and a walk that failed without a guest fault (an entry
// outside guest RAM): the error, no GPA.
func TestTracerHeaderAndWalkError(t *testing.T) {
	var out bytes.Buffer
	tr := NewTracer(&out)
	tr.WriteHeader(Header{MaxPhyAddr: 46})
	r := &Record{Seq: 1, Reason: kvm.ExitMMIO, Mode: ModeLong64, Timed: true, TimeNS: 12, DurNS: 3}
	r.Walks = []mmu.Walk{{Walker: mmu.Paging64, Addr: 0x1000, N: 1, Entries: [mmu.MaxLevels]mmu.Entry{{Level: 4, EntryGPA: 0x8000000000}}}}
	r.WalkInfo = []WalkInfo{{Err: &mmu.MemoryError{Walker: mmu.Paging64, Level: 4, EntryGPA: 0x8000000000, Addr: 0x1000, Err: errors.New("outside RAM")}}}
	tr.Write(r)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != `{"header":{"format":"walkvm trace","maxphyaddr":46}}` {
		t.Fatalf("trace:\n%s", out.String())
	}
	var j struct {
		TimeNS int64 `json:"t_ns"`
		DurNS  int64 `json:"dur_ns"`
		Walks  []map[string]any
	}
	if err := json.Unmarshal([]byte(lines[1]), &j); err != nil {
		t.Fatal(err)
	}
	w := j.Walks[0]
	if j.TimeNS != 12 || j.DurNS != 3 || w["gpa"] != nil || w["fault"] != nil || !strings.Contains(w["error"].(string), "outside RAM") {
		t.Errorf("record %s", lines[1])
	}
}
