package mmu

// AllowsSupervisorRead reports whether an explicit supervisor-mode data read
// may use the translation walk w completed, under the state c was reset
// with: SMAP refuses a user-mode address unless RFLAGS.AC is set, and
// protection keys refuse one whose key has PKRU.AD (SDM Vol. 3A §4.6.1,
// §4.6.2). KVM_TRANSLATE answers for exactly that access
// (kvm_mmu_gva_to_gpa_system walks with access 0 whatever the CPL), so a
// translation a user access may use can still be invalid for it. Without
// paging, and for EPT, every read is allowed.
func (c *Context) AllowsSupervisorRead(w *Walk) bool {
	if c.format == nil || w.Walker == EPT {
		return true
	}
	var a uint8
	if w.Perm&PermWrite != 0 {
		a |= accWrite
	}
	if w.Perm&PermUser != 0 {
		a |= accUser
	}
	if w.Perm&PermExec != 0 {
		a |= accExec
	}
	return c.perm.check(a, w.PKey, 0, c.ac, c.pkru) == 0
}
