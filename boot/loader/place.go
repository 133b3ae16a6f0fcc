package loader

import (
	"errors"
	"fmt"
	"sort"

	"walkvm/memory"
)

// ErrNoRoom says a boot structure found no free guest memory.
var ErrNoRoom = errors.New("no room in guest RAM")

// Placer keeps track of the guest memory a loader has used. Claim records
// what goes at a fixed address (an image's segments, firmware tables);
// Avoid keeps an area free without claiming it (memory the guest itself
// writes early); Place finds room for a boot structure anywhere the caller
// allows. Nothing claimed or placed overlaps anything else claimed, placed
// or avoided, or what the machine's memory map already claims, and
// everything lies in guest memory.
type Placer struct {
	usable []MapEntry     // usable RAM: where Place looks
	backed []memory.Range // guest memory (RAM and firmware): where Claim may go
	held   []Range        // the memory map's claims when the placer began
	taken  []Range        // claimed and placed, in order
	avoid  []Range
}

// NewPlacer starts with nothing used over the machine's memory map mm;
// mm's claims are kept clear but not listed by Claimed.
func NewPlacer(mm *memory.Map) *Placer {
	p := &Placer{backed: mm.Backed()}
	for _, e := range MemoryMap(mm) {
		if e.Type == MapRAM {
			p.usable = append(p.usable, e)
		}
	}
	for _, c := range mm.Claims() {
		p.held = append(p.held, Range{Base: c.Start, Size: c.Size, What: c.Name})
	}
	return p
}

// Backed reports whether [base, base+size) lies wholly in guest memory
// (RAM or firmware).
func (p *Placer) Backed(base, size uint64) bool {
	end := base + size
	if end < base {
		return false
	}
	for _, r := range p.backed {
		if base >= r.Start && end <= r.End() {
			return true
		}
	}
	return false
}

// Claim records that [base, base+size) holds what. The range must be guest
// memory and must not overlap anything claimed, placed or avoided.
func (p *Placer) Claim(what string, base, size uint64) error {
	if size == 0 {
		return nil
	}
	end := base + size
	if end < base {
		return fmt.Errorf("%s at %#x (+%#x bytes) wraps the address space", what, base, size)
	}
	if !p.Backed(base, size) {
		return fmt.Errorf("%s at %#x-%#x is not in guest RAM (%s)", what, base, end-1, p.describe())
	}
	if o, ok := p.overlap(base, end); ok {
		return fmt.Errorf("%s at %#x-%#x overlaps %v", what, base, end-1, o)
	}
	p.taken = append(p.taken, Range{Base: base, Size: size, What: what})
	return nil
}

// Avoid keeps [base, base+size) free of everything placed or claimed
// later, without recording it as used.
func (p *Placer) Avoid(why string, base, size uint64) {
	if size == 0 || base+size < base {
		return
	}
	p.avoid = append(p.avoid, Range{Base: base, Size: size, What: why})
}

// Place finds size bytes at an align-aligned address in usable RAM within
// [lo, hi) that overlap nothing claimed, placed or avoided; the highest
// such address when top is set, the lowest otherwise. It claims the range
// for what and returns its address. align must be a power of two (0 or 1:
// no alignment).
func (p *Placer) Place(what string, size, align, lo, hi uint64, top bool) (uint64, error) {
	if align == 0 {
		align = 1
	}
	if size == 0 || align&(align-1) != 0 {
		return 0, fmt.Errorf("%s: cannot place %#x bytes aligned to %#x", what, size, align)
	}
	spans := make([]MapEntry, len(p.usable))
	copy(spans, p.usable)
	if top {
		for i, j := 0, len(spans)-1; i < j; i, j = i+1, j-1 {
			spans[i], spans[j] = spans[j], spans[i]
		}
	}
	for _, s := range spans {
		gaps := p.gaps(max(s.Addr, lo), min(s.End(), hi))
		if top {
			for i := len(gaps) - 1; i >= 0; i-- {
				g := gaps[i]
				if g.Size < size {
					continue
				}
				if a := (g.End() - size) &^ (align - 1); a >= g.Base {
					p.taken = append(p.taken, Range{Base: a, Size: size, What: what})
					return a, nil
				}
			}
			continue
		}
		for _, g := range gaps {
			a := (g.Base + align - 1) &^ (align - 1)
			if a >= g.Base && a <= g.End() && g.End()-a >= size {
				p.taken = append(p.taken, Range{Base: a, Size: size, What: what})
				return a, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: %s needs %#x bytes aligned to %#x in %#x-%#x (%s)", ErrNoRoom, what, size, align, lo, hi-1, p.describe())
}

// Claimed lists what was claimed and placed, by address.
func (p *Placer) Claimed() []Range {
	out := append([]Range(nil), p.taken...)
	sort.Slice(out, func(i, j int) bool { return out[i].Base < out[j].Base })
	return out
}

// gaps lists the free pieces of [lo, hi), in address order.
func (p *Placer) gaps(lo, hi uint64) []Range {
	if lo >= hi {
		return nil
	}
	block := append(append(append([]Range(nil), p.held...), p.taken...), p.avoid...)
	sort.Slice(block, func(i, j int) bool { return block[i].Base < block[j].Base })
	var out []Range
	cur := lo
	for _, b := range block {
		if b.End() <= cur || b.Base >= hi {
			continue
		}
		if b.Base > cur {
			out = append(out, Range{Base: cur, Size: b.Base - cur})
		}
		cur = max(cur, b.End())
		if cur >= hi {
			return out
		}
	}
	if cur < hi {
		out = append(out, Range{Base: cur, Size: hi - cur})
	}
	return out
}

func (p *Placer) overlap(base, end uint64) (Range, bool) {
	for _, list := range [][]Range{p.held, p.taken, p.avoid} {
		for _, r := range list {
			if base < r.End() && r.Base < end {
				return r, true
			}
		}
	}
	return Range{}, false
}

// describe says what guest memory there is, for errors.
func (p *Placer) describe() string {
	s := "guest memory:"
	for i, r := range p.backed {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %#x-%#x", r.Start, r.End()-1)
	}
	if len(p.backed) == 0 {
		s += " none"
	}
	return s
}
