package mmu

import (
	"errors"
	"fmt"

	"walkvm/x86"
)

var errAccess = errors.New("mmu: access is both a write and a fetch")

// Entry is one paging-structure entry a walk used.
type Entry struct {
	Level        uint8  // 1 = PTE, 2 = PDE, 3 = PDPTE, 4 = PML4E, 5 = PML5E
	FromRegister bool   // a PAE PDPTE taken from the PDPTE registers
	Index        uint16 // index of the entry in its table
	TableGPA     uint64
	EntryGPA     uint64
	Value        uint64
	// SetFlags are the accessed and dirty flags WalkCommit set in the
	// entry (Value includes them; Value &^ SetFlags is what the walk
	// read); 0 after Walk.
	SetFlags uint64
}

// Walk is the result of one translation, filled in place so that a walk
// allocates nothing. Entries[:N] are valid after every walk, including a
// faulting one (up to and including the entry that faulted).
type Walk struct {
	Addr     uint64 // linear address (guest-physical for EPT), as truncated
	Access   x86.Access
	Walker   WalkerKind
	Levels   uint8 // paging-structure levels of the mode (0 without paging)
	N        uint8 // entries read
	Entries  [MaxLevels]Entry
	GPA      uint64 // translation of Addr
	PageSize uint64 // bytes mapped by the leaf: 4 KiB, 2/4 MiB or 1 GiB
	Perm     Perm   // effective rights
	PKey     uint8  // protection key of the leaf (4-/5-level paging)
	MemType  uint8  // EPT memory type of the leaf

	// Storage for the error a walk returns, so that faulting does not
	// allocate: the returned error points here and is valid until w is
	// reused.
	Fault        x86.Exception
	EPTViolation EPTViolation
	EPTMisconfig EPTMisconfig
}

// Context is a vCPU's translation state with everything that depends only on
// control registers and CPUID precomputed: format, reserved-bit masks and
// the permission table. Build it with Reset (or ResetEPT) when the state
// changes; Walk is then cheap and allocation-free.
type Context struct {
	paging x86.Paging
	format *Format // nil for nonpaging
	long64 bool    // 64-bit mode: canonical checks apply
	laBits uint    // linear-address width for canonical checks: 48 or 57

	root      uint64 // table address from CR3 or EPTP
	pdptes    [4]uint64
	hasPDPTEs bool

	// Permission inputs.
	user    bool // CPL == 3
	ac      bool // RFLAGS.AC
	pkru    uint32
	idFetch bool // a fetch fault sets I/D (SDM Vol. 3A §4.7)
	perm    permissions

	rsvd [2][8]uint64 // [PS][level]; 8 so that level&7 needs no bounds check
	// leaf[PS] has bit l set when an entry at level l with that PS is a
	// leaf: level 1 always, large-page levels with PS=1.
	leaf      [2]uint8
	pse36Bits uint // PSE-36 address bits in a 4-MByte PDE
	ad        bool // the format has accessed/dirty flags
	execOnly  bool // EPT: execute-only translations allowed

	// Inputs of the last reset, to skip recomputing the tables.
	key   resetKey
	valid bool
	// gen counts the resets: walks made at the same gen were made with
	// the same context.
	gen uint64
}

type resetKey struct {
	cr0, cr4, efer uint64
	f              Features
}

// Paging is the paging mode the context was reset for (for EPT, 4- or
// 5-level by the EPTP's page-walk length).
func (c *Context) Paging() x86.Paging { return c.paging }

// Format returns the paging-structure format in use, false without paging.
func (c *Context) Format() (Format, bool) {
	if c.format == nil {
		return Format{}, false
	}
	return *c.format, true
}

// Gen identifies the context's state: it changes at every Reset and
// ResetEPT, so that a walk remembered with it (see Unchanged) is known to
// come from the same context.
func (c *Context) Gen() uint64 { return c.gen }

// Reset prepares c for the vCPU state s and CPU features f.
func (c *Context) Reset(s *State, f Features) error {
	c.gen++
	if err := x86.CheckModeRegs(s.CR0, s.CR4, s.EFER); err != nil {
		return fmt.Errorf("mmu: %w", err)
	}
	paging := x86.PagingOf(s.CR0, s.CR4, s.EFER)
	op := s.Mode()
	m, err := f.maxPhyAddr()
	if err != nil {
		return err
	}
	key := resetKey{cr0: s.CR0, cr4: s.CR4, efer: s.EFER, f: f}
	if !c.valid || c.key != key {
		c.valid = false
		c.resetTables(paging, s, f, m)
		c.key = key
		c.valid = true
	}

	c.long64 = op == x86.ModeLong64
	c.laBits = paging.LinearBits()
	switch paging {
	case x86.Paging32:
		c.root = s.CR3 & 0xFFFFF000
	case x86.PagingPAE:
		c.root = s.CR3 & 0xFFFFFFE0
	case x86.Paging4Level, x86.Paging5Level:
		c.root = s.CR3 & bits(12, 51)
	default:
		c.root = 0
	}
	c.pdptes = s.PDPTEs
	c.hasPDPTEs = s.HasPDPTEs
	c.user = op.CPL(s.CPL) == 3
	c.ac = s.RFLAGS&x86.FlagAC != 0
	c.pkru = s.PKRU
	return nil
}

// resetTables computes what depends on CR0, CR4, EFER and CPUID only.
func (c *Context) resetTables(paging x86.Paging, s *State, f Features, m uint8) {
	c.paging = paging
	c.ad = true
	c.execOnly = false
	c.rsvd = [2][8]uint64{}
	c.leaf = [2]uint8{1 << 1, 1 << 1}
	c.pse36Bits = 0
	nxe := s.EFER&x86.EFERNXE != 0
	pae := s.CR4&x86.CR4PAE != 0
	smep := s.CR4&x86.CR4SMEP != 0
	// I/D is reported for fetches only with SMEP, or NXE under PAE-type
	// paging (SDM Vol. 3A §4.7). KVM checks EFER.NXE alone; in 32-bit
	// paging with NXE=1 we follow the SDM.
	c.idFetch = smep || (pae && nxe)
	c.perm.reset(s.CR0&x86.CR0WP != 0, nxe && pae, smep, s.CR4&x86.CR4SMAP != 0,
		s.CR4&x86.CR4PKE != 0 && s.EFER&x86.EFERLMA != 0)

	switch paging {
	case x86.PagingNone:
		c.format = nil
		return
	case x86.Paging32:
		c.format = &formatPaging32
		// 32-bit paging has no reserved bits except in a 4-MByte PDE
		// (SDM Vol. 3A Table 4-4): bits 20:13 hold physical-address bits
		// 39:32 with PSE-36, as far as MAXPHYADDR (at most 40) goes; bit 21
		// and the rest are reserved. Without CR4.PSE, PS is ignored.
		if s.CR4&x86.CR4PSE != 0 {
			c.leaf[1] |= 1 << 2
			if f.PSE36 {
				c.pse36Bits = uint(min(m, 40)) - 32
			}
			c.rsvd[1][2] = bits(13+c.pse36Bits, 21)
		}
		return
	case x86.PagingPAE:
		c.format = &formatPAE
	case x86.Paging4Level:
		c.format = &formatPaging4
	case x86.Paging5Level:
		c.format = &formatPaging5
	}
	c.leaf[1] |= c.format.LargeLevels

	// Reserved bits (SDM Vol. 3A Tables 4-8 to 4-11, 4-15 to 4-20; KVM's
	// __reset_rsvds_bits_mask).
	high := bits(uint(m), 51)
	if paging == x86.PagingPAE {
		high = bits(uint(m), 62) // PAE entries reserve 62:M
	}
	var exb, gb, amd uint64
	if !nxe {
		exb = bitXD
	}
	if f.AMD {
		amd = 1 << 8
	}
	if !f.GBPages {
		gb = bitPS
	}
	if paging == x86.PagingPAE {
		c.rsvd[0][3] = pdpteReserved(m)
		c.rsvd[1][3] = pdpteReserved(m)
	} else {
		// PS is reserved in a PML4E and PML5E.
		c.rsvd[0][4] = exb | bitPS | amd | high
		c.rsvd[1][4] = c.rsvd[0][4]
		c.rsvd[0][5] = c.rsvd[0][4]
		c.rsvd[1][5] = c.rsvd[0][4]
		c.rsvd[0][3] = exb | gb | high
		c.rsvd[1][3] = exb | gb | high | bits(13, 29)
	}
	c.rsvd[0][2] = exb | high
	c.rsvd[1][2] = exb | high | bits(13, 20)
	c.rsvd[0][1] = exb | high
	c.rsvd[1][1] = exb | high // bit 7 of a PTE is PAT
}

// Walk translates addr for access acc, filling w. On success it returns
// nil and w.GPA. A guest fault is returned as *x86.Exception (#PF, or #GP/#SS
// for a non-canonical address in 64-bit mode), or for EPT as *EPTViolation or
// *EPTMisconfig; these point into w. An entry outside guest RAM is a
// *MemoryError. Walk only looks: it reads guest memory and changes nothing,
// as a walk done to decode or to check against KVM must. WalkCommit is the
// walk of an access that is being made.
func (c *Context) Walk(mem Memory, addr uint64, acc x86.Access, w *Walk) error {
	if acc&(x86.AccessWrite|x86.AccessFetch) == x86.AccessWrite|x86.AccessFetch {
		return errAccess
	}
	w.Access = acc
	w.N = 0
	w.PKey = 0
	w.MemType = 0
	f := c.format
	if f == nil {
		// Without paging, linear addresses are physical. They are 32 bits
		// wide; real mode can form up to 0x10FFEF, which fits.
		w.Addr = addr & 0xFFFFFFFF
		w.Walker = Nonpaging
		w.Levels = 0
		w.GPA = w.Addr
		w.PageSize = 4096
		w.Perm = PermRead | PermWrite | PermExec | PermUser
		return nil
	}
	w.Walker = f.Walker
	w.Levels = f.Levels
	ept := f.Walker == EPT
	switch {
	case ept:
		// addr is a guest-physical address: no canonical check.
	case !c.long64:
		addr &= 0xFFFFFFFF // legacy and compatibility modes
	case !x86.IsCanonical(addr, c.laBits):
		w.Addr = addr
		w.Fault = x86.Exception{Vector: x86.VectorGP, HasErrorCode: true, Reason: "non-canonical address"}
		if acc&x86.AccessStack != 0 {
			w.Fault.Vector = x86.VectorSS
		}
		return &w.Fault
	}
	w.Addr = addr

	var pfec uint32
	if acc&x86.AccessWrite != 0 {
		pfec |= x86.PFErrWrite
	}
	if c.user && acc&x86.AccessImplicit == 0 && !ept {
		pfec |= x86.PFErrUser
	}
	if acc&x86.AccessFetch != 0 {
		pfec |= x86.PFErrFetch
	}

	level := f.Levels
	table := c.root
	if c.paging == x86.PagingPAE && !ept {
		// The PDPTE comes from the PDPTE registers loaded with CR3, not
		// from memory. It has no R/W, U/S, XD or accessed flag.
		idx := (addr >> 30) & 3
		e := &w.Entries[0]
		*e = Entry{Level: 3, Index: uint16(idx), TableGPA: table, EntryGPA: table + idx*8}
		if c.hasPDPTEs {
			e.FromRegister = true
			e.Value = c.pdptes[idx]
		} else {
			v, err := mem.ReadUint64(e.EntryGPA)
			if err != nil {
				return &MemoryError{Walker: Paging64, Level: 3, EntryGPA: e.EntryGPA, Addr: addr, Err: err}
			}
			e.Value = v
		}
		w.N = 1
		if e.Value&bitP == 0 {
			return c.pageFault(w, pfec, "PDPTE not present")
		}
		// A PDPTE with reserved bits is #GP(0) when loaded (MOV CR3,
		// see LoadPDPTEs). A walk has no load to fault; a PDPTE seen
		// here with reserved bits set (from memory changed after the load,
		// or registers set by userspace) cannot translate, and we report
		// the #PF with RSVD that the access would meet, like any other
		// entry with reserved bits.
		if e.Value&c.rsvd[0][3] != 0 {
			return c.pageFault(w, pfec|x86.PFErrPresent|x86.PFErrReserved, "reserved bit in PDPTE")
		}
		table = e.Value & f.AddrMask
		level = 2
	}

	// Format fields in locals: the compiler cannot keep them in registers
	// across the Memory calls otherwise.
	ib := uint(f.IndexBits)
	imask := uint64(1)<<ib - 1
	amask := f.AddrMask
	esh := uint(3) // log2 of the entry size
	if f.EntryBytes == 4 {
		esh = 2
	}
	shift := 12 + ib*uint(level-1)
	n := w.N
	// The rights of every level AND-ed together; NX is inverted first so
	// that the AND leaves it set when every level allows execution.
	accBits := ^uint64(0)
	var e uint64
	for {
		idx := (addr >> (shift & 63)) & imask
		egpa := table + idx<<esh
		var err error
		if esh == 3 {
			e, err = mem.ReadUint64(egpa)
		} else {
			var v uint32
			v, err = mem.ReadUint32(egpa)
			e = uint64(v)
		}
		if err != nil {
			w.N = n
			return &MemoryError{Walker: f.Walker, Level: level, EntryGPA: egpa, Addr: addr, Err: err}
		}
		ent := &w.Entries[n]
		ent.Level, ent.FromRegister, ent.Index, ent.SetFlags = level, false, uint16(idx), 0
		ent.TableGPA, ent.EntryGPA, ent.Value = table, egpa, e
		n++
		accBits &= e ^ f.NX
		if e&f.Present == 0 {
			w.N = n
			if ept {
				return eptViolation(w, level, accBits)
			}
			return c.pageFault(w, pfec, "not present")
		}
		var ps uint64
		if e&f.PageSize != 0 {
			ps = 1
		}
		leaf := (c.leaf[ps&1]>>(level&7))&1 != 0
		if e&c.rsvd[ps&1][level&7] != 0 || (ept && c.eptMisconfigured(e, leaf)) {
			w.N = n
			if ept {
				w.EPTMisconfig = EPTMisconfig{GPA: addr, Level: level, Entry: e}
				return &w.EPTMisconfig
			}
			return c.pageFault(w, pfec|x86.PFErrPresent|x86.PFErrReserved, "reserved bit set")
		}
		if leaf {
			break
		}
		table = e & amask
		level--
		shift -= ib
	}
	w.N = n

	// Effective rights (SDM Vol. 3A §4.6, Vol. 3C §29.3.3.2): the AND of
	// every level's.
	w.Perm = 0
	if f.Readable == 0 || accBits&f.Readable != 0 {
		w.Perm |= PermRead
	}
	if accBits&f.Writable != 0 {
		w.Perm |= PermWrite
	}
	if f.User != 0 && accBits&f.User != 0 {
		w.Perm |= PermUser
	}
	if (f.NX == 0 && f.Exec == 0) || accBits&(f.NX|f.Exec) != 0 {
		w.Perm |= PermExec
	}
	if ept {
		if w.Perm&eptNeed(acc) == 0 {
			return eptViolation(w, level, accBits)
		}
		w.MemType = uint8((e & f.MemType) >> 3)
	} else {
		if f.NX != 0 {
			w.PKey = uint8(e>>59) & 15
		}
		var a uint8
		if w.Perm&PermWrite != 0 {
			a |= accWrite
		}
		if w.Perm&PermUser != 0 {
			a |= accUser
		}
		if w.Perm&PermExec != 0 {
			a |= accExec
		}
		notSMAP := c.ac && acc&x86.AccessImplicit == 0
		if code := c.perm.check(a, w.PKey, pfec, notSMAP, c.pkru); code != 0 {
			return c.pageFault(w, pfec|code, "access rights")
		}
	}

	w.PageSize = 1 << (shift & 63)
	base := e & amask &^ (w.PageSize - 1)
	if level == 2 && c.pse36Bits != 0 {
		base |= ((e >> 13) & (1<<c.pse36Bits - 1)) << 32
	}
	w.GPA = base | addr&(w.PageSize-1)
	return nil
}

// MaxCommitRetries bounds how often WalkCommit restarts a walk whose entries
// keep changing under it.
const MaxCommitRetries = 64

// ErrEntriesChanging is what a *MemoryError from WalkCommit wraps when the
// entries of a walk changed under it MaxCommitRetries times in a row.
var ErrEntriesChanging = errors.New("paging-structure entries keep changing during the walk")

// Unchanged reports whether every paging-structure entry that w, a walk
// made with c, read from memory still holds the value it read (entries
// taken from the PDPTE registers are part of c). A walk is a function of
// the context and those entries, so a walk of an address in the same
// linear page with the same access would give w's result again while
// c.Gen is the one w was made at. A walk that set accessed or dirty flags is never unchanged.
func (c *Context) Unchanged(mem Memory, w *Walk) bool {
	if c.format == nil {
		return w.N == 0
	}
	for i := range w.N {
		e := &w.Entries[i]
		if e.FromRegister {
			continue
		}
		if e.SetFlags != 0 || !c.entryHolds(mem, e.EntryGPA, e.Value) {
			return false
		}
	}
	return true
}

// EntryBytes is the size of c's paging-structure entries: 4 or 8, 0
// without paging.
func (c *Context) EntryBytes() int {
	if c.format == nil {
		return 0
	}
	return int(c.format.EntryBytes)
}

// entryHolds reports whether the paging-structure entry at gpa, of c's
// format, holds value.
func (c *Context) entryHolds(mem Memory, gpa, value uint64) bool {
	f := c.format
	if f == nil {
		return false
	}
	if f.EntryBytes == 4 {
		v, err := mem.ReadUint32(gpa)
		return err == nil && uint64(v) == value
	}
	v, err := mem.ReadUint64(gpa)
	return err == nil && v == value
}

// WalkCommit translates addr as Walk does, for an access that is being made:
// a successful walk then sets the accessed flag of every entry it used and,
// for a write, the dirty flag of the leaf, as the CPU does (SDM Vol. 3A
// §4.8; KVM's update_accessed_dirty_bits). Each flag is set with an atomic
// compare-and-exchange against the value the walk read; when another vCPU
// changed the entry in between, the walk starts again (KVM's
// walk_addr_generic retries the same way), so vCPUs can share paging
// structures. Entries whose flags are already set are not written.
func (c *Context) WalkCommit(mem Memory, addr uint64, acc x86.Access, w *Walk) error {
	for range MaxCommitRetries {
		if err := c.Walk(mem, addr, acc, w); err != nil {
			return err
		}
		if c.format == nil || !c.ad {
			return nil
		}
		done, err := c.setAccessedDirty(mem, w)
		if err != nil || done {
			return err
		}
	}
	return &MemoryError{Walker: w.Walker, Level: w.Entries[w.N-1].Level, EntryGPA: w.Entries[w.N-1].EntryGPA,
		Addr: w.Addr, Write: true, Err: ErrEntriesChanging}
}

// pageFault fills w.Fault with a #PF for w.Addr. code holds the P, RSVD, PK,
// W/R and U/S bits; I/D is added here (SDM Vol. 3A §4.7).
func (c *Context) pageFault(w *Walk, code uint32, reason string) error {
	if w.Access&x86.AccessFetch != 0 && c.idFetch {
		code |= x86.PFErrFetch
	} else {
		code &^= x86.PFErrFetch
	}
	w.Fault = x86.Exception{Vector: x86.VectorPF, ErrorCode: code, HasErrorCode: true, Addr: w.Addr, Reason: reason}
	return &w.Fault
}

// setAccessedDirty sets A in the entries w used and D in the leaf for a
// write, from the root down, with a compare-and-exchange on each entry that
// changes. It reports false when an entry no longer holds the value the walk
// read: the caller walks again. Flags already set on upper levels stay set,
// which the CPU may do too (SDM Vol. 3A §4.8: A may be set for entries a
// translation does not end up using).
func (c *Context) setAccessedDirty(mem Memory, w *Walk) (bool, error) {
	f := c.format
	write := w.Access&x86.AccessWrite != 0
	for i := range w.N {
		ent := &w.Entries[i]
		if c.paging == x86.PagingPAE && f.Walker != EPT && ent.Level == 3 {
			continue // a PAE PDPTE has no accessed flag
		}
		v := ent.Value | f.Accessed
		if write && i == w.N-1 {
			v |= f.Dirty
		}
		if v == ent.Value {
			continue
		}
		var ok bool
		var err error
		if f.EntryBytes == 4 {
			ok, err = mem.CompareAndSwapUint32(ent.EntryGPA, uint32(ent.Value), uint32(v))
		} else {
			ok, err = mem.CompareAndSwapUint64(ent.EntryGPA, ent.Value, v)
		}
		if err != nil {
			return false, &MemoryError{Walker: f.Walker, Level: ent.Level, EntryGPA: ent.EntryGPA, Addr: w.Addr, Write: true, Err: err}
		}
		if !ok {
			return false, nil
		}
		ent.SetFlags, ent.Value = v^ent.Value, v
	}
	return true, nil
}

// Translate is the one-shot form: reset a Context for s and f, then walk.
// Code that translates more than once per state change should keep a
// Context.
func Translate(mem Memory, s *State, f Features, addr uint64, acc x86.Access, w *Walk) error {
	var c Context
	if err := c.Reset(s, f); err != nil {
		return err
	}
	return c.Walk(mem, addr, acc, w)
}

// String summarizes a walk for logs and traces.
func (w *Walk) String() string {
	return fmt.Sprintf("%s %#x -> gpa %#x (%d-byte page, %s, %d of %d levels)",
		w.Walker, w.Addr, w.GPA, w.PageSize, w.Perm, w.N, w.Levels)
}
