package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium or skips saying why.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium in PATH: install Debian's chromium package (apt-get install chromium) to run the browser tests")
	return ""
}

// runChromium runs a headless Chromium on page with the given flags and
// returns its stdout.
func runChromium(t *testing.T, bin string, url string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS=disabled:")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// writePage renders a trace to an HTML file and returns the file, the
// decoded trace and its summary.
func writePage(t *testing.T, data []byte) (string, *Trace, *Summary) {
	t.Helper()
	tr, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(tr)
	p := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(f, tr, s, "walkvm report"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, tr, s
}

// deepest is the index of the first record with the most walk levels,
// a write before a read, one that set accessed/dirty flags before others.
func deepest(tr *Trace) int {
	best, score := 0, -1
	for i, r := range tr.Records {
		n := 0
		if r.Dir == "write" {
			n += 2
		}
		for _, w := range r.Walks {
			n += 4 * len(w.Levels)
			if w.SetAD {
				n++
			}
		}
		if n > score {
			best, score = i, n
		}
	}
	return best
}

// faulting is the index of the first record with a walk that faulted
// after reading entries, -1 for none.
func faulting(tr *Trace) int {
	for i, r := range tr.Records {
		for _, w := range r.Walks {
			if w.Fault != nil && len(w.Levels) > 0 {
				return i
			}
		}
	}
	return -1
}

var (
	reSpan  = regexp.MustCompile(`<g class="span" `)
	reWalk  = regexp.MustCompile(`<div class="walk" data-levels="(\d+)" data-walker="[^"]*" data-cr3="([^"]*)" data-pcid="([^"]*)" data-check="([^"]*)" data-kvm="([^"]*)" data-ad="(\d+)" data-outcome="([^"]*)"`)
	reLevel = regexp.MustCompile(`<div class="box level" `)
	reRow   = regexp.MustCompile(`<tr data-i="`)
)

// checkDOM asserts what the page's script drew for record sel.
func checkDOM(t *testing.T, dom []byte, tr *Trace, s *Summary, sel int) {
	t.Helper()
	// The page's own script holds the same markup in strings.
	if i := bytes.Index(dom, []byte("<script")); i >= 0 {
		dom = dom[:i]
	}
	if n := len(reSpan.FindAll(dom, -1)); n != min(len(s.Spans), MaxTimelineSpans) {
		t.Errorf("timeline has %d spans, the trace %d mode changes", n, len(s.Spans))
	}
	r := tr.Records[sel]
	walks := reWalk.FindAllSubmatch(dom, -1)
	if len(walks) != len(r.Walks) {
		t.Fatalf("exit %d: %d walks drawn, the record has %d", r.Seq, len(walks), len(r.Walks))
	}
	total := 0
	for i, m := range walks {
		w := &r.Walks[i]
		n, _ := strconv.Atoi(string(m[1]))
		if n != len(w.Levels) {
			t.Errorf("exit %d walk %d drawn with %d levels, the record has %d", r.Seq, i, n, len(w.Levels))
		}
		total += len(w.Levels)
		checkWalkDOM(t, &r, i, w, m)
	}
	if n := len(reLevel.FindAll(dom, -1)); n != total {
		t.Errorf("%d level boxes drawn, want %d", n, total)
	}
	if n := len(reRow.FindAll(dom, -1)); n != min(100, len(tr.Records)) {
		t.Errorf("%d table rows in the DOM, want one page (%d)", n, min(100, len(tr.Records)))
	}
}

// checkWalkDOM asserts what the drawing of walk i says against the
// record: CR3 and PCID, the permission check (computed by the page from
// the recorded inputs) agreeing with walkvm's walker, KVM_TRANSLATE's
// answer, and the entries whose accessed/dirty flags walkvm set.
func checkWalkDOM(t *testing.T, r *Record, i int, w *Walk, m [][]byte) {
	t.Helper()
	cr3, pcid, chk, kvm, outcome := string(m[2]), string(m[3]), string(m[4]), string(m[5]), string(m[7])
	ad, _ := strconv.Atoi(string(m[6]))
	wantPCID := ""
	if w.PCID != nil {
		wantPCID = strconv.Itoa(*w.PCID)
	}
	if cr3 != w.CR3 || pcid != wantPCID {
		t.Errorf("exit %d walk %d: CR3 %q PCID %q drawn, the record has %q, %q", r.Seq, i, cr3, pcid, w.CR3, wantPCID)
	}
	wantOutcome, wantCheck := "translated", "allowed"
	if w.Fault != nil {
		wantOutcome, wantCheck = "fault", "fault"
	}
	if w.CPL == nil || len(w.Levels) == 0 {
		wantCheck = "none"
	}
	if outcome != wantOutcome || chk != wantCheck {
		t.Errorf("exit %d walk %d: outcome %q, the page's permission check %q; want %q, %q", r.Seq, i, outcome, chk, wantOutcome, wantCheck)
	}
	wantKVM := "none"
	if w.KVM != nil {
		wantKVM = "agrees"
	}
	if kvm != wantKVM {
		t.Errorf("exit %d walk %d: KVM_TRANSLATE drawn as %q, want %q", r.Seq, i, kvm, wantKVM)
	}
	wantAD := 0
	for _, l := range w.Levels {
		if l.ValueAfter != "" {
			wantAD++
		}
	}
	if ad != wantAD {
		t.Errorf("exit %d walk %d: %d entries drawn with A/D set, the record has %d", r.Seq, i, ad, wantAD)
	}
}

// TestBrowser renders a report in headless Chromium, selects the exit with
// the deepest walks through the URL (#exit=SEQ) and checks the DOM its
// script built, then that a screenshot is not blank. WALKVM_REPORT_TRACE
// renders that trace instead of a generated one; WALKVM_REPORT_SCREENSHOT
// keeps the screenshot there.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	data, _ := genTrace(t, 400, 1, false)
	if p := os.Getenv("WALKVM_REPORT_TRACE"); p != "" {
		var err error
		if data, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	page, tr, s := writePage(t, data)
	sel := deepest(tr)
	url := fmt.Sprintf("file://%s#exit=%d", page, tr.Records[sel].Seq)
	dom := runChromium(t, bin, url, "--dump-dom")
	checkDOM(t, dom, tr, s, sel)
	if missing := Missing(tr); bytes.Contains(dom, []byte(`id="missing"`)) != (len(missing) > 0) {
		t.Errorf("the page's list of what the trace lacks does not match %q", missing)
	}
	// A walk that faulted: the page's check reaches the same fault.
	if f := faulting(tr); f >= 0 {
		furl := fmt.Sprintf("file://%s#exit=%d&vcpu=%d", page, tr.Records[f].Seq, tr.Records[f].VCPU)
		checkDOM(t, runChromium(t, bin, furl, "--dump-dom"), tr, s, f)
	} else if os.Getenv("WALKVM_REPORT_TRACE") == "" {
		t.Error("the generated trace has no faulting walk")
	}

	shot := filepath.Join(t.TempDir(), "shot.png")
	runChromium(t, bin, url, "--window-size=1400,2300", "--screenshot="+shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	colours, inked := pixelVariety(img)
	if colours < 64 || inked < 0.05 {
		t.Errorf("screenshot looks blank: %d colours, %.1f%% non-white", colours, 100*inked)
	}
	if p := os.Getenv("WALKVM_REPORT_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pixelVariety counts distinct colours and the share of non-white pixels.
func pixelVariety(img image.Image) (int, float64) {
	seen := map[uint32]bool{}
	inked, all := 0, 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[r>>8<<16|g>>8<<8|b>>8] = true
			all++
			if r>>8 < 0xf0 || g>>8 < 0xf0 || b>>8 < 0xf0 {
				inked++
			}
		}
	}
	return len(seen), float64(inked) / float64(all)
}

// TestBrowserLarge opens a report of 10^5 exits: the page keeps one page
// of rows in the DOM and still draws the selected exit's walks.
func TestBrowserLarge(t *testing.T) {
	bin := chromium(t)
	if testing.Short() {
		t.Skip("-short: the 10^5-exit page takes Chromium several seconds")
	}
	data, _ := genTrace(t, 100_000, 2, true)
	page, tr, s := writePage(t, data)
	sel := deepest(tr)
	r := tr.Records[sel]
	url := fmt.Sprintf("file://%s#exit=%d&vcpu=%d", page, r.Seq, r.VCPU)
	checkDOM(t, runChromium(t, bin, url, "--dump-dom"), tr, s, sel)
}
