package tests

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"walkvm/boot"
	"walkvm/internal/kvmtest"
	"walkvm/machine"
	"walkvm/ownpath"
	"walkvm/vcpu"
)

// Random bytes as a guest, in every entry mode, through the own MMIO path
// under strict: whatever the garbage does (fault, loop, touch MMIO with odd
// instructions), the run ends with a clear result and walkvm never panics.
// Disagreements are allowed here (KVM's emulator is no CPU), crashes not.
func TestRandomCode(t *testing.T) {
	kvmtest.Require(t)
	n := 30
	if kvmtest.Nested() {
		n = 6 // everything is emulated there; the host run is the real check
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WALKVM_RANDOM_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 0, 64); err != nil {
			t.Fatalf("WALKVM_RANDOM_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (replay: WALKVM_RANDOM_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	modes := []boot.Mode{boot.Real, boot.Protected, boot.Long}
	ends := map[string]int{}
	for i := range n {
		img := make([]byte, 64<<rng.IntN(7))
		for j := range img {
			img[j] = byte(rng.Uint32())
		}
		mode := modes[i%len(modes)]
		m, err := machine.New(machine.Config{MemSize: 8 << 20, Image: boot.Image{Data: img, Load: 0x1000, Mode: mode}})
		if err != nil {
			t.Fatal(err)
		}
		own, err := m.OwnPath(ownpath.VerifyStrict, nil)
		if err != nil {
			m.Close()
			t.Fatal(err)
		}
		res := m.RunOwn(own, 100*time.Millisecond)
		m.Close()
		if res.Kind == vcpu.EndNone || (res.ExitStatus() == vcpu.StatusFailed && res.Err == nil) {
			t.Errorf("image %d (%v): unclear end: %+v", i, mode, res)
		}
		ends[res.Kind.String()]++
	}
	t.Logf("ends: %v", ends)
}
