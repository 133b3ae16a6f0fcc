package devices

import (
	"testing"
)

// FuzzReport drives the report device with arbitrary guest port writes and
// reads: it never panics, keeps its record bounded, and every recorded
// event decodes without panicking.
func FuzzReport(f *testing.F) {
	f.Add([]byte{0, 4, 13, 0, 0, 0, 1, 1, 3})
	f.Add([]byte{1, 1, 2, 2, 2, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := NewReport()
		var buf [8]byte
		for i := 0; i+2 < len(ops); i += 3 {
			off, n, v := uint64(ops[i]%ReportPorts), int(ops[i+1]%8)+1, ops[i+2]
			for j := range buf {
				buf[j] = v + byte(j)
			}
			if ops[i]&0x80 != 0 {
				_ = r.Read(off, buf[:n])
			} else {
				_ = r.Write(off, buf[:n])
			}
		}
		ev := r.Events()
		if len(ev) > ReportLimit {
			t.Fatalf("%d events recorded, limit %d", len(ev), ReportLimit)
		}
		for _, e := range ev {
			_ = e.String()
			_, _, _, _, _, _ = e.Vector(), e.ErrorCode(), e.CR2(), e.RIP(), e.Stage(), e.Value()
			_ = e.WellFormed()
		}
	})
}

// FuzzUART: any register access sequence is served without panic.
func FuzzUART(f *testing.F) {
	f.Add([]byte{3, 0x80, 0, 1, 3, 3, 0, 'h'})
	f.Fuzz(func(t *testing.T, ops []byte) {
		u := NewUART(nil)
		var b [1]byte
		for i := 0; i+1 < len(ops); i += 2 {
			off := uint64(ops[i] & 7)
			if ops[i]&0x80 != 0 {
				_ = u.Read(off, b[:])
			} else {
				b[0] = ops[i+1]
				_ = u.Write(off, b[:])
			}
		}
	})
}
