//go:build !amd64

package hostfpu

// Available says whether the host can run the instructions (amd64).
const Available = false

// X87 runs nothing off amd64; see the amd64 version.
func X87(esc, reg uint8, img *[ImageSize]byte, mem *[MemSize]byte) bool { return false }
