package mmu

import (
	"walkvm/x86"
)

// A second, deliberately naive translation written straight from the SDM
// (Vol. 3A §4.3-4.7, Vol. 3C §29.3), one branch per mode and rule, sharing
// no tables with the walker. Tests and the fuzz target compare the two.

type refResult struct {
	ok       bool
	gpa      uint64
	size     uint64
	perm     Perm
	vector   int // -1 when ok or memErr
	code     uint32
	memErr   bool
	eptMisc  bool
	eptQual  uint64
	eptFault bool
}

func refBits(lo, hi uint) uint64 {
	var m uint64
	for b := lo; b <= hi && b < 64; b++ {
		m |= 1 << b
	}
	return m
}

func refWalk(mem Memory, s *State, f Features, la uint64, acc x86.Access) refResult {
	if err := x86.CheckModeRegs(s.CR0, s.CR4, s.EFER); err != nil {
		panic(err)
	}
	mode := x86.PagingOf(s.CR0, s.CR4, s.EFER)
	M := uint(f.MaxPhyAddr)
	if M == 0 {
		M = 36
	}
	write := acc&x86.AccessWrite != 0
	fetch := acc&x86.AccessFetch != 0
	implicit := acc&x86.AccessImplicit != 0
	cpl := s.CPL
	if s.RFLAGS&x86.FlagVM != 0 && s.CR0&x86.CR0PE != 0 {
		cpl = 3
	}
	user := cpl == 3 && !implicit
	nxe := s.EFER&x86.EFERNXE != 0
	pae := s.CR4&x86.CR4PAE != 0
	smep := s.CR4&x86.CR4SMEP != 0
	smap := s.CR4&x86.CR4SMAP != 0
	wp := s.CR0&x86.CR0WP != 0
	ac := s.RFLAGS&x86.FlagAC != 0
	lma := s.EFER&x86.EFERLMA != 0

	if mode == x86.PagingNone {
		return refResult{ok: true, gpa: la & 0xFFFFFFFF, size: 4096, perm: PermRead | PermWrite | PermExec | PermUser, vector: -1}
	}
	if lma && s.CSL {
		width := uint(48)
		if mode == x86.Paging5Level {
			width = 57
		}
		top := la >> (width - 1)
		if top != 0 && top != (1<<(64-width+1))-1 {
			if acc&x86.AccessStack != 0 {
				return refResult{vector: x86.VectorSS}
			}
			return refResult{vector: x86.VectorGP}
		}
	} else {
		la &= 0xFFFFFFFF
	}

	base := uint32(0)
	if write {
		base |= x86.PFErrWrite
	}
	if user {
		base |= x86.PFErrUser
	}
	if fetch && (smep || (pae && nxe)) {
		base |= x86.PFErrFetch
	}
	notPresent := refResult{vector: x86.VectorPF, code: base}
	rsvd := refResult{vector: x86.VectorPF, code: base | x86.PFErrPresent | x86.PFErrReserved}
	memErr := refResult{vector: -1, memErr: true}

	rw, us, xd := true, true, false
	var leaf, pa, size uint64

	switch mode {
	case x86.Paging32:
		pdeAddr := s.CR3&0xFFFFF000 | (la>>22)<<2
		v, err := mem.ReadUint32(pdeAddr)
		if err != nil {
			return memErr
		}
		pde := uint64(v)
		if pde&1 == 0 {
			return notPresent
		}
		rw = pde&2 != 0
		us = pde&4 != 0
		if s.CR4&x86.CR4PSE != 0 && pde&0x80 != 0 {
			n := uint(0)
			if f.PSE36 {
				n = min(M, 40) - 32
			}
			if pde&refBits(13+n, 21) != 0 {
				return rsvd
			}
			hi := (pde >> 13) & (1<<n - 1)
			pa = pde&0xFFC00000 | hi<<32
			size = 4 << 20
			leaf = pde
		} else {
			v, err := mem.ReadUint32(pde&0xFFFFF000 | (la>>12&0x3FF)<<2)
			if err != nil {
				return memErr
			}
			pte := uint64(v)
			if pte&1 == 0 {
				return notPresent
			}
			rw = rw && pte&2 != 0
			us = us && pte&4 != 0
			pa = pte & 0xFFFFF000
			size = 4096
			leaf = pte
		}

	case x86.PagingPAE:
		idx := la >> 30 & 3
		var pdpte uint64
		if s.HasPDPTEs {
			pdpte = s.PDPTEs[idx]
		} else {
			v, err := mem.ReadUint64(s.CR3&0xFFFFFFE0 + idx*8)
			if err != nil {
				return memErr
			}
			pdpte = v
		}
		if pdpte&1 == 0 {
			return notPresent
		}
		if pdpte&(refBits(1, 2)|refBits(5, 8)|refBits(M, 63)) != 0 {
			return rsvd
		}
		table := pdpte & refBits(12, M-1)
		for level := 2; level >= 1; level-- {
			sh := uint(12 + 9*(level-1))
			e, err := mem.ReadUint64(table + (la>>sh&511)*8)
			if err != nil {
				return memErr
			}
			if e&1 == 0 {
				return notPresent
			}
			r := refBits(M, 62)
			if !nxe {
				r |= 1 << 63
			}
			large := level == 2 && e&0x80 != 0
			if large {
				r |= refBits(13, 20)
			}
			if e&r != 0 {
				return rsvd
			}
			rw = rw && e&2 != 0
			us = us && e&4 != 0
			xd = xd || e>>63 != 0
			if level == 1 || large {
				pa = e & refBits(sh, M-1)
				size = 1 << sh
				leaf = e
				break
			}
			table = e & refBits(12, M-1)
		}

	case x86.Paging4Level, x86.Paging5Level:
		top := 4
		if mode == x86.Paging5Level {
			top = 5
		}
		table := s.CR3 & refBits(12, 51)
		for level := top; level >= 1; level-- {
			sh := uint(12 + 9*(level-1))
			e, err := mem.ReadUint64(table + (la>>sh&511)*8)
			if err != nil {
				return memErr
			}
			if e&1 == 0 {
				return notPresent
			}
			r := refBits(M, 51)
			if !nxe {
				r |= 1 << 63
			}
			ps := e&0x80 != 0
			large := false
			switch level {
			case 5, 4:
				r |= 0x80
				if f.AMD {
					r |= 0x100
				}
			case 3:
				if ps {
					if !f.GBPages {
						return rsvd
					}
					r |= refBits(13, 29)
					large = true
				}
			case 2:
				if ps {
					r |= refBits(13, 20)
					large = true
				}
			}
			if e&r != 0 {
				return rsvd
			}
			rw = rw && e&2 != 0
			us = us && e&4 != 0
			xd = xd || e>>63 != 0
			if level == 1 || large {
				pa = e & refBits(sh, M-1)
				size = 1 << sh
				leaf = e
				break
			}
			table = e & refBits(12, M-1)
		}
	}

	// SDM Vol. 3A §4.6.
	fault := false
	if user {
		switch {
		case !us:
			fault = true
		case write && !rw:
			fault = true
		case fetch && xd:
			fault = true
		}
	} else if fetch {
		fault = xd || (us && smep)
	} else {
		if us && smap && (implicit || !ac) {
			fault = true
		}
		if write && !rw && wp {
			fault = true
		}
	}
	pk := false
	if lma && s.CR4&x86.CR4PKE != 0 && us && !fetch {
		key := leaf >> 59 & 15
		ad := s.PKRU>>(2*key)&1 != 0
		wd := s.PKRU>>(2*key+1)&1 != 0
		if ad || (wd && write && (user || wp)) {
			pk = true
			fault = true
		}
	}
	if fault {
		code := base | x86.PFErrPresent
		if pk {
			code |= x86.PFErrPK
		}
		return refResult{vector: x86.VectorPF, code: code}
	}
	perm := PermRead
	if rw {
		perm |= PermWrite
	}
	if us {
		perm |= PermUser
	}
	if !xd {
		perm |= PermExec
	}
	return refResult{ok: true, gpa: pa | la&(size-1), size: size, perm: perm, vector: -1}
}

func refWalkEPT(mem Memory, eptp uint64, f EPTFeatures, gpa uint64, acc x86.Access) refResult {
	M := uint(f.MaxPhyAddr)
	if M == 0 {
		M = 36
	}
	top := int(eptp>>3&7) + 1
	table := eptp & refBits(12, M-1)
	r, w, x := true, true, true
	var qual uint64
	switch {
	case acc&x86.AccessWrite != 0:
		qual = EPTQualWrite
	case acc&x86.AccessFetch != 0:
		qual = EPTQualFetch
	default:
		qual = EPTQualRead
	}
	rights := func() uint64 {
		var q uint64
		if r {
			q |= EPTQualReadable
		}
		if w {
			q |= EPTQualWritable
		}
		if x {
			q |= EPTQualExecutable
		}
		return q
	}
	misc := refResult{vector: -1, eptMisc: true}
	var pa, size uint64
	for level := top; level >= 1; level-- {
		sh := uint(12 + 9*(level-1))
		e, err := mem.ReadUint64(table + (gpa>>sh&511)*8)
		if err != nil {
			return refResult{vector: -1, memErr: true}
		}
		r = r && e&1 != 0
		w = w && e&2 != 0
		x = x && e&4 != 0
		if e&7 == 0 {
			return refResult{vector: -1, eptFault: true, eptQual: qual | rights()}
		}
		switch e & 7 {
		case 2, 6:
			return misc
		case 4:
			if !f.ExecOnly {
				return misc
			}
		}
		if e&refBits(M, 51) != 0 {
			return misc
		}
		large := e&0x80 != 0 && (level == 2 || level == 3)
		switch {
		case level >= 4:
			if e&refBits(3, 7) != 0 {
				return misc
			}
		case large && level == 3:
			if !f.GBPages || e&refBits(12, 29) != 0 {
				return misc
			}
		case large && level == 2:
			if e&refBits(12, 20) != 0 {
				return misc
			}
		case level > 1:
			if e&refBits(3, 6) != 0 {
				return misc
			}
		}
		if level == 1 || large {
			switch e >> 3 & 7 {
			case 2, 3, 7:
				return misc
			}
			pa = e & refBits(sh, M-1)
			size = 1 << sh
			break
		}
		table = e & refBits(12, M-1)
	}
	var ok bool
	switch {
	case acc&x86.AccessWrite != 0:
		ok = w
	case acc&x86.AccessFetch != 0:
		ok = x
	default:
		ok = r
	}
	if !ok {
		return refResult{vector: -1, eptFault: true, eptQual: qual | rights()}
	}
	var perm Perm
	if r {
		perm |= PermRead
	}
	if w {
		perm |= PermWrite
	}
	if x {
		perm |= PermExec
	}
	return refResult{ok: true, gpa: pa | gpa&(size-1), size: size, perm: perm, vector: -1}
}
