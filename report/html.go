package report

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"hash/fnv"
	"html/template"
	"io"
	"math"
	"sync"
)

//go:embed assets/report.html
var pageTemplate string

//go:embed assets/report.css
var pageCSS string

//go:embed assets/report.js
var pageJS string

var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"pct": func(n, total int) float64 {
			if total == 0 {
				return 0
			}
			return 100 * float64(n) / float64(total)
		},
	}).Parse(pageTemplate))
})

// MaxTimelineSpans bounds the spans the timeline draws; the rest are
// counted in a note (the table still lists every exit).
const MaxTimelineSpans = 5000

// Missing lists what t does not carry that the page would show (a trace
// from an older walkvm, a run without -verify checks); the page names
// them where they would appear.
func Missing(t *Trace) []string {
	var timed, walks, paging, state, kvm bool
	timed = len(t.Records) > 0
	for i := range t.Records {
		r := &t.Records[i]
		if r.TimeNS == nil {
			timed = false
		}
		for j := range r.Walks {
			w := &r.Walks[j]
			walks = true
			if w.KVM != nil {
				kvm = true
			}
			if w.Walker != "nonpaging" {
				paging = true
				if w.CR3 != "" && w.CPL != nil {
					state = true
				}
			}
		}
	}
	var out []string
	if !timed {
		out = append(out, "t_ns and dur_ns (when each exit arrived and how long walkvm took): time is the record index")
	}
	if paging && !state {
		out = append(out, "CR3, PCID and the permission inputs of the walks (CPL, CR0.WP, CR4.SMEP/SMAP/PKE, EFER.NXE, RFLAGS.AC, PKRU): the first table's address is shown, and the check from the entries alone")
	}
	if t.Header == nil {
		out = append(out, "the walks' outcome (fault vector and error code) and the accessed/dirty flags walkvm set (a trace without a header line is from an older walkvm)")
		out = append(out, "MAXPHYADDR (reserved address bits are not checked)")
	}
	if walks && !kvm {
		out = append(out, "KVM_TRANSLATE's answers (the run did not check its walks against KVM: -verify off, or an older walkvm)")
	}
	return out
}

type spanView struct {
	Span
	X, W  float64
	Y     int
	Color string
	Label bool
}

type bar struct {
	Name  string
	N     int
	W     float64
	Y     int
	Color string
}

type chart struct {
	Title  string
	Bars   []bar
	Height int
}

type pageData struct {
	Title      string
	Exits      int
	VCPUs      []int
	Spans      []spanView
	SpansTotal int
	Dropped    int
	Width      float64
	Height     int
	Legend     []bar
	Charts     []chart
	Clock      string
	Missing    []string
	MaxPhyAddr int // 0: not in the trace
	CSS        template.CSS
	JS         template.JS
	Data       template.JS
}

const (
	timelineWidth = 1100.0
	rowHeight     = 44
	minSpanWidth  = 4.0
)

// WriteHTML renders t as one self-contained HTML page.
func WriteHTML(w io.Writer, t *Trace, s *Summary, title string) error {
	d := &pageData{Title: title, Exits: s.Exits, VCPUs: s.VCPUs, SpansTotal: len(s.Spans),
		Clock: ClockNote(s), Missing: Missing(t), CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	if t.Header != nil {
		d.MaxPhyAddr = t.Header.MaxPhyAddr
	}
	d.timeline(s)
	for _, c := range []struct {
		title  string
		counts []Count
	}{{"exits by kind", s.ByKind}, {"exits by mode", s.ByMode}, {"walks by walker/levels", s.Walks}, {"verdicts", s.Verdicts}} {
		d.Charts = append(d.Charts, barChart(c.title, c.counts))
	}
	// The records go where the template puts a marker, streamed rather
	// than copied through the template.
	d.Data = dataMarker
	var head bytes.Buffer
	if err := page().Execute(&head, d); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	before, after, ok := bytes.Cut(head.Bytes(), []byte(dataMarker))
	if !ok {
		return fmt.Errorf("render report: the template lost the data marker")
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(before)
	writeLines(bw, t.Lines)
	bw.Write(after)
	return bw.Flush()
}

// timeline lays the spans out: one row per vCPU, widths proportional to
// the exits in each span, each at least minSpanWidth.
func (d *pageData) timeline(s *Summary) {
	spans := s.Spans
	if len(spans) > MaxTimelineSpans {
		d.Dropped = len(spans) - MaxTimelineSpans
		spans = spans[:MaxTimelineSpans]
	}
	row := map[int]int{}
	for i, v := range s.VCPUs {
		row[v] = i
	}
	perRow := make([]int, len(s.VCPUs))
	exits := make([]int, len(s.VCPUs))
	for _, sp := range spans {
		perRow[row[sp.VCPU]]++
		exits[row[sp.VCPU]] += sp.Exits
	}
	d.Width = timelineWidth
	for _, n := range perRow {
		d.Width = math.Max(d.Width, float64(n)*minSpanWidth)
	}
	x := make([]float64, len(s.VCPUs))
	seen := map[string]bool{}
	for _, sp := range spans {
		r := row[sp.VCPU]
		free := d.Width - float64(perRow[r])*minSpanWidth
		w := minSpanWidth + free*float64(sp.Exits)/float64(exits[r])
		v := spanView{Span: sp, X: x[r], W: w, Y: r * rowHeight, Color: modeColor(sp.Mode), Label: w >= 70}
		x[r] += w
		d.Spans = append(d.Spans, v)
		if !seen[sp.Mode] {
			seen[sp.Mode] = true
			d.Legend = append(d.Legend, bar{Name: sp.Mode, Color: v.Color})
		}
	}
	d.Height = len(s.VCPUs) * rowHeight
}

// palette is colour-blind-friendly (Okabe-Ito, then Tol's muted).
var palette = []string{"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
	"#332288", "#117733", "#882255", "#44aa99", "#999933", "#aa4499"}

var modeColors = map[string]string{
	"real": "#0072b2", "vm86": "#56b4e9", "protected16": "#e69f00", "protected32": "#d55e00",
	"paging32": "#009e73", "pae": "#cc79a7", "long64": "#332288", "long64-la57": "#882255",
	"compat": "#117733", "compat-la57": "#999933",
}

func modeColor(m string) string {
	if c, ok := modeColors[m]; ok {
		return c
	}
	h := fnv.New32a()
	h.Write([]byte(m))
	return palette[h.Sum32()%uint32(len(palette))]
}

const chartWidth = 220.0

func barChart(title string, counts []Count) chart {
	c := chart{Title: title}
	top := 1
	for _, n := range counts {
		top = max(top, n.N)
	}
	for i, n := range counts {
		c.Bars = append(c.Bars, bar{Name: n.Name, N: n.N, W: math.Max(1, chartWidth*float64(n.N)/float64(top)), Y: i * 20, Color: palette[i%len(palette)]})
	}
	c.Height = max(20, len(counts)*20)
	return c
}

// dataMarker stands for the records in the rendered template.
const dataMarker = "/*walkvm-trace-data*/"

// writeLines writes the records' JSON lines as one JSON array fit for a
// <script> element: '<' appears in JSON only inside strings, where \u003c
// means the same, so no "</script>" or "<!--" survives.
func writeLines(w *bufio.Writer, lines [][]byte) {
	w.WriteByte('[')
	for i, l := range lines {
		if i > 0 {
			w.WriteByte(',')
		}
		for {
			j := bytes.IndexByte(l, '<')
			if j < 0 {
				w.Write(l)
				break
			}
			w.Write(l[:j])
			w.WriteString(`\u003c`)
			l = l[j+1:]
		}
	}
	w.WriteByte(']')
}
