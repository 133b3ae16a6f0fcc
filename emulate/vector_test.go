package emulate

import (
	"encoding/binary"
	"testing"
)

func TestXSAVERoundTrip(t *testing.T) {
	var f FPUState
	f.FCW, f.FSW, f.FTWX, f.LastOpcode, f.LastIP, f.LastDP, f.MXCSR = 0x27F, 0x3800, 0x81, 0x123, 0x1000, 0x2000, 0x1FA0
	for i := range f.FPR {
		f.FPR[i][0] = byte(i + 1)
	}
	for i := range f.XMM {
		f.XMM[i][15] = byte(i + 1)
		f.YMMH[i][0] = byte(i + 0x41)
	}
	f.HasYMM = true
	img := make([]byte, 4096)
	if err := f.MarshalXSAVE(img); err != nil {
		t.Fatal(err)
	}
	if bv := binary.LittleEndian.Uint64(img[512:]); bv&7 != 7 {
		t.Errorf("XSTATE_BV %#x", bv)
	}
	if img[160+15] != 1 || img[576] != 0x41 || img[32] != 1 {
		t.Errorf("layout: xmm0[15]=%#x ymmh0[0]=%#x st0[0]=%#x", img[160+15], img[576], img[32])
	}
	var g FPUState
	if err := g.UnmarshalXSAVE(img); err != nil {
		t.Fatal(err)
	}
	if g != f {
		t.Errorf("XSAVE round trip: got %+v", g)
	}
	// Components absent from XSTATE_BV are in their initial state.
	binary.LittleEndian.PutUint64(img[512:], 0)
	if err := g.UnmarshalXSAVE(img); err != nil {
		t.Fatal(err)
	}
	if g.FCW != fcwInit || g.FTWX != 0 || g.XMM[3] != [16]byte{} || g.YMMH[3] != [16]byte{} || g.MXCSR != f.MXCSR {
		t.Errorf("init state: %+v", g)
	}
	binary.LittleEndian.PutUint64(img[520:], 1<<63)
	if err := g.UnmarshalXSAVE(img); err != ErrCompactedXSAVE {
		t.Errorf("compacted image: %v", err)
	}

	kvm := make([]byte, KVMFPUSize)
	if err := f.MarshalKVMFPU(kvm); err != nil {
		t.Fatal(err)
	}
	var h FPUState
	if err := h.UnmarshalKVMFPU(kvm); err != nil {
		t.Fatal(err)
	}
	want := f
	want.YMMH, want.HasYMM = [16][16]byte{}, false
	if h != want {
		t.Errorf("kvm_fpu round trip: got %+v", h)
	}
	if binary.LittleEndian.Uint16(kvm[128:]) != 0x27F || kvm[132] != 0x81 || binary.LittleEndian.Uint32(kvm[408:]) != 0x1FA0 {
		t.Errorf("kvm_fpu layout")
	}
}

func TestVectorLazyLoad(t *testing.T) {
	src := &vecSource{f: FPUState{FCW: fcwInit}}
	v := &Vector{Source: src}
	if v.Loaded() || v.Dirty() {
		t.Fatal("fresh Vector loaded or dirty")
	}
	for range 2 {
		if _, err := v.State(); err != nil {
			t.Fatal(err)
		}
	}
	if src.loads != 1 {
		t.Errorf("%d loads, want 1", src.loads)
	}
	v.MarkDirty()
	v.Clean()
	v.Invalidate()
	if _, err := v.State(); err != nil || src.loads != 2 {
		t.Errorf("reload after Invalidate: %v, %d loads", err, src.loads)
	}
}
