package tests

// The hardware-oracle test of walkvm's page walker (mmu): random paging
// structures in guest RAM, a generic guest (testdata/oracle.S) that
// performs a list of accesses, and, for every access, a comparison of what
// the vCPU did (the GPA of its KVM_EXIT_MMIO, or the #PF error code and CR2
// its handler saw) with what mmu predicts for that linear address.
//
// Leaves point outside every memslot, so a translated data access always
// ends in an MMIO exit whose phys_addr is the CPU's translation. Fetches
// go to "landing" pages in RAM that return their page number. The guest's
// own code, data, stacks, GDT, IDT and TSS are identity-mapped by entries
// the generator never touches.
//
// What the "CPU" is depends on the host: under this project's PVM KVM
// (shadow MMU) guest page walks are done by KVM's paging_tmpl.h; under
// tests/nested/run (kvm-amd with NPT on QEMU TCG) by QEMU's walker.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "embed"

	"golang.org/x/sys/unix"

	"walkvm/boot"
	"walkvm/internal/kvmtest"
	"walkvm/kvm"
	"walkvm/machine"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/vcpu"
	"walkvm/x86"
)

//go:embed testdata/oracle.bin
var oracleImage []byte

var (
	oracleSeedFlag  = flag.Uint64("oracle.seed", 0, "TestOracle: seed to replay (0: WALKVM_ORACLE_SEED or a new one)")
	oracleCasesFlag = flag.Int("oracle.cases", 0, "TestOracle: cases per mode (0: WALKVM_ORACLE_CASES or 10000)")
	oracleShowFlag  = flag.Int("oracle.show", 10, "TestOracle: disagreements to describe per mode")
)

// Guest-physical layout (identity-mapped where the guest uses it); the
// constants shared with oracle.S are marked.
const (
	oracleLoad    = 0x1000
	oracleParams  = 0x8000 // oracle.S PARAMS
	pNCases       = oracleParams + 0x00
	pCur          = oracleParams + 0x08
	pResumeIP     = oracleParams + 0x10
	pResumeCS     = oracleParams + 0x18
	pPKRU         = oracleParams + 0x20
	pFlags        = oracleParams + 0x28
	oracleGDT     = 0x9000
	oracleIDT     = 0xa000
	oracleTSS     = 0xb000
	oracleKStack  = 0xe000 // oracle.S KSTACK (top)
	oracleUStack  = 0xf000 // oracle.S USTACK (top): the page below is the user stack
	oracleCases   = 0x10000
	oracleResults = 0x20000
	oracleMaxCase = 0x10000 / 32 // cases (and results) per round

	oracleFixedPages = 0xa0 // linear 0-640 KiB: identity, the guest's own
	oracleTables     = 0x400000
	oracleTablesEnd  = 0x2000000
	oracleLanding    = 0x2000000 // 1024 landing pages, 4 MiB aligned
	oracleLandingSz  = 4 << 20
	oracleMemSize    = 48 << 20
	oracleLandingID  = 0x4c000000 // | page number: what a landing page returns

	// The probes: fixed PTEs map them to MMIO.
	oracleProbeLA      = 0x1ff010
	oracleProbeGPA     = 0xe0000010
	oracleSlotProbeLA  = 0xffff800000000010 // PML4[256]
	oracleSlotProbeGPA = 0xe0001010

	oraclePerRound = 1000

	selCode32, selData, selCode64    = 0x08, 0x10, 0x18
	selUCode32, selUData, selUCode64 = 0x23, 0x2b, 0x33
)

// Paging-structure entry bits (SDM Vol. 3A §4.3-§4.5).
const (
	ptP   = 1 << 0
	ptRW  = 1 << 1
	ptUS  = 1 << 2
	ptPWT = 1 << 3
	ptPCD = 1 << 4
	ptA   = 1 << 5
	ptD   = 1 << 6
	ptPS  = 1 << 7
	ptG   = 1 << 8
	ptXD  = 1 << 63
)

type oracleOp uint8

// Ops as oracle.S dispatches them.
const (
	opRead1 oracleOp = iota
	opRead2
	opRead4
	opRead8
	opWrite1
	opWrite2
	opWrite4
	opWrite8
	opFetch
)

func (o oracleOp) write() bool { return o >= opWrite1 && o <= opWrite8 }
func (o oracleOp) size() int {
	if o == opFetch {
		return 1
	}
	return 1 << (o & 3)
}
func (o oracleOp) access() x86.Access {
	switch {
	case o == opFetch:
		return x86.AccessFetch
	case o.write():
		return x86.AccessWrite
	}
	return x86.AccessRead
}
func (o oracleOp) String() string {
	switch {
	case o == opFetch:
		return "fetch"
	case o.write():
		return fmt.Sprintf("write%d", o.size())
	}
	return fmt.Sprintf("read%d", o.size())
}

type oracleCase struct {
	addr  uint64
	op    oracleOp
	user  bool // CPL 3
	ac    bool // RFLAGS.AC
	value uint64
	class string // what the generator built on the way, for reports
}

type oracleMode struct {
	name   string
	mode   x86.Paging
	code64 bool // 64-bit code; 4-level paging without it is compatibility mode
	legacy bool // 32-bit paging or PAE: refused by the project's PVM KVM
}

var oracleModes = []oracleMode{
	{name: "nonpaging", mode: x86.PagingNone},
	{name: "paging32", mode: x86.Paging32, legacy: true},
	{name: "pae", mode: x86.PagingPAE, legacy: true},
	{name: "long64", mode: x86.Paging4Level, code64: true},
	{name: "compat", mode: x86.Paging4Level},
	{name: "la57", mode: x86.Paging5Level, code64: true},
}

// oracleCPU is what the guest's CPUID offers that the test randomizes.
type oracleCPU struct {
	mmu                                mmu.Features
	maxPhy                             uint
	nx, smep, smap, pku, pse, gb, la57 bool
}

func oracleCPUOf(c *kvm.CPUID) oracleCPU {
	o := oracleCPU{mmu: mmu.FeaturesFromCPUID(c.Leaves()), maxPhy: uint(c.MaxPhyAddr())}
	o.gb = o.mmu.GBPages
	if e, ok := c.Lookup(1, 0); ok {
		o.pse = e.Edx&(1<<3) != 0
	}
	if e, ok := c.Lookup(7, 0); ok {
		o.smep = e.Ebx&(1<<7) != 0
		o.smap = e.Ebx&(1<<20) != 0
		o.pku = e.Ecx&(1<<3) != 0
		o.la57 = e.Ecx&(1<<16) != 0
	}
	if e, ok := c.Lookup(0x80000001, 0); ok {
		o.nx = e.Edx&(1<<20) != 0
	}
	return o
}

func (c oracleCPU) String() string {
	var f []string
	for _, b := range []struct {
		on   bool
		name string
	}{{c.nx, "nx"}, {c.smep, "smep"}, {c.smap, "smap"}, {c.pku, "pku"}, {c.pse, "pse"}, {c.mmu.PSE36, "pse36"}, {c.gb, "1g"}, {c.la57, "la57"}, {c.mmu.AMD, "amd"}} {
		if b.on {
			f = append(f, b.name)
		}
	}
	return fmt.Sprintf("maxphyaddr %d, %s", c.maxPhy, strings.Join(f, " "))
}

// oracleSettings reads the seed and the case count from the flags or the
// environment.
func oracleSettings(t *testing.T) (seed uint64, n int) {
	seed = *oracleSeedFlag
	if seed == 0 {
		if s := os.Getenv("WALKVM_ORACLE_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				t.Fatalf("WALKVM_ORACLE_SEED=%q: %v", s, err)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	n = *oracleCasesFlag
	if n == 0 {
		n = 10000
		if s := os.Getenv("WALKVM_ORACLE_CASES"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v <= 0 {
				t.Fatalf("WALKVM_ORACLE_CASES=%q: want a positive number", s)
			}
			n = v
		}
	}
	return seed, n
}

// TestOracle compares mmu with the vCPU's own page walks, mode by mode.
func TestOracle(t *testing.T) {
	kvmtest.Require(t)
	seed, n := oracleSettings(t)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	id, err := sys.SupportedCPUID()
	sys.Close()
	if err != nil {
		t.Fatal(err)
	}
	cpu := oracleCPUOf(id)
	t.Logf("seed %d, %d cases per mode (replay: WALKVM_ORACLE_SEED=%d or -oracle.seed=%d; count: WALKVM_ORACLE_CASES or -oracle.cases); guest CPUID: %s",
		seed, n, seed, seed, cpu)
	for i, md := range oracleModes {
		t.Run(md.name, func(t *testing.T) {
			if md.mode == x86.Paging5Level && !cpu.la57 {
				t.Skip("KVM_GET_SUPPORTED_CPUID has no LA57 (CPUID.7.0:ECX[16]): no 5-level paging here")
			}
			rnd := rand.New(rand.NewPCG(seed, uint64(i)))
			runOracleMode(t, md, rnd, n, seed)
		})
	}
}

// oracleStats counts outcomes, to show what a run covered.
type oracleStats struct {
	cases, user, mmio, fetches, faults, gp int
	rsvdNoP                                int            // RSVD faults without P, accepted under QEMU (see compareOracle)
	sizes                                  map[uint64]int // translations by page size
	pfCodes                                map[uint32]int
	rounds                                 []string
}

func runOracleMode(t *testing.T, md oracleMode, rnd *rand.Rand, n int, seed uint64) {
	start := time.Now()
	st := oracleStats{pfCodes: map[uint32]int{}, sizes: map[uint64]int{}}

	// Pre-flight: does the mode run here at all, and CPL 3 in it? On
	// this project's PVM KVM, legacy paging does not, nor CPL 3 outside
	// 64-bit mode, and CPL-3 accesses to PML4[256] fault whatever the
	// guest's tables say (PVM keeps that slot). The nested runner's KVM
	// must do everything.
	kp := oracleProbeCases(md, false)
	out, err := runOracleRound(md, rnd, oracleOpts{probes: kp}, &st)
	if err == nil && out.probes[0] != "" {
		err = fmt.Errorf("%s", out.probes[0])
	}
	if err != nil {
		// PVM refuses legacy paging, and on Intel hosts it lists LA57
		// in CPUID but refuses CR4.LA57 at KVM_SET_SREGS (EINVAL).
		if (md.legacy || md.mode == x86.Paging5Level) && !kvmtest.Nested() {
			t.Skipf("this host's KVM does not run %s guests: %v", md.name, err)
		}
		t.Fatalf("seed %d, pre-flight: %v", seed, err)
	}
	opts := oracleOpts{probes: kp, users: true}
	up := oracleProbeCases(md, true)
	out, err = runOracleRound(md, rnd, oracleOpts{probes: up}, &st)
	var why string
	switch {
	case err != nil:
		opts.users, why = false, err.Error()
	case out.probes[0] != "":
		opts.users, why = false, out.probes[0]
	case len(out.probes) > 1 && out.probes[1] != "":
		opts.avoidSlot, why = true, out.probes[1]
		opts.probes = append(opts.probes, up[0])
	default:
		opts.probes = append(opts.probes, up...)
	}
	if why != "" {
		if kvmtest.Nested() {
			t.Fatalf("seed %d, pre-flight at CPL 3: %v", seed, why)
		}
		if opts.avoidSlot {
			t.Logf("this host's KVM does not translate CPL-3 accesses in PML4[256] by the guest's tables: %s; no CPL-3 cases there", why)
		} else {
			t.Logf("this host's KVM does not run CPL 3 in %s: %s; CPL-0 cases only", md.name, why)
		}
	}
	st.rounds = nil

	var bad []string
	nbad := 0
	for r := 0; n > 0; r++ {
		opts.k = min(n, oraclePerRound)
		n -= opts.k
		out, err := runOracleRound(md, rnd, opts, &st)
		if err == nil {
			for i, p := range out.probes {
				if p != "" {
					err = fmt.Errorf("%s: %s", opts.probes[i].class, p)
				}
			}
		}
		if err != nil {
			t.Fatalf("seed %d, round %d: %v", seed, r, err)
		}
		nbad += len(out.mism)
		for _, s := range out.mism {
			if len(bad) < *oracleShowFlag {
				bad = append(bad, fmt.Sprintf("seed %d, round %d, %s", seed, r, s))
			}
		}
	}
	var codes []string
	for c := uint32(0); c < 64; c++ {
		if st.pfCodes[c] > 0 {
			codes = append(codes, fmt.Sprintf("%#x:%d", c, st.pfCodes[c]))
		}
	}
	t.Logf("%s: %d cases (%d at CPL 3) in %d rounds, %v: %d MMIO accesses, %d landing fetches, %d #PF (error codes %s), %d #GP",
		md.name, st.cases, st.user, len(st.rounds), time.Since(start).Round(time.Millisecond), st.mmio, st.fetches, st.faults, strings.Join(codes, " "), st.gp)
	var sizes []string
	for _, sz := range []uint64{4 << 10, 2 << 20, 4 << 20, 1 << 30} {
		if st.sizes[sz] > 0 {
			sizes = append(sizes, fmt.Sprintf("%d KiB:%d", sz>>10, st.sizes[sz]))
		}
	}
	if len(sizes) > 0 {
		t.Logf("translations by page size: %s", strings.Join(sizes, " "))
	}
	if st.rsvdNoP > 0 {
		t.Logf("%d reserved-bit #PFs came without P=1 (QEMU TCG's mmu_translate sets RSVD alone); accepted as the RSVD|P mmu predicts", st.rsvdNoP)
	}
	for i, r := range st.rounds {
		t.Logf("  round %d: %s", i, r)
	}
	if nbad > 0 {
		t.Errorf("%d cases where mmu and the CPU disagree; the first %d:\n%s", nbad, len(bad), strings.Join(bad, "\n\n"))
	}
}

// oracleOpts say what a round runs.
type oracleOpts struct {
	k         int          // random cases
	probes    []oracleCase // run first, each a 4-byte read the fixed mapping sends to MMIO
	users     bool         // random cases at CPL 3 too
	avoidSlot bool         // no CPL-3 cases in PML4[256]
}

type oracleRoundOut struct {
	mism   []string
	probes []string // per probe: "" if it gave its MMIO read, else what happened
}

// oracleProbeCases are the fixed reads that show whether a mode (or CPL 3
// in it) works: linear oracleProbeLA (or, without paging, the GPA itself)
// and, in 64-bit mode, oracleSlotProbeLA in PML4[256].
func oracleProbeCases(md oracleMode, user bool) []oracleCase {
	la := uint64(oracleProbeLA)
	if md.mode == x86.PagingNone {
		la = oracleProbeGPA
	}
	if !user {
		// AC=1: the probe page is a user page, which SMAP would fault.
		return []oracleCase{{addr: la, op: opRead4, ac: true, class: "probe"}}
	}
	ps := []oracleCase{{addr: la, op: opRead4, user: true, class: "CPL-3 probe"}}
	if md.code64 && md.mode == x86.Paging4Level {
		ps = append(ps, oracleCase{addr: oracleSlotProbeLA, op: opRead4, user: true, class: "CPL-3 probe in PML4[256]"})
	}
	return ps
}

func oracleProbeWant(la uint64) uint64 {
	if la == oracleSlotProbeLA {
		return oracleSlotProbeGPA
	}
	return oracleProbeGPA
}

// oracleHeader is the table at the start of oracle.bin.
type oracleHeader struct {
	entry32, entry64, stubs32, stubs64 uint32
	loop32, loop64, userStart, userEnd uint32
}

func parseOracleHeader() (oracleHeader, error) {
	var h oracleHeader
	if len(oracleImage) < 36 || binary.LittleEndian.Uint32(oracleImage) != 0x4341524f {
		return h, fmt.Errorf("testdata/oracle.bin has no ORAC header: rebuild it with testdata/build.sh")
	}
	f := []*uint32{&h.entry32, &h.entry64, &h.stubs32, &h.stubs64, &h.loop32, &h.loop64, &h.userStart, &h.userEnd}
	for i, p := range f {
		*p = binary.LittleEndian.Uint32(oracleImage[4+4*i:])
	}
	return h, nil
}

// oracleState is one round's control registers.
type oracleState struct {
	cr0, cr4, efer uint64
	pkru           uint32
}

func (s oracleState) String() string {
	var f []string
	for _, b := range []struct {
		on   bool
		name string
	}{{s.cr0&x86.CR0WP != 0, "WP"}, {s.cr4&x86.CR4PSE != 0, "PSE"}, {s.efer&x86.EFERNXE != 0, "NXE"},
		{s.cr4&x86.CR4SMEP != 0, "SMEP"}, {s.cr4&x86.CR4SMAP != 0, "SMAP"}, {s.cr4&x86.CR4PKE != 0, "PKE"}} {
		if b.on {
			f = append(f, b.name)
		}
	}
	if s.cr4&x86.CR4PKE != 0 {
		f = append(f, fmt.Sprintf("PKRU=%#x", s.pkru))
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, " ")
}

func randomOracleState(r *rand.Rand, md oracleMode, cpu oracleCPU) oracleState {
	s := oracleState{cr0: x86.CR0PE | x86.CR0ET}
	if md.mode != x86.PagingNone {
		s.cr0 |= x86.CR0PG
	}
	if r.IntN(2) == 0 {
		s.cr0 |= x86.CR0WP
	}
	if cpu.pse && r.IntN(4) != 0 {
		s.cr4 |= x86.CR4PSE
	}
	switch md.mode {
	case x86.PagingPAE:
		s.cr4 |= x86.CR4PAE
	case x86.Paging4Level, x86.Paging5Level:
		s.cr4 |= x86.CR4PAE
		if md.mode == x86.Paging5Level {
			s.cr4 |= x86.CR4LA57
		}
		s.efer |= x86.EFERLME | x86.EFERLMA
		if cpu.pku && r.IntN(2) == 0 {
			s.cr4 |= x86.CR4PKE
			s.pkru = uint32(r.Uint64()) &^ 3 // key 0 (the guest's own pages) allows everything
		}
	}
	if cpu.nx && r.IntN(3) != 0 {
		s.efer |= x86.EFERNXE
	}
	if cpu.smep && r.IntN(2) == 0 {
		s.cr4 |= x86.CR4SMEP
	}
	if cpu.smap && r.IntN(2) == 0 {
		s.cr4 |= x86.CR4SMAP
	}
	return s
}

// runOracleRound builds one VM with fresh random tables, runs k cases (plus
// the probe) and returns the disagreements. An error means the round could
// not run or the probe failed: the mode does not work here.
func runOracleRound(md oracleMode, rnd *rand.Rand, o oracleOpts, st *oracleStats) (*oracleRoundOut, error) {
	hdr, err := parseOracleHeader()
	if err != nil {
		return nil, err
	}
	// KVM_CREATE_VM can fail with EINTR when a signal (Go's preemption)
	// arrives; with ~70 VMs per run that happens.
	var m *machine.Machine
	for try := 0; ; try++ {
		m, err = machine.New(machine.Config{MemSize: oracleMemSize, Image: boot.Image{Data: oracleImage, Load: oracleLoad, Mode: boot.Protected}})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) || try == 5 {
			return nil, err
		}
	}
	defer m.Close()
	cpu := oracleCPUOf(m.CPUID)
	state := randomOracleState(rnd, md, cpu)
	g := newOracleGen(rnd, m.RAM, md, state, cpu, hdr)
	if err := g.build(); err != nil {
		return nil, err
	}
	g.users, g.avoidSlot = o.users, o.avoidSlot
	cases := append(append([]oracleCase(nil), o.probes...), g.cases(o.k)...)
	if err := writeOracleGuest(m.RAM, md, state, hdr, cases); err != nil {
		return nil, err
	}
	// PAE: the CPU loads the PDPTEs into registers with CR3 (here,
	// KVM_SET_SREGS) and walks with those; QEMU's TCG even sets bit 5 of
	// the PDPTEs in memory, a reserved bit, as it walks. mmu gets the
	// PDPTEs as loaded.
	var pdptes [4]uint64
	if md.mode == x86.PagingPAE {
		for i := range pdptes {
			if pdptes[i], err = m.RAM.ReadUint64(g.cr3 + uint64(i)*8); err != nil {
				return nil, err
			}
		}
	}
	sregs, err := oracleSregs(m.CPU, md, state, g.cr3)
	if err != nil {
		return nil, err
	}
	if err := m.CPU.SetSregs(sregs); err != nil {
		return nil, fmt.Errorf("KVM_SET_SREGS with CR0 %#x CR4 %#x EFER %#x: %w", sregs.CR0, sregs.CR4, sregs.EFER, err)
	}
	entry := hdr.entry32
	if md.code64 {
		entry = hdr.entry64
	}
	if err := m.CPU.SetRegs(&kvm.Regs{RIP: uint64(entry), RSP: oracleKStack, RFLAGS: 2}); err != nil {
		return nil, err
	}
	h := &oracleMMIO{ram: m.RAM, recs: make([]mmioRecord, len(cases))}
	timeout := time.Minute
	if kvmtest.Nested() {
		timeout = 8 * time.Minute
	}
	res := m.RunLoops(m.Loops(func(int) vcpu.MMIOHandler { return h }), timeout)
	var after kvm.Sregs
	if err := m.CPU.GetSregs(&after); err != nil {
		return nil, err
	}
	cur, _ := m.RAM.ReadUint64(pCur)
	if res.Kind != vcpu.EndHalted {
		return nil, fmt.Errorf("%s round (%s) ended %s (status %d) at case %d of %d: %v\n%s", md.name, state, res.Kind, res.ExitStatus(), cur, len(cases), res.Err, res.Dump)
	}
	results, err := readOracleResults(m.RAM, len(cases))
	if err != nil {
		return nil, err
	}
	out := &oracleRoundOut{}
	for i, p := range o.probes {
		msg := ""
		if want := oracleProbeWant(p.addr); results[i].status != 1 || h.recs[i].n != 1 || h.recs[i].gpa != want {
			msg = fmt.Sprintf("entered with CR0 %#x CR4 %#x EFER %#x CS.L %d, a 4-byte read at %s of linear %#x (mapped to GPA %#x) gave: %s; CR0 %#x CR4 %#x EFER %#x after the run",
				sregs.CR0, sregs.CR4, sregs.EFER, sregs.CS.L, cpl(p), p.addr, want, describeCPU(p, results[i], h.recs[i]), after.CR0, after.CR4, after.EFER)
		}
		out.probes = append(out.probes, msg)
	}
	if len(h.stray) > 0 {
		return nil, fmt.Errorf("MMIO exits outside any case: %v", h.stray)
	}

	// Predict every case with mmu, from the tables as they are now (the
	// CPU has set accessed and dirty flags; they change no translation).
	var ctx mmu.Context
	var w mmu.Walk
	for i, c := range cases[len(o.probes):] {
		i += len(o.probes)
		ms := mmu.State{CR0: after.CR0, CR3: after.CR3, CR4: after.CR4, EFER: after.EFER, RFLAGS: 2, CSL: md.code64, CSD: !md.code64, PKRU: state.pkru,
			PDPTEs: pdptes, HasPDPTEs: md.mode == x86.PagingPAE}
		if c.user {
			ms.CPL = 3
		}
		if c.ac {
			ms.RFLAGS |= x86.FlagAC
		}
		if err := ctx.Reset(&ms, cpu.mmu); err != nil {
			return nil, fmt.Errorf("mmu.Context.Reset(%+v): %w", ms, err)
		}
		werr := ctx.Walk(m.RAM, c.addr, c.op.access(), &w)
		why, noP := compareOracle(c, results[i], h.recs[i], &w, werr, uint64(i))
		if noP {
			st.rsvdNoP++
		}
		if why != "" {
			out.mism = append(out.mism, fmt.Sprintf("case %d: %s %s at linear %#x%s (generator: %s)\n  state: CR0 %#x CR3 %#x CR4 %#x EFER %#x (%s)\n  mmu: %s\n  cpu: %s\n  walk: %s",
				i, c.op, cpl(c), c.addr, acFlag(c), c.class, after.CR0, after.CR3, after.CR4, after.EFER, state, describeMMU(&w, werr), describeCPU(c, results[i], h.recs[i]), describeEntries(&w))+"\n  why: "+why)
		}
		st.cases++
		if c.user {
			st.user++
		}
		switch r := results[i]; {
		case r.status == 1 && c.op == opFetch:
			st.fetches++
			st.sizes[w.PageSize]++
		case r.status == 1:
			st.mmio++
			st.sizes[w.PageSize]++
		case r.status == 2 && r.vector == x86.VectorPF:
			st.faults++
			st.pfCodes[uint32(r.errCode)]++
		case r.status == 2 && r.vector == x86.VectorGP:
			st.gp++
		}
	}
	st.rounds = append(st.rounds, fmt.Sprintf("%s, %d tables", state, g.ntables))
	return out, nil
}

func cpl(c oracleCase) string {
	if c.user {
		return "CPL3"
	}
	return "CPL0"
}

func acFlag(c oracleCase) string {
	if c.ac {
		return " AC=1"
	}
	return ""
}

// oracleResult is one case's record in RESULTS.
type oracleResult struct {
	status, vector uint32
	errCode, cr2   uint64
	value          uint64
}

func readOracleResults(ram *memory.RAM, n int) ([]oracleResult, error) {
	b, err := ram.Slice(oracleResults, uint64(n)*32)
	if err != nil {
		return nil, err
	}
	out := make([]oracleResult, n)
	for i := range out {
		r := b[i*32:]
		out[i] = oracleResult{
			status: binary.LittleEndian.Uint32(r), vector: binary.LittleEndian.Uint32(r[4:]),
			errCode: binary.LittleEndian.Uint64(r[8:]), cr2: binary.LittleEndian.Uint64(r[16:]),
			value: binary.LittleEndian.Uint64(r[24:]),
		}
	}
	return out, nil
}

// oracleReadValue is what the MMIO handler returns to read i.
func oracleReadValue(i uint64) uint64 { return 0x0123456789abcdef ^ (i * 0x9e3779b97f4a7c15) }

func sizeMask(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*n) - 1
}

// compareOracle returns why the CPU's outcome of case i differs from mmu's
// prediction, or "". noP reports a reserved-bit fault the CPU reported
// without P, which is accepted inside the nested runner only: QEMU's TCG
// (target/i386/tcg/sysemu/excp_helper.c, mmu_translate, do_fault_rsvd)
// sets RSVD alone, where the SDM (Vol. 3A §4.7) says P=1.
func compareOracle(c oracleCase, r oracleResult, rec mmioRecord, w *mmu.Walk, werr error, i uint64) (why string, noP bool) {
	why = compareOracleStrict(c, r, rec, w, werr, i)
	if why == "" || !kvmtest.Nested() {
		return why, false
	}
	e, ok := werr.(*x86.Exception)
	if ok && e.Vector == x86.VectorPF && e.ErrorCode&x86.PFErrReserved != 0 && r.status == 2 && r.vector == x86.VectorPF &&
		r.errCode == uint64(e.ErrorCode&^x86.PFErrPresent) && r.cr2 == e.Addr && rec.n == 0 {
		return "", true
	}
	return why, false
}

func compareOracleStrict(c oracleCase, r oracleResult, rec mmioRecord, w *mmu.Walk, werr error, i uint64) string {
	if werr != nil {
		e, ok := werr.(*x86.Exception)
		if !ok {
			return fmt.Sprintf("mmu could not walk: %v", werr)
		}
		if r.status != 2 {
			return fmt.Sprintf("mmu predicts %s, the CPU did not fault", e)
		}
		if r.vector != uint32(e.Vector) {
			return fmt.Sprintf("vector %d, mmu predicts %d", r.vector, e.Vector)
		}
		if e.HasErrorCode && r.errCode != uint64(e.ErrorCode) {
			return fmt.Sprintf("error code %#x, mmu predicts %#x", r.errCode, e.ErrorCode)
		}
		if e.Vector == x86.VectorPF && r.cr2 != e.Addr {
			return fmt.Sprintf("CR2 %#x, mmu predicts %#x", r.cr2, e.Addr)
		}
		if rec.n != 0 {
			return fmt.Sprintf("the faulting case made %d MMIO exits", rec.n)
		}
		return ""
	}
	if r.status != 1 {
		return fmt.Sprintf("mmu predicts GPA %#x, the CPU raised vector %d", w.GPA, r.vector)
	}
	size := c.op.size()
	if c.op == opFetch {
		if rec.n != 0 {
			return fmt.Sprintf("the fetch made %d MMIO exits", rec.n)
		}
		if w.GPA < oracleLanding || w.GPA >= oracleLanding+oracleLandingSz {
			return fmt.Sprintf("mmu's GPA %#x is no landing page", w.GPA)
		}
		want := uint32(oracleLandingID | (w.GPA-oracleLanding)>>12)
		if got := uint32(r.value); got != want {
			return fmt.Sprintf("the landing code returned %#x, mmu's GPA %#x is page %#x", got, w.GPA, want)
		}
		return ""
	}
	if rec.n != 1 {
		return fmt.Sprintf("mmu predicts an MMIO access at GPA %#x, the CPU made %d MMIO exits", w.GPA, rec.n)
	}
	if rec.gpa != w.GPA {
		return fmt.Sprintf("KVM_EXIT_MMIO at GPA %#x, mmu predicts %#x", rec.gpa, w.GPA)
	}
	if int(rec.len) != size || rec.write != c.op.write() {
		return fmt.Sprintf("exit len %d write %v, the guest issued %s", rec.len, rec.write, c.op)
	}
	mask := sizeMask(size)
	if c.op.write() {
		if got := binary.LittleEndian.Uint64(rec.data[:]) & mask; got != c.value&mask {
			return fmt.Sprintf("wrote %#x, the case's value is %#x", got, c.value&mask)
		}
	} else if r.value&mask != oracleReadValue(i)&mask {
		return fmt.Sprintf("the guest read %#x, the handler returned %#x: out of step", r.value&mask, oracleReadValue(i)&mask)
	}
	return ""
}

func describeMMU(w *mmu.Walk, err error) string {
	if err != nil {
		if e, ok := err.(*x86.Exception); ok {
			return fmt.Sprintf("vector %d error code %#x addr %#x (%s)", e.Vector, e.ErrorCode, e.Addr, e.Reason)
		}
		return err.Error()
	}
	return w.String()
}

func describeCPU(c oracleCase, r oracleResult, rec mmioRecord) string {
	var s string
	switch r.status {
	case 0:
		s = "no result (the guest never finished the case)"
	case 1:
		s = fmt.Sprintf("completed, value %#x", r.value)
	case 2:
		s = fmt.Sprintf("vector %d error code %#x CR2 %#x at RIP %#x", r.vector, r.errCode, r.cr2, r.value)
	default:
		s = fmt.Sprintf("status %d", r.status)
	}
	if rec.n > 0 {
		s += fmt.Sprintf("; %d MMIO exit(s), first at GPA %#x len %d write %v data % x", rec.n, rec.gpa, rec.len, rec.write, rec.data[:min(int(rec.len), 8)])
	} else {
		s += "; no MMIO exit"
	}
	return s
}

func describeEntries(w *mmu.Walk) string {
	if w.N == 0 {
		return "-"
	}
	var b strings.Builder
	for _, e := range w.Entries[:w.N] {
		fmt.Fprintf(&b, "\n    L%d[%#x] @%#x = %#x", e.Level, e.Index, e.EntryGPA, e.Value)
	}
	return b.String()
}

// mmioRecord is what the MMIO handler saw during one case.
type mmioRecord struct {
	n     int
	gpa   uint64
	len   uint32
	write bool
	data  [8]byte
}

// oracleMMIO records every KVM_EXIT_MMIO for the case the guest is on
// (PARAMS_CUR in RAM); reads return oracleReadValue(case).
type oracleMMIO struct {
	ram   *memory.RAM
	recs  []mmioRecord
	stray []string
}

// MMIORead implements vcpu.MMIOHandler.
func (h *oracleMMIO) MMIORead(e *kvm.Exit) error { return h.mmio(e.MMIO) }

// MMIOWrite implements vcpu.MMIOHandler.
func (h *oracleMMIO) MMIOWrite(e *kvm.Exit) error { return h.mmio(e.MMIO) }

func (h *oracleMMIO) mmio(e *kvm.MMIOExit) error {
	cur, err := h.ram.ReadUint64(pCur)
	if err != nil {
		return err
	}
	if e.IsWrite == 0 {
		binary.LittleEndian.PutUint64(e.Data[:], oracleReadValue(cur))
	}
	if cur >= uint64(len(h.recs)) {
		if len(h.stray) < 10 {
			h.stray = append(h.stray, fmt.Sprintf("GPA %#x len %d after case %d", e.PhysAddr, e.Len, cur))
		}
		return nil
	}
	r := &h.recs[cur]
	r.n++
	if r.n == 1 {
		r.gpa, r.len, r.write, r.data = e.PhysAddr, e.Len, e.IsWrite != 0, e.Data
	}
	return nil
}

func (h *oracleMMIO) EmulationFailure(e *kvm.Exit) error {
	f := e.EmulationFailure
	cur, _ := h.ram.ReadUint64(pCur)
	return fmt.Errorf("case %d: KVM could not emulate % x", cur, f.Instruction())
}

// writeOracleGuest writes the GDT, IDT, TSS, parameters, landing pages and
// cases the guest runs with.
func writeOracleGuest(ram *memory.RAM, md oracleMode, s oracleState, h oracleHeader, cases []oracleCase) error {
	if len(cases) > oracleMaxCase {
		return fmt.Errorf("%d cases in one round, at most %d", len(cases), oracleMaxCase)
	}
	gdt := []uint64{
		0,
		0x00cf9b000000ffff,                 // 0x08 code32, accessed
		0x00cf93000000ffff,                 // 0x10 data
		0x00af9b000000ffff,                 // 0x18 code64
		0x00cffb000000ffff,                 // 0x20 user code32 (DPL 3)
		0x00cff3000000ffff,                 // 0x28 user data
		0x00affb000000ffff,                 // 0x30 user code64
		0x0000890000000067 | oracleTSS<<16, // 0x38 available TSS (base below 64 KiB): the guest loads TR
		0,                                  // 0x40 its high half in long mode
	}
	for i, d := range gdt {
		if err := ram.WriteUint64(oracleGDT+uint64(i)*8, d); err != nil {
			return err
		}
	}
	long := md.mode >= x86.Paging4Level
	gate := func(v int, off uint32, sel uint16) error {
		lo := uint64(off&0xffff) | uint64(sel)<<16 | 0x8e<<40 | uint64(off>>16)<<48
		if !long {
			return ram.WriteUint64(oracleIDT+uint64(v)*8, lo)
		}
		if err := ram.WriteUint64(oracleIDT+uint64(v)*16, lo); err != nil {
			return err
		}
		return ram.WriteUint64(oracleIDT+uint64(v)*16+8, 0)
	}
	for v := 0; v < 32; v++ {
		var err error
		if long {
			err = gate(v, h.stubs64+uint32(v)*8, selCode64)
		} else {
			err = gate(v, h.stubs32+uint32(v)*8, selCode32)
		}
		if err != nil {
			return err
		}
	}
	// TSS: the ring-0 stack for exceptions at CPL 3.
	tss := make([]byte, 0x68)
	if long {
		binary.LittleEndian.PutUint64(tss[4:], oracleKStack)
	} else {
		binary.LittleEndian.PutUint32(tss[4:], oracleKStack)
		binary.LittleEndian.PutUint32(tss[8:], selData)
	}
	binary.LittleEndian.PutUint16(tss[0x66:], 0x68) // no I/O bitmap
	if err := ram.Write(oracleTSS, tss); err != nil {
		return err
	}

	resumeIP, resumeCS := uint64(h.loop64), uint64(selCode64)
	if !md.code64 {
		resumeIP, resumeCS = uint64(h.loop32), selCode32
	}
	var flags uint64
	if s.cr4&x86.CR4PKE != 0 {
		flags |= 1
	}
	for _, p := range []struct{ gpa, v uint64 }{
		{pNCases, uint64(len(cases))}, {pCur, 0}, {pResumeIP, resumeIP}, {pResumeCS, resumeCS},
		{pPKRU, uint64(s.pkru)}, {pFlags, flags},
	} {
		if err := ram.WriteUint64(p.gpa, p.v); err != nil {
			return err
		}
	}

	// Landing pages: NOPs to 0xff0, then mov $ID,%eax; ret.
	land, err := ram.Slice(oracleLanding, oracleLandingSz)
	if err != nil {
		return err
	}
	for p := 0; p < oracleLandingSz>>12; p++ {
		pg := land[p<<12 : (p+1)<<12]
		for i := range pg {
			pg[i] = 0xcc
		}
		for i := 0; i < 0xff0; i++ {
			pg[i] = 0x90
		}
		pg[0xff0] = 0xb8
		binary.LittleEndian.PutUint32(pg[0xff1:], oracleLandingID|uint32(p))
		pg[0xff5] = 0xc3
	}

	cb, err := ram.Slice(oracleCases, uint64(len(cases))*32)
	if err != nil {
		return err
	}
	for i, c := range cases {
		b := cb[i*32 : (i+1)*32]
		clear(b)
		binary.LittleEndian.PutUint64(b, c.addr)
		binary.LittleEndian.PutUint32(b[8:], uint32(c.op))
		var f uint32
		if c.user {
			f |= 1
		}
		if c.ac {
			f |= 2
		}
		binary.LittleEndian.PutUint32(b[12:], f)
		binary.LittleEndian.PutUint64(b[16:], c.value)
	}
	rb, err := ram.Slice(oracleResults, uint64(len(cases))*32)
	if err != nil {
		return err
	}
	clear(rb)
	return nil
}

// oracleSregs enters the mode under test directly.
func oracleSregs(c *kvm.VCPU, md oracleMode, s oracleState, cr3 uint64) (*kvm.Sregs, error) {
	var sr kvm.Sregs
	if err := c.GetSregs(&sr); err != nil {
		return nil, err
	}
	seg := func(sel uint16, typ, dpl uint8) kvm.Segment {
		return kvm.Segment{Limit: 0xffffffff, Selector: sel, Typ: typ, Present: 1, DPL: dpl, S: 1, G: 1, DB: 1}
	}
	sr.CS = seg(selCode32, 11, 0)
	if md.code64 {
		sr.CS = seg(selCode64, 11, 0)
		sr.CS.L, sr.CS.DB = 1, 0
	}
	sr.SS = seg(selData, 3, 0)
	sr.DS, sr.ES, sr.FS, sr.GS = seg(selUData, 3, 3), seg(selUData, 3, 3), seg(selUData, 3, 3), seg(selUData, 3, 3)
	sr.TR = kvm.Segment{Base: oracleTSS, Limit: 0x67, Typ: 11, Present: 1}
	sr.GDT = kvm.Descriptor{Base: oracleGDT, Limit: 9*8 - 1}
	sr.IDT = kvm.Descriptor{Base: oracleIDT, Limit: 32*8 - 1}
	if md.mode >= x86.Paging4Level {
		sr.IDT.Limit = 32*16 - 1
	}
	sr.CR0, sr.CR3, sr.CR4, sr.EFER = s.cr0, cr3, s.cr4, s.efer
	return &sr, nil
}

// oracleGen builds random paging structures and the cases that exercise
// them. It records what it built for each entry so that the cases it picks
// are safe: a data access only where it built an MMIO leaf (or a fault), a
// fetch only where it built a landing leaf (or a not-present entry).
type oracleGen struct {
	r     *rand.Rand
	ram   *memory.RAM
	md    oracleMode
	s     oracleState
	cpu   oracleCPU
	hdr   oracleHeader
	cr3   uint64
	root  *gtable
	next  uint64
	limit int // tables, at most
	byLvl [5][]*gtable

	users     bool // cases at CPL 3 too
	avoidSlot bool // none at CPL 3 in PML4[256]
	amdBit8   bool // set bit 8 of PML4Es/PML5Es (reserved on AMD) at times

	ntables    int
	top        int
	entryBytes uint64
	bits       uint
	addrBits   uint
	pse36Bits  uint
}

type entKind uint8

const (
	entUnset entKind = iota
	entNotPresent
	entTable
	entData    // leaf: MMIO
	entLanding // leaf: landing pages (fetches only)
	entFixed   // the fixed mapping's page table: cases stay out
)

type gtable struct {
	gpa   uint64
	level int
	kind  []entKind
	rsvd  []bool // entry has a reserved bit set
	child []*gtable
	used  []int
}

func newOracleGen(r *rand.Rand, ram *memory.RAM, md oracleMode, s oracleState, cpu oracleCPU, hdr oracleHeader) *oracleGen {
	g := &oracleGen{r: r, ram: ram, md: md, s: s, cpu: cpu, hdr: hdr, next: oracleTables, limit: 150 + r.IntN(400)}
	switch md.mode {
	case x86.Paging32:
		g.top, g.entryBytes, g.bits, g.addrBits = 2, 4, 10, 32
		if cpu.mmu.PSE36 {
			g.pse36Bits = min(cpu.maxPhy, 40) - 32
		}
	case x86.PagingPAE:
		g.top, g.entryBytes, g.bits, g.addrBits = 3, 8, 9, 32
	case x86.Paging4Level:
		g.top, g.entryBytes, g.bits, g.addrBits = 4, 8, 9, 32
		if md.code64 {
			g.addrBits = 48
		}
	case x86.Paging5Level:
		g.top, g.entryBytes, g.bits, g.addrBits = 5, 8, 9, 57
	}
	// QEMU's TCG, the CPU inside the nested runner, ignores bit 8 of a
	// PML4E/PML5E, which AMD reserves (KVM's nonleaf_bit8_rsvd, from
	// AMD CPUs' behaviour): the generator leaves it clear there.
	g.amdBit8 = cpu.mmu.AMD && !kvmtest.Nested()
	return g
}

func (g *oracleGen) shift(level int) uint { return 12 + g.bits*uint(level-1) }

// reach is how many entries of a level-l table the cases' addresses use.
func (g *oracleGen) reach(level int) int {
	n := 1 << g.bits
	if s := g.shift(level); g.addrBits < s+g.bits {
		n = 1 << max(int(g.addrBits)-int(s), 0)
	}
	return n
}

func (g *oracleGen) newTable(level int) (*gtable, error) {
	if g.next+4096 > oracleTablesEnd {
		return nil, fmt.Errorf("out of table space")
	}
	n := 1 << g.bits
	t := &gtable{gpa: g.next, level: level, kind: make([]entKind, n), rsvd: make([]bool, n), child: make([]*gtable, n)}
	g.next += 4096
	g.ntables++
	return t, nil
}

func (g *oracleGen) put(t *gtable, idx int, v uint64) error {
	gpa := t.gpa + uint64(idx)*g.entryBytes
	if g.entryBytes == 4 {
		return g.ram.WriteUint32(gpa, uint32(v))
	}
	return g.ram.WriteUint64(gpa, v)
}

func (g *oracleGen) set(t *gtable, idx int, k entKind, child *gtable, rsvd bool, v uint64) error {
	t.kind[idx], t.child[idx], t.rsvd[idx] = k, child, rsvd
	t.used = append(t.used, idx)
	return g.put(t, idx, v)
}

// build writes the fixed mapping: linear 0-640 KiB identity (user pages and
// the user stack with U/S=1), the probe pages, and the paths to them.
func (g *oracleGen) build() error {
	if g.md.mode == x86.PagingNone {
		return nil
	}
	root, err := g.newTable(g.top)
	if err != nil {
		return err
	}
	g.root, g.cr3 = root, root.gpa
	pt, err := g.newTable(1)
	if err != nil {
		return err
	}
	const up = ptP | ptRW | ptUS
	t := root
	for l := g.top; l > 2; l-- {
		c, err := g.newTable(l - 1)
		if err != nil {
			return err
		}
		v := c.gpa | up
		if g.md.mode == x86.PagingPAE {
			v = c.gpa | ptP // a PDPTE has no R/W or U/S
		}
		if err := g.set(t, 0, entTable, c, false, v); err != nil {
			return err
		}
		t = c
	}
	if err := g.set(t, 0, entFixed, pt, false, pt.gpa|up); err != nil {
		return err
	}
	for p := uint64(0); p < oracleFixedPages; p++ {
		v := p<<12 | ptP | ptRW
		if (p<<12 >= uint64(g.hdr.userStart) && p<<12 < uint64(g.hdr.userEnd)) || p<<12 == oracleUStack-0x1000 {
			v |= ptUS
		}
		if err := g.put(pt, int(p), v); err != nil {
			return err
		}
	}
	if err := g.put(pt, oracleProbeLA>>12, oracleProbeGPA&^0xfff|up); err != nil {
		return err
	}
	if !g.md.code64 || g.md.mode != x86.Paging4Level {
		return nil
	}
	// 64-bit mode: PML4[256] -> ... -> a PT whose first PTE maps the slot
	// probe.
	t = root
	idx := int(oracleSlotProbeLA >> 39 & 0x1ff)
	for l := 4; l > 1; l-- {
		c, err := g.newTable(l - 1)
		if err != nil {
			return err
		}
		k := entTable
		if l == 2 {
			k = entFixed
		}
		if err := g.set(t, idx, k, c, false, c.gpa|up); err != nil {
			return err
		}
		t, idx = c, 0
	}
	return g.put(t, 0, oracleSlotProbeGPA&^0xfff|up)
}

func (g *oracleGen) largeOK(level int) bool {
	switch g.md.mode {
	case x86.Paging32:
		return level == 2 && g.s.cr4&x86.CR4PSE != 0
	case x86.PagingPAE:
		return level == 2
	}
	return level == 2 || (level == 3 && g.cpu.gb)
}

// child picks the table a new non-leaf entry at level points to: sometimes
// one that exists (aliasing), else a new one; nil when out of tables.
func (g *oracleGen) child(level int) *gtable {
	have := g.byLvl[level]
	if len(have) > 0 && (g.r.IntN(5) == 0 || g.ntables >= g.limit) {
		return have[g.r.IntN(len(have))]
	}
	if g.ntables >= g.limit {
		return nil
	}
	t, err := g.newTable(level)
	if err != nil {
		return nil
	}
	g.byLvl[level] = append(g.byLvl[level], t)
	return t
}

// mmioFrame picks a page-aligned GPA of a page of size bytes outside RAM.
func (g *oracleGen) mmioFrame(size uint64) uint64 {
	r := g.r
	maxGPA := uint64(1) << 32
	switch {
	case g.entryBytes == 8:
		maxGPA = 1 << g.cpu.maxPhy
	case size > 4096 && g.pse36Bits > 0:
		maxGPA = 1 << (32 + g.pse36Bits)
	}
	if size == 4096 && r.IntN(20) == 0 {
		return 0xa0000 + r.Uint64N(0x60)<<12 // the legacy hole
	}
	const lowEnd = 0xfec00000 // below the APIC, IOAPIC and KVM's private pages
	if maxGPA > 1<<32 && r.IntN(5) < 2 {
		return 1<<32 + r.Uint64N((maxGPA-1<<32)/size)*size
	}
	lo := (uint64(oracleMemSize) + size - 1) / size
	hi := (lowEnd - size) / size
	return (lo + r.Uint64N(hi-lo+1)) * size
}

func (g *oracleGen) landingFrame(size uint64) uint64 {
	return oracleLanding + g.r.Uint64N(oracleLandingSz/size)*size
}

// encode puts a page's GPA into a leaf at level.
func (g *oracleGen) encode(gpa uint64, level int) uint64 {
	if g.entryBytes == 4 && level == 2 {
		return gpa&0xffc00000 | (gpa>>32)<<13 // PSE-36: GPA bits 39:32 in 20:13
	}
	return gpa
}

// fill generates entry idx of t.
func (g *oracleGen) fill(t *gtable, idx int) error {
	r := g.r
	level := t.level
	pdpte := g.md.mode == x86.PagingPAE && level == 3
	garbage := r.Uint64()
	if g.entryBytes == 4 {
		garbage &= 0xffffffff
	}
	if r.IntN(100) < 12 {
		return g.set(t, idx, entNotPresent, nil, false, garbage&^ptP)
	}
	if pdpte {
		c := g.child(2)
		if c == nil {
			return g.set(t, idx, entNotPresent, nil, false, garbage&^ptP)
		}
		return g.set(t, idx, entTable, c, false, c.gpa|ptP|garbage&(ptPWT|ptPCD|0xe00))
	}
	leaf := level == 1 || (g.largeOK(level) && r.IntN(100) < 30)
	var c *gtable
	if !leaf {
		if c = g.child(level - 1); c == nil {
			if !g.largeOK(level) {
				return g.set(t, idx, entNotPresent, nil, false, garbage&^ptP)
			}
			leaf = true
		}
	}
	v := uint64(ptP)
	if r.IntN(4) != 0 {
		v |= ptRW
	}
	if r.IntN(4) != 0 {
		v |= ptUS
	}
	v |= garbage & (ptPWT | ptPCD | ptA | 0xe00) // AVL 11:9
	long := g.md.mode >= x86.Paging4Level
	if long && r.IntN(3) == 0 {
		v |= garbage & (0x7ff << 52) // ignored, or the protection key of a leaf
	}
	if g.entryBytes == 8 && g.s.efer&x86.EFERNXE != 0 && r.IntN(5) == 0 {
		v |= ptXD
	}
	var kind entKind
	if leaf {
		v |= garbage & (ptD | ptG)
		size := uint64(1) << g.shift(level)
		if level > 1 {
			v |= ptPS | garbage&(1<<12) // PAT
		} else {
			v |= garbage & ptPS // PAT in a PTE
		}
		var gpa uint64
		if size <= oracleLandingSz && r.IntN(5) == 0 {
			kind, gpa = entLanding, g.landingFrame(size)
		} else {
			kind, gpa = entData, g.mmioFrame(size)
		}
		v |= g.encode(gpa, level)
	} else {
		kind = entTable
		v |= c.gpa | garbage&ptD // ignored in a non-leaf entry
		if g.entryBytes == 4 && g.s.cr4&x86.CR4PSE == 0 {
			v |= garbage & ptPS // ignored without CR4.PSE
		}
		if level < 4 || !g.cpu.mmu.AMD {
			v |= garbage & ptG // ignored in a non-leaf entry, except AMD's PML4E and PML5E
		}
	}
	rsvd := false
	if r.IntN(100) < 5 {
		v, rsvd = g.reserve(v, level, leaf)
	}
	return g.set(t, idx, kind, c, rsvd, v)
}

// reserve sets one reserved bit that applies to an entry at level.
func (g *oracleGen) reserve(v uint64, level int, leaf bool) (uint64, bool) {
	var opts []uint64
	add := func(lo, hi uint) {
		for b := lo; b <= hi; b++ {
			opts = append(opts, 1<<b)
		}
	}
	switch g.md.mode {
	case x86.Paging32:
		if leaf && level == 2 {
			add(13+g.pse36Bits, 21)
		}
	case x86.PagingPAE, x86.Paging4Level, x86.Paging5Level:
		hi := uint(51)
		if g.md.mode == x86.PagingPAE {
			hi = 62
		}
		add(g.cpu.maxPhy, hi)
		if g.s.efer&x86.EFERNXE == 0 {
			opts = append(opts, ptXD)
		}
		if leaf && level == 2 {
			add(13, 20)
		}
		if leaf && level == 3 {
			add(13, 29)
		}
		if level >= 4 {
			opts = append(opts, ptPS)
			if g.amdBit8 {
				opts = append(opts, ptG)
			}
		}
		if level == 3 && !leaf && !g.cpu.gb {
			opts = append(opts, ptPS)
		}
	}
	if len(opts) == 0 {
		return v, false
	}
	return v | opts[g.r.IntN(len(opts))], true
}

// path descends from the root, generating entries as it goes, and returns
// an address and what its walk meets: the entry kind, whether it has a
// reserved bit, and the size of the region below it.
func (g *oracleGen) path() (addr uint64, kind entKind, rsvd bool, span uint64, err error) {
	t := g.root
	for level := g.top; ; level-- {
		n := g.reach(level)
		idx := 0
		for try := 0; ; try++ {
			if len(t.used) > 0 && g.r.IntN(10) < 7 {
				idx = t.used[g.r.IntN(len(t.used))]
			} else {
				idx = g.r.IntN(n)
			}
			if idx < n && t.kind[idx] != entFixed {
				break
			}
			if try > 1000 {
				return 0, 0, false, 0, fmt.Errorf("no free entry in a level-%d table", level)
			}
		}
		addr |= uint64(idx) << g.shift(level)
		if t.kind[idx] == entUnset {
			if err := g.fill(t, idx); err != nil {
				return 0, 0, false, 0, err
			}
		}
		span = 1 << g.shift(level)
		k := t.kind[idx]
		if k != entTable || t.rsvd[idx] {
			return addr, k, t.rsvd[idx], span, nil
		}
		t = t.child[idx]
	}
}

// cases picks n cases.
func (g *oracleGen) cases(n int) []oracleCase {
	r := g.r
	out := make([]oracleCase, 0, n)
	for len(out) < n {
		c := oracleCase{user: g.users && r.IntN(3) == 0, value: r.Uint64()}
		// RFLAGS.AC matters to SMAP, for supervisor accesses. At CPL 3 it
		// would only add alignment checks, which the project's PVM KVM
		// raises even with CR0.AM=0.
		c.ac = !c.user && r.IntN(3) == 0
		var kind entKind
		var rsvd bool
		var span uint64
		if g.md.mode == x86.PagingNone {
			span = 4096
			if r.IntN(5) == 0 {
				c.addr, kind = g.landingFrame(4096), entLanding
			} else {
				c.addr, kind = g.mmioFrame(4096), entData
			}
		} else {
			var err error
			c.addr, kind, rsvd, span, err = g.path()
			if err != nil {
				continue
			}
		}
		dataOp := func(writes bool) oracleOp {
			sizes := 3
			if g.md.code64 {
				sizes = 4
			}
			op := oracleOp(r.IntN(sizes))
			if writes && r.IntN(2) == 0 {
				op += opWrite1
			}
			return op
		}
		switch {
		case kind == entLanding && rsvd:
			c.op, c.class = dataOp(false), "landing leaf with a reserved bit"
		case kind == entLanding:
			c.op, c.class = opFetch, "landing leaf"
		case kind == entData && rsvd:
			c.op, c.class = dataOp(true), "MMIO leaf with a reserved bit"
		case kind == entData:
			c.op, c.class = dataOp(true), "MMIO leaf"
		case kind == entTable: // with a reserved bit
			c.op, c.class = dataOp(true), "table entry with a reserved bit"
		default:
			c.op, c.class = dataOp(true), "not present"
			if r.IntN(6) == 0 {
				c.op = opFetch
			}
		}
		// The offset: a random 4 KiB page of the span, and in it a place
		// where the access does not cross into the next page.
		c.addr += r.Uint64N(span>>12) << 12
		size := c.op.size()
		switch {
		case c.op == opFetch:
			c.addr += r.Uint64N(0xff0)
		case r.IntN(4) == 0:
			c.addr += r.Uint64N(uint64(4096 - size + 1))
		default:
			c.addr += r.Uint64N(uint64(4096/size)) * uint64(size)
		}
		if g.md.code64 {
			top := g.addrBits - 1 // sign bit: 47, or 56 with LA57
			if c.addr&(1<<top) != 0 {
				c.addr |= ^uint64(0) << top
			}
			if r.IntN(40) == 0 {
				c.addr ^= 1 << (top + 1 + uint(r.IntN(64-int(top)-1)))
				c.class = "non-canonical"
			}
			if g.avoidSlot && c.addr>>39&0x1ff == 256 {
				c.user = false
			}
		}
		out = append(out, c)
	}
	return out
}

// TestOracleGenerator checks, without KVM, that the generator keeps its
// promises for every mode and CPU feature set the oracle meets: mmu reads
// every walk's entries from RAM, and every access it predicts to succeed
// lands where the guest expects — MMIO for data (never RAM, which holds the
// tables and the guest), a landing page for fetches — and the probes are
// mapped. A broken generator would otherwise show up as odd disagreements.
func TestOracleGenerator(t *testing.T) {
	hdr, err := parseOracleHeader()
	if err != nil {
		t.Fatal(err)
	}
	cpus := []oracleCPU{
		{maxPhy: 48, nx: true, pse: true, mmu: mmu.Features{MaxPhyAddr: 48, PSE36: true, AMD: true}},
		{maxPhy: 40, nx: true, pse: true, gb: true, la57: true, smep: true, smap: true, pku: true,
			mmu: mmu.Features{MaxPhyAddr: 40, PSE36: true, GBPages: true}},
		{maxPhy: 36, pse: true, mmu: mmu.Features{MaxPhyAddr: 36}},
	}
	for ci, cpu := range cpus {
		for mi, md := range oracleModes {
			t.Run(fmt.Sprintf("%s/cpu%d", md.name, ci), func(t *testing.T) {
				rnd := rand.New(rand.NewPCG(uint64(ci), uint64(mi)))
				for round := 0; round < 3; round++ {
					ram := memory.NewRAMFromSlice(make([]byte, oracleMemSize))
					state := randomOracleState(rnd, md, cpu)
					g := newOracleGen(rnd, ram, md, state, cpu, hdr)
					g.users = true
					if err := g.build(); err != nil {
						t.Fatal(err)
					}
					cases := append(oracleProbeCases(md, false), oracleProbeCases(md, true)...)
					nprobes := len(cases)
					cases = append(cases, g.cases(2000)...)
					var ctx mmu.Context
					var w mmu.Walk
					for i, c := range cases {
						ms := mmu.State{CR0: state.cr0, CR3: g.cr3, CR4: state.cr4, EFER: state.efer, RFLAGS: 2, CSL: md.code64, CSD: !md.code64}
						if c.user {
							ms.CPL = 3
						}
						if c.ac {
							ms.RFLAGS |= x86.FlagAC
						}
						if err := ctx.Reset(&ms, cpu.mmu); err != nil {
							t.Fatal(err)
						}
						err := ctx.Walk(ram, c.addr, c.op.access(), &w)
						if i < nprobes {
							if err != nil || w.GPA != oracleProbeWant(c.addr) {
								t.Fatalf("%s at %#x: %v, GPA %#x, want %#x", c.class, c.addr, err, w.GPA, oracleProbeWant(c.addr))
							}
							continue
						}
						if _, ok := err.(*x86.Exception); err != nil && !ok {
							t.Fatalf("case %d (%s at %#x, %s): %v", i, c.op, c.addr, c.class, err)
						}
						if err != nil {
							continue
						}
						end := w.GPA + uint64(c.op.size()) - 1
						switch {
						case w.GPA>>12 != end>>12:
							t.Errorf("case %d (%s at %#x): crosses a page at GPA %#x", i, c.op, c.addr, w.GPA)
						case c.op == opFetch && (w.GPA < oracleLanding || w.GPA >= oracleLanding+oracleLandingSz || w.GPA&0xfff >= 0xff0):
							t.Errorf("case %d: fetch at %#x (%s) goes to GPA %#x, not into a landing page's NOPs", i, c.addr, c.class, w.GPA)
						case c.op != opFetch && (w.GPA < memory.HoleStart || (w.GPA >= memory.HoleEnd && w.GPA < oracleMemSize)):
							t.Errorf("case %d: %s at %#x (%s) goes to GPA %#x in RAM", i, c.op, c.addr, c.class, w.GPA)
						}
					}
				}
			})
		}
	}
}
