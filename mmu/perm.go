package mmu

import "walkvm/x86"

// Perm is the effective access rights of a translation: the logical AND of
// the rights of every paging-structure entry used (SDM Vol. 3A §4.6).
type Perm uint8

const (
	PermRead  Perm = 1 << 0
	PermWrite Perm = 1 << 1
	PermExec  Perm = 1 << 2
	PermUser  Perm = 1 << 3 // a user-mode address (U/S=1 at every level)
)

func (p Perm) String() string { return string(p.Append(nil)) }

// Append appends the rights as "rwxu", '-' for each right not granted.
func (p Perm) Append(b []byte) []byte {
	for i, c := range "rwxu" {
		if p&(1<<i) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	return b
}

// Access bits of a translation as the permission table indexes them
// (KVM's ACC_*_MASK).
const (
	accExec  = 1 << 0
	accWrite = 1 << 1
	accUser  = 1 << 2
)

// Error-code bits used as the table's row index (pfec >> 1): W/R, U/S,
// RSVD (standing for "SMAP is overridden by RFLAGS.AC") and I/D.
const pfecNotSMAP = x86.PFErrReserved

// permissions is the precomputed permission check for one combination of
// CR0.WP, CR4.SMEP/SMAP/PKE and EFER.NXE (KVM's update_permission_bitmask
// and update_pkru_bitmask). Row pfec>>1 has bit a set when an access with
// that error code to a translation with access bits a faults.
type permissions struct {
	fault [16]uint8
	// pkru has, at bit offset pfec' (pfec with RSVD replaced by the
	// translation's U/S), two bits: check PKRU.AD, check PKRU.WD.
	pkru uint32
}

// reset builds the table for a mode (SDM Vol. 3A §4.6.1, §4.6.2).
func (p *permissions) reset(wp, nxe, smep, smap, pke bool) {
	// For each of the 8 access-bit combinations a (bit a of these masks),
	// whether it allows execute, write, user.
	const x, w, u uint8 = 0xAA, 0xCC, 0xF0
	for row := range p.fault {
		pfec := uint32(row) << 1
		var wf, uf, ff, kf, smepf, smapf uint8
		if pfec&x86.PFErrWrite != 0 {
			wf = ^w
		}
		if pfec&x86.PFErrUser != 0 {
			uf = ^u
		} else {
			kf = u // supervisor access to a user-mode address
		}
		if pfec&x86.PFErrFetch != 0 && nxe {
			ff = ^x
		}
		if !wp && pfec&x86.PFErrUser == 0 {
			wf = 0 // supervisor writes ignore R/W when CR0.WP=0
		}
		if smep && pfec&x86.PFErrFetch != 0 {
			smepf = kf
		}
		if smap && pfec&(pfecNotSMAP|x86.PFErrFetch) == 0 {
			smapf = kf
		}
		p.fault[row] = wf | uf | ff | smepf | smapf
	}
	p.pkru = 0
	if !pke {
		return
	}
	for row := 0; row < 16; row++ {
		pfec := uint32(row) << 1
		userPage := pfec&pfecNotSMAP != 0 // RSVD slot holds the page's U/S here
		// Protection keys apply to data accesses to user-mode addresses;
		// WD stops writes by user accesses, and supervisor ones if CR0.WP.
		check := pfec&x86.PFErrFetch == 0 && userPage
		checkWrite := check && pfec&x86.PFErrWrite != 0 && (pfec&x86.PFErrUser != 0 || wp)
		var b uint32
		if check {
			b |= 1
		}
		if checkWrite {
			b |= 2
		}
		p.pkru |= b << pfec
	}
}

// check returns the #PF error code bits (P, PK) a permission fault sets, or
// 0 when access is allowed. pfec holds W/R, U/S and I/D of the access;
// notSMAP says RFLAGS.AC overrides SMAP for this (explicit) access.
func (p *permissions) check(acc uint8, pkey uint8, pfec uint32, notSMAP bool, pkru uint32) uint32 {
	idx := pfec
	if notSMAP {
		idx |= pfecNotSMAP
	}
	fault := (p.fault[(idx>>1)&15] >> (acc & 7)) & 1
	code := uint32(x86.PFErrPresent)
	if p.pkru != 0 {
		bits := (pkru >> (2 * uint32(pkey&15))) & 3
		off := pfec &^ 1
		if acc&accUser != 0 {
			off |= pfecNotSMAP
		}
		bits &= p.pkru >> off
		if bits != 0 {
			fault = 1
			code |= x86.PFErrPK
		}
	}
	if fault == 0 {
		return 0
	}
	return code
}
