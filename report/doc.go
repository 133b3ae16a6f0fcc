// Package report turns a walkvm trace (the JSON lines `vmm run -trace`
// writes, one object per exit) into something a person looks at: a single
// self-contained HTML page (mode timeline, a filterable table of exits, a
// drawing of every page walk of a selected exit, the statistics as charts)
// and a Chrome trace-event file for Perfetto and chrome://tracing.
//
// It reads the trace through its own decoding of the JSON: unknown fields
// are ignored, a missing "vcpu" means vCPU 0.
package report
