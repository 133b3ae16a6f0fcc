package bench

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// FloorSource is the C floor VMM (floor/floor.c).
//
//go:embed floor/floor.c
var FloorSource []byte

// BuildFloor compiles the floor into dir with cc (gcc when empty), as
// `cc -O2 -static`, and returns the binary's path.
func BuildFloor(cc, dir string) (string, error) {
	if cc == "" {
		cc = "gcc"
	}
	src := filepath.Join(dir, "floor.c")
	if err := os.WriteFile(src, FloorSource, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "floor")
	out, err := exec.Command(cc, "-O2", "-static", "-o", bin, src).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the floor (%s -O2 -static floor.c): %w\n%s", cc, err, out)
	}
	return bin, nil
}
