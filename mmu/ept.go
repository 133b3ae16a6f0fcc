package mmu

import (
	"fmt"

	"walkvm/x86"
)

// EPTFeatures are the EPT capabilities of the (virtual) CPU, as
// IA32_VMX_EPT_VPID_CAP reports them.
type EPTFeatures struct {
	MaxPhyAddr uint8 // 0 means 36
	GBPages    bool  // 1-GByte EPT pages (bit 17)
	ExecOnly   bool  // execute-only translations (bit 0)
}

// EPT exit-qualification bits of an EPT violation (SDM Vol. 3C Table 28-7).
const (
	EPTQualRead       = 1 << 0 // the access was a data read
	EPTQualWrite      = 1 << 1 // the access was a data write
	EPTQualFetch      = 1 << 2 // the access was an instruction fetch
	EPTQualReadable   = 1 << 3 // AND of the R bits of the entries used
	EPTQualWritable   = 1 << 4 // AND of the W bits
	EPTQualExecutable = 1 << 5 // AND of the X bits
)

// EPTViolation is the EPT counterpart of a #PF: a not-present entry or an
// access its rights do not allow. Qualification has the EPTQual* bits as the
// exit qualification would (bits 7 and 8, about the guest linear address,
// are for the caller to add).
type EPTViolation struct {
	GPA           uint64
	Qualification uint64
	Level         uint8 // level of the entry that stopped the walk (the leaf for rights)
}

func (e *EPTViolation) Error() string {
	return fmt.Sprintf("EPT violation at gpa %#x (qualification %#x)", e.GPA, e.Qualification)
}

// EPTMisconfig is an EPT entry with reserved bits set, a write-only or
// write-execute (or, without ExecOnly, execute-only) permission, or a leaf
// with a reserved memory type (SDM Vol. 3C §29.3.3.1).
type EPTMisconfig struct {
	GPA   uint64
	Level uint8
	Entry uint64
}

func (e *EPTMisconfig) Error() string {
	return fmt.Sprintf("EPT misconfiguration at gpa %#x: level-%d entry %#x", e.GPA, e.Level, e.Entry)
}

// ResetEPT prepares c to translate guest-physical addresses through the EPT
// paging structures that EPTP (the VMCS's EPT pointer) names. Paging reports
// x86.Paging4Level or x86.Paging5Level for 4- or 5-level EPT.
func (c *Context) ResetEPT(eptp uint64, f EPTFeatures) error {
	c.gen++
	m, err := Features{MaxPhyAddr: f.MaxPhyAddr}.maxPhyAddr()
	if err != nil {
		return err
	}
	if mt := eptp & 7; mt != 0 && mt != 6 {
		return fmt.Errorf("mmu: EPTP %#x: memory type %d is neither UC nor WB", eptp, mt)
	}
	c.valid = false
	switch (eptp >> 3) & 7 {
	case 3:
		c.paging, c.format = x86.Paging4Level, &formatEPT4
	case 4:
		c.paging, c.format = x86.Paging5Level, &formatEPT5
	default:
		return fmt.Errorf("mmu: EPTP %#x: page-walk length %d", eptp, (eptp>>3)&7+1)
	}
	c.root = eptp & bits(12, uint(m)-1)
	c.ad = eptp&(1<<6) != 0
	c.execOnly = f.ExecOnly
	c.leaf = [2]uint8{1 << 1, 1<<1 | c.format.LargeLevels}
	c.long64 = false
	c.pse36Bits = 0

	// KVM's __reset_rsvds_bits_mask_ept.
	high := bits(uint(m), 51)
	var gb uint64
	if !f.GBPages {
		gb = eptPS
	}
	c.rsvd = [2][8]uint64{}
	c.rsvd[0][5] = high | bits(3, 7)
	c.rsvd[1][5] = c.rsvd[0][5]
	c.rsvd[0][4] = high | bits(3, 7)
	c.rsvd[1][4] = c.rsvd[0][4]
	c.rsvd[0][3] = high | bits(3, 6) | gb
	c.rsvd[1][3] = high | bits(12, 29) | gb
	c.rsvd[0][2] = high | bits(3, 6)
	c.rsvd[1][2] = high | bits(12, 20)
	c.rsvd[0][1] = high
	c.rsvd[1][1] = high // bit 7 of an EPT PTE is ignored
	return nil
}

// eptMisconfigured reports an entry whose bits 2:0 or (leaf) memory type
// is not allowed.
func (c *Context) eptMisconfigured(e uint64, leaf bool) bool {
	switch e & eptRWX {
	case eptW, eptW | eptX:
		return true
	case eptX:
		if !c.execOnly {
			return true
		}
	}
	if leaf {
		switch (e >> 3) & 7 {
		case 2, 3, 7:
			return true
		}
	}
	return false
}

// eptNeed is the right an access needs under EPT.
func eptNeed(acc x86.Access) Perm {
	switch {
	case acc&x86.AccessWrite != 0:
		return PermWrite
	case acc&x86.AccessFetch != 0:
		return PermExec
	}
	return PermRead
}

// eptViolation fills w.EPTViolation for the walk stopped at level, with the
// rights AND-ed so far (bits 5:3 of the qualification).
func eptViolation(w *Walk, level uint8, accBits uint64) error {
	q := uint64(EPTQualRead)
	switch eptNeed(w.Access) {
	case PermWrite:
		q = EPTQualWrite
	case PermExec:
		q = EPTQualFetch
	}
	w.EPTViolation = EPTViolation{GPA: w.Addr, Qualification: q | (accBits&eptRWX)<<3, Level: level}
	return &w.EPTViolation
}
