package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReadTolerates(t *testing.T) {
	in := `{"header":{"format":"walkvm trace","maxphyaddr":39}}
{"seq":1,"exit":"io","mode":"real","cs_rip":"0000:0x1000","future_field":{"x":[1,2]}}

{"seq":2,"vcpu":3,"exit":"mmio","mode":"pae","cs_rip":"0008:0x2000","walks":[{"walker":"paging64","access":"read","linear":"0x10","levels":[{"level":3,"table":"0x1000","index":0,"entry":"0x1000","value":"0x2001"}],"gpa":"0x10"}],"t_ns":5}
`
	tr, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Records) != 2 || len(tr.Lines) != 2 || tr.Header == nil || tr.Header.MaxPhyAddr != 39 {
		t.Fatalf("%d records, %d lines, header %+v", len(tr.Records), len(tr.Lines), tr.Header)
	}
	if r := tr.Records[0]; r.VCPU != 0 || r.TimeNS != nil || r.Exit != "io" {
		t.Errorf("record 1: %+v", r)
	}
	if r := tr.Records[1]; r.VCPU != 3 || r.TimeNS == nil || *r.TimeNS != 5 || r.Walks[0].Depth() != 3 {
		t.Errorf("record 2: %+v", r)
	}
	if !strings.Contains(string(tr.Lines[0]), "future_field") {
		t.Errorf("line 1 not kept verbatim: %s", tr.Lines[0])
	}
}

func TestReadErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"seq":1}` + "\n" + `{"seq":` + "\n", "trace line 2"},
		{`[1,2]`, "trace line 1"},
		{`{"seq":1,"vcpu":-1}`, "negative"},
		{`{"seq":1,"exit":"` + strings.Repeat("x", maxLine) + `"}`, "longer than"},
	} {
		if _, err := Read(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Read(%.40q): %v, want an error with %q", c.in, err, c.want)
		}
	}
}

// wantSpans counts mode changes per vCPU from the records the generator
// wrote.
func wantSpans(recs []Record) int {
	last := map[int]string{}
	n := 0
	for _, r := range recs {
		if m, ok := last[r.VCPU]; !ok || m != r.Mode {
			n++
		}
		last[r.VCPU] = r.Mode
	}
	return n
}

func TestSummarize(t *testing.T) {
	for _, vcpus := range []int{1, 2} {
		data, recs := genTrace(t, 400, vcpus, false)
		tr, err := Read(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		s := Summarize(tr)
		if len(s.Spans) != wantSpans(recs) || len(s.VCPUs) != vcpus || s.Exits != 400 || s.Timed {
			t.Fatalf("vcpus %d: %d spans (want %d), vCPUs %v, %d exits, timed %v", vcpus, len(s.Spans), wantSpans(recs), s.VCPUs, s.Exits, s.Timed)
		}
		total := 0
		for _, sp := range s.Spans {
			total += sp.Exits
			if tr.Records[sp.First].Mode != sp.Mode || tr.Records[sp.Last].Mode != sp.Mode || tr.Records[sp.Last].VCPU != sp.VCPU {
				t.Errorf("span %+v: ends in another mode or vCPU", sp)
			}
		}
		if total != 400 {
			t.Errorf("spans hold %d exits, want 400", total)
		}
		walks := map[string]int{}
		for _, c := range s.Walks {
			walks[c.Name] = c.N
		}
		for _, k := range []string{"nonpaging", "paging32/2", "paging64/3", "paging64/4", "paging64/5"} {
			if walks[k] == 0 {
				t.Errorf("no %s walks counted: %v", k, s.Walks)
			}
		}
	}
}

type chromeEvent struct {
	Ph   string         `json:"ph"`
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	PID  int            `json:"pid"`
	TID  int            `json:"tid"`
	TS   float64        `json:"ts"`
	Dur  float64        `json:"dur"`
	Args map[string]any `json:"args"`
}

func TestChromeParsesBack(t *testing.T) {
	for _, c := range []struct {
		vcpus int
		timed bool
	}{{1, false}, {2, true}} {
		data, recs := genTrace(t, 300, c.vcpus, c.timed)
		tr, err := Read(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		s := Summarize(tr)
		var out bytes.Buffer
		if err := WriteChrome(&out, tr, s); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			TraceEvents     []chromeEvent     `json:"traceEvents"`
			DisplayTimeUnit string            `json:"displayTimeUnit"`
			Metadata        map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		threads := map[int]string{}
		var exits, modes []chromeEvent
		for _, e := range doc.TraceEvents {
			switch {
			case e.Ph == "M" && e.Name == "thread_name":
				threads[e.TID] = e.Args["name"].(string)
			case e.Ph == "X" && e.Cat == "exit":
				exits = append(exits, e)
			case e.Ph == "X" && e.Cat == "mode":
				modes = append(modes, e)
			}
		}
		if len(exits) != len(recs) || len(modes) != wantSpans(recs) || len(threads) != 2*c.vcpus {
			t.Fatalf("%d exits (want %d), %d mode spans (want %d), threads %v", len(exits), len(recs), len(modes), wantSpans(recs), threads)
		}
		for i, e := range exits {
			r := recs[i]
			if !strings.HasPrefix(threads[e.TID], "vCPU ") || !strings.HasSuffix(threads[e.TID], " exits") || e.TID != exitTID(r.VCPU) {
				t.Fatalf("exit %d on track %d %q", i, e.TID, threads[e.TID])
			}
			if !strings.HasPrefix(e.Name, r.Exit) || e.Args["cs_rip"] != r.CSRIP || e.Dur <= 0 {
				t.Fatalf("exit %d: %+v for %+v", i, e, r)
			}
			wantTS := float64(i)
			if c.timed {
				wantTS = float64(*r.TimeNS) / 1e3
			}
			if e.TS != wantTS {
				t.Fatalf("exit %d at ts %v, want %v", i, e.TS, wantTS)
			}
		}
		for _, m := range modes {
			if !strings.HasSuffix(threads[m.TID], " modes") || m.Dur <= 0 {
				t.Errorf("mode span %+v on %q", m, threads[m.TID])
			}
		}
		if clock := doc.Metadata["clock"]; c.timed == strings.Contains(clock, "record index") {
			t.Errorf("timed %v, clock note %q", c.timed, clock)
		}
	}
}

func TestHTMLSelfContained(t *testing.T) {
	data, _ := genTrace(t, 200, 1, false)
	tr, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteHTML(&out, tr, Summarize(tr), "test report"); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, bad := range []string{"<script src", "<link", "@import", "url(", "https://", "</script><!--"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained or not escaped", bad)
		}
	}
	// The embedded data parses back to the records.
	start := strings.Index(page, `id="trace-data">`) + len(`id="trace-data">`)
	end := strings.Index(page[start:], "</script>")
	var recs []map[string]any
	if err := json.Unmarshal([]byte(page[start:start+end]), &recs); err != nil {
		t.Fatalf("embedded data: %v", err)
	}
	if len(recs) != 200 {
		t.Errorf("%d records embedded, want 200", len(recs))
	}
}

// What the page says is missing follows the trace: everything for a trace
// of an older walkvm (no header, no walk state, no times), nothing for one
// with every field, KVM's answers alone for a run without checks.
func TestMissing(t *testing.T) {
	old := `{"seq":1,"exit":"mmio","mode":"pae","cs_rip":"0008:0x2000","walks":[{"walker":"paging64","access":"read","linear":"0x10","levels":[{"level":3,"table":"0x1000","index":0,"entry":"0x1000","value":"0x2001"}],"gpa":"0x10"}]}`
	full, _ := genTrace(t, 60, 1, true)
	noKVM := bytes.ReplaceAll(full, []byte(`"kvm_translate"`), []byte(`"other"`))
	for _, c := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"older walkvm", []byte(old), []string{"t_ns", "CR3, PCID", "fault vector", "MAXPHYADDR", "KVM_TRANSLATE"}},
		{"every field", full, nil},
		{"-verify off", noKVM, []string{"KVM_TRANSLATE"}},
	} {
		tr, err := Read(bytes.NewReader(c.in))
		if err != nil {
			t.Fatal(err)
		}
		got := Missing(tr)
		if len(got) != len(c.want) {
			t.Errorf("%s: missing %q, want %d items", c.name, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: item %d %q, want one about %q", c.name, i, got[i], w)
			}
		}
	}
}
