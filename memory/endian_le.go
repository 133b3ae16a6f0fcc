//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package memory

// Guest memory is little-endian, and so is this host: the words the host's
// atomic operations load and store need no swapping.

func le32(v uint32) uint32 { return v }

func le64(v uint64) uint64 { return v }
