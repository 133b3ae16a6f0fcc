package report

import (
	"bytes"
	"io"
	"testing"
)

// The Go side of a 10^5-exit report: decoding the trace, then each output.
const benchExits = 100_000

func benchTrace(b *testing.B) ([]byte, *Trace, *Summary) {
	data, _ := genTrace(b, benchExits, 2, true)
	tr, err := Read(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	return data, tr, Summarize(tr)
}

func BenchmarkRead(b *testing.B) {
	data, _, _ := benchTrace(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteHTML(b *testing.B) {
	_, tr, _ := benchTrace(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteHTML(io.Discard, tr, Summarize(tr), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteChrome(b *testing.B) {
	_, tr, _ := benchTrace(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteChrome(io.Discard, tr, Summarize(tr)); err != nil {
			b.Fatal(err)
		}
	}
}
