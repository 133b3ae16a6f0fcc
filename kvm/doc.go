// Package kvm is walkvm's typed view of the /dev/kvm API: the system handle,
// a VM and its vCPUs, and the mmap'd kvm_run area read as typed exit views.
//
// It wraps github.com/bobuhiro11/gokvm's kvm package for the ioctls and
// structs that package has, and adds the missing ones (KVM_ENABLE_CAP,
// KVM_GET/SET_FPU, KVM_GET/SET_XSAVE, the exit layouts) with
// golang.org/x/sys/unix in the same style. Getters fill caller-owned structs
// so the exit loop allocates nothing.
package kvm
