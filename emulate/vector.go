package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FPUState is the x87, SSE and AVX state the emulator works on. Its first
// fields follow KVM's struct kvm_fpu, which is the FXSAVE image: the x87
// registers are in stack order (FPR[i] is ST(i), 80 bits in the low 10
// bytes), the tag word is the abridged FXSAVE one (bit i set: physical
// register R(i) is not empty). YMMH adds the AVX upper halves from XSAVE.
type FPUState struct {
	FPR        [8][16]byte
	FCW, FSW   uint16
	FTWX       uint8
	LastOpcode uint16 // FOP: 11 bits
	LastIP     uint64 // FIP (64-bit FXSAVE format: the offset, no selector)
	LastDP     uint64 // FDP
	XMM        [16][16]byte
	MXCSR      uint32
	MXCSRMask  uint32
	// YMMH holds bits 255:128 of YMM0-15 (XSAVE component 2).
	YMMH [16][16]byte
	// HasYMM says YMMH is real: the state came from XSAVE. AVX instructions
	// are not emulated without it.
	HasYMM bool
}

// Sizes and offsets of the KVM and XSAVE images (SDM Vol. 1 §10.5.1,
// §13.4, §13.5.3; linux/arch/x86/include/uapi/asm/kvm.h).
const (
	KVMFPUSize   = 416 // sizeof(struct kvm_fpu)
	XSAVEMinSize = 832 // legacy region, header and YMM_Hi128

	xsaveXMM       = 160
	xsaveHeader    = 512
	xsaveYMMHi128  = 576
	xstateX87      = 1 << 0
	xstateSSE      = 1 << 1
	xstateAVX      = 1 << 2
	xcompCompacted = 1 << 63
)

// UnmarshalKVMFPU loads the state from a struct kvm_fpu image
// (KVM_GET_FPU). YMM upper halves are not part of it: HasYMM becomes false.
func (f *FPUState) UnmarshalKVMFPU(b []byte) error {
	if len(b) < KVMFPUSize {
		return fmt.Errorf("emulate: kvm_fpu image is %d bytes, want %d", len(b), KVMFPUSize)
	}
	le := binary.LittleEndian
	for i := range f.FPR {
		copy(f.FPR[i][:], b[16*i:])
	}
	f.FCW = le.Uint16(b[128:])
	f.FSW = le.Uint16(b[130:])
	f.FTWX = b[132]
	f.LastOpcode = le.Uint16(b[134:])
	f.LastIP = le.Uint64(b[136:])
	f.LastDP = le.Uint64(b[144:])
	for i := range f.XMM {
		copy(f.XMM[i][:], b[152+16*i:])
	}
	f.MXCSR = le.Uint32(b[408:])
	f.MXCSRMask = 0
	f.YMMH = [16][16]byte{}
	f.HasYMM = false
	return nil
}

// MarshalKVMFPU writes the state as a struct kvm_fpu image (KVM_SET_FPU).
func (f *FPUState) MarshalKVMFPU(b []byte) error {
	if len(b) < KVMFPUSize {
		return fmt.Errorf("emulate: kvm_fpu image is %d bytes, want %d", len(b), KVMFPUSize)
	}
	le := binary.LittleEndian
	for i := range f.FPR {
		copy(b[16*i:16*i+16], f.FPR[i][:])
	}
	le.PutUint16(b[128:], f.FCW)
	le.PutUint16(b[130:], f.FSW)
	b[132] = f.FTWX
	b[133] = 0
	le.PutUint16(b[134:], f.LastOpcode)
	le.PutUint64(b[136:], f.LastIP)
	le.PutUint64(b[144:], f.LastDP)
	for i := range f.XMM {
		copy(b[152+16*i:152+16*i+16], f.XMM[i][:])
	}
	le.PutUint32(b[408:], f.MXCSR)
	le.PutUint32(b[412:], 0)
	return nil
}

// ErrCompactedXSAVE is returned for an XSAVE image in the compacted format;
// KVM_GET_XSAVE produces the standard one.
var ErrCompactedXSAVE = errors.New("emulate: compacted XSAVE image not supported")

// UnmarshalXSAVE loads the state from a standard-format XSAVE image
// (KVM_GET_XSAVE / KVM_GET_XSAVE2). A component whose XSTATE_BV bit is clear
// is in its initial configuration (SDM Vol. 1 §13.6): x87 FCW 037FH and all
// registers empty, XMM and YMM zero. MXCSR is always taken from the image.
func (f *FPUState) UnmarshalXSAVE(b []byte) error {
	if len(b) < XSAVEMinSize {
		return fmt.Errorf("emulate: XSAVE image is %d bytes, want at least %d", len(b), XSAVEMinSize)
	}
	le := binary.LittleEndian
	bv := le.Uint64(b[xsaveHeader:])
	if le.Uint64(b[xsaveHeader+8:])&xcompCompacted != 0 {
		return ErrCompactedXSAVE
	}
	if bv&xstateX87 != 0 {
		f.FCW = le.Uint16(b[0:])
		f.FSW = le.Uint16(b[2:])
		f.FTWX = b[4]
		f.LastOpcode = le.Uint16(b[6:])
		f.LastIP = le.Uint64(b[8:])
		f.LastDP = le.Uint64(b[16:])
		for i := range f.FPR {
			copy(f.FPR[i][:], b[32+16*i:32+16*i+16])
		}
	} else {
		f.FCW, f.FSW, f.FTWX, f.LastOpcode, f.LastIP, f.LastDP = fcwInit, 0, 0, 0, 0, 0
		f.FPR = [8][16]byte{}
	}
	f.MXCSR = le.Uint32(b[24:])
	f.MXCSRMask = le.Uint32(b[28:])
	if bv&xstateSSE != 0 {
		for i := range f.XMM {
			copy(f.XMM[i][:], b[xsaveXMM+16*i:])
		}
	} else {
		f.XMM = [16][16]byte{}
	}
	if bv&xstateAVX != 0 {
		for i := range f.YMMH {
			copy(f.YMMH[i][:], b[xsaveYMMHi128+16*i:])
		}
	} else {
		f.YMMH = [16][16]byte{}
	}
	f.HasYMM = true
	return nil
}

// MarshalXSAVE writes the x87, SSE and (if HasYMM) AVX components into a
// standard-format XSAVE image that holds the rest of the guest's state
// (fetched with KVM_GET_XSAVE), and marks them present in XSTATE_BV, ready
// for KVM_SET_XSAVE.
func (f *FPUState) MarshalXSAVE(b []byte) error {
	if len(b) < XSAVEMinSize {
		return fmt.Errorf("emulate: XSAVE image is %d bytes, want at least %d", len(b), XSAVEMinSize)
	}
	le := binary.LittleEndian
	if le.Uint64(b[xsaveHeader+8:])&xcompCompacted != 0 {
		return ErrCompactedXSAVE
	}
	le.PutUint16(b[0:], f.FCW)
	le.PutUint16(b[2:], f.FSW)
	b[4], b[5] = f.FTWX, 0
	le.PutUint16(b[6:], f.LastOpcode)
	le.PutUint64(b[8:], f.LastIP)
	le.PutUint64(b[16:], f.LastDP)
	le.PutUint32(b[24:], f.MXCSR)
	if f.MXCSRMask != 0 {
		le.PutUint32(b[28:], f.MXCSRMask)
	}
	for i := range f.FPR {
		copy(b[32+16*i:32+16*i+16], f.FPR[i][:])
	}
	for i := range f.XMM {
		copy(b[xsaveXMM+16*i:xsaveXMM+16*i+16], f.XMM[i][:])
	}
	bv := uint64(xstateX87 | xstateSSE)
	if f.HasYMM {
		for i := range f.YMMH {
			copy(b[xsaveYMMHi128+16*i:xsaveYMMHi128+16*i+16], f.YMMH[i][:])
		}
		bv |= xstateAVX
	}
	le.PutUint64(b[xsaveHeader:], le.Uint64(b[xsaveHeader:])|bv)
	return nil
}

// FPUSource provides the vector state when an instruction first needs it,
// typically with KVM_GET_XSAVE then UnmarshalXSAVE.
type FPUSource interface {
	LoadFPU(f *FPUState) error
}

// Vector caches the lazily loaded vector state of one vCPU across Steps.
// The vCPU keeps one per vCPU, calls Invalidate after the guest ran, and
// after a Step writes the state back (KVM_SET_XSAVE) only if Dirty, then
// calls Clean.
type Vector struct {
	Source FPUSource
	f      FPUState
	loaded bool
	dirty  bool
}

// State returns the vector state, loading it from Source on first use.
func (v *Vector) State() (*FPUState, error) {
	if !v.loaded {
		if v.Source == nil {
			return nil, errors.New("emulate: no vector state source")
		}
		if err := v.Source.LoadFPU(&v.f); err != nil {
			return nil, fmt.Errorf("emulate: load vector state: %w", err)
		}
		v.loaded = true
	}
	return &v.f, nil
}

// Set installs f as the loaded state (for callers that fetched it eagerly,
// and for tests).
func (v *Vector) Set(f *FPUState) { v.f, v.loaded, v.dirty = *f, true, false }

// Loaded reports whether the state has been loaded since Invalidate.
func (v *Vector) Loaded() bool { return v.loaded }

// Dirty reports whether an instruction changed the state since Clean.
func (v *Vector) Dirty() bool { return v.dirty }

// MarkDirty records that the state changed.
func (v *Vector) MarkDirty() { v.dirty = true }

// Clean records that the state was written back.
func (v *Vector) Clean() { v.dirty = false }

// Invalidate forgets the cached state: the guest ran and may have changed
// it. A dirty state that was not written back is lost.
func (v *Vector) Invalidate() { v.loaded, v.dirty = false, false }
