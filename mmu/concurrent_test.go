package mmu

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"walkvm/memory"
	"walkvm/x86"
)

// Several vCPUs walk the same paging structures at once, each setting
// accessed and dirty flags as its accesses commit, while the guest's OS
// sets a software-available bit in the same entries with its own
// compare-and-exchange. Every update must survive: A in every entry walked,
// D in every leaf written, and the OS's bit in every entry it marked. A
// walker that wrote back entries with plain stores would lose some of them
// (and the race detector would flag it).
func TestConcurrentAccessedDirty(t *testing.T) {
	const (
		pages   = 16
		walkers = 4
		rounds  = 100
		laBase  = 0x40_0000
		osBit   = 1 << 9 // ignored by the CPU, available to software
	)
	for _, c := range []struct {
		name      string
		entry     int
		bits      uint
		top       int
		state     func(uint64) *State
		viaRAM    bool // memory.RAM rather than the SliceMemory fake
		pteFlags  uint64
		walkFlags []uint64
	}{
		{"4-level, memory.RAM", 8, 9, 4, state4, true, fPRW, []uint64{fPRW, fPRW, fPRW}},
		{"4-level, SliceMemory", 8, 9, 4, state4, false, fPRW, []uint64{fPRW, fPRW, fPRW}},
		{"32-bit, memory.RAM", 4, 10, 2, state32, true, fPRW, []uint64{fPRW}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := newTables(c.entry, c.bits)
			root := tb.alloc()
			var leaves [pages]uint64
			var all []uint64 // every entry any walk uses
			seen := map[uint64]bool{}
			for i := range pages {
				flags := append(append([]uint64{}, c.walkFlags...), c.pteFlags)
				gpas := tb.mapAddr(root, c.top, 1, laBase+uint64(i)<<12, 0x20_0000+uint64(i)<<12, flags...)
				leaves[i] = gpas[len(gpas)-1]
				for _, g := range gpas {
					if !seen[g] {
						seen[g] = true
						all = append(all, g)
					}
				}
			}
			var mem Memory = tb.mem
			if c.viaRAM {
				mem = memory.NewRAMFromSlice(tb.mem.Data)
			}
			ctx := mustReset(t, c.state(root), Features{})
			for round := range rounds {
				// Clear A, D and the OS bit for the round.
				for _, g := range all {
					tb.put(g, tb.get(g)&^(fA|fD|osBit))
				}
				written := make([][pages]bool, walkers)
				var wg sync.WaitGroup
				errs := make(chan error, walkers+1)
				for v := range walkers {
					wg.Go(func() {
						var w Walk
						// Each vCPU walks every page in its own order,
						// writing a third of them.
						for k := range pages {
							i := (k*(2*v+1) + v + round) % pages
							acc := x86.AccessRead
							switch (i + v) % 3 {
							case 0:
								acc = x86.AccessWrite
								written[v][i] = true
							case 1:
								acc = x86.AccessFetch
							}
							if err := ctx.WalkCommit(mem, laBase+uint64(i)<<12|0x10, acc, &w); err != nil {
								errs <- fmt.Errorf("vCPU %d page %d %v: %w", v, i, acc, err)
								return
							}
						}
					})
				}
				// The OS marks every entry, racing the walkers.
				wg.Go(func() {
					for _, g := range all {
						if err := setBit(mem, c.entry, g, osBit); err != nil {
							errs <- err
							return
						}
					}
				})
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				for _, g := range all {
					if e := tb.get(g); e&fA == 0 || e&osBit == 0 {
						t.Fatalf("round %d: entry at %#x = %#x, want A and the OS bit", round, g, e)
					}
				}
				for i, g := range leaves {
					wantD := false
					for v := range walkers {
						wantD = wantD || written[v][i]
					}
					e := tb.get(g)
					if (e&fD != 0) != wantD {
						t.Fatalf("round %d: PTE %d = %#x, want D=%v", round, i, e, wantD)
					}
				}
			}
		})
	}
}

// setBit sets bit in the entry at gpa the way an OS would on a CPU that
// shares the tables: read, then compare-and-exchange, retrying on a change.
func setBit(mem Memory, entry int, gpa, bit uint64) error {
	for {
		var ok bool
		var err error
		if entry == 4 {
			var v uint32
			if v, err = mem.ReadUint32(gpa); err == nil {
				ok, err = mem.CompareAndSwapUint32(gpa, v, v|uint32(bit))
			}
		} else {
			var v uint64
			if v, err = mem.ReadUint64(gpa); err == nil {
				ok, err = mem.CompareAndSwapUint64(gpa, v, v|bit)
			}
		}
		if err != nil || ok {
			return err
		}
	}
}

// An entry that changes between the read and the compare-and-exchange makes
// WalkCommit walk again and set the flags on the new value; one that never
// stops changing is an error after MaxCommitRetries walks, not a hang.
func TestWalkCommitRetry(t *testing.T) {
	tb := newTables(8, 9)
	root := tb.alloc()
	gpas := tb.mapAddr(root, 4, 1, 0x1000, 0x5000, fPRW, fPRW, fPRW, fPRW)
	pte := gpas[3]
	c := mustReset(t, state4(root), Features{})
	var w Walk

	once := &changingMemory{SliceMemory: tb.mem, gpa: pte, times: 1}
	if err := c.WalkCommit(once, 0x1000, x86.AccessWrite, &w); err != nil {
		t.Fatal(err)
	}
	if got, want := tb.get(pte), uint64(0x5000|fPRW|fA|fD|1<<10); got != want {
		t.Errorf("PTE %#x, want %#x (the change kept, A and D set)", got, want)
	}
	if once.cas < 2 {
		t.Errorf("%d compare-and-exchanges on the PTE: the walk did not retry", once.cas)
	}

	tb.put(pte, 0x5000|fPRW)
	always := &changingMemory{SliceMemory: tb.mem, gpa: pte, times: MaxCommitRetries + 1}
	var me *MemoryError
	err := c.WalkCommit(always, 0x1000, x86.AccessWrite, &w)
	if !errors.As(err, &me) || me.Err != ErrEntriesChanging || me.EntryGPA != pte {
		t.Errorf("entry changing forever: %v", err)
	}
}

// changingMemory flips bit 10 of the entry at gpa just before each of the
// first times compare-and-exchanges on it, as another CPU might.
type changingMemory struct {
	*SliceMemory
	gpa   uint64
	times int
	cas   int
}

func (m *changingMemory) CompareAndSwapUint64(gpa uint64, old, new uint64) (bool, error) {
	if gpa == m.gpa {
		m.cas++
		if m.times > 0 {
			m.times--
			v, _ := m.SliceMemory.ReadUint64(gpa)
			m.SliceMemory.WriteUint64(gpa, v^1<<10)
		}
	}
	return m.SliceMemory.CompareAndSwapUint64(gpa, old, new)
}

// Each entry's SetFlags names the flags WalkCommit set in it: A in every
// entry it used, D too in the leaf for a write, nothing where they were
// set already, and nothing after Walk, which only looks.
func TestWalkCommitSetFlags(t *testing.T) {
	tb := newTables(8, 9)
	root := tb.alloc()
	gpas := tb.mapAddr(root, 4, 1, 0x1000, 0x5000, fPRW|fA, fPRW, fPRW, fPRW)
	c := mustReset(t, state4(root), Features{})
	var w Walk
	if err := c.WalkCommit(tb.mem, 0x1000, x86.AccessWrite, &w); err != nil {
		t.Fatal(err)
	}
	want := []uint64{0, fA, fA, fA | fD}
	for i := range w.N {
		e := &w.Entries[i]
		if e.SetFlags != want[i] || e.Value != tb.get(gpas[i]) || e.Value&^e.SetFlags != tb.get(gpas[i])&^want[i] {
			t.Errorf("level %d: set %#x (want %#x), value %#x, memory %#x", e.Level, e.SetFlags, want[i], e.Value, tb.get(gpas[i]))
		}
	}
	for _, commit := range []bool{true, false} {
		var err error
		if commit {
			err = c.WalkCommit(tb.mem, 0x1000, x86.AccessWrite, &w)
		} else {
			err = c.Walk(tb.mem, 0x1000, x86.AccessWrite, &w)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range w.N {
			if w.Entries[i].SetFlags != 0 {
				t.Errorf("commit %v, flags already set: level %d set %#x", commit, w.Entries[i].Level, w.Entries[i].SetFlags)
			}
		}
	}
}
