package emulate

import (
	"walkvm/emulate/decode"
)

// Execution on a copy: what `-verify exec` needs to compare walkvm's result
// of an MMIO instruction with KVM's. The instruction runs against a copy of
// the state, reads the device's data from the exit instead of the device,
// reads RAM through the caller's side-effect-free Memory, and records its
// writes instead of performing them. Nothing the caller passed changes.

// MMIOData is the data of one device access as the exit gave it: reads of
// guest-physical [GPA, GPA+len(Data)) return Data.
type MMIOData struct {
	GPA  uint64
	Data []byte
}

// Sizes of the write log of an Effects.
const (
	MaxCopyWrites   = 64
	CopyWriteBuffer = 4096
)

// CopyWrite is one guest-physical write an instruction made on a copy.
type CopyWrite struct {
	GPA      uint64
	off, len uint16
}

// Effects is what one instruction did when executed on a copy: the state
// after it, the vector state after it (when it used one), the Result
// (with the undefined-flags mask of this execution) and the writes it made,
// in order. It is large (kilobytes); keep one per vCPU and reuse it.
type Effects struct {
	State  State
	Result Result
	// Vec is the vector state after the instruction; State.Vec points to
	// it when the input state had one.
	Vec Vector
	// Writes lists the writes; WriteData returns their bytes.
	Writes []CopyWrite

	writes [MaxCopyWrites]CopyWrite
	data   [CopyWriteBuffer]byte
	used   int
}

// WriteData returns the bytes of write i (valid until the next use of fx).
func (fx *Effects) WriteData(i int) []byte {
	w := &fx.Writes[i]
	return fx.data[w.off : w.off+w.len]
}

// copyMem is the Memory an execution on a copy sees.
type copyMem struct {
	base Memory
	mmio []MMIOData
	fx   *Effects
	full bool // the write log overflowed
}

func (c *copyMem) Translate(la uint64, in Intent) (uint64, error) {
	in.Commit = false // no accessed or dirty flags
	return c.base.Translate(la, in)
}

func (c *copyMem) ReadPhys(gpa uint64, b []byte) error {
	// Bytes come from the latest of: the earlier writes of this
	// instruction, the exit's data, RAM (read only when the others leave
	// a gap).
	if !c.covers(gpa, len(b)) {
		if err := c.base.ReadPhys(gpa, b); err != nil {
			return err
		}
	}
	for i := range c.mmio {
		overlay(b, gpa, c.mmio[i].GPA, c.mmio[i].Data)
	}
	for i := range c.fx.Writes {
		w := &c.fx.Writes[i]
		overlay(b, gpa, w.GPA, c.fx.data[w.off:w.off+w.len])
	}
	return nil
}

// covers reports whether every byte of [gpa, gpa+n) lies in an MMIO datum
// or an earlier write.
func (c *copyMem) covers(gpa uint64, n int) bool {
	for i := range n {
		a := gpa + uint64(i)
		in := false
		for j := range c.mmio {
			if a >= c.mmio[j].GPA && a-c.mmio[j].GPA < uint64(len(c.mmio[j].Data)) {
				in = true
				break
			}
		}
		for j := 0; !in && j < len(c.fx.Writes); j++ {
			w := &c.fx.Writes[j]
			in = a >= w.GPA && a-w.GPA < uint64(w.len)
		}
		if !in {
			return false
		}
	}
	return true
}

// overlay copies the part of src (at address at) that overlaps b (at
// address gpa) into b and returns how many bytes it copied.
func overlay(b []byte, gpa, at uint64, src []byte) int {
	lo, hi := max(gpa, at), min(gpa+uint64(len(b)), at+uint64(len(src)))
	if lo >= hi {
		return 0
	}
	return copy(b[lo-gpa:hi-gpa], src[lo-at:hi-at])
}

func (c *copyMem) WritePhys(gpa uint64, b []byte) error {
	fx := c.fx
	if len(fx.Writes) == MaxCopyWrites || fx.used+len(b) > CopyWriteBuffer {
		c.full = true
		return nil
	}
	off := fx.used
	fx.used += copy(fx.data[off:], b)
	fx.Writes = append(fx.Writes, CopyWrite{GPA: gpa, off: uint16(off), len: uint16(len(b))})
	return nil
}

// ExecuteOnCopy executes inst (decoded in the current mode) against a copy
// of s and fills fx with the state after it, its Result and the
// guest-physical writes it made, without changing s, its vector state or
// guest memory: reads inside an MMIOData return its bytes, other reads go
// to e.Mem (which must be free of side effects there: RAM, not devices);
// walks do not set accessed or dirty flags; writes are only recorded. It
// allocates nothing.
//
// A fault is returned as the *x86.Exception the instruction raises; fx.State
// is then the input state (a REP string instruction keeps its completed
// iterations, as Step documents) and fx.Writes what was written before it.
// An instruction whose writes exceed the log (MaxCopyWrites,
// CopyWriteBuffer) is a *NotEmulatedError.
func (e *Emulator) ExecuteOnCopy(s *State, inst *decode.Inst, mmio []MMIOData, fx *Effects) error {
	fx.State = *s
	fx.Result = Result{}
	fx.Writes = fx.writes[:0]
	fx.used = 0
	if s.Vec != nil {
		fx.Vec = *s.Vec
		fx.Vec.dirty = false
		fx.State.Vec = &fx.Vec
	}
	saved := e.Mem
	e.copy = copyMem{base: saved, mmio: mmio, fx: fx}
	e.Mem = &e.copy
	res, err := e.Execute(&fx.State, inst)
	e.Mem = saved
	full := e.copy.full
	e.copy = copyMem{}
	if full {
		fx.State = *s
		return e.notEmulated(s, inst, "writes exceed the copy's write log")
	}
	fx.Result = res
	return err
}
