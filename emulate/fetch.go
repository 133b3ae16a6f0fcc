package emulate

import (
	"errors"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Fetch reads the instruction at CS:RIP through the guest's paging and
// decodes it into the Emulator's Inst, which it returns. It only looks:
// nothing in s or guest memory changes (walks do not set accessed flags).
//
// Bytes are fetched page by page and decoded as they arrive, so an
// instruction that ends within its first page never touches the second one
// (and cannot fault on it). Offsets wrap at the code size (IP in 16-bit
// code, EIP in 32-bit code); in 16- and 32-bit code, including real mode,
// a byte beyond the CS limit is #GP(0), and in 64-bit mode a non-canonical
// byte address is #GP(0). Fetch faults are the *x86.Exception the CPU
// raises (a #PF from the walker has I/D set).
func (e *Emulator) Fetch(s *State) (*decode.Inst, error) {
	return e.fetch(s, s.Mode(), false)
}

func (e *Emulator) fetch(s *State, m x86.Mode, commit bool) (*decode.Inst, error) {
	dm := decodeMode(m)
	e.ilen = 0
	ipMask := addrMask(uint8(dm) / 8)
	cs := &s.Seg[x86.CS]
	in := Intent{Access: x86.AccessFetch, Commit: commit}
	n := uint64(0)
	for n < decode.MaxLen {
		off := (s.RIP + n) & ipMask
		var la uint64
		chunk := decode.MaxLen - n
		if m == x86.ModeLong64 {
			la = off
			if !x86.IsCanonical(la, s.LinearBits()) {
				return nil, gp0(m, "instruction fetch at non-canonical address")
			}
		} else {
			if off > uint64(cs.Limit) {
				return nil, gp0(m, "instruction fetch beyond CS limit")
			}
			la = (cs.Base + off) & 0xFFFFFFFF
			chunk = min(chunk, uint64(cs.Limit)-off+1, ipMask-off+1)
		}
		chunk = min(chunk, pageSize-la%pageSize)
		gpa, err := e.Mem.Translate(la, in)
		if err != nil {
			return nil, err
		}
		if err := e.Mem.ReadPhys(gpa, e.ibuf[n:n+chunk]); err != nil {
			return nil, err
		}
		n += chunk
		e.ilen = uint8(n)
		if l := uint64(e.inst.Len); e.decoded && e.inst.Mode == dm && l <= n && string(e.ibuf[:l]) == string(e.last[:l]) {
			e.ilen = e.inst.Len
			return &e.inst, nil
		}
		e.decoded = false
		err = decode.Decode(e.ibuf[:n], dm, &e.inst)
		if err == nil {
			e.ilen = e.inst.Len
			e.last, e.decoded = e.ibuf, true
			return &e.inst, nil
		}
		if !errors.Is(err, decode.ErrTruncated) {
			var x *x86.Exception
			if errors.As(err, &x) && m == x86.ModeReal {
				x.HasErrorCode = false
			}
			return nil, err
		}
	}
	return nil, gp0(m, "instruction longer than 15 bytes")
}
