package mmu

import (
	"errors"
	"testing"

	"walkvm/x86"
)

// Control-register sets for each mode, as a guest would have them.
const (
	cr0Prot   = x86.CR0PE | x86.CR0ET
	cr0Paging = x86.CR0PE | x86.CR0ET | x86.CR0PG | x86.CR0WP
	eferLong  = x86.EFERLME | x86.EFERLMA | x86.EFERNXE
)

func state32(cr3 uint64) *State {
	return &State{CR0: cr0Paging, CR3: cr3, CR4: x86.CR4PSE}
}

func statePAE(cr3 uint64) *State {
	return &State{CR0: cr0Paging, CR3: cr3, CR4: x86.CR4PAE, EFER: x86.EFERNXE}
}

func state4(cr3 uint64) *State {
	return &State{CR0: cr0Paging, CR3: cr3, CR4: x86.CR4PAE, EFER: eferLong, CSL: true}
}

func state5(cr3 uint64) *State {
	s := state4(cr3)
	s.CR4 |= x86.CR4LA57
	return s
}

// tables builds paging structures in a SliceMemory. Tables are allocated
// from 0x1000 upwards, one 4-KByte page each.
type tables struct {
	mem   *SliceMemory
	next  uint64
	bytes int // entry size
	shift [6]uint
	mask  uint64
}

func newTables(entryBytes int, indexBits uint) *tables {
	t := &tables{mem: NewSliceMemory(0, 4<<20), next: 0x1000, bytes: entryBytes, mask: 1<<indexBits - 1}
	for l := 1; l <= 5; l++ {
		t.shift[l] = 12 + indexBits*uint(l-1)
	}
	return t
}

func (t *tables) alloc() uint64 {
	p := t.next
	t.next += 0x1000
	return p
}

func (t *tables) put(gpa, v uint64) {
	var err error
	if t.bytes == 4 {
		err = t.mem.WriteUint32(gpa, uint32(v))
	} else {
		err = t.mem.WriteUint64(gpa, v)
	}
	if err != nil {
		panic(err)
	}
}

func (t *tables) get(gpa uint64) uint64 {
	if t.bytes == 4 {
		v, _ := t.mem.ReadUint32(gpa)
		return uint64(v)
	}
	v, _ := t.mem.ReadUint64(gpa)
	return v
}

// mapAddr maps la through the tables rooted at root, from level top down to
// leaf. flags[i] are the flag bits of the entry at level top-i; the leaf
// entry gets target | flags[last]. Missing intermediate tables are created;
// existing entries are reused (their flags replaced). It returns the entry
// addresses, root first.
func (t *tables) mapAddr(root uint64, top, leaf int, la, target uint64, flags ...uint64) []uint64 {
	if len(flags) != top-leaf+1 {
		panic("mapAddr: one flags value per level")
	}
	var gpas []uint64
	table := root
	for i, l := 0, top; l >= leaf; i, l = i+1, l-1 {
		egpa := table + ((la>>t.shift[l])&t.mask)*uint64(t.bytes)
		gpas = append(gpas, egpa)
		if l == leaf {
			t.put(egpa, target|flags[i])
			break
		}
		next := t.get(egpa) & 0xFFFFFFFFFF000
		if next == 0 {
			next = t.alloc()
		}
		t.put(egpa, next|flags[i])
		table = next
	}
	return gpas
}

// pfCode returns the #PF error code of err, failing if err is not a #PF.
func pfCode(t *testing.T, err error) uint32 {
	t.Helper()
	var ex *x86.Exception
	if !errors.As(err, &ex) || ex.Vector != x86.VectorPF {
		t.Fatalf("want #PF, got %v", err)
	}
	return ex.ErrorCode
}

func mustReset(t testing.TB, s *State, f Features) *Context {
	t.Helper()
	c := new(Context)
	if err := c.Reset(s, f); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	return c
}
