package report

import (
	"bufio"
	"io"
	"strconv"

	"walkvm/internal/jsontext"
)

// Chrome trace-event format (the JSON object form that Perfetto UI and
// chrome://tracing open): exits are complete events ("ph":"X") on one
// thread track per vCPU, the mode spans complete events on a second track
// per vCPU, named by metadata events ("ph":"M"). Times are microseconds.

const chromePID = 1

// ClockNote says what the timestamps of an export mean.
func ClockNote(s *Summary) string {
	if s.Timed {
		return "t_ns of each record (ns since the run started); exits without dur_ns are drawn 1 µs long"
	}
	return "the trace has no timestamps (t_ns): time is the record index, 1 µs per exit"
}

func exitTID(vcpu int) int { return 2*vcpu + 1 }
func modeTID(vcpu int) int { return 2*vcpu + 2 }

// WriteChrome writes t as a Chrome trace-event JSON object.
func WriteChrome(w io.Writer, t *Trace, s *Summary) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	b := make([]byte, 0, 1024)
	b = append(b, `{"displayTimeUnit":"ns","metadata":{"source":"walkvm trace","clock":`...)
	b = appendString(b, ClockNote(s))
	b = append(b, `},"traceEvents":[`...)
	b = meta(b, "process_name", 0, `"walkvm"`)
	for _, v := range s.VCPUs {
		name := "vCPU " + strconv.Itoa(v)
		b = append(b, ',')
		b = meta(b, "thread_name", exitTID(v), quote(name+" exits"))
		b = append(b, ',')
		b = meta(b, "thread_sort_index", exitTID(v), strconv.Itoa(exitTID(v)))
		b = append(b, ',')
		b = meta(b, "thread_name", modeTID(v), quote(name+" modes"))
		b = append(b, ',')
		b = meta(b, "thread_sort_index", modeTID(v), strconv.Itoa(modeTID(v)))
	}
	for i := range t.Records {
		r := &t.Records[i]
		ts, dur := timeOf(t, s, i)
		b = append(b, `,{"ph":"X","cat":"exit","name":`...)
		name := r.Exit
		if r.Disasm != "" {
			name += ": " + r.Disasm
		}
		b = appendString(b, name)
		b = event(b, exitTID(r.VCPU), ts, dur)
		b = append(b, `,"args":{"seq":`...)
		b = strconv.AppendUint(b, r.Seq, 10)
		b = arg(b, "mode", r.Mode)
		b = arg(b, "cs_rip", r.CSRIP)
		b = arg(b, "bytes", r.Bytes)
		b = arg(b, "direction", r.Dir)
		b = arg(b, "gpa", r.GPA)
		b = arg(b, "kvm_gpa", r.KVMGPA)
		b = arg(b, "verdict", r.Verdict)
		b = arg(b, "detail", r.Detail)
		if len(r.Walks) > 0 {
			b = append(b, `,"walks":`...)
			b = strconv.AppendInt(b, int64(len(r.Walks)), 10)
		}
		b = append(b, "}}"...)
		if len(b) > 64<<10 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	for _, sp := range s.Spans {
		ts, _ := timeOf(t, s, sp.First)
		lastTS, lastDur := timeOf(t, s, sp.Last)
		b = append(b, `,{"ph":"X","cat":"mode","name":`...)
		b = appendString(b, sp.Mode)
		b = event(b, modeTID(sp.VCPU), ts, lastTS+lastDur-ts)
		b = append(b, `,"args":{"first_cs_rip":`...)
		b = appendString(b, sp.CSRIP)
		b = append(b, `,"exits":`...)
		b = strconv.AppendInt(b, int64(sp.Exits), 10)
		b = append(b, "}}"...)
		if len(b) > 64<<10 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "]}\n"...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	return bw.Flush()
}

// timeOf is record i's start and duration in microseconds.
func timeOf(t *Trace, s *Summary, i int) (ts, dur float64) {
	r := &t.Records[i]
	if !s.Timed {
		return float64(i), 1
	}
	ts, dur = float64(*r.TimeNS)/1e3, 1
	if r.DurNS != nil && *r.DurNS > 0 {
		dur = float64(*r.DurNS) / 1e3
	}
	return ts, dur
}

func meta(b []byte, name string, tid int, value string) []byte {
	b = append(b, `{"ph":"M","name":"`...)
	b = append(b, name...)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, chromePID, 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendInt(b, int64(tid), 10)
	b = append(b, `,"args":{`...)
	if name == "thread_sort_index" {
		b = append(b, `"sort_index":`...)
	} else {
		b = append(b, `"name":`...)
	}
	b = append(b, value...)
	return append(b, "}}"...)
}

func event(b []byte, tid int, ts, dur float64) []byte {
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, chromePID, 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendInt(b, int64(tid), 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendFloat(b, ts, 'f', -1, 64)
	b = append(b, `,"dur":`...)
	return strconv.AppendFloat(b, dur, 'f', -1, 64)
}

func arg(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendString appends v as a JSON string.
func appendString(b []byte, v string) []byte { return jsontext.AppendString(b, v) }

func quote(v string) string { return string(appendString(nil, v)) }
