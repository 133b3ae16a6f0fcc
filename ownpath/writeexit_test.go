package ownpath

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"walkvm/devices"
	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/trace"
	"walkvm/x86"
)

// newTestPath builds a Path over 1 MiB of plain RAM, without KVM, with
// code at 0x1000 and the CPU in the given mode (nonpaging: real, 32-bit
// protected, or 64-bit with a 1:1 map of the first 2 MiB).
func newTestPath(t *testing.T, mode string, code []byte) *Path {
	t.Helper()
	ram := memory.NewRAMFromSlice(make([]byte, 1<<20))
	if err := ram.Write(0x1000, code); err != nil {
		t.Fatal(err)
	}
	p := New(Config{RAM: ram, Bus: memory.NewBus("mmio"), Verify: VerifyStrict})
	st := &p.exit.st
	st.RFLAGS = 2
	flat := x86.Segment{Limit: 0xffffffff, Type: 3, S: true, Present: true, DB: true, G: true}
	for i := range st.Seg {
		st.Seg[i] = flat
	}
	switch mode {
	case "real":
		for i := range st.Seg {
			st.Seg[i] = x86.Segment{Limit: 0xffff, Type: 3, S: true, Present: true}
		}
		st.Seg[x86.CS].Type = 11
	case "prot32":
		st.CR0 = x86.CR0PE
		st.Seg[x86.CS].Type = 11
	case "long64":
		// PML4 at 0x10000 -> PDPT 0x11000 -> PD 0x12000 with one 2 MiB page.
		put := func(gpa, v uint64) { ram.WriteUint64(gpa, v) }
		put(0x10000, 0x11000|3)
		put(0x11000, 0x12000|3)
		put(0x12000, 0x83)
		// 0x40000000 (1 GiB) -> PD 0x13000 -> a 2 MiB page at GPA 0.
		put(0x11008, 0x13000|3)
		put(0x13000, 0x83)
		st.CR0, st.CR3, st.CR4, st.EFER = x86.CR0PE|x86.CR0PG, 0x10000, x86.CR4PAE, x86.EFERLME|x86.EFERLMA
		st.Seg[x86.CS] = x86.Segment{Type: 11, S: true, Present: true, L: true}
	}
	ms := st.WalkerState()
	if err := p.mem.ctx.Reset(&ms, mmu.Features{MaxPhyAddr: 40}); err != nil {
		t.Fatal(err)
	}
	p.exit.st.RIP = 0x1000 + uint64(len(code))
	return p
}

func writeExit(gpa uint64, size int, v uint64) *kvm.MMIOExit {
	e := &kvm.MMIOExit{PhysAddr: gpa, Len: uint32(size), IsWrite: 1}
	binary.LittleEndian.PutUint64(e.Data[:], v)
	return e
}

func TestWriteExitResolution(t *testing.T) {
	const mmio = devices.TestWindowLow // below 1 MiB, so 64-bit code reaches it 1:1
	for _, c := range []struct {
		name    string
		mode    string
		code    []byte // ends with the instruction that wrote
		setup   func(s *emulate.State)
		exit    *kvm.MMIOExit
		matches int
		start   uint64 // where the matching instruction starts
		amb     bool
	}{
		{
			// b0 66 is "mov $0x66,%al"; its immediate looks like an
			// operand-size prefix for "89 07", which would make a 2-byte
			// store: KVM's 4-byte write rules it out.
			name: "immediate 0x66 before the store", mode: "long64",
			code:    []byte{0xb0, 0x66, 0x89, 0x07},
			setup:   func(s *emulate.State) { s.GPR[x86.RDI] = mmio + 0x10; s.GPR[x86.RAX] = 0x12345666 },
			exit:    writeExit(mmio+0x10, 4, 0x12345666),
			matches: 1, start: 0x1002,
		},
		{
			// b0 26: an ES override byte in front would move the store to
			// ES's base, which differs from DS's here.
			name: "immediate 0x26 before the store, ES based elsewhere", mode: "prot32",
			code: []byte{0xb0, 0x26, 0x89, 0x07},
			setup: func(s *emulate.State) {
				s.GPR[x86.RDI] = mmio + 0x20
				s.GPR[x86.RAX] = 0xaabbcc26
				s.Seg[x86.ES].Base = 0x100000
			},
			exit:    writeExit(mmio+0x20, 4, 0xaabbcc26),
			matches: 1, start: 0x1002,
		},
		{
			// In 64-bit mode a DS override is ignored: both readings make
			// the same access, which is agreement, not ambiguity. The
			// one without the ignored prefix is what ran: 3e is the
			// immediate of "mov $0x3e,%al".
			name: "ignored DS override byte before the store", mode: "long64",
			code:    []byte{0xb0, 0x3e, 0x89, 0x07},
			setup:   func(s *emulate.State) { s.GPR[x86.RDI] = mmio + 0x30; s.GPR[x86.RAX] = 0x3e },
			exit:    writeExit(mmio+0x30, 4, 0x3e),
			matches: 2, start: 0x1002,
		},
		{
			// A DS override names the default segment: redundant.
			name: "redundant DS override byte before the store", mode: "prot32",
			code:    []byte{0xb0, 0x3e, 0x89, 0x07},
			setup:   func(s *emulate.State) { s.GPR[x86.RDI] = mmio + 0x30; s.GPR[x86.RAX] = 0x3e },
			exit:    writeExit(mmio+0x30, 4, 0x3e),
			matches: 2, start: 0x1002,
		},
		{
			// An address-size prefix changes the instruction (32-bit
			// addressing), though not this access: the longest reading
			// stands.
			name: "address-size prefix before the store", mode: "long64",
			code:    []byte{0x90, 0x67, 0x89, 0x07},
			setup:   func(s *emulate.State) { s.GPR[x86.RDI] = mmio + 0x30; s.GPR[x86.RAX] = 7 },
			exit:    writeExit(mmio+0x30, 4, 7),
			matches: 2, start: 0x1001,
		},
		{
			name: "16-bit store with bx+si", mode: "real",
			code: []byte{0x26, 0x89, 0x40, 0x02}, // mov %ax,%es:0x2(%bx,%si)
			setup: func(s *emulate.State) {
				s.Seg[x86.ES].Base = mmio
				s.GPR[x86.RBX], s.GPR[x86.RSI], s.GPR[x86.RAX] = 0x20, 4, 0xbeef
			},
			exit:    writeExit(mmio+0x26, 2, 0xbeef),
			matches: 1, start: 0x1000,
		},
		{
			// Without the 66 prefix the rest is "mov %eax,moffs": a
			// 4-byte store whose first two bytes are KVM's 2-byte
			// write. Only the exact size matches.
			name: "moffs store behind an operand-size prefix", mode: "long64",
			code:    []byte{0x66, 0xa3, 0x02, 0x07, 0x0d, 0, 0, 0, 0, 0},
			setup:   func(s *emulate.State) { s.GPR[x86.RAX] = 0x1234 },
			exit:    writeExit(mmio+0x702, 2, 0x1234),
			matches: 1, start: 0x1000,
		},
		{
			name: "immediate store", mode: "long64",
			code:    []byte{0xc7, 0x07, 0x78, 0x56, 0x34, 0x12}, // movl $0x12345678,(%rdi)
			setup:   func(s *emulate.State) { s.GPR[x86.RDI] = mmio },
			exit:    writeExit(mmio, 4, 0x12345678),
			matches: 1, start: 0x1000,
		},
		{
			name: "wrong data is no match", mode: "long64",
			code:  []byte{0x89, 0x07},
			setup: func(s *emulate.State) { s.GPR[x86.RDI] = mmio; s.GPR[x86.RAX] = 1 },
			exit:  writeExit(mmio, 4, 2),
		},
		{
			name: "wrong address is no match", mode: "long64",
			code:  []byte{0x89, 0x07},
			setup: func(s *emulate.State) { s.GPR[x86.RDI] = mmio },
			exit:  writeExit(mmio+0x100, 4, 0),
		},
		{
			// rep stosl: RIP stays at the instruction; RDI and RCX have
			// moved past the element KVM reports.
			name: "rep stos at RIP with its effects undone", mode: "long64",
			code: []byte{0x90, 0xf3, 0xab},
			setup: func(s *emulate.State) {
				s.RIP = 0x1001
				s.GPR[x86.RDI], s.GPR[x86.RCX], s.GPR[x86.RAX] = mmio+0x44, 3, 0x5a5a5a5a
			},
			exit:    writeExit(mmio+0x40, 4, 0x5a5a5a5a),
			matches: 1, start: 0x1001,
		},
		{
			name: "pushf onto an MMIO stack", mode: "long64",
			code:    []byte{0x9c},
			setup:   func(s *emulate.State) { s.GPR[x86.RSP] = mmio + 0x78 },
			exit:    writeExit(mmio+0x78, 8, 2),
			matches: 1, start: 0x1000,
		},
		{
			// insb: the byte came from a port; RDI has moved past it.
			name: "ins into MMIO", mode: "long64",
			code:    []byte{0x6c},
			setup:   func(s *emulate.State) { s.GPR[x86.RDI] = mmio + 0x11 },
			exit:    writeExit(mmio+0x10, 1, 0xff),
			matches: 1, start: 0x1000,
		},
		{
			// The exit comes with RIP at the call's target; the pushed
			// return address says where the CALL ended.
			name: "call with an MMIO stack", mode: "long64",
			code: []byte{0xe8, 0x10, 0, 0, 0, 0x90, 0x90},
			setup: func(s *emulate.State) {
				s.RIP = 0x1015
				s.GPR[x86.RSP] = mmio + 0x80
			},
			exit:    writeExit(mmio+0x80, 8, 0x1005),
			matches: 1, start: 0x1000,
		},
		{
			// enter $0x1238,$0 pushed rBP across a page boundary (KVM's
			// first fragment: the 4 bytes below it), then moved rSP down
			// by the allocation (kvm-unit-tests' emulator test).
			name: "enter with an MMIO stack", mode: "long64",
			code: []byte{0xc8, 0x38, 0x12, 0x00},
			setup: func(s *emulate.State) {
				s.GPR[x86.RBP] = mmio + 0xffc
				s.GPR[x86.RSP] = mmio + 0xffc - 0x1238
			},
			exit:    writeExit(mmio+0xffc, 4, 0x55667788),
			matches: 1, start: 0x1000,
		},
		{
			name: "push of a memory operand onto an MMIO stack", mode: "long64",
			code: []byte{0xff, 0x36}, // push (%rsi)
			setup: func(s *emulate.State) {
				s.GPR[x86.RSI] = 0x2000
				s.GPR[x86.RSP] = mmio + 0x78 // after the push
			},
			exit:    writeExit(mmio+0x78, 8, 0),
			matches: 1, start: 0x1000,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPath(t, c.mode, c.code)
			if c.setup != nil {
				c.setup(&p.exit.st)
			}
			var win writeWindow
			var ms writeMatches
			p.findWrite(&win, c.exit, int(c.exit.Len), &ms)
			if ms.n != c.matches || ms.ambiguous != c.amb {
				t.Fatalf("%d matches (ambiguous %v), want %d (%v)", ms.n, ms.ambiguous, c.matches, c.amb)
			}
			if ms.n > 0 && ms.chosen().start != c.start {
				t.Errorf("the chosen match starts at %#x, want %#x", ms.chosen().start, c.start)
			}
		})
	}
}

// kvm-unit-tests' emulator test stores %ax across a page boundary with
// 66 41 89 84 24 ff 1f 00 00 (mov %ax,0x1fff(%r12)). Behind the 66 the
// bytes are also mov %eax: both write the same first byte, KVM's first
// exit, so it agrees either way; the second exit has one reading left.
func TestWriteExitAmbiguousPageCross(t *testing.T) {
	const mmio = devices.TestWindowLow
	code := []byte{0x66, 0x41, 0x89, 0x84, 0x24, 0xff, 0x1f, 0x00, 0x00}
	p := newTestPath(t, "long64", code)
	p.exit.st.GPR[x86.R12] = mmio - 0x1000
	p.exit.st.GPR[x86.RAX] = 0xffff88aa
	var win writeWindow
	var ms writeMatches
	if p.findWrite(&win, writeExit(mmio+0xfff, 1, 0xaa), 1, &ms); ms.n != 2 || !ms.ambiguous {
		t.Fatalf("first fragment: %d matches (ambiguous %v), want both readings", ms.n, ms.ambiguous)
	}
	if err := p.writeExit(writeExit(mmio+0xfff, 1, 0xaa), 1); err != nil {
		t.Fatalf("first fragment: %v", err)
	}
	if got := p.exit.rec.Insn(); len(got) != len(code) || p.exit.rec.Detail == "" {
		t.Errorf("recorded % x (%q), want the 9-byte reading noted as ambiguous", got, p.exit.rec.Detail)
	}
	p.exit.rec.Reset()
	if p.findWrite(&win, writeExit(mmio+0x1000, 1, 0x88), 1, &ms); ms.n != 1 || ms.ambiguous || ms.chosen().len != 9 {
		t.Fatalf("second fragment: %d matches (ambiguous %v), want the 16-bit store alone", ms.n, ms.ambiguous)
	}
	if err := p.writeExit(writeExit(mmio+0x1000, 1, 0x88), 1); err != nil {
		t.Fatalf("second fragment: %v", err)
	}
	// The 32-bit reading's second fragment would be 3 bytes; with other
	// data than %ax's the 16-bit one does not match either.
	if err := p.writeExit(writeExit(mmio+0x1000, 1, 0x99), 1); err == nil {
		t.Error("a second fragment neither reading writes agreed")
	}
}

// A write exit nothing explains names the code bytes before RIP, also when
// its data looked like a return address to search from.
func TestWriteExitDisagreementBytes(t *testing.T) {
	p := newTestPath(t, "long64", []byte{0x89, 0x07}) // mov %eax,(%rdi)
	p.exit.st.GPR[x86.RDI] = devices.TestWindowLow
	err := p.writeExit(writeExit(devices.TestWindowLow+0x100, 8, 0x1000), 8)
	if err == nil || !strings.Contains(err.Error(), "89 07") {
		t.Errorf("disagreement %v, want the bytes 89 07 before RIP", err)
	}
}

// movabs $0x40aabbccddeeff11,%rax; movq %rax,0x40000040. The movabs's
// last immediate byte, 0x40, is an empty REX prefix: starting one byte
// early decodes "40 48 89 04 25 ..." with the same effect, a REX the CPU
// ignores (it does not immediately precede the opcode). The record names
// the 8-byte store and lists the 9-byte reading as an alternative.
func TestWriteExitIgnoredREX(t *testing.T) {
	code := []byte{
		0x48, 0xb8, 0x11, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x40, // movabs $0x40aabbccddeeff11,%rax
		0x48, 0x89, 0x04, 0x25, 0x40, 0x00, 0x00, 0x40, // movq %rax,0x40000040
	}
	p := newTestPath(t, "long64", code)
	p.exit.st.GPR[x86.RAX] = 0x40aabbccddeeff11
	exit := writeExit(0x40, 8, 0x40aabbccddeeff11) // 0x40000040 maps to GPA 0x40
	if err := p.writeExit(exit, 8); err != nil {
		t.Fatal(err)
	}
	r := &p.exit.rec
	if !r.HasInsnRIP || r.InsnRIP != 0x100a || !bytes.Equal(r.Insn(), code[10:]) || r.Verdict != "agree" {
		t.Fatalf("traced % x at %#x (verdict %q), want % x at 0x100a", r.Insn(), r.InsnRIP, r.Verdict, code[10:])
	}
	alts := r.Alternatives()
	if len(alts) != 1 || alts[0].RIP != 0x1009 || !bytes.Equal(alts[0].Insn(), code[9:]) {
		t.Fatalf("alternatives %+v, want the 9-byte reading at 0x1009", alts)
	}
	var out bytes.Buffer
	r.Reason, r.CodeMode = kvm.ExitMMIO, decode.Mode64
	trace.NewTracer(&out).Write(r)
	var j struct {
		InsnRIP      string `json:"insn_rip"`
		Disasm       string
		Alternatives []struct {
			InsnRIP string `json:"insn_rip"`
			Bytes   string
		}
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, out.Bytes())
	}
	if j.InsnRIP != "0x100a" || j.Disasm != "mov %rax,0x40000040" || len(j.Alternatives) != 1 ||
		j.Alternatives[0].InsnRIP != "0x1009" || j.Alternatives[0].Bytes != "404889042540000040" {
		t.Errorf("trace %s", out.Bytes())
	}
}
