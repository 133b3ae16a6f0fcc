package mmu

import (
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"
)

// racyMemory is a CASMemory over a SliceMemory on which "another vCPU"
// rewrites an entry between the walk's read and its compare-and-exchange,
// the first `races` times the walker swaps that entry: it counts in the
// entry's ignored bits 11:9.
type racyMemory struct {
	*SliceMemory
	entry   uint64 // the entry the other vCPU writes
	races   int
	swaps   int
	retries int
}

func (m *racyMemory) cas64(gpa uint64, old, new uint64) bool {
	off := gpa - m.Base
	return atomic.CompareAndSwapUint64((*uint64)(unsafe.Pointer(&m.Data[off])), old, new)
}

func (m *racyMemory) CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error) {
	m.swaps++
	if gpa == m.entry && m.races > 0 {
		m.races--
		m.retries++
		v := binary.LittleEndian.Uint64(m.Data[gpa-m.Base:])
		binary.LittleEndian.PutUint64(m.Data[gpa-m.Base:], v&^(7<<9)|(v>>9+1)&7<<9)
	}
	return m.cas64(gpa, old, new), nil
}

func (m *racyMemory) CompareAndSwapUint32(gpa uint64, old, new uint32) (bool, error) {
	off := gpa - m.Base
	return atomic.CompareAndSwapUint32((*uint32)(unsafe.Pointer(&m.Data[off])), old, new), nil
}

// The walker sets accessed/dirty flags with a compare-and-exchange and
// walks again when another vCPU changed an entry meanwhile: that vCPU's
// change is kept and the flags still end up set.
func TestAccessedDirtyCompareAndSwap(t *testing.T) {
	tb := newTables(8, 9)
	root := tb.alloc()
	const la, target = 0x400123, 0x9000
	gpas := tb.mapAddr(root, 4, 1, la, target, 3, 3, 3, 3)
	pte := gpas[3]
	mem := &racyMemory{SliceMemory: tb.mem, entry: pte, races: 3}
	c := mustReset(t, state4(root), Features{MaxPhyAddr: 48})
	var w Walk
	if err := c.Walk(mem, la, Write|SetAccessedDirty, &w); err != nil {
		t.Fatal(err)
	}
	if mem.retries != 3 || w.GPA != target|0x123 {
		t.Errorf("%d retries, GPA %#x", mem.retries, w.GPA)
	}
	got := tb.get(pte)
	if want := uint64(target | 3 | 3<<9 | 1<<5 | 1<<6); got != want {
		t.Errorf("PTE %#x, want %#x (the other vCPU's count, accessed and dirty)", got, want)
	}
	for _, g := range gpas[:3] {
		if tb.get(g)&(1<<5) == 0 {
			t.Errorf("entry at %#x not accessed: %#x", g, tb.get(g))
		}
	}

	// A guest whose entry changes at every attempt stops the walk.
	mem.races = maxWalkRetries + 1
	tb.put(pte, target|3)
	err := c.Walk(mem, la, Write|SetAccessedDirty, &w)
	if err == nil || !strings.Contains(err.Error(), "kept changing") {
		t.Errorf("err %v, want the walk to give up", err)
	}
}
