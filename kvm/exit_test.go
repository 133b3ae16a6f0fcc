package kvm

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// fakeRun is a VCPU over a kvm_run area in plain memory, as KVM would
// leave it after an exit.
func fakeRun(reason ExitReason, union []byte, tail []byte) *VCPU {
	mem := make([]byte, 4096)
	c := &VCPU{runMem: mem, run: (*runHeader)(unsafe.Pointer(&mem[0]))}
	c.run.ExitReason = reason
	copy(c.run.Exit[:], union)
	copy(mem[1024:], tail)
	return c
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func join(b ...[]byte) []byte {
	var out []byte
	for _, x := range b {
		out = append(out, x...)
	}
	return out
}

// ReadExit turns each exit reason into its kind and fields.
func TestReadExit(t *testing.T) {
	// kvm_run.io: direction, size, port, count, data_offset.
	io := join([]byte{IOIn, 2}, []byte{0xf8, 0x03}, le32(3), le64(1024))
	mmio := join(le64(0xff000010), []byte{1, 2, 3, 4, 0, 0, 0, 0}, le32(4), []byte{1})
	internal := join(le32(InternalErrorDeliveryEv), le32(2), le64(0x11), le64(0x22))
	emul := join(le32(InternalErrorEmulation), le32(0), le64(EmulationFlagInstructionBytes), []byte{2, 0xd9, 0x03})
	sysev := join(le32(SystemEventReset), le32(1), le64(7))
	for _, c := range []struct {
		reason ExitReason
		union  []byte
		kind   ExitKind
		check  func(t *testing.T, e *Exit)
	}{
		{ExitIO, io, KindIO, func(t *testing.T, e *Exit) {
			if e.IO.Port != 0x3f8 || e.IO.Size != 2 || e.IO.Out || e.IO.Count != 3 || len(e.IO.Data) != 6 || e.IO.Data[0] != 0xaa {
				t.Errorf("io %+v", e.IO)
			}
		}},
		{ExitMMIO, mmio, KindMMIO, func(t *testing.T, e *Exit) {
			if e.MMIO.PhysAddr != 0xff000010 || e.MMIO.IsWrite != 1 || string(e.MMIO.Bytes()) != "\x01\x02\x03\x04" {
				t.Errorf("mmio %+v", e.MMIO)
			}
		}},
		{ExitHLT, nil, KindHLT, nil},
		{ExitShutdown, nil, KindShutdown, nil},
		{ExitInternalError, internal, KindInternalError, func(t *testing.T, e *Exit) {
			if e.Internal.Suberror != InternalErrorDeliveryEv || len(e.Internal.Data) != 2 || e.Internal.Data[1] != 0x22 {
				t.Errorf("internal %+v", e.Internal)
			}
		}},
		{ExitInternalError, emul, KindEmulationFailure, func(t *testing.T, e *Exit) {
			if got := e.EmulationFailure.Instruction(); len(got) != 2 || got[0] != 0xd9 {
				t.Errorf("instruction % x", got)
			}
		}},
		{ExitSystemEvent, sysev, KindSystemEvent, func(t *testing.T, e *Exit) {
			if e.SystemEvent.Type != SystemEventReset || len(e.SystemEvent.Data) != 1 || e.SystemEvent.Data[0] != 7 {
				t.Errorf("system event %+v", e.SystemEvent)
			}
		}},
		{ExitFailEntry, le64(0x21), KindFailEntry, func(t *testing.T, e *Exit) {
			if e.FailEntry.HardwareEntryFailureReason != 0x21 {
				t.Errorf("fail entry %+v", e.FailEntry)
			}
		}},
		{ExitIntr, nil, KindInterrupted, nil},
		{ExitDebug, join(le32(1), le32(0), le64(0x1000)), KindDebug, func(t *testing.T, e *Exit) {
			if e.Debug.Exception != 1 || e.Debug.PC != 0x1000 {
				t.Errorf("debug %+v", e.Debug)
			}
		}},
		{ExitHypercall, nil, KindOther, nil},
	} {
		t.Run(c.reason.String()+"/"+c.kind.String(), func(t *testing.T) {
			cpu := fakeRun(c.reason, c.union, []byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})
			e := Exit{Seq: 9, Kind: KindHLT, IO: IOAccess{Port: 1}}
			if err := cpu.ReadExit(&e); err != nil {
				t.Fatal(err)
			}
			if e.Kind != c.kind || e.Reason != c.reason || e.Seq != 9 {
				t.Fatalf("exit %+v", e)
			}
			if c.kind != KindIO && e.IO.Port != 0 {
				t.Errorf("a stale field survived: %+v", e.IO)
			}
			if c.check != nil {
				c.check(t, &e)
			}
		})
	}
}

// An exit read into the Exit of the last one (as the run loop reuses
// one) is the exit read into a fresh Exit, whatever kinds came before:
// runs of MMIO and port-I/O exits, which ReadExit fills in place, and
// changes of kind, which clear the fields of the last kind.
func TestReadExitReused(t *testing.T) {
	mmio := func(gpa uint64, write byte) []byte {
		return join(le64(gpa), []byte{1, 2, 3, 4, 5, 6, 7, 8}, le32(4), []byte{write})
	}
	io := func(dir, size byte, port uint16, count uint32) []byte {
		return join([]byte{dir, size}, []byte{byte(port), byte(port >> 8)}, le32(count), le64(1024))
	}
	seq := []struct {
		reason ExitReason
		union  []byte
	}{
		{ExitMMIO, mmio(0xff000000, 1)},
		{ExitMMIO, mmio(0xff000008, 0)},
		{ExitIO, io(IOOut, 1, 0x3ff, 1)},
		{ExitIO, io(IOIn, 2, 0x3f8, 3)},
		{ExitMMIO, mmio(0xd0000, 0)},
		{ExitHLT, nil},
		{ExitIO, io(IOIn, 4, 0xcfc, 1)},
		{ExitInternalError, join(le32(InternalErrorDeliveryEv), le32(1), le64(0x11))},
		{ExitMMIO, mmio(0xfee00000, 1)},
	}
	var e Exit
	for i, x := range seq {
		cpu := fakeRun(x.reason, x.union, []byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})
		e.Seq = uint64(i + 1)
		if err := cpu.ReadExit(&e); err != nil {
			t.Fatalf("exit %d: %v", i, err)
		}
		fresh := Exit{Seq: uint64(i + 1)}
		if err := cpu.ReadExit(&fresh); err != nil {
			t.Fatalf("exit %d into a fresh Exit: %v", i, err)
		}
		if !reflect.DeepEqual(e, fresh) {
			t.Errorf("exit %d (%v) read into the last exit's Exit:\n%+v\nread into a fresh one:\n%+v", i, x.reason, e, fresh)
		}
	}
}

// An I/O exit whose data lies outside kvm_run, or of size 0, is an error.
func TestReadExitBadIO(t *testing.T) {
	for _, c := range []struct {
		union []byte
		want  string
	}{
		{join([]byte{IOOut, 4}, []byte{0, 0}, le32(2), le64(4090)), "outside kvm_run"},
		{join([]byte{IOOut, 0}, []byte{0xf4, 0}, le32(1), le64(1024)), "size 0"},
	} {
		var e Exit
		if err := fakeRun(ExitIO, c.union, nil).ReadExit(&e); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err %v, want %q", err, c.want)
		}
	}
}

// BenchmarkReadExit reads the exits of the bench guests (package bench)
// from a kvm_run in plain memory, one after the other as the run loop
// does: a 4-byte MMIO exit, and a 1-byte port-I/O exit.
func BenchmarkReadExit(b *testing.B) {
	for _, c := range []struct {
		name   string
		reason ExitReason
		union  []byte
	}{
		{"mmio", ExitMMIO, join(le64(0xff000000), []byte{1, 2, 3, 4, 0, 0, 0, 0}, le32(4), []byte{1})},
		{"pio", ExitIO, join([]byte{IOOut, 1}, []byte{0xff, 0x03}, le32(1), le64(1024))},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu := fakeRun(c.reason, c.union, nil)
			var e Exit
			b.ReportAllocs()
			for b.Loop() {
				if err := cpu.ReadExit(&e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
