package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// KUTResult is the wall time of the kvm-unit-tests suite under `vmm
// unittests`, per verify level. The floor cannot run it (it boots flat
// images only), so it has no ratio.
type KUTResult struct {
	Dir  string   `json:"dir"`
	Rows []KUTRow `json:"rows"`
}

// KUTRow is one verify level's suite runs.
type KUTRow struct {
	Verify string `json:"verify"`
	WallS  Stat   `json:"wall_s"`
	// Status is `vmm unittests`' exit status of each round (0: every test
	// passed or skipped).
	Status []int `json:"status"`
}

// runKUT runs `vmm unittests -verify LEVEL DIR` once: its wall time and
// exit status. Each level keeps its logs in logDir/kut-LEVEL.
func runKUT(vmm, dir, level, logDir string) (time.Duration, int, error) {
	cmd := exec.Command(vmm, "unittests", "-verify", level, "-logs", filepath.Join(logDir, "kut-"+level), dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return wall, 0, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		// Some test failed: the suite ran, and its time counts.
		return wall, 1, nil
	}
	return 0, 0, fmt.Errorf("%v: %w\n%s", cmd.Args, err, out.Bytes())
}

// summarizeKUT turns the rounds' samples into rows, levels in order.
func summarizeKUT(dir string, levels []string, walls map[string][]time.Duration, status map[string][]int) *KUTResult {
	r := &KUTResult{Dir: dir}
	for _, l := range levels {
		var s []float64
		for _, w := range walls[l] {
			s = append(s, w.Seconds())
		}
		r.Rows = append(r.Rows, KUTRow{Verify: l, WallS: summary(s), Status: status[l]})
	}
	return r
}
