package kvm

import "testing"

// KVM_RUN goes through RawSyscall until an entry is interrupted, then
// through Syscall for syscallEntries entries, then raw again.
func TestEntryPolicy(t *testing.T) {
	var p entryPolicy
	for i := range 3 {
		if !p.raw() {
			t.Fatalf("entry %d before any interruption is not raw", i)
		}
	}
	p.interrupted()
	for i := range syscallEntries {
		if p.raw() {
			t.Fatalf("entry %d after an interruption is raw", i)
		}
	}
	if !p.raw() {
		t.Fatalf("entry %d after an interruption is not raw again", syscallEntries)
	}
	// An interruption during the Syscall entries starts the count over.
	p.interrupted()
	p.raw()
	p.interrupted()
	n := 0
	for !p.raw() {
		n++
	}
	if n != syscallEntries {
		t.Errorf("%d Syscall entries after a second interruption, want %d", n, syscallEntries)
	}
}
