package mmu

import (
	"errors"
	"fmt"

	"walkvm/x86"
)

// Access says what kind of access a translation is for.
type Access uint8

const (
	Read  Access = 0
	Write Access = 1 << 0
	Fetch Access = 1 << 1
	// Implicit marks an implicit supervisor-mode access: descriptor
	// tables, the TSS, shadow stacks of other privilege levels (SDM Vol. 3A
	// §4.6). It is a supervisor access at any CPL, SMAP applies to it
	// regardless of RFLAGS.AC, and the #PF it raises has U/S=0.
	Implicit Access = 1 << 2
	// Stack makes a non-canonical address a #SS(0) instead of a #GP(0):
	// the caller sets it for accesses through SS.
	Stack Access = 1 << 3
	// SetAccessedDirty makes a successful walk set the accessed flag of
	// every entry used and, for a write, the dirty flag of the leaf, as the
	// CPU does. Off by default: a walk done only to look (decoding, a
	// check against KVM) must not change guest memory; set it when the
	// instruction completes in userspace.
	SetAccessedDirty Access = 1 << 4
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
}

// Walk is the result of one translation, filled in place so that a walk
// allocates nothing. Entries[:N] are valid after every walk, including a
// faulting one (up to and including the entry that faulted).
type Walk struct {
	Addr     uint64 // linear address (guest-physical for EPT), as truncated
	Access   Access
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
	mode   Mode
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
}

type resetKey struct {
	cr0, cr4, efer uint64
	f              Features
}

// Mode is the paging mode the context was reset for.
func (c *Context) Mode() Mode { return c.mode }

// Format returns the paging-structure format in use, false without paging.
func (c *Context) Format() (Format, bool) {
	if c.format == nil {
		return Format{}, false
	}
	return *c.format, true
}

// Reset prepares c for the vCPU state s and CPU features f.
func (c *Context) Reset(s *State, f Features) error {
	mode, err := ModeOf(s)
	if err != nil {
		return err
	}
	m, err := f.maxPhyAddr()
	if err != nil {
		return err
	}
	key := resetKey{cr0: s.CR0, cr4: s.CR4, efer: s.EFER, f: f}
	if !c.valid || c.key != key {
		c.valid = false
		c.resetTables(mode, s, f, m)
		c.key = key
		c.valid = true
	}

	lma := s.EFER&x86.EFERLMA != 0
	c.long64 = lma && s.CSL
	c.laBits = 48
	if mode == ModePaging5 {
		c.laBits = 57
	}
	switch mode {
	case ModePaging32:
		c.root = s.CR3 & 0xFFFFF000
	case ModePAE:
		c.root = s.CR3 & 0xFFFFFFE0
	case ModePaging4, ModePaging5:
		c.root = s.CR3 & bits(12, 51)
	default:
		c.root = 0
	}
	c.pdptes = s.PDPTEs
	c.hasPDPTEs = s.HasPDPTEs
	cpl := s.CPL
	if s.RFLAGS&x86.FlagVM != 0 && s.CR0&x86.CR0PE != 0 {
		cpl = 3 // virtual-8086 mode runs at CPL 3
	}
	c.user = cpl == 3
	c.ac = s.RFLAGS&x86.FlagAC != 0
	c.pkru = s.PKRU
	return nil
}

// resetTables computes what depends on CR0, CR4, EFER and CPUID only.
func (c *Context) resetTables(mode Mode, s *State, f Features, m uint8) {
	c.mode = mode
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

	switch mode {
	case ModeReal, ModeProtected:
		c.format = nil
		return
	case ModePaging32:
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
	case ModePAE:
		c.format = &formatPAE
	case ModePaging4:
		c.format = &formatPaging4
	case ModePaging5:
		c.format = &formatPaging5
	}
	c.leaf[1] |= c.format.LargeLevels

	// Reserved bits (SDM Vol. 3A Tables 4-8 to 4-11, 4-15 to 4-20; KVM's
	// __reset_rsvds_bits_mask).
	high := bits(uint(m), 51)
	if mode == ModePAE {
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
	if mode == ModePAE {
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
// *MemoryError. A walk reads guest memory through mem and, only with
// SetAccessedDirty, writes it: through a compare-and-exchange when mem is a
// CASMemory, walking again when an entry changed under it.
func (c *Context) Walk(mem Memory, addr uint64, acc Access, w *Walk) error {
	for range maxWalkRetries {
		if err := c.walk(mem, addr, acc, w); err != errEntryChanged {
			return err
		}
	}
	return fmt.Errorf("mmu: %#x: the paging-structure entries kept changing while their accessed/dirty flags were set (%d walks)", addr, maxWalkRetries)
}

// maxWalkRetries bounds the walks again after an entry changed under the
// walker's compare-and-exchange (KVM's walker retries without a bound; a
// guest that rewrites its tables that fast is stopped instead).
const maxWalkRetries = 1000

// errEntryChanged says a compare-and-exchange of an entry failed: another
// vCPU wrote it since the walk read it.
var errEntryChanged = errors.New("mmu: paging-structure entry changed during the walk")

func (c *Context) walk(mem Memory, addr uint64, acc Access, w *Walk) error {
	if acc&(Write|Fetch) == Write|Fetch {
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
	case c.mode <= ModePAE || !c.long64:
		addr &= 0xFFFFFFFF // legacy and compatibility modes
	case !x86.IsCanonical(addr, c.laBits):
		w.Addr = addr
		w.Fault = x86.Exception{Vector: x86.VectorGP, HasErrorCode: true, Reason: "non-canonical address"}
		if acc&Stack != 0 {
			w.Fault.Vector = x86.VectorSS
		}
		return &w.Fault
	}
	w.Addr = addr

	var pfec uint32
	if acc&Write != 0 {
		pfec |= x86.PFErrWrite
	}
	if c.user && acc&Implicit == 0 && !ept {
		pfec |= x86.PFErrUser
	}
	if acc&Fetch != 0 {
		pfec |= x86.PFErrFetch
	}

	level := f.Levels
	table := c.root
	if c.mode == ModePAE && !ept {
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
		ent.Level, ent.FromRegister, ent.Index = level, false, uint16(idx)
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
		notSMAP := c.ac && acc&Implicit == 0
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

	if acc&SetAccessedDirty != 0 && c.ad {
		first := uint8(0)
		if c.mode == ModePAE && !ept {
			first = 1 // the PDPTE has no accessed flag
		}
		if err := c.setAccessedDirty(mem, w, first, acc&Write != 0); err != nil {
			return err
		}
	}
	return nil
}

// pageFault fills w.Fault with a #PF for w.Addr. code holds the P, RSVD, PK,
// W/R and U/S bits; I/D is added here (SDM Vol. 3A §4.7).
func (c *Context) pageFault(w *Walk, code uint32, reason string) error {
	if w.Access&Fetch != 0 && c.idFetch {
		code |= x86.PFErrFetch
	} else {
		code &^= x86.PFErrFetch
	}
	w.Fault = x86.Exception{Vector: x86.VectorPF, ErrorCode: code, HasErrorCode: true, Addr: w.Addr, Reason: reason}
	return &w.Fault
}

// setAccessedDirty sets A in Entries[first:N] and D in the leaf for a write
// (KVM's update_accessed_dirty_bits), writing only entries that change;
// with a CASMemory each as a compare-and-exchange against the value the walk
// read, and errEntryChanged when one changed meanwhile.
func (c *Context) setAccessedDirty(mem Memory, w *Walk, first uint8, write bool) error {
	f := c.format
	cas, atomic := mem.(CASMemory)
	for i := first; i < w.N; i++ {
		ent := &w.Entries[i]
		v := ent.Value | f.Accessed
		if write && i == w.N-1 {
			v |= f.Dirty
		}
		if v == ent.Value {
			continue
		}
		var err error
		swapped := true
		switch {
		case atomic && f.EntryBytes == 4:
			swapped, err = cas.CompareAndSwapUint32(ent.EntryGPA, uint32(ent.Value), uint32(v))
		case atomic:
			swapped, err = cas.CompareAndSwapUint64(ent.EntryGPA, ent.Value, v)
		case f.EntryBytes == 4:
			err = mem.WriteUint32(ent.EntryGPA, uint32(v))
		default:
			err = mem.WriteUint64(ent.EntryGPA, v)
		}
		if err != nil {
			return &MemoryError{Walker: f.Walker, Level: ent.Level, EntryGPA: ent.EntryGPA, Addr: w.Addr, Write: true, Err: err}
		}
		if !swapped {
			return errEntryChanged
		}
		ent.Value = v
	}
	return nil
}

// Translate is the one-shot form: reset a Context for s and f, then walk.
// Code that translates more than once per state change should keep a
// Context.
func Translate(mem Memory, s *State, f Features, addr uint64, acc Access, w *Walk) error {
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
