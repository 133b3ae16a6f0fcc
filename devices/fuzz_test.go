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

// FuzzUART: any sequence of register accesses and received bytes is served
// without panic, the line is driven only on changes, and its level always
// matches IIR, MCR.OUT2 and loopback.
func FuzzUART(f *testing.F) {
	f.Add([]byte{3, 0x80, 0, 1, 3, 3, 0, 'h'})
	f.Add([]byte{4, 0x08, 1, 0x0f, 0x82, 0, 0, 'x', 0x40, 'y', 0x85, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		irq := &irqRec{}
		u := NewUARTIRQ(nil, irq)
		var b [1]byte
		for i := 0; i+1 < len(ops); i += 2 {
			off := uint64(ops[i] & 7)
			switch {
			case ops[i]&0x80 != 0:
				_ = u.Read(off, b[:])
			case ops[i]&0x40 != 0:
				_, _ = u.Receive(ops[i+1 : i+2])
			default:
				b[0] = ops[i+1]
				_ = u.Write(off, b[:])
			}
			u.mu.Lock()
			want := u.pending() != iirNoInt && u.mcr&mcrOUT2 != 0 && u.mcr&mcrLoop == 0
			u.mu.Unlock()
			if irq.get() != want {
				t.Fatalf("op %d: line %v, IIR/MCR say %v", i/2, irq.get(), want)
			}
		}
		if irq.redundant != 0 {
			t.Fatalf("%d SetLevel calls repeated the line's level", irq.redundant)
		}
	})
}

// FuzzPCDevices: arbitrary accesses of any size to fw_cfg, pc-testdev, the
// PCI ports, the RTC and the i8042 never panic; the i8042's lines are driven
// only on changes.
func FuzzPCDevices(f *testing.F) {
	f.Add([]byte{0x03, 0x0b, 0x80, 0x13, 0x09, 0x44, 0x83, 0x01})
	f.Add([]byte{0x14, 0xd3, 0x05, 0x5a, 0x95, 0x00})
	f.Fuzz(func(t *testing.T, ops []byte) {
		kbd, aux := &irqRec{}, &irqRec{}
		k := NewI8042(kbd, aux, StopFuncs{})
		devs := []struct {
			d     dev
			ports uint64
		}{
			{NewFwCfg(1<<30, 2), FwCfgPorts}, {NewPCTestDev(nil), PCTestDevPorts},
			{NewPCIConfig(StopFuncs{}), PCIConfigPorts}, {NewRTC(RTCConfig{}), RTCPorts},
			{k.Data(), 1}, {k.Command(), 1},
		}
		var buf [4]byte
		for i := 0; i+1 < len(ops); i += 2 {
			d := devs[int(ops[i]&0x0f)%len(devs)]
			n := uint64(1) << (ops[i] >> 4 & 3 % 3)
			off := uint64(ops[i+1]) % d.ports
			if off+n > d.ports {
				continue // the bus never routes an access past a device's range
			}
			buf = [4]byte{ops[i+1], ops[i], ops[i+1] ^ 0xff, 0}
			if ops[i]&0x80 != 0 {
				_ = d.d.Read(off, buf[:n])
			} else {
				_ = d.d.Write(off, buf[:n])
			}
		}
		if kbd.redundant+aux.redundant != 0 {
			t.Fatalf("%d SetLevel calls repeated the line's level", kbd.redundant+aux.redundant)
		}
	})
}
