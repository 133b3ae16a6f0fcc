package bench

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"

	"walkvm/boot"
)

//go:generate sh build.sh

var (
	//go:embed exit.bin
	exitBin []byte
	//go:embed mmio.bin
	mmioBin []byte
	//go:embed pio.bin
	pioBin []byte
	//go:embed long4k.bin
	long4kBin []byte
)

// The header every bench guest starts with (header.h): the iteration count
// at offset 4, the magic at offset 8.
const (
	iterationsOffset = 4
	magicOffset      = 8
	guestMagic       = "WVMBENCH"
)

// Workload is one bench guest and how to read its figures.
type Workload struct {
	Name string
	// What the guest does, for the report.
	What  string
	image []byte
	Mode  boot.Mode
	// ExitsPerIteration is how many exits one iteration makes; every
	// guest adds one exit for its debug exit. Zero: the guest exits at
	// once whatever the count (boot-to-exit).
	ExitsPerIteration uint64
}

// Load is where every bench guest is linked (build.sh).
const Load = 0x1000

// Workloads are the bench guests, in the order of the report.
var Workloads = []Workload{
	{Name: "mmio", What: "32-bit protected mode, paging off: one 4-byte MMIO write and one read on 0xff000000 per iteration",
		image: mmioBin, Mode: boot.Protected, ExitsPerIteration: 2},
	{Name: "pio", What: "32-bit protected mode: one OUT and one IN on port 0x3ff (UART scratch) per iteration",
		image: pioBin, Mode: boot.Protected, ExitsPerIteration: 2},
	{Name: "long4k", What: "long mode, the guest's own 4-level tables with 4 KiB pages: MMIO write+read per iteration, fetch and operand both 4-level walks",
		image: long4kBin, Mode: boot.Long, ExitsPerIteration: 2},
	{Name: "boot", What: "real mode: the first instruction writes the debug-exit port (process start to exit)",
		image: exitBin, Mode: boot.Real},
}

// LookupWorkload finds a workload by name.
func LookupWorkload(name string) (Workload, error) {
	for _, w := range Workloads {
		if w.Name == name {
			return w, nil
		}
	}
	names := make([]string, len(Workloads))
	for i, w := range Workloads {
		names[i] = w.Name
	}
	return Workload{}, fmt.Errorf("workload %q: want one of %v", name, names)
}

// Exits is how many exits the guest makes with n iterations.
func (w Workload) Exits(n uint32) uint64 { return uint64(n)*w.ExitsPerIteration + 1 }

// Image returns the guest with its iteration count set to n (at least 1).
func (w Workload) Image(n uint32) (boot.Image, error) {
	if n == 0 {
		return boot.Image{}, fmt.Errorf("workload %s: iterations must be at least 1", w.Name)
	}
	if len(w.image) < magicOffset+len(guestMagic) || !bytes.Equal(w.image[magicOffset:magicOffset+len(guestMagic)], []byte(guestMagic)) {
		return boot.Image{}, fmt.Errorf("workload %s: image has no %q header at offset %d", w.Name, guestMagic, magicOffset)
	}
	data := bytes.Clone(w.image)
	binary.LittleEndian.PutUint32(data[iterationsOffset:], n)
	return boot.Image{Data: data, Load: Load, Mode: w.Mode}, nil
}
