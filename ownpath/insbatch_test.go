package ownpath

import (
	"encoding/binary"
	"errors"
	"testing"

	"walkvm/kvm"
)

// ioInExit is a string IN exit of count bytes from port with data.
func ioInExit(seq uint64, port uint16, data []byte) *kvm.Exit {
	return &kvm.Exit{Kind: kvm.KindIO, Reason: kvm.ExitIO, Seq: seq,
		IO: kvm.IOAccess{Port: port, Size: 1, Count: uint32(len(data)), Data: data}}
}

// KVM's REP INSB into MMIO (kvm-unit-tests' emulator test): one string IN
// exit for the rest of the page, rDI and rCX advanced past the batch, then
// 8-byte write exits of the port's bytes with RIP still at the instruction.
func TestINSBatchWrites(t *testing.T) {
	const (
		batch = 64
		port  = 0xe0
	)
	data := make([]byte, batch)
	for i := range data {
		data[i] = byte(0x40 + i)
	}
	// The IO exit: the port's bytes are in once the exit was handled.
	setup := func(t *testing.T) (*Path, uint64) {
		// rep insb (%dx),%es:(%di) at 0x1000; ES = 0xd000, the window.
		p, cpu, _ := newEntryPath(t, []byte{0xf3, 0x6c}, nil)
		cpu.regs.RDI, cpu.regs.RCX, cpu.regs.RDX = 0x1000, 0x400-batch, port
		io := ioInExit(1, port, data)
		if err := p.BeginExit(io); err != nil {
			t.Fatal(err)
		}
		p.EndExit(io)
		return p, 2
	}
	frag := func(seq uint64, off int, d []byte) *kvm.Exit {
		return mmioExit(seq, 0xd0fc0+uint64(off), 8, true, binary.LittleEndian.Uint64(d))
	}
	write := func(p *Path, e *kvm.Exit) error {
		if err := p.BeginExit(e); err != nil {
			return err
		}
		err := p.MMIOWrite(e)
		p.EndExit(e)
		return err
	}

	t.Run("every fragment agrees", func(t *testing.T) {
		p, seq := setup(t)
		for off := 0; off < batch; off += 8 {
			if err := write(p, frag(seq, off, data[off:off+8])); err != nil {
				t.Fatalf("fragment at +%d: %v", off, err)
			}
			if got := p.exit.rec.Size; got != batch {
				t.Errorf("fragment at +%d recorded a %d-byte access, want the %d-byte batch", off, got, batch)
			}
			seq++
		}
		if s := p.Stats(); s.MMIO.Agreed != batch/8 || s.MMIO.Disagreed != 0 {
			t.Errorf("mmio %+v", s.MMIO)
		}
	})
	var d *Disagreement
	t.Run("other bytes than the port's", func(t *testing.T) {
		p, seq := setup(t)
		if err := write(p, frag(seq, 8, make([]byte, 8))); !errors.As(err, &d) {
			t.Errorf("zeros where the port gave %x: %v", data[8:16], err)
		}
	})
	t.Run("outside the batch", func(t *testing.T) {
		p, seq := setup(t)
		e := mmioExit(seq, 0xd0f80, 8, true, 0)
		if err := write(p, e); !errors.As(err, &d) {
			t.Errorf("a write below the batch: %v", err)
		}
	})
	t.Run("no IN exit before", func(t *testing.T) {
		p, seq := setup(t)
		other := &kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT, Seq: seq}
		if err := p.BeginExit(other); err != nil {
			t.Fatal(err)
		}
		p.EndExit(other)
		if err := write(p, frag(seq+1, 0, data[:8])); !errors.As(err, &d) {
			t.Errorf("a batch write after another exit: %v", err)
		}
	})
}
