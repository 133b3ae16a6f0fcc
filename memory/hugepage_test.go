package memory

import (
	"testing"
	"unsafe"
)

// Guest RAM's host addresses agree with its GPAs modulo 2 MiB, so KVM can
// map it with 2 MiB entries.
func TestRAMHugePageAligned(t *testing.T) {
	r, err := NewRAM(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, rg := range r.Regions() {
		host := uint64(uintptr(unsafe.Pointer(&rg.Host[0])))
		if host%hugePage != rg.GPA%hugePage {
			t.Errorf("region at GPA %#x: host address %#x, not congruent modulo 2 MiB", rg.GPA, host)
		}
	}
	if err := r.Write(64<<20-8, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Errorf("last bytes of RAM: %v", err)
	}
}
