package tests

import (
	"bytes"
	_ "embed"
	"math"
	"testing"
	"time"

	"walkvm/boot"
	"walkvm/internal/kvmtest"
	"walkvm/machine"
	"walkvm/ownpath"
	"walkvm/vcpu"
	"walkvm/x86"
)

//go:embed testdata/faults.bin
var faultsImage []byte

// runOwn boots an image through the own MMIO path under -verify strict.
func runOwn(t *testing.T, img boot.Image) (*machine.Machine, *machine.Own, vcpu.End, string) {
	t.Helper()
	kvmtest.Require(t)
	var console bytes.Buffer
	m, err := machine.New(machine.Config{MemSize: 64 << 20, Image: img, Console: &console})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	own, err := m.OwnPath(ownpath.VerifyStrict, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := m.RunOwn(own, 10*time.Second)
	return m, own, res, console.String()
}

func TestOwnPathHelloStrict(t *testing.T) {
	g := mustGuest(t, "hello")
	_, own, res, out := runOwn(t, g)
	if res.ExitStatus() != 0 {
		t.Fatalf("status %d (%s): %v\n%s\n%s", res.ExitStatus(), res.Kind, res.Err, res.Dump, out)
	}
	s := own.Stats()
	if s.MMIO.Disagreed != 0 || s.MMIO.Agreed != 12 || s.MMIO.Reads != 6 || s.MMIO.Writes != 6 {
		t.Errorf("mmio stats %+v, want 12 agreed of 6 reads and 6 writes", s.MMIO)
	}
	if got := s.ModeNames(); len(got) != 1 || got[0] != "real" {
		t.Errorf("modes %v, want [real]", got)
	}
	if s.Walks.Nonpaging == 0 || s.Walks.Paging32+s.Walks.Paging64 != 0 {
		t.Errorf("walks %+v, want nonpaging only", s.Walks)
	}
	if s.Translate.Checks == 0 || s.Translate.Mismatches != 0 {
		t.Errorf("KVM_TRANSLATE checks %d, mismatches %d", s.Translate.Checks, s.Translate.Mismatches)
	}
}

// A long-mode guest's MMIO goes through 4-level walks (walkvm's identity
// map, 2 MiB pages), checked under strict.
func TestOwnPathLongStrict(t *testing.T) {
	code := []byte{
		0xbb, 0x00, 0x00, 0x00, 0xff, // mov $0xff000000,%ebx
		0xc7, 0x43, 0x08, 0x78, 0x56, 0x34, 0x12, // movl $0x12345678,0x8(%rbx)
		0x8b, 0x43, 0x08, // mov 0x8(%rbx),%eax
		0x48, 0x89, 0x43, 0x10, // mov %rax,0x10(%rbx)
		0x83, 0x4b, 0x10, 0x01, // orl $1,0x10(%rbx)
		0xb0, 0x00, 0xe6, 0xf4, // mov $0,%al; out %al,$0xf4
	}
	m, own, res, _ := runOwn(t, boot.Image{Data: code, Load: 0x1000, Mode: boot.Long})
	if res.ExitStatus() != 0 {
		t.Fatalf("status %d (%s): %v\n%s", res.ExitStatus(), res.Kind, res.Err, res.Dump)
	}
	s := own.Stats()
	// movl, mov, mov, orl (read and write): 5 exits.
	if s.MMIO.Agreed != 5 || s.MMIO.Disagreed != 0 {
		t.Errorf("mmio %+v, want 5 agreed", s.MMIO)
	}
	if s.Walks.Paging64Levels[4] == 0 || s.Walks.Nonpaging != 0 {
		t.Errorf("walks %+v, want 4-level paging64 only", s.Walks)
	}
	if got := s.ModeNames(); len(got) != 1 || got[0] != "long64" {
		t.Errorf("modes %v", got)
	}
	if v := m.WindowHigh.Bytes()[0x10]; v != 0x79 {
		t.Errorf("orl result %#x, want 0x79", v)
	}
}

// The guest in testdata/faults.S: #UD for an undefined encoding, x87 on
// MMIO completed in userspace, and a #PF that walkvm's own walk finds.
func TestOwnPathFaultsAndCompletion(t *testing.T) {
	m, own, res, _ := runOwn(t, boot.Image{Data: faultsImage, Load: 0x1000, Mode: boot.Long})
	if res.ExitStatus() != 0 {
		t.Fatalf("status %d (%s): %v\n%s", res.ExitStatus(), res.Kind, res.Err, res.Dump)
	}
	q := func(off uint64) uint64 {
		v, err := m.RAM.ReadUint64(0x8000 + off)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := q(0); v != x86.VectorUD {
		t.Errorf("movbe with a register operand: guest saw vector %d, want #UD", v)
	}
	if v := uint32(q(0x40)); math.Float32frombits(v) != 1.5 {
		t.Errorf("flds from MMIO loaded %#x, want 1.5", v)
	}
	if v := uint32(q(0x50)); math.Float32frombits(v) != 2.5 {
		t.Errorf("fstps to MMIO stored %#x, want 2.5", v)
	}
	if vec, code, cr2 := q(0x20), q(0x28), q(0x30); vec != x86.VectorPF || code != 0 || cr2 != 0x8000001000 {
		t.Errorf("split flds: vector %d error code %#x CR2 %#x, want #PF(0) at 0x8000001000", vec, code, cr2)
	}
	s := own.Stats()
	if s.MMIO.CompletedInUserspace < 2 {
		t.Errorf("completed in userspace: %d, want the flds and the fstps", s.MMIO.CompletedInUserspace)
	}
	if s.MMIO.ExceptionsInjected < 1 {
		t.Errorf("exceptions injected by walkvm: %d", s.MMIO.ExceptionsInjected)
	}
	if s.MMIO.Disagreed != 0 {
		t.Errorf("%d disagreements", s.MMIO.Disagreed)
	}
	t.Logf("exits %+v mmio %+v", s.Exits, s.MMIO)
}
