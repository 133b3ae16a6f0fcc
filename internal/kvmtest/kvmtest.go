// Package kvmtest helps tests that need /dev/kvm: they skip, saying why,
// where it is missing or unusable.
package kvmtest

import (
	"os"
	"testing"

	"walkvm/kvm"
)

// Nested reports whether the tests run inside walkvm's nested KVM runner
// (tests/nested), where every paging mode must work: no mode skips there.
func Nested() bool { return os.Getenv("WALKVM_NESTED") == "1" }

// Require skips t unless /dev/kvm opens and speaks walkvm's API.
func Require(t testing.TB) {
	t.Helper()
	s, err := kvm.Open()
	if err != nil {
		t.Skipf("needs %s: %v", kvm.DevicePath, err)
	}
	s.Close()
}
