package ownpath

import (
	"bytes"
	"encoding/json"
	"testing"

	"walkvm/kvm"
	"walkvm/trace"
	"walkvm/x86"
)

// traceWalk is a walk as the trace writes it.
type traceWalk struct {
	Walker   string
	Access   string
	Implicit bool
	User     bool
	Linear   string
	CR3      string
	PCID     *int
	CPL      *int
	CR0WP    *bool `json:"cr0_wp"`
	SMEP     *bool
	SMAP     *bool
	NXE      *bool
	AC       *bool
	Levels   []struct {
		Level        int
		FromRegister bool `json:"from_register"`
		Value        string
		ValueAfter   string `json:"value_after"`
	}
	GPA      string
	PageSize uint64 `json:"page_size"`
	Perm     string
	SetAD    bool `json:"set_ad"`
	Fault    *struct {
		Vector    int
		ErrorCode string `json:"error_code"`
	}
	KVM *struct {
		GPA   string
		Valid bool
		Memo  bool
	} `json:"kvm_translate"`
}

type traceRecord struct {
	TimeNS *int64 `json:"t_ns"`
	DurNS  *int64 `json:"dur_ns"`
	Walks  []traceWalk
}

// pagedPath is newEntryPath's machine with paging on: 4-level (CR3 with
// PCID 5, CR4.PCIDE, SMEP, EFER.NXE, CR0.WP) or PAE with the PDPTE
// registers, mapping 0-2 MiB 1:1 with 4 KiB pages whose entries have no
// accessed or dirty flag yet. Code is at 0x1000, the MMIO window at
// 0xd0000.
func pagedPath(t *testing.T, pae bool, code []byte, tr *trace.Tracer) (*Path, *fakeCPU) {
	t.Helper()
	p, cpu, _ := newEntryPath(t, code, tr)
	ram := p.cfg.RAM
	put := func(gpa, v uint64) {
		if err := ram.WriteUint64(gpa, v); err != nil {
			t.Fatal(err)
		}
	}
	const prw = 3
	for i := range uint64(0x100) {
		put(0x13000+8*i, i<<12|prw) // PT: 0-1 MiB, 4 KiB pages
	}
	put(0x12000, 0x13000|prw) // PD[0]
	flat := kvm.Segment{Limit: 0xffffffff, Typ: 3, Present: 1, S: 1, DB: 1, G: 1, Selector: 0x10}
	s := &cpu.sregs
	s.DS, s.ES, s.SS, s.FS, s.GS = flat, flat, flat, flat, flat
	s.CR0 = x86.CR0PE | x86.CR0PG | x86.CR0WP | x86.CR0ET
	if pae {
		put(0x11000, 0x12000|1) // PDPT[0], as loaded into the PDPTE registers
		s.CS = kvm.Segment{Limit: 0xffffffff, Typ: 11, Present: 1, S: 1, DB: 1, G: 1, Selector: 8}
		s.CR3, s.CR4 = 0x11000, x86.CR4PAE
		s.PDptrs[0], s.Flags = 0x12000|1, kvm.Sregs2PDPTRsValid
	} else {
		put(0x10000, 0x11000|prw) // PML4[0]
		put(0x11000, 0x12000|prw) // PDPT[0]
		s.CS = kvm.Segment{Limit: 0xffffffff, Typ: 11, Present: 1, S: 1, L: 1, G: 1, Selector: 8}
		s.CR3, s.CR4 = 0x10000|5, x86.CR4PAE|x86.CR4PCIDE|x86.CR4SMEP
		s.EFER = x86.EFERLME | x86.EFERLMA | x86.EFERNXE
	}
	return p, cpu
}

func decodeRecord(t *testing.T, out *bytes.Buffer) traceRecord {
	t.Helper()
	var r traceRecord
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	return r
}

// A read exit's record: each walk with CR3 and PCID, the permission
// inputs, its levels, GPA, page size and rights, and KVM_TRANSLATE's
// answer (asked once, then remembered); the exit's time.
func TestTraceWalkFields(t *testing.T) {
	var out bytes.Buffer
	// mov (%rbx),%eax
	p, cpu := pagedPath(t, false, []byte{0x8b, 0x03}, trace.NewTracer(&out))
	cpu.regs.RBX = 0xd0030
	for seq := range uint64(2) {
		out.Reset()
		e := mmioExit(seq+1, 0xd0030, 4, false, 0)
		e.TimeNS, e.DurNS, e.Timed = 1000*int64(seq+1), 250, true
		if err := p.MMIORead(e); err != nil {
			t.Fatal(err)
		}
		p.EndExit(e)
		r := decodeRecord(t, &out)
		if r.TimeNS == nil || *r.TimeNS != 1000*int64(seq+1) || r.DurNS == nil || *r.DurNS != 250 || len(r.Walks) != 2 {
			t.Fatalf("record %s", out.String())
		}
		for i, w := range r.Walks {
			if w.CR3 != "0x10005" || w.PCID == nil || *w.PCID != 5 || w.CPL == nil || *w.CPL != 0 || w.User ||
				!*w.CR0WP || !*w.SMEP || *w.SMAP || !*w.NXE || *w.AC || len(w.Levels) != 4 {
				t.Errorf("walk %d: state %s", i, out.String())
			}
			if w.Fault != nil || w.PageSize != 4096 || w.Perm != "rwx-" || w.SetAD || w.Levels[3].ValueAfter != "" {
				t.Errorf("walk %d: translation %s", i, out.String())
			}
			if w.KVM == nil || !w.KVM.Valid || w.KVM.GPA != w.GPA || w.KVM.Memo != (seq == 1) {
				t.Errorf("exit %d walk %d: KVM_TRANSLATE %+v, walk's GPA %s", seq+1, i, w.KVM, w.GPA)
			}
		}
		if r.Walks[0].Access != "fetch" || r.Walks[0].GPA != "0x1000" || r.Walks[1].Access != "read" || r.Walks[1].GPA != "0xd0030" {
			t.Errorf("walks %s", out.String())
		}
	}
}

// An instruction completed in userspace walks to make its accesses: the
// record says which accessed/dirty flags each entry got.
func TestTraceSetAD(t *testing.T) {
	var out bytes.Buffer
	// mov %eax,(%rbx)
	p, cpu := pagedPath(t, false, []byte{0x89, 0x03}, trace.NewTracer(&out))
	cpu.regs.RBX, cpu.regs.RAX = 0xd0030, 0x1234
	e := &kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError, Seq: 1,
		EmulationFailure: &kvm.EmulationFailure{Suberror: kvm.InternalErrorEmulation}}
	if err := p.EmulationFailure(e); err != nil {
		t.Fatal(err)
	}
	p.EndExit(e)
	r := decodeRecord(t, &out)
	if len(r.Walks) != 2 || r.Walks[0].Access != "fetch" || r.Walks[1].Access != "write" || !r.Walks[0].SetAD || !r.Walks[1].SetAD {
		t.Fatalf("want a fetch and a write walk that set A/D: %s", out.String())
	}
	// Entries are P|R/W as read. The fetch sets A (0x20) at every level;
	// the write then finds A set above its PTE and sets A and D (0x40)
	// there.
	for _, c := range []struct {
		walk          int
		level         int
		before, after string
	}{
		{0, 4, "0x11003", "0x11023"}, {0, 3, "0x12003", "0x12023"}, {0, 2, "0x13003", "0x13023"}, {0, 1, "0x1003", "0x1023"},
		{1, 4, "0x11023", ""}, {1, 3, "0x12023", ""}, {1, 2, "0x13023", ""}, {1, 1, "0xd0003", "0xd0063"},
	} {
		l := r.Walks[c.walk].Levels[4-c.level]
		if l.Level != c.level || l.Value != c.before || l.ValueAfter != c.after {
			t.Errorf("walk %d level %d: %s then %q, want %s then %q", c.walk, l.Level, l.Value, l.ValueAfter, c.before, c.after)
		}
	}
}

// A PAE walk takes its PDPTE from the PDPTE registers; a walk that faults
// has the fault (vector and error code) and no GPA, and KVM_TRANSLATE's
// "no translation" beside it.
func TestTracePAEAndFault(t *testing.T) {
	var out bytes.Buffer
	// mov 0x40000000,%eax: nothing maps 1 GiB.
	p, cpu := pagedPath(t, true, []byte{0xa1, 0x00, 0x00, 0x00, 0x40}, trace.NewTracer(&out))
	cpu.unmapped = func(la uint64) bool { return la >= 0x100000 }
	p.cfg.Verify = VerifyWarn
	e := mmioExit(1, 0xd0000, 4, false, 0)
	if err := p.MMIORead(e); err != nil {
		t.Fatal(err)
	}
	p.EndExit(e)
	r := decodeRecord(t, &out)
	if len(r.Walks) != 2 {
		t.Fatalf("walks %s", out.String())
	}
	f, op := r.Walks[0], r.Walks[1]
	if len(f.Levels) != 3 || !f.Levels[0].FromRegister || f.Levels[1].FromRegister || f.PCID != nil || f.CR3 != "0x11000" {
		t.Errorf("PAE fetch walk %s", out.String())
	}
	if op.Fault == nil || op.Fault.Vector != 14 || op.Fault.ErrorCode != "0x0" || op.GPA != "" || op.Perm != "" {
		t.Errorf("faulting walk %s", out.String())
	}
	if op.KVM == nil || op.KVM.Valid {
		t.Errorf("KVM_TRANSLATE of the faulting walk: %+v", op.KVM)
	}
}
