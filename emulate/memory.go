package emulate

import (
	"fmt"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Intent describes one translation for Memory.Translate. The walker takes
// the paging mode, CPL, CR0.WP, SMEP/SMAP and RFLAGS.AC from the state
// State.WalkerState derives from the same registers.
type Intent struct {
	// Access is what the translation is for: read, write (a
	// read-modify-write translates as a write: a page that can be written
	// can be read, SDM Vol. 3A §4.6) or fetch, through SS or not, and
	// whether it is an implicit supervisor-mode access (descriptor tables).
	Access x86.Access
	// Commit says the instruction is being executed, so the walk should set
	// accessed and dirty flags as the CPU would. Resolve and Fetch only
	// look and leave it false; Step sets it.
	Commit bool
}

// Memory is the MMIO path's view of the guest: the page walker and
// guest-physical memory (RAM or a device). The vCPU adapts mmu and its
// memory bus to it. A Translate implementation may record its walks for a
// trace; the emulator does not look at them.
type Memory interface {
	// Translate maps linear address la to a guest-physical address. A
	// fault is an *x86.Exception as the CPU would raise it (#PF with the
	// error code and Addr = la, #GP/#SS for a non-canonical address).
	Translate(la uint64, in Intent) (gpa uint64, err error)
	// ReadPhys and WritePhys access len(b) bytes at gpa, which never cross
	// a 4-KByte page boundary. b is scratch owned by the emulator: do not
	// keep it.
	ReadPhys(gpa uint64, b []byte) error
	WritePhys(gpa uint64, b []byte) error
}

// pageSize is the granularity at which an access is split into pieces; KVM
// splits its MMIO exits at the same boundary.
const pageSize = 4096

// Piece is the part of an access that lies within one 4-KByte page.
type Piece struct {
	GPA  uint64
	Size uint16
}

// MemRef is a resolved memory operand: where one access of an instruction
// goes and what it does. An access that crosses a page boundary has two
// pieces, each translated on its own, like the CPU's and KVM's accesses.
type MemRef struct {
	Seg    x86.SegReg
	Offset uint64 // effective address, truncated to the address size
	Linear uint64
	Size   uint16
	Read   bool
	Write  bool
	N      uint8 // pieces used: 1, or 2 across a page boundary
	Pieces [2]Piece
}

// Contains reports whether the guest-physical range [gpa, gpa+n) lies within
// one piece of a: how a KVM MMIO exit (phys_addr, len) is matched against
// the access the instruction makes. KVM may split a piece further into
// exits of at most 8 bytes.
func (a *MemRef) Contains(gpa uint64, n int) bool {
	for i := range int(a.N) {
		p := &a.Pieces[i]
		if gpa >= p.GPA && n >= 0 && gpa-p.GPA+uint64(n) <= uint64(p.Size) {
			return true
		}
	}
	return false
}

func (a *MemRef) String() string {
	rw := "read"
	switch {
	case a.Read && a.Write:
		rw = "rmw"
	case a.Write:
		rw = "write"
	}
	s := fmt.Sprintf("%s %d bytes at %s:%#x (linear %#x) gpa %#x", rw, a.Size, a.Seg, a.Offset, a.Linear, a.Pieces[0].GPA)
	if a.N > 1 {
		s += fmt.Sprintf("+%d, %#x+%d", a.Pieces[0].Size, a.Pieces[1].GPA, a.Pieces[1].Size)
	}
	return s
}

// NotEmulatedError reports an instruction the emulator does not execute (or
// an operand form it does not support). It is walkvm's limitation, not a
// guest fault: the caller decides what to do (stop the guest, fall back).
type NotEmulatedError struct {
	Op     decode.Op
	Bytes  [15]byte
	Len    uint8
	RIP    uint64
	Reason string // what is missing, when more than the instruction
}

func (e *NotEmulatedError) Error() string {
	s := fmt.Sprintf("emulate: %s not emulated (at rip %#x, bytes % x)", e.Op, e.RIP, e.Bytes[:min(int(e.Len), len(e.Bytes))])
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
