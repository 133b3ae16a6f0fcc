package decode

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"walkvm/x86"
)

var (
	diffSeed = flag.Int64("seed", 20240601, "seed of the differential test's random instruction stream")
	diffN    = flag.Int("diffn", 1000000, "random instructions per mode in the differential test")
	diffShow = flag.Int("diffshow", 0, "print this many examples per unclassified disagreement group")
)

var legacyPrefixes = []byte{0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67}

// genInst writes one random instruction candidate into buf (15 bytes),
// biased so that prefixes, REX, ModRM memory forms, the 0F/0F38/0F3A maps,
// VEX and x87 are all well exercised.
func genInst(r *rand.Rand, mode Mode, buf []byte) {
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	n := 0
	if r.Intn(2) == 0 {
		k := 1 + r.Intn(3)
		for i := 0; i < k; i++ {
			// LOCK is drawn less often: most instructions reject it, and
			// a rejected instruction compares nothing else.
			buf[n] = legacyPrefixes[1+r.Intn(len(legacyPrefixes)-1)]
			if r.Intn(40) == 0 {
				buf[n] = 0xF0
			}
			n++
		}
	}
	if mode == Mode64 && r.Intn(3) == 0 {
		buf[n] = 0x40 | byte(r.Intn(16))
		n++
		if r.Intn(10) == 0 { // REX not last: ignored
			buf[n] = legacyPrefixes[r.Intn(len(legacyPrefixes))]
			n++
		}
	}
	x := r.Intn(100)
	modrmAt := -1
	switch {
	case x < 33:
		modrmAt = n + 1
	case x < 66:
		buf[n] = 0x0F
		modrmAt = n + 2
	case x < 74:
		buf[n], buf[n+1] = 0x0F, 0x38
		modrmAt = n + 3
	case x < 80:
		buf[n], buf[n+1] = 0x0F, 0x3A
		modrmAt = n + 3
	case x < 92:
		if r.Intn(2) == 0 {
			buf[n] = 0xC5
			if mode != Mode64 || r.Intn(2) == 0 {
				buf[n+1] |= 0xC0
			}
			modrmAt = n + 3
		} else {
			buf[n] = 0xC4
			buf[n+1] = buf[n+1]&0xE0 | byte(1+r.Intn(3))
			if mode != Mode64 || r.Intn(2) == 0 {
				buf[n+1] |= 0xC0
			}
			modrmAt = n + 4
		}
	default:
		buf[n] = 0xD8 + byte(r.Intn(8))
		modrmAt = n + 1
	}
	if modrmAt < len(buf) && r.Intn(4) != 0 {
		buf[modrmAt] = buf[modrmAt]&0x3F | byte(r.Intn(3))<<6
	}
}

// x86asmReg maps an x86asm general-purpose register to its number and
// width in bytes.
func x86asmReg(r x86asm.Reg) (x86.Reg, int, bool) {
	switch {
	case r >= x86asm.AX && r <= x86asm.R15W:
		return x86.Reg(r - x86asm.AX), 2, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return x86.Reg(r - x86asm.EAX), 4, true
	case r >= x86asm.RAX && r <= x86asm.R15:
		return x86.Reg(r - x86asm.RAX), 8, true
	}
	return 0, 0, false
}

func x86asmSeg(r x86asm.Reg) (x86.SegReg, bool) {
	if r >= x86asm.ES && r <= x86asm.GS {
		return x86.SegReg(r - x86asm.ES), true
	}
	return 0, false
}

// diffCase is one input both decoders looked at.
type diffCase struct {
	b       []byte
	mode    Mode
	ours    *Inst
	oerr    error
	theirs  x86asm.Inst
	terr    error
	tAccept bool
	depth   int // nesting of class checks that re-decode edited bytes
}

func (c *diffCase) String() string {
	s := fmt.Sprintf("mode %d % x: ", c.mode, c.b)
	if c.oerr != nil {
		s += "walkvm: " + c.oerr.Error()
	} else {
		s += fmt.Sprintf("walkvm: %v len %d", c.ours.Op, c.ours.Len)
		if i := c.ours.MemArg(); i >= 0 {
			m := c.ours.Args[i].Mem
			s += fmt.Sprintf(" mem{%v:%v+%v*%d%+#x rip=%v size %d %v}", m.Seg, m.Base, m.Index, m.Scale, m.Disp, m.RIPRel, m.Size, m.Use)
		}
	}
	if c.tAccept {
		s += fmt.Sprintf("; x86asm: %s len %d memb %d", x86asm.IntelSyntax(c.theirs, 0, nil), c.theirs.Len, c.theirs.MemBytes)
	} else {
		s += "; x86asm: reject"
	}
	return s
}

// compareMem compares the memory operands; it returns "" when they agree.
func compareMem(c *diffCase) string {
	in := c.ours
	var ours []Mem
	for _, a := range in.Args {
		if a.Kind == ArgMem {
			ours = append(ours, a.Mem)
		}
	}
	var theirs []x86asm.Mem
	for _, a := range c.theirs.Args {
		if m, ok := a.(x86asm.Mem); ok {
			theirs = append(theirs, m)
		}
	}
	if len(ours) != len(theirs) {
		return fmt.Sprintf("memory operand count %d vs %d", len(ours), len(theirs))
	}
	for i, m := range ours {
		t := theirs[i]
		mask := ^uint64(0)
		if m.AddrSize < 8 {
			mask = 1<<(8*uint(m.AddrSize)) - 1
		}
		if m.RIPRel {
			// x86asm's AVX decoder (avx.go) turns RIP-relative into an
			// absolute [disp32]; a class below explains it.
			vexQuirk := in.Prefix.VEX.Len != 0 && t.Base == 0 && t.Index == 0
			if t.Base != x86asm.RIP && t.Base != x86asm.EIP && !vexQuirk {
				return "rip-relative"
			}
		} else if m.Base == RegNone {
			if t.Base != 0 {
				return "base none vs " + t.Base.String()
			}
		} else {
			r, w, ok := x86asmReg(t.Base)
			if !ok || r != m.Base || w != int(m.AddrSize) {
				return fmt.Sprintf("base %v/%d vs %v", m.Base, m.AddrSize, t.Base)
			}
		}
		if m.VSIB {
			var vi x86.Reg
			switch {
			case t.Index >= x86asm.X0 && t.Index <= x86asm.X15:
				vi = x86.Reg(t.Index - x86asm.X0)
			case t.Index >= x86asm.Y0 && t.Index <= x86asm.Y15:
				vi = x86.Reg(t.Index - x86asm.Y0)
			default:
				return "vsib index " + t.Index.String()
			}
			if vi != m.Index || m.Scale != t.Scale && !(m.Scale == 1 && t.Scale == 0) {
				return fmt.Sprintf("vsib index %d*%d vs %v*%d", m.Index, m.Scale, t.Index, t.Scale)
			}
		} else if m.Index == RegNone {
			if t.Index != 0 {
				return "index none vs " + t.Index.String()
			}
		} else {
			r, w, ok := x86asmReg(t.Index)
			if !ok || r != m.Index || w != int(m.AddrSize) {
				return fmt.Sprintf("index %v vs %v", m.Index, t.Index)
			}
			if m.Scale != t.Scale {
				return fmt.Sprintf("scale %d vs %d", m.Scale, t.Scale)
			}
		}
		if uint64(m.Disp)&mask != uint64(t.Disp)&mask {
			return fmt.Sprintf("disp %#x vs %#x", m.Disp, t.Disp)
		}
		if t.Segment != 0 {
			s, ok := x86asmSeg(t.Segment)
			if !ok || s != m.Seg {
				return fmt.Sprintf("segment %v vs %v", m.Seg, t.Segment)
			}
		} else if m.SegOverride {
			return fmt.Sprintf("segment override %v vs none", m.Seg)
		}
		// x86asm reports one MemBytes per instruction, 0 when it does not
		// know (string instructions, m80, x87 state); compare it when both
		// give a size and walkvm says the operand is accessed.
		if len(ours) == 1 && m.Use != 0 && c.theirs.MemBytes != 0 && int(m.Size) != c.theirs.MemBytes {
			return fmt.Sprintf("size %d vs %d", m.Size, c.theirs.MemBytes)
		}
	}
	return ""
}

// diffOutcome runs both decoders and returns "" when they agree, or a
// short description of the disagreement.
func diffOutcome(c *diffCase) string {
	c.oerr = Decode(c.b, c.mode, c.ours)
	c.theirs, c.terr = x86asm.Decode(c.b, int(c.mode))
	c.tAccept = c.terr == nil && c.theirs.Op != 0
	oAccept := c.oerr == nil
	switch {
	case !oAccept && !c.tAccept:
		return ""
	case oAccept && !c.tAccept:
		return "walkvm accepts, x86asm rejects"
	case !oAccept && c.tAccept:
		return "walkvm rejects, x86asm accepts"
	}
	if int(c.ours.Len) != c.theirs.Len {
		return fmt.Sprintf("length %d vs %d", c.ours.Len, c.theirs.Len)
	}
	if s := compareMem(c); s != "" {
		return "memory: " + s
	}
	return ""
}

// groupKey names the place in the opcode space a disagreement sits, to
// group unclassified ones for reporting.
func groupKey(c *diffCase, what string) string {
	in := c.ours
	opc := ""
	if c.oerr == nil || in.Map != MapOneByte || in.Opcode != 0 {
		opc = fmt.Sprintf("%v %02x", in.Map, in.Opcode)
		if in.Prefix.VEX.Len != 0 {
			opc = "vex." + opc + fmt.Sprintf(" pp%d", in.Prefix.VEX.PP)
		}
	}
	if c.tAccept {
		opc += " " + c.theirs.Op.String()
	}
	if what == "" {
		what = "?"
	}
	if i := strings.Index(what, " vs "); i > 0 && strings.HasPrefix(what, "memory") {
		what = what[:i]
	}
	if strings.HasPrefix(what, "length") {
		what = "length"
	}
	return fmt.Sprintf("mode%d %s: %s", c.mode, opc, what)
}

func TestDiffX86asm(t *testing.T) {
	t.Logf("seed %d (-seed to change), %d instructions per mode", *diffSeed, *diffN)
	for _, mode := range []Mode{Mode16, Mode32, Mode64} {
		t.Run(mode.String(), func(t *testing.T) {
			r := rand.New(rand.NewSource(*diffSeed + int64(mode)))
			var buf [MaxLen]byte
			var inst Inst
			c := diffCase{mode: mode, ours: &inst}
			var bothOK, bothReject, classified int
			classes := map[string]int{}
			unclassified := map[string][]string{}
			for i := 0; i < *diffN; i++ {
				genInst(r, mode, buf[:])
				c.b = buf[:]
				what := diffOutcome(&c)
				if what == "" {
					if c.oerr == nil {
						bothOK++
					} else {
						bothReject++
						if errors.Is(c.oerr, ErrTruncated) {
							t.Fatalf("truncated with %d bytes: %v", len(buf), &c)
						}
					}
					continue
				}
				if cl := classify(&c, what); cl != "" {
					classes[cl]++
					classified++
					continue
				}
				k := groupKey(&c, what)
				if len(unclassified[k]) < 3 {
					unclassified[k] = append(unclassified[k], c.String())
				} else {
					unclassified[k] = append(unclassified[k], "")
				}
			}
			t.Logf("%v: %d agree (%d both decode, %d both reject), %d known disagreements",
				mode, bothOK+bothReject, bothOK, bothReject, classified)
			var names []string
			for k := range classes {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				t.Logf("  %7d  %s", classes[k], k)
			}
			if len(unclassified) > 0 {
				var keys []string
				for k := range unclassified {
					keys = append(keys, k)
				}
				sort.Slice(keys, func(i, j int) bool { return len(unclassified[keys[i]]) > len(unclassified[keys[j]]) })
				total := 0
				for _, k := range keys {
					total += len(unclassified[k])
				}
				t.Errorf("%d unclassified disagreements in %d groups", total, len(keys))
				for i, k := range keys {
					if i >= 60 {
						break
					}
					t.Logf("%6d %s", len(unclassified[k]), k)
					for j, ex := range unclassified[k] {
						if j >= *diffShow || ex == "" {
							break
						}
						t.Logf("         %s", ex)
					}
				}
			}
		})
	}
}

// classify returns the name of the known disagreement class c belongs to,
// or "".
func classify(c *diffCase, what string) string {
	for i := range diffClasses {
		if diffClasses[i].match(c, what) {
			return diffClasses[i].name
		}
	}
	return ""
}

// diffClass is a known, explained disagreement with x86asm.
type diffClass struct {
	name  string // what differs and the SDM rule that makes walkvm right
	match func(c *diffCase, what string) bool
}

// Helpers for the class predicates.

func (c *diffCase) is(m Map, lo, hi byte) bool {
	return c.ours.Map == m && c.ours.Opcode >= lo && c.ours.Opcode <= hi && c.ours.Prefix.VEX.Len == 0 && c.ours.Opcode != 0 || (m == MapOneByte && lo == 0 && c.ours.Map == m && c.ours.Opcode <= hi)
}

func (c *diffCase) oursUD(reason string) bool {
	var e *x86.Exception
	return errors.As(c.oerr, &e) && e.Vector == x86.VectorUD && strings.Contains(e.Reason, reason)
}

// prefixEnd returns the index of the first byte after the legacy and REX
// prefixes.
func (c *diffCase) prefixEnd() int {
	for i, b := range c.b {
		if !isLegacyPrefix(b) && !(c.mode == Mode64 && b&0xF0 == 0x40) {
			return i
		}
	}
	return len(c.b)
}

func isLegacyPrefix(b byte) bool {
	for _, p := range legacyPrefixes {
		if b == p {
			return true
		}
	}
	return false
}

// without returns the bytes with the prefix bytes for which drop is true
// removed, and how many were removed.
func (c *diffCase) without(drop func(i int, b byte) bool) ([]byte, int) {
	end := c.prefixEnd()
	var out []byte
	for i, b := range c.b {
		if i < end && drop(i, b) {
			continue
		}
		out = append(out, b)
	}
	return out, len(c.b) - len(out)
}

// theirsAgreeWithout reports whether x86asm, given the bytes without the
// dropped prefixes, decodes what walkvm decoded from the original bytes.
func (c *diffCase) theirsAgreeWithout(drop func(i int, b byte) bool) bool {
	b, n := c.without(drop)
	if n == 0 || c.oerr != nil {
		return false
	}
	cc := diffCase{b: b, mode: c.mode, ours: new(Inst)}
	if w := diffOutcome(&cc); w != "" && classify(&cc, w) == "" || cc.oerr != nil {
		return false
	}
	return int(cc.ours.Len)+n == int(c.ours.Len) && cc.ours.Op == c.ours.Op
}

// oursAgreeWithout reports whether walkvm, given the bytes without the
// dropped prefixes, decodes what x86asm decoded from the original bytes
// (same mnemonic, length minus the dropped bytes).
func (c *diffCase) oursAgreeWithout(drop func(i int, b byte) bool) bool {
	b, n := c.without(drop)
	if n == 0 || !c.tAccept {
		return false
	}
	var in Inst
	if Decode(b, c.mode, &in) != nil {
		return false
	}
	return int(in.Len)+n == c.theirs.Len && strings.EqualFold(in.Op.String(), strings.TrimSuffix(c.theirs.Op.String(), "64"))
}

// staleREX is true for a REX byte that does not immediately precede the
// opcode.
func (c *diffCase) staleREX(i int, b byte) bool {
	return c.mode == Mode64 && b&0xF0 == 0x40 && i+1 < c.prefixEnd()
}

func isSizeOrRep(i int, b byte) bool { return b == 0x66 || b == 0xF2 || b == 0xF3 }

func isSizeRepLock(i int, b byte) bool { return isSizeOrRep(i, b) || b == 0xF0 }

// theirsAgreeEdited reports whether x86asm, given the bytes after edit,
// decodes the same length and memory operand walkvm decoded from the
// original bytes.
func (c *diffCase) theirsAgreeEdited(edit func(b []byte)) bool {
	if c.oerr != nil {
		return false
	}
	b := append([]byte(nil), c.b...)
	edit(b)
	t, err := x86asm.Decode(b, int(c.mode))
	if err != nil || t.Op == 0 {
		return false
	}
	return c.agreeWith(c.ours, t)
}

// agreeWith reports whether walkvm's ours and x86asm's theirs agree on
// length and memory operand, or differ only in ways a class explains.
func (c *diffCase) agreeWith(ours *Inst, theirs x86asm.Inst) bool {
	cc := *c
	cc.ours, cc.oerr, cc.theirs, cc.tAccept = ours, nil, theirs, true
	cc.depth++
	what := ""
	if int(ours.Len) != theirs.Len {
		what = fmt.Sprintf("length %d vs %d", ours.Len, theirs.Len)
	} else if s := compareMem(&cc); s != "" {
		what = "memory: " + s
	}
	if what == "" {
		return true
	}
	return cc.depth < 3 && classify(&cc, what) != ""
}

// oursAgreeEdited reports whether walkvm, given the bytes after edit,
// decodes what x86asm decoded from the original bytes. x86asm's own
// decode may first be corrected by fixTheirs (nil: none).
func (c *diffCase) oursAgreeEdited(edit, fixTheirs func(b []byte)) bool {
	if !c.tAccept {
		return false
	}
	theirs := c.theirs
	if fixTheirs != nil {
		b := append([]byte(nil), c.b...)
		fixTheirs(b)
		t, err := x86asm.Decode(b, int(c.mode))
		if err != nil || t.Op == 0 {
			return false
		}
		theirs = t
	}
	b := append([]byte(nil), c.b...)
	edit(b)
	var in Inst
	if Decode(b, c.mode, &in) != nil {
		return false
	}
	return c.agreeWith(&in, theirs)
}

// vexNormalizers are the combinations of VEX field edits that the classes
// below explain: VEX.B and vvvv[3] set outside 64-bit mode, W cleared
// (WIG), L cleared (LIG).
func (c *diffCase) vexNormalizers() []func(b []byte) {
	var out []func(b []byte)
	for _, withL := range []bool{false, true} {
		for _, withW := range []bool{false, true} {
			withL, withW := withL, withW
			out = append(out, func(b []byte) {
				if c.mode != Mode64 {
					c.vexBEdit(b)
					c.vexEdit(vexV3)(b)
				}
				if withW {
					c.vexEdit(vexW0)(b)
				}
				if withL {
					c.vexEdit(vexL0)(b)
				}
			})
		}
	}
	return out
}

func (c *diffCase) theirsAgreeNormalized() bool {
	for _, f := range c.vexNormalizers() {
		if c.theirsAgreeEdited(f) {
			return true
		}
	}
	return false
}

func (c *diffCase) oursAgreeNormalized(edit func(b []byte)) bool {
	for _, f := range c.vexNormalizers() {
		if c.oursAgreeEdited(edit, f) {
			return true
		}
	}
	return false
}

// vexSetL0 clears VEX.L; vexSetVVVV sets vvvv to 1111b (encoded 0000b
// inverted... i.e. the bits all ones).
func (c *diffCase) vexEdit(f func(b []byte, l2 int)) func(b []byte) {
	at := c.prefixEnd()
	return func(b []byte) {
		if at+2 >= len(b) {
			return
		}
		if b[at] == 0xC5 {
			f(b, at+1)
		} else {
			f(b, at+2)
		}
	}
}

func vexL0(b []byte, i int)  { b[i] &^= 0x04 }
func vexNoV(b []byte, i int) { b[i] |= 0x78 }
func vexW0(b []byte, i int)  { b[i] &^= 0x80 }
func vexV3(b []byte, i int)  { b[i] |= 0x40 }

// vexBEdit sets the inverted VEX.B bit of a 3-byte VEX (B=0).
func (c *diffCase) vexBEdit(b []byte) {
	at := c.prefixEnd()
	if at+1 < len(b) && b[at] == 0xC4 {
		b[at+1] |= 0x20
	}
}

func (c *diffCase) theirOp(names ...string) bool {
	if !c.tAccept {
		return false
	}
	s := c.theirs.Op.String()
	for _, n := range names {
		if strings.HasSuffix(n, "*") && strings.HasPrefix(s, n[:len(n)-1]) || s == n {
			return true
		}
	}
	return false
}

func (c *diffCase) ourOp(ops ...Op) bool {
	if c.oerr != nil {
		return false
	}
	for _, op := range ops {
		if c.ours.Op == op {
			return true
		}
	}
	return false
}

const (
	wAccepts = "walkvm accepts, x86asm rejects"
	wRejects = "walkvm rejects, x86asm accepts"
)

// diffClasses is filled in init: its predicates call classify.
var diffClasses []diffClass

func init() { diffClasses = knownDiffClasses() }

func knownDiffClasses() []diffClass {
	return []diffClass{
		{"LOCK on an instruction that is not lockable or has no memory destination: #UD (SDM Vol. 2A LOCK; §2.1.1); x86asm accepts it",
			func(c *diffCase, what string) bool {
				if what != wRejects || !c.oursUD("LOCK prefix") {
					return false
				}
				// Not this class if x86asm saw a lockable instruction with a
				// memory destination: walkvm would be wrong to reject it.
				_, memDst := c.theirs.Args[0].(x86asm.Mem)
				return !memDst || !c.theirOp("ADD", "ADC", "AND", "BTC", "BTR", "BTS", "CMPXCHG", "CMPXCHG8B", "CMPXCHG16B",
					"DEC", "INC", "NEG", "NOT", "OR", "SBB", "SUB", "XADD", "XCHG", "XOR")
			}},
		{"VEX in 16-bit code (valid in 16-bit protected mode, SDM Vol. 2A §2.3; real and virtual-8086 mode are the executor's #UD); x86asm decodes VEX only in 32/64-bit mode",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.mode == Mode16 && c.ours.Prefix.VEX.Len != 0
			}},
		{"segment-override or 67 prefix before VEX (SDM Vol. 2A §2.3.2 makes only 66/F2/F3/F0/REX before VEX #UD); x86asm rejects any prefix before VEX",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.ours.Prefix.VEX.Len != 0 && c.ours.Prefix.Count > 0 &&
					!c.ours.Prefix.OpSize && !c.ours.Prefix.Rep && !c.ours.Prefix.Repne && !c.ours.Prefix.Lock
			}},
		{"VEX.L=1 on a scalar (LIG) instruction is ignored (SDM Vol. 2A §3.1.1.2 'LIG'); x86asm rejects it",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.ours.Prefix.VEX.L == 1 && c.theirsAgreeEdited(c.vexEdit(vexL0))
			}},
		{"VEX.vvvv other than 1111b on an instruction without a VEX.vvvv operand is #UD (SDM Vol. 2A §2.3.6; also VZEROUPPER/VZEROALL, where x86asm then miscounts the length); x86asm ignores vvvv",
			func(c *diffCase, what string) bool {
				return what == wRejects && c.oursUD("vvvv") &&
					(c.oursAgreeEdited(c.vexEdit(vexNoV), nil) || c.oursAgreeNormalized(c.vexEdit(vexNoV)) ||
						c.ours.Map == Map0F && c.ours.Opcode == 0x77)
			}},
		{"VEX.W=1 on a WIG instruction is ignored (SDM Vol. 2A §3.1.1.2 'WIG'); x86asm rejects it",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.ours.Prefix.VEX.W && c.theirsAgreeEdited(c.vexEdit(vexW0))
			}},
		{"VEX.vvvv[3] outside 64-bit mode does not select a register (only XMM0-7 exist there; SDM Vol. 2A §2.3.5.6); x86asm rejects vvvv 8-15 in 32-bit mode",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.mode != Mode64 && c.ours.Prefix.VEX.VVVV >= 8 && c.theirsAgreeEdited(c.vexEdit(vexV3))
			}},
		{"VEX.B is ignored outside 64-bit mode (SDM Vol. 2A §2.3.5, Figure 2-9: 'Ignored in 32-bit mode'); x86asm extends the base/index to R8-R15",
			func(c *diffCase, what string) bool {
				return c.mode != Mode64 && strings.HasPrefix(what, "memory") && c.ours.Prefix.VEX.Len == 3 && c.theirsAgreeEdited(c.vexBEdit)
			}},
		{"BMI1/BMI2 GPR instructions: VEX.W1 is ignored outside 64-bit mode (32-bit operands; SDM Vol. 2A §2.5.1); x86asm uses 64-bit registers in 32-bit mode",
			func(c *diffCase, what string) bool {
				return c.mode != Mode64 && strings.HasPrefix(what, "memory: size") && c.ours.Prefix.VEX.W &&
					c.ourOp(ANDN, BEXTR, BLSI, BLSMSK, BLSR, BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX)
			}},
		{"combinations of the VEX field classes above (VEX.B and vvvv[3] outside 64-bit mode, WIG with W=1, LIG with L=1): x86asm agrees once they are normalized",
			func(c *diffCase, what string) bool {
				return c.ours.Prefix.VEX.Len != 0 && c.oerr == nil && c.theirsAgreeNormalized()
			}},
		{"VSIB gathers (VEX 0F38 90-93) need a SIB byte and 32/64-bit addressing (SDM Vol. 2A §2.3.12): #UD otherwise; x86asm decodes an ordinary memory operand",
			func(c *diffCase, what string) bool { return what == wRejects && c.oursUD("VSIB") }},
		{"gathers with two of destination, index and mask the same register are #UD (SDM Vol. 2B VGATHERDPS/VPGATHERDD); x86asm decodes them",
			func(c *diffCase, what string) bool {
				return what == wRejects && c.oursUD("gather with repeated registers")
			}},
		{"VZEROUPPER/VZEROALL (VEX 0F 77) have no ModRM byte (SDM: VEX.128/256.0F.WIG 77, operand encoding ZO); x86asm sometimes consumes a ModRM and displacement",
			func(c *diffCase, what string) bool {
				return strings.HasPrefix(what, "length") && c.ourOp(VZEROUPPER, VZEROALL)
			}},
		{"shift group /6 (C0, C1, D0-D3) and F6/F7 /1 are blank in SDM Table A-6, but Intel and AMD CPUs and KVM's emulator execute them as SAL and TEST; x86asm rejects them (and agrees once ModRM.reg is /4 or /0)",
			func(c *diffCase, what string) bool {
				if what != wAccepts || !c.ours.HasModRM || c.ours.Map != MapOneByte {
					return false
				}
				reg := c.ours.ModRM >> 3 & 7
				var to byte
				switch {
				case reg == 6 && (c.ours.Opcode == 0xC0 || c.ours.Opcode == 0xC1 || c.ours.Opcode >= 0xD0 && c.ours.Opcode <= 0xD3):
					to = 4
				case reg == 1 && (c.ours.Opcode == 0xF6 || c.ours.Opcode == 0xF7):
					to = 0
				default:
					return false
				}
				return c.theirsAgreeEdited(func(b []byte) {
					for i := c.prefixEnd(); i+1 < len(b); i++ {
						if b[i] == c.ours.Opcode && b[i+1] == c.ours.ModRM {
							b[i+1] = c.ours.ModRM&^0x38 | to<<3
							return
						}
					}
				})
			}},
		{"EVEX (62 in 64-bit mode, or with ModRM.mod=11 elsewhere): walkvm models a CPU without AVX-512, so it is #UD (SDM Vol. 2A §2.7); x86asm decodes AVX-512",
			func(c *diffCase, what string) bool { return what == wRejects && c.oursUD("EVEX") }},
		{"RIP-relative addressing in VEX instructions (SDM Vol. 2A §2.2.1.6 applies to every ModRM in 64-bit mode); x86asm's AVX decoder reads an absolute [disp32] (same displacement)",
			func(c *diffCase, what string) bool {
				return what == "memory: rip-relative" && c.ours.Prefix.VEX.Len != 0
			}},
		{"AVX-512 and newer VEX extensions (K-mask ops, AVX-VNNI, AVX-VNNI-INT8/16, AVX-IFMA, AVX-NE-CONVERT, SHA512, SM3/SM4, 256-bit VAES/VPCLMULQDQ, GFNI): walkvm models a CPU without them, so they are #UD (SDM: #UD when CPUID does not enumerate the feature); x86asm decodes them",
			func(c *diffCase, what string) bool {
				return what == wRejects && c.ours.Prefix.VEX.Len != 0 &&
					c.theirOp("K*", "VPDP*", "VCVTNE*", "VBCSTNE*", "VPMADD52*", "VSHA512*", "VSM3*", "VSM4*", "VPCLMULQDQ", "VAES*", "VGF2P8*", "VPMADD52*")
			}},
		{"MOVSXD with a 66 prefix is MOVSXD r16, r/m16: a 2-byte source (SDM Vol. 2B MOVSX/MOVSXD); x86asm reads 4 bytes",
			func(c *diffCase, what string) bool {
				return strings.HasPrefix(what, "memory: size") && c.ourOp(MOVSXD) && c.ours.Prefix.OpSize && !c.ours.Prefix.W()
			}},
		{"instructions x86asm's tables lack: ADCX/ADOX (ADX), RDSEED, PTWRITE, CET, WAITPKG, MOVDIRI/MOVDIR64B and others SMAP STAC/CLAC (SDM Vol. 2)",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.ourOp(STAC, CLAC, ENCLS, ENCLU, ADCX, ADOX, RDSEED, PTWRITE, RDSSP, INCSSP, CLRSSBSY, ENDBR32, ENDBR64, UMONITOR, UMWAIT, TPAUSE, RDPID, CLWB, CLFLUSHOPT, XSAVEC, XSAVES, XRSTORS, MOVDIRI, MOVDIR64B)
			}},
		{"MOVLPS/MOVLPD/MOVHPS/MOVHPD store forms and MOVLPD/MOVHPD loads have no register form (SDM: m64 operands only): #UD; x86asm decodes a register form",
			func(c *diffCase, what string) bool {
				return what == wRejects && c.ours.ModRM>>6 == 3 && c.theirOp("MOVLPD", "MOVHPD", "MOVLPS", "MOVHPS")
			}},
		{"MOVNTSS/MOVNTSD (F3/F2 0F 2B) are AMD SSE4a, not in the Intel SDM (Table A-3 blank): #UD; x86asm decodes them",
			func(c *diffCase, what string) bool { return what == wRejects && c.theirOp("MOVNTSS", "MOVNTSD") }},
		{"DF C0+i (FFREEP) is blank in SDM Table A-22 (an AMD/undocumented alias): #UD; x86asm decodes FFREEP",
			func(c *diffCase, what string) bool { return what == wRejects && c.theirOp("FFREEP") }},
		{"MASKMOVQ/MASKMOVDQU store to the implicit DS:rDI (SDM Vol. 2B MASKMOVQ); walkvm lists it as a Mem operand, x86asm does not",
			func(c *diffCase, what string) bool {
				return strings.HasPrefix(what, "memory: memory operand count") && c.ourOp(MASKMOVQ, MASKMOVDQU, VEXOTHER) && c.ours.Opcode == 0xF7
			}},
		{"REX not immediately before the opcode (followed by a legacy prefix or another REX) is ignored (SDM Vol. 2A §2.2.1); x86asm rejects the instruction",
			func(c *diffCase, what string) bool {
				return what == wAccepts && c.theirsAgreeWithout(c.staleREX)
			}},
		{"NP/NFx instructions (SDM Vol. 2A §3.1.1.1: 66/F2/F3 not allowed, #UD) with such a prefix (RSQRTPS, RCPPS, MOVNTI, FXSAVE, LDMXCSR, XSAVE, CLFLUSH, SHA*, RDRAND with F2/F3, ...); x86asm ignores the prefix",
			func(c *diffCase, what string) bool {
				return what == wRejects && c.oursUD("undefined encoding") &&
					(c.oursAgreeWithout(isSizeOrRep) || c.ours.Prefix.Lock && c.oursAgreeWithout(isSizeRepLock))
			}},
		{"MOV to/from CR/DR (0F 20-23) with mod!=11: the mod bits are ignored, no SIB/displacement (SDM Vol. 2B MOV CR/DR); x86asm decodes a memory form",
			func(c *diffCase, what string) bool {
				return strings.HasPrefix(what, "length") && c.is(Map0F, 0x20, 0x23) && c.ours.ModRM>>6 != 3
			}},
		{"0F 24/0F 26 (MOV to/from test registers, 386/486 only) are blank cells in SDM Table A-3: #UD; x86asm decodes MOV TRn",
			func(c *diffCase, what string) bool {
				return what == wRejects && (c.is(Map0F, 0x24, 0x24) || c.is(Map0F, 0x26, 0x26))
			}},
		{"82 /r ib is Immediate Grp 1 Eb,Ib outside 64-bit mode (SDM Table A-2, i64); x86asm rejects it",
			func(c *diffCase, what string) bool { return what == wAccepts && c.is(MapOneByte, 0x82, 0x82) }},
		{"0F 0D, 0F 18-1F hint space: PREFETCHh/PREFETCHW, 0F 1F NOP Ev and Reserved-NOP cells (SDM Table A-3, §A.1: Reserved-NOP may behave as NOP; 0F 1A/1B are MPX BNDLDX/BNDSTX, NOPs without MPX), decoded as NOPs like the processors do; x86asm rejects most of them",
			func(c *diffCase, what string) bool {
				return what == wAccepts && (c.is(Map0F, 0x18, 0x1F) || c.is(Map0F, 0x0D, 0x0D))
			}},
		{"VMX instructions VMREAD/VMWRITE (0F 78/79), VMPTRLD/VMCLEAR/VMXON/VMPTRST (0F C7 /6 /7 memory), INVEPT/INVVPID (66 0F 38 80/81) (SDM Vol. 3C ch. 31); x86asm does not know them",
			func(c *diffCase, what string) bool {
				switch c.ours.Op {
				case VMREAD, VMWRITE, VMPTRLD, VMCLEAR, VMXON, VMPTRST, INVEPT, INVVPID, VMCALL, VMLAUNCH, VMRESUME, VMXOFF, VMFUNC:
					return what == wAccepts
				}
				return false
			}},
		{"UD0 (0F FF /r) and UD1 (0F B9 /r) take a ModRM (SDM Vol. 2B UD); x86asm rejects them",
			func(c *diffCase, what string) bool { return what == wAccepts && (c.ours.Op == UD0 || c.ours.Op == UD1) }},
		{"MOV to/from CR1, CR5-CR7, CR9-CR15 and DR8-DR15 is #UD (SDM Vol. 2B MOV CR/MOV DR); x86asm decodes them",
			func(c *diffCase, what string) bool {
				return what == wRejects && (c.oursUD("reserved control register") || c.oursUD("debug register above DR7"))
			}},
		{"RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE (F3 0F AE /0-/3) and RDRAND/RDSEED (0F C7 /6 /7) are register-only; their memory forms are other rows (NP/NFx rows with a prefix that is not allowed: #UD; 0F C7 /6 /7 memory: VMPTRLD/VMCLEAR/VMXON/VMPTRST); x86asm decodes RDxxx with a memory operand",
			func(c *diffCase, what string) bool {
				return c.ours.ModRM>>6 != 3 && c.theirOp("RDFSBASE", "RDGSBASE", "WRFSBASE", "WRGSBASE", "RDRAND", "RDSEED") &&
					(what == wRejects || c.ourOp(VMPTRLD, VMCLEAR, VMXON, VMPTRST))
			}},
		{"MOV CS, r/m (8E /1) is #UD (SDM Vol. 2B MOV: 'the MOV instruction cannot be used to load CS'); x86asm accepts it",
			func(c *diffCase, what string) bool { return what == wRejects && c.oursUD("MOV to CS") }},
	}
}
