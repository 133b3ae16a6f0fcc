package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleTrace = `{"seq":1,"exit":"io","mode":"real","cs_rip":"0000:0x1000"}
{"seq":2,"exit":"mmio","mode":"paging32","cs_rip":"0008:0x1010","bytes":"8b03","disasm":"mov (%ebx),%eax","walks":[{"walker":"paging32","access":"read","linear":"0xff000010","levels":[{"level":2,"table":"0x9000","index":1020,"entry":"0x9ff0","value":"0xa027"},{"level":1,"table":"0xa000","index":0,"entry":"0xa000","value":"0xff000067"}],"gpa":"0xff000010"}],"linear":"0xff000010","gpa":"0xff000010","size":4,"direction":"read","data":"0x0","kvm_gpa":"0xff000010","kvm_len":4,"verdict":"agree"}
`

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.jsonl")
	if err := os.WriteFile(trace, []byte(sampleTrace), 0o644); err != nil {
		t.Fatal(err)
	}
	html, chrome := filepath.Join(dir, "r.html"), filepath.Join(dir, "r.json")
	var out, errb bytes.Buffer
	if s := Main([]string{"report", "-o", html, trace}, &out, &errb); s != 0 {
		t.Fatalf("status %d: %s", s, errb.String())
	}
	if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte(`<g class="span"`)) || !bytes.Contains(b, []byte("mov (%ebx),%eax")) {
		t.Errorf("HTML report: %v, %d bytes", err, len(b))
	}
	if s := Main([]string{"report", "-format", "chrome", "-o", chrome, trace}, &out, &errb); s != 0 {
		t.Fatalf("status %d: %s", s, errb.String())
	}
	var doc struct{ TraceEvents []map[string]any }
	if b, err := os.ReadFile(chrome); err != nil || json.Unmarshal(b, &doc) != nil || len(doc.TraceEvents) < 4 {
		t.Errorf("chrome export: %v, %d events", err, len(doc.TraceEvents))
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(sampleTrace+"{oops\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "want one TRACE"},
		{[]string{"report", "-format", "svg", trace}, "-format"},
		{[]string{"report", "-o", filepath.Join(dir, "r2.html"), bad}, "trace line 3"},
		{[]string{"report", filepath.Join(dir, "none.jsonl")}, "no such file"},
	} {
		errb.Reset()
		if s := Main(c.args, &out, &errb); s == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: status %d, stderr %q, want %q", c.args, s, errb.String(), c.want)
		}
	}
}
