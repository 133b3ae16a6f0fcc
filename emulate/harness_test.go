package emulate

import (
	"errors"
	"fmt"

	"walkvm/x86"
)

// Test guest layout: RAM is guest-physical [0, ramSize) except a device
// window at [mmioLow, mmioLow+mmioSize) that real-mode code can reach; the
// same recording device also answers at [mmioBase, mmioBase+mmioSize).
const (
	ramSize  = 1 << 20
	mmioBase = 0xFEE00000
	mmioLow  = 0xA0000
	mmioSize = 0x10000
)

// ioRec is one device access.
type ioRec struct {
	GPA   uint64
	Write bool
	Data  []byte
}

// testMem is a Memory with optional 4-KByte paging (a map of linear page to
// guest-physical page), RAM, and a recording MMIO device whose registers
// read back what was written (initially the byte pattern gpa&0xFF).
type testMem struct {
	ram    []byte
	mmio   []byte
	paging bool
	pages  map[uint64]testPage // linear page number -> mapping
	log    []ioRec
	noLog  bool
	trans  []transRec
}

type testPage struct {
	gpa      uint64 // page-aligned
	writable bool
}

type transRec struct {
	LA uint64
	In Intent
}

var errBus = errors.New("test: no memory at this address")

func newTestMem() *testMem {
	m := &testMem{ram: make([]byte, ramSize), mmio: make([]byte, mmioSize), pages: map[uint64]testPage{}}
	for i := range m.mmio {
		m.mmio[i] = byte(i)
	}
	return m
}

// mapPage maps the linear page of la to the guest-physical page of gpa and
// turns paging on.
func (m *testMem) mapPage(la, gpa uint64, writable bool) {
	m.paging = true
	m.pages[la>>12] = testPage{gpa: gpa &^ 0xFFF, writable: writable}
}

func (m *testMem) Translate(la uint64, in Intent) (uint64, error) {
	if !m.noLog {
		m.trans = append(m.trans, transRec{la, in})
	}
	if !m.paging {
		return la, nil
	}
	p, ok := m.pages[la>>12]
	var code uint32
	if in.Access.Write() {
		code |= x86.PFErrWrite
	}
	if in.Access.Fetch() {
		code |= x86.PFErrFetch
	}
	if !ok {
		return 0, x86.PageFault(la, code, "not present")
	}
	if in.Access.Write() && !p.writable {
		return 0, x86.PageFault(la, code|x86.PFErrPresent, "read-only")
	}
	return p.gpa | la&0xFFF, nil
}

func (m *testMem) region(gpa uint64, n int) ([]byte, bool, error) {
	end := gpa + uint64(n)
	switch {
	case end < gpa:
	case gpa >= mmioLow && end <= mmioLow+mmioSize:
		return m.mmio[gpa-mmioLow : end-mmioLow], true, nil
	case gpa >= mmioBase && end <= mmioBase+mmioSize:
		return m.mmio[gpa-mmioBase : end-mmioBase], true, nil
	case end <= ramSize && end >= gpa && !(end > mmioLow && gpa < mmioLow+mmioSize):
		return m.ram[gpa:end], false, nil
	}
	return nil, false, fmt.Errorf("%w: %#x+%d", errBus, gpa, n)
}

func (m *testMem) ReadPhys(gpa uint64, b []byte) error {
	if (gpa^(gpa+uint64(len(b))-1))>>12 != 0 && len(b) > 0 {
		return fmt.Errorf("test: read %#x+%d crosses a page", gpa, len(b))
	}
	r, dev, err := m.region(gpa, len(b))
	if err != nil {
		return err
	}
	copy(b, r)
	if dev && !m.noLog {
		m.log = append(m.log, ioRec{gpa, false, append([]byte(nil), b...)})
	}
	return nil
}

func (m *testMem) WritePhys(gpa uint64, b []byte) error {
	if (gpa^(gpa+uint64(len(b))-1))>>12 != 0 && len(b) > 0 {
		return fmt.Errorf("test: write %#x+%d crosses a page", gpa, len(b))
	}
	r, dev, err := m.region(gpa, len(b))
	if err != nil {
		return err
	}
	copy(r, b)
	if dev && !m.noLog {
		m.log = append(m.log, ioRec{gpa, true, append([]byte(nil), b...)})
	}
	return nil
}

// put writes bytes at a guest-physical address.
func (m *testMem) put(gpa uint64, b []byte) {
	r, _, err := m.region(gpa, len(b))
	if err != nil {
		panic(err)
	}
	copy(r, b)
}

func (m *testMem) get(gpa uint64, n int) []byte {
	r, _, err := m.region(gpa, n)
	if err != nil {
		panic(err)
	}
	return append([]byte(nil), r...)
}

// Segment descriptors for the test modes.
func dataSeg(base uint64, limit uint32, big bool) x86.Segment {
	return x86.Segment{Base: base, Limit: limit, Type: 3, S: true, Present: true, DB: big, G: limit > 0xFFFFF}
}

func codeSeg(base uint64, limit uint32, big, long bool) x86.Segment {
	return x86.Segment{Base: base, Limit: limit, Type: 0xB, S: true, Present: true, DB: big, L: long, G: limit > 0xFFFFF}
}

// realState is real mode with every segment at selector sel.
func realState(sel uint16) *State {
	s := &State{RFLAGS: 2}
	for i := range s.Seg {
		s.Seg[i] = dataSeg(uint64(sel)<<4, 0xFFFF, false)
		s.Seg[i].Selector = sel
	}
	s.Seg[x86.CS] = codeSeg(uint64(sel)<<4, 0xFFFF, false, false)
	s.Seg[x86.CS].Selector = sel
	return s
}

// prot16State is 16-bit protected mode with 64-KByte segments at base.
func prot16State(base uint64) *State {
	s := &State{RFLAGS: 2, CR0: x86.CR0PE | x86.CR0ET}
	for i := range s.Seg {
		s.Seg[i] = dataSeg(base, 0xFFFF, false)
		s.Seg[i].Selector = 0x10
	}
	s.Seg[x86.CS] = codeSeg(base, 0xFFFF, false, false)
	s.Seg[x86.CS].Selector = 0x8
	return s
}

// prot32State is flat 32-bit protected mode.
func prot32State() *State {
	s := &State{RFLAGS: 2, CR0: x86.CR0PE | x86.CR0ET | x86.CR0NE}
	for i := range s.Seg {
		s.Seg[i] = dataSeg(0, 0xFFFFFFFF, true)
		s.Seg[i].Selector = 0x10
	}
	s.Seg[x86.CS] = codeSeg(0, 0xFFFFFFFF, true, false)
	s.Seg[x86.CS].Selector = 0x8
	return s
}

// long64State is 64-bit mode.
func long64State() *State {
	s := prot32State()
	s.CR0 |= x86.CR0PG
	s.CR4 = x86.CR4PAE | x86.CR4OSFXSR | x86.CR4OSXSAVE
	s.EFER = x86.EFERLME | x86.EFERLMA
	s.XCR0 = 7
	s.Seg[x86.CS] = codeSeg(0, 0xFFFFFFFF, false, true)
	s.Seg[x86.CS].Selector = 0x8
	return s
}

// compat32State is compatibility mode with a flat 32-bit code segment.
func compat32State() *State {
	s := long64State()
	s.Seg[x86.CS] = codeSeg(0, 0xFFFFFFFF, true, false)
	return s
}

// vecSource is an FPUSource holding a fixed state.
type vecSource struct {
	f     FPUState
	loads int
}

func (v *vecSource) LoadFPU(f *FPUState) error {
	v.loads++
	*f = v.f
	return nil
}

// withVec gives s a vector state in its initial configuration (FNINIT,
// MXCSR 1F80H) with YMM.
func withVec(s *State) *vecSource {
	src := &vecSource{f: FPUState{FCW: fcwInit, MXCSR: 0x1F80, HasYMM: true}}
	s.Vec = &Vector{Source: src}
	return src
}
