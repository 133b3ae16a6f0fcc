// Package linux boots a stock Linux kernel (Debian's, as tests/nested/run
// fetches it) under `vmm run` with busybox initramfs systems it builds:
// user-space MMIO through Linux's own page tables checked under -verify
// strict, and typing into a shell through stdin. Without KVM, the kernel
// files, a static busybox or the vmm binary it skips, saying which.
package linux
