//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package memory

import "math/bits"

// Guest memory is little-endian and this host is not: the words the host's
// atomic operations load and store are byte-swapped.

func le32(v uint32) uint32 { return bits.ReverseBytes32(v) }

func le64(v uint64) uint64 { return bits.ReverseBytes64(v) }
