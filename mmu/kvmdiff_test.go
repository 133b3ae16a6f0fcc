package mmu_test

// Differential test against KVM's own guest page-table walker.
//
// Random page tables (random flags, page sizes, reserved bits, entries that
// point into the PC hole or past the end of RAM) are written into a real
// VM's RAM, the vCPU's control registers are set for a mode with
// KVM_SET_SREGS (KVM_SET_SREGS2 for PDPTE registers), and for every linear
// address the walker's answer is compared with KVM_TRANSLATE.
//
// What is compared: KVM_TRANSLATE walks with access 0 (kvm_mmu_gva_to_gpa_system:
// a supervisor data read, no implicit access) and returns only "valid" and
// the GPA; its writeable/usermode fields are hard-coded. So the walker is run
// for x86.AccessRead at CPL 0 with SMAP, SMEP and PKE off, where no permission
// check can fail, and:
//   - KVM valid       <=> walker returns no error, and the GPAs are equal;
//   - KVM not valid   <=> walker returns a #PF (not present or RSVD) or a
//     *mmu.MemoryError (an entry outside every memslot, which KVM's walker
//     turns into a not-present fault).
//
// Not compared: non-canonical 64-bit addresses (KVM_TRANSLATE ignores
// canonicality and walks bits 47:0; the walker raises #GP(0), checked
// here on its own); PDPTE reserved bits (KVM checks them only when loading
// PDPTEs, so the tables keep PDPTEs valid); permissions other than a
// supervisor read. Nonpaging modes compare only 32-bit addresses: KVM's
// nonpaging_gva_to_gpa does not truncate.
//
// On PVM-served /dev/kvm (this project's hosts) legacy 32-bit paging, PAE
// and LA57 are refused or unusable; those modes skip with what was seen.
// Under tests/nested/run (WALKVM_NESTED=1) legacy modes must work.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/mmu"
	"walkvm/x86"
)

const (
	diffRAM       = 64 << 20
	diffPoolBase  = 0x200000 // page-table pages
	diffPDPT      = 0x1F0000 // PAE PDPTs: outside the pool, so that no walk sets A there
	diffPoolPages = 64
	diffRounds    = 10     // fresh random tables per round
	diffPerRound  = 10_000 // addresses per round
)

type kvmEnv struct {
	cpu    *kvm.VCPU
	ram    *memory.RAM
	cpuid  *kvm.CPUID
	feat   mmu.Features
	nested bool
}

func newKVMEnv(t *testing.T) *kvmEnv {
	t.Helper()
	env := &kvmEnv{nested: os.Getenv("WALKVM_NESTED") == "1"}
	sys, err := kvm.Open()
	if err != nil {
		if errors.Is(err, kvm.ErrNoKVM) && !env.nested {
			t.Skipf("no KVM: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetIdentityMapAddr(0xfffbc000); err != nil {
		t.Fatal(err)
	}
	env.ram, err = memory.NewRAM(diffRAM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.ram.Close() })
	if err := env.ram.Register(vm); err != nil {
		t.Fatal(err)
	}
	env.cpu, err = vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.cpu.Close() })
	if env.cpuid, err = sys.SupportedCPUID(); err != nil {
		t.Fatal(err)
	}
	if err := env.cpu.SetCPUID(env.cpuid); err != nil {
		t.Fatal(err)
	}
	env.feat = mmu.FeaturesFromCPUID(env.cpuid.Leaves())
	return env
}

func (env *kvmEnv) hasNX() bool {
	e, ok := env.cpuid.Lookup(0x80000001, 0)
	return ok && e.Edx&(1<<20) != 0
}

// diffMode is one paging mode to compare in.
type diffMode struct {
	name      string
	mode      x86.Paging
	cr0, cr4  uint64
	efer      uint64
	pdpteRegs bool // PAE: give KVM PDPTE registers that differ from memory (SREGS2)
	fromMem   bool // PAE: the walker reads PDPTEs from memory, not registers
}

func TestKVMDifferential(t *testing.T) {
	env := newKVMEnv(t)
	pg := uint64(x86.CR0PE | x86.CR0ET | x86.CR0PG | x86.CR0WP)
	var nxe uint64
	if env.hasNX() {
		nxe = x86.EFERNXE
	}
	long := uint64(x86.EFERLME|x86.EFERLMA) | nxe
	modes := []diffMode{
		{name: "real", mode: x86.PagingNone, cr0: x86.CR0ET},
		{name: "protected", mode: x86.PagingNone, cr0: x86.CR0PE | x86.CR0ET},
		{name: "4-level", mode: x86.Paging4Level, cr0: pg, cr4: x86.CR4PAE, efer: long},
		{name: "4-level NXE=0", mode: x86.Paging4Level, cr0: pg, cr4: x86.CR4PAE | x86.CR4PSE, efer: x86.EFERLME | x86.EFERLMA},
		{name: "5-level", mode: x86.Paging5Level, cr0: pg, cr4: x86.CR4PAE | x86.CR4LA57, efer: long},
		{name: "32-bit", mode: x86.Paging32, cr0: pg, cr4: x86.CR4PSE},
		{name: "32-bit CR4.PSE=0", mode: x86.Paging32, cr0: pg},
		{name: "PAE", mode: x86.PagingPAE, cr0: pg, cr4: x86.CR4PAE, efer: nxe},
		{name: "PAE PDPTEs from memory", mode: x86.PagingPAE, cr0: pg, cr4: x86.CR4PAE, efer: nxe, fromMem: true},
		{name: "PAE PDPTE registers", mode: x86.PagingPAE, cr0: pg, cr4: x86.CR4PAE, efer: nxe, pdpteRegs: true},
	}
	t.Logf("guest CPUID: MAXPHYADDR %d, 1G pages %v, PSE-36 %v, AMD %v, NX %v, LA57 %v",
		env.feat.MaxPhyAddr, env.feat.GBPages, env.feat.PSE36, env.feat.AMD, env.hasNX(), env.cpuid.HasLA57())
	for i, m := range modes {
		t.Run(strings.ReplaceAll(m.name, " ", "_"), func(t *testing.T) {
			runDiff(t, env, m, uint64(i))
		})
	}
}

// diffStats counts what one mode saw.
type diffStats struct {
	n, valid, pf, rsvd, memErr, nonCanonical, agree, bad, pse36 int
	sizes                                                       map[uint64]int
	mismatches                                                  []string
}

func runDiff(t *testing.T, env *kvmEnv, m diffMode, seed uint64) {
	legacy := m.mode == x86.Paging32 || m.mode == x86.PagingPAE
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	st := diffStats{sizes: map[uint64]int{}}
	var c mmu.Context
	var w mmu.Walk
	for round := 0; round < diffRounds; round++ {
		cr3 := fillTables(t, env, m, r)
		ms, reason := setMode(t, env, m, cr3, r)
		if reason != "" {
			if (legacy && env.nested) || !(legacy || m.mode == x86.Paging5Level) {
				t.Fatalf("%s: %s", m.name, reason)
			}
			t.Skipf("host KVM cannot be put in %s: %s", m.name, reason)
		}
		if m.fromMem {
			ms.HasPDPTEs = false
		}
		if err := c.Reset(ms, env.feat); err != nil {
			t.Fatal(err)
		}
		// Non-canonical addresses are not compared: go on until this
		// round's share of compared addresses is done.
		for st.n < (round+1)*diffPerRound {
			compareOne(t, env, &c, &w, m, randomLA(r, m.mode), &st)
		}
		// A mode KVM accepted but does not walk as that mode (every
		// answer wrong) is not something the walker can be compared with.
		if round == 0 && legacy && !env.nested && st.bad > st.n/2 {
			t.Skipf("host KVM accepted %s but KVM_TRANSLATE disagrees structurally: %d of %d differ, e.g. %s",
				m.name, st.bad, st.n, st.mismatches[0])
		}
	}
	t.Logf("%s: %d addresses, %d agree; KVM valid %d (page sizes %v), #PF %d (RSVD %d), outside RAM %d; non-canonical %d (walker #GP, not compared)",
		m.name, st.n, st.agree, st.valid, st.sizes, st.pf, st.rsvd, st.memErr, st.nonCanonical)
	if st.pse36 > 0 {
		t.Logf("%s: %d 4-MByte PDEs with bits 20:17 set: physical-address bits 39:36 for the walker (MAXPHYADDR %d, SDM Table 4-4), reserved for KVM (PSE-36 fixed at 36 bits)",
			m.name, st.pse36, env.feat.MaxPhyAddr)
	}
	if len(st.mismatches) > 0 {
		shown := st.mismatches
		if len(shown) > 10 {
			shown = shown[:10]
		}
		t.Errorf("%d of %d addresses differ:\n%s", st.bad, st.n, strings.Join(shown, "\n"))
	}
}

func compareOne(t *testing.T, env *kvmEnv, c *mmu.Context, w *mmu.Walk, m diffMode, la uint64, st *diffStats) {
	gpa, valid, err := env.cpu.Translate(la)
	if err != nil {
		t.Fatalf("KVM_TRANSLATE %#x: %v", la, err)
	}
	werr := c.Walk(env.ram, la, x86.AccessRead, w)
	var ex *x86.Exception
	var me *mmu.MemoryError
	if errors.As(werr, &ex) && ex.Vector == x86.VectorGP {
		if m.mode != x86.Paging4Level && m.mode != x86.Paging5Level || x86.IsCanonical(la, laWidth(m.mode)) {
			t.Fatalf("#GP for %#x in %s", la, m.name)
		}
		st.nonCanonical++
		return
	}
	st.n++
	if valid {
		st.valid++
	}
	agree := false
	switch {
	case werr == nil:
		agree = valid && gpa == w.GPA
		st.sizes[w.PageSize]++
	case errors.As(werr, &ex) && ex.Vector == x86.VectorPF:
		agree = !valid
		st.pf++
		if ex.ErrorCode&x86.PFErrReserved != 0 {
			st.rsvd++
		}
	case errors.As(werr, &me):
		agree = !valid
		st.memErr++
	default:
		t.Fatalf("walk %#x: %v", la, werr)
	}
	if agree {
		st.agree++
		return
	}
	// KVM's paging32 walker fixes PSE-36 at 36 bits (is_cpuid_PSE36,
	// PT32_DIR_PSE36_MASK: PDE bits 16:13, 21:17 reserved); the SDM (Table
	// 4-4) takes bits 20:13 up to MAXPHYADDR, at most 40. A 4-MByte PDE with
	// bits 20:17 set is KVM's deviation, counted apart.
	if m.mode == x86.Paging32 && werr == nil && !valid && w.PageSize == 4<<20 &&
		env.feat.MaxPhyAddr > 36 && w.Entries[w.N-1].Value&(0xF<<17) != 0 {
		st.pse36++
		return
	}
	st.bad++
	if len(st.mismatches) < 1000 {
		st.mismatches = append(st.mismatches, describe(la, gpa, valid, w, werr))
	}
}

func describe(la, gpa uint64, valid bool, w *mmu.Walk, werr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "la %#x: KVM valid=%v gpa %#x; walker ", la, valid, gpa)
	if werr != nil {
		fmt.Fprintf(&b, "%v", werr)
	} else {
		fmt.Fprintf(&b, "%s", w.String())
	}
	for i := 0; i < int(w.N); i++ {
		e := w.Entries[i]
		fmt.Fprintf(&b, " [L%d %#x=%#x]", e.Level, e.EntryGPA, e.Value)
	}
	return b.String()
}

func laWidth(m x86.Paging) uint {
	if m == x86.Paging5Level {
		return 57
	}
	return 48
}

// randomLA picks a linear address for the mode: canonical for 64-bit
// modes (1 in 64 deliberately not), 32 bits otherwise.
func randomLA(r *rand.Rand, m x86.Paging) uint64 {
	switch m {
	case x86.Paging4Level, x86.Paging5Level:
		w := laWidth(m)
		la := r.Uint64()
		la = uint64(int64(la<<(64-w)) >> (64 - w))
		if r.IntN(64) == 0 {
			la ^= 1 << (w + uint(r.IntN(int(64-w))))
		}
		return la
	}
	if r.IntN(16) == 0 {
		return 0x10FFEF - uint64(r.IntN(0x10000)) // real mode's reach above 1 MiB
	}
	return uint64(r.Uint32())
}

// fillTables writes random entries into every page of the pool and returns
// CR3. For PAE it also writes four valid PDPTEs at CR3.
func fillTables(t *testing.T, env *kvmEnv, m diffMode, r *rand.Rand) uint64 {
	t.Helper()
	pool, err := env.ram.Slice(diffPoolBase, diffPoolPages*4096)
	if err != nil {
		t.Fatal(err)
	}
	maxPhy := uint(env.feat.MaxPhyAddr)
	switch m.mode {
	case x86.PagingNone:
		return 0
	case x86.Paging32:
		for i := 0; i < len(pool); i += 4 {
			putLE(pool[i:], uint64(entry32(r)), 4)
		}
		return diffPoolBase
	}
	for i := 0; i < len(pool); i += 8 {
		putLE(pool[i:], entry64(r, maxPhy, m.mode == x86.PagingPAE), 8)
	}
	if m.mode != x86.PagingPAE {
		return diffPoolBase
	}
	cr3 := uint64(diffPDPT + 32*r.IntN(128))
	for i := 0; i < 4; i++ {
		if err := env.ram.WriteUint64(cr3+uint64(i)*8, validPDPTE(r)); err != nil {
			t.Fatal(err)
		}
	}
	return cr3
}

func putLE(b []byte, v uint64, n int) {
	for i := 0; i < n; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func poolPage(r *rand.Rand) uint64 { return diffPoolBase + uint64(r.IntN(diffPoolPages))*4096 }

// validPDPTE is present (mostly) and has no reserved bit: KVM refuses to
// load others, keeping its old PDPTE registers.
func validPDPTE(r *rand.Rand) uint64 {
	e := poolPage(r) | r.Uint64()&0xE18 // PWT, PCD, bits 11:9
	if r.IntN(8) != 0 {
		e |= 1
	}
	return e
}

// entry64 is a random PAE/4-level/5-level entry. Every level draws from
// the same pool, so PS (and the address that suits it) is random too.
func entry64(r *rand.Rand, maxPhy uint, pae bool) uint64 {
	var e uint64
	if r.IntN(8) != 0 {
		e |= 1 // P
	}
	e |= r.Uint64() & 0xE7E // R/W, U/S, PWT, PCD, A, D, bits 11:9
	if r.IntN(16) == 0 {
		e |= 1 << 8 // G, or reserved in an AMD PML4E
	}
	if r.IntN(8) == 0 {
		e |= 1 << 63 // XD
	}
	if !pae && r.IntN(4) == 0 {
		e |= r.Uint64() & (0x7FF << 52) // ignored in 4-/5-level paging, reserved in PAE
	}
	if r.IntN(6) == 0 {
		e |= 1 << 7 // PS
		switch x := r.IntN(10); {
		case x < 6:
			e |= uint64(r.IntN(diffRAM>>21)) << 21 // a 2-MByte page inside RAM
		case x < 7:
			e |= uint64(r.IntN(4)) << 30 // a 1-GByte page
		case x < 8:
			e |= uint64(r.IntN(1<<(maxPhy-21))) << 21 // a 2-MByte page anywhere
		default:
			e |= poolPage(r) // bits 20:13 likely set: reserved
		}
		return e
	}
	switch x := r.IntN(100); {
	case x < 86:
		e |= poolPage(r)
	case x < 90:
		e |= 0xA0000 + uint64(r.IntN(0x60))<<12 // the PC hole: not RAM
	case x < 94:
		e |= diffRAM + uint64(r.IntN(1<<20))<<12 // past the end of RAM
	case x < 97:
		e |= 1 << (maxPhy + uint(r.IntN(int(52-maxPhy)))) // above MAXPHYADDR
	default:
		e |= r.Uint64() & 0x000F_FFFF_FFFF_F000
	}
	return e
}

// entry32 is a random 32-bit paging entry.
func entry32(r *rand.Rand) uint32 {
	var e uint32
	if r.IntN(8) != 0 {
		e |= 1
	}
	e |= r.Uint32() & 0xF7E
	if r.IntN(4) == 0 {
		e |= 1 << 7
	}
	switch x := r.IntN(100); {
	case x < 75:
		e |= uint32(poolPage(r))
	case x < 88:
		e |= uint32(r.IntN(diffRAM>>22)) << 22 // a 4-MByte page inside RAM
	case x < 92:
		e |= uint32(r.IntN(diffRAM>>22))<<22 | uint32(r.IntN(1<<9))<<13 // PSE-36 and reserved bits 21:13
	case x < 95:
		e |= 0xA0000 + uint32(r.IntN(0x60))<<12
	default:
		e |= r.Uint32() &^ 0xFFF
	}
	return e
}

// setMode puts the vCPU in mode m with CR3 cr3 and reads the state back the
// way the emulator will (KVM_GET_SREGS2). A non-empty reason says KVM
// refused or did not keep the mode.
func setMode(t *testing.T, env *kvmEnv, m diffMode, cr3 uint64, r *rand.Rand) (*mmu.State, string) {
	t.Helper()
	var s kvm.Sregs2
	if err := env.cpu.GetSregs2(&s); err != nil {
		t.Fatal(err)
	}
	s.CR0, s.CR3, s.CR4, s.EFER = m.cr0, cr3, m.cr4, m.efer
	flat := kvm.Segment{Limit: 0xFFFFFFFF, Present: 1, S: 1, G: 1, DB: 1, Typ: 3}
	code := flat
	code.Typ = 0xB
	switch {
	case m.cr0&x86.CR0PE == 0:
		flat = kvm.Segment{Limit: 0xFFFF, Present: 1, S: 1, Typ: 3}
		code = flat
		code.Typ = 0xB
	case m.mode == x86.Paging4Level || m.mode == x86.Paging5Level:
		code.L, code.DB = 1, 0
	}
	s.CS, s.DS, s.ES, s.FS, s.GS, s.SS = code, flat, flat, flat, flat, flat
	s.CS.Selector, s.SS.Selector = 8, 16
	s.Flags = 0
	var want [4]uint64
	if m.pdpteRegs {
		// Registers that differ from the PDPTEs in memory at CR3.
		for i := range s.PDptrs {
			s.PDptrs[i] = validPDPTE(r)
		}
		want = s.PDptrs
		s.Flags = kvm.Sregs2PDPTRsValid
	}
	if err := env.cpu.SetSregs2(&s); err != nil {
		return nil, fmt.Sprintf("KVM_SET_SREGS2 CR0=%#x CR4=%#x EFER=%#x: %v", m.cr0, m.cr4, m.efer, err)
	}
	var got kvm.Sregs2
	if err := env.cpu.GetSregs2(&got); err != nil {
		t.Fatal(err)
	}
	if got.CR0 != m.cr0 || got.CR4 != m.cr4 || got.EFER != m.efer || got.CR3 != cr3 {
		return nil, fmt.Sprintf("KVM_SET_SREGS2 CR0=%#x CR3=%#x CR4=%#x EFER=%#x accepted, but read back CR0=%#x CR3=%#x CR4=%#x EFER=%#x",
			m.cr0, cr3, m.cr4, m.efer, got.CR0, got.CR3, got.CR4, got.EFER)
	}
	ms := &mmu.State{CR0: got.CR0, CR3: got.CR3, CR4: got.CR4, EFER: got.EFER, CPL: got.SS.DPL,
		CSL: got.CS.L != 0, CSD: got.CS.DB != 0}
	if got.Flags&kvm.Sregs2PDPTRsValid != 0 {
		ms.PDPTEs, ms.HasPDPTEs = got.PDptrs, true
	}
	if m.mode == x86.PagingPAE {
		if !ms.HasPDPTEs {
			return nil, "KVM_GET_SREGS2 in PAE paging returned no PDPTE registers"
		}
		if m.pdpteRegs && ms.PDPTEs != want {
			return nil, fmt.Sprintf("KVM_SET_SREGS2 PDPTEs %x read back as %x", want, ms.PDPTEs)
		}
	}
	return ms, ""
}
