// Package tests holds walkvm's integration tests: they boot the embedded
// guests on /dev/kvm and check what the guests print, the MMIO accesses the
// devices saw and the exit status. Without /dev/kvm they skip, saying why.
package tests
