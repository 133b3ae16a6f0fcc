package x86

// Access says what a linear-address translation is for, as the permission
// checks and the #PF error code see it (SDM Vol. 3A §4.6, §4.7). It is a
// set of bits; the zero value is an explicit data read.
//
// Whether an access is a user-mode or a supervisor-mode access follows from
// the CPL (3 is user) except for AccessImplicit: the SDM's "implicit
// supervisor-mode accesses" (descriptor tables, the TSS) are supervisor
// accesses at any CPL, SMAP applies to them regardless of RFLAGS.AC, and the
// #PF they raise has U/S = 0.
type Access uint8

// Access bits.
const (
	AccessRead     Access = 0
	AccessWrite    Access = 1 << 0 // a data write (W/R = 1); a read-modify-write is a write
	AccessFetch    Access = 1 << 1 // an instruction fetch (I/D)
	AccessImplicit Access = 1 << 2 // an implicit supervisor-mode access
	// AccessStack marks an access through SS: a non-canonical address
	// raises #SS(0) instead of #GP(0) (SDM Vol. 1 §3.3.7.1).
	AccessStack Access = 1 << 3
)

// Write reports whether the access is a write.
func (a Access) Write() bool { return a&AccessWrite != 0 }

// Fetch reports whether the access is an instruction fetch.
func (a Access) Fetch() bool { return a&AccessFetch != 0 }

// String names the kind of access: "read", "write" or "fetch", with
// "implicit" and "stack" added when set.
func (a Access) String() string {
	s := "read"
	switch {
	case a&AccessWrite != 0 && a&AccessFetch != 0:
		s = "write+fetch"
	case a&AccessWrite != 0:
		s = "write"
	case a&AccessFetch != 0:
		s = "fetch"
	}
	if a&AccessImplicit != 0 {
		s += ",implicit"
	}
	if a&AccessStack != 0 {
		s += ",stack"
	}
	return s
}
