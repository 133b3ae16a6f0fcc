//go:build !amd64

package hostfpu

import "errors"

// JIT runs nothing off amd64; see the amd64 version.
type JIT struct{}

// Vec reports that the host cannot run vector instructions.
func (j *JIT) Vec(code []byte, c *VecContext) error {
	return errors.New("hostfpu: no host vector unit on this architecture")
}

// HostFeatures reports nothing off amd64.
func HostFeatures() Features { return Features{} }
