// Package guest holds walkvm's test guests: GNU assembler sources built into
// flat binaries by `go generate ./guest` (build.sh, GNU as/ld), committed,
// and embedded here with a manifest saying how to run each one.
package guest

import (
	"embed"
	"fmt"
	"sort"
)

//go:generate sh build.sh

//go:embed *.bin
var images embed.FS

// Guest describes one embedded guest.
type Guest struct {
	Name   string
	Load   uint64 // GPA the image is linked for
	Entry  string // entry mode: real, protected or long
	Checks string // what it checks, for `vmm guests`
	// Output is text the guest prints on success; tests assert it.
	Output string
}

var manifest = []Guest{
	{
		Name: "hello", Load: 0x1000, Entry: "real",
		Checks: "UART output; MMIO test window at 0xd0000 with six 16-bit addressing forms (disp16, bx+si+disp8, di+disp16, bx+di with 0x66, bp+disp8 via SS, si via DS)",
		Output: "walkvm: hello from real mode\nwalkvm: MMIO test window: 6 addressing forms ok\n",
	},
}

// Default is the guest `vmm run` boots without an image.
const Default = "hello"

// All lists the embedded guests by name.
func All() []Guest {
	g := append([]Guest(nil), manifest...)
	sort.Slice(g, func(i, j int) bool { return g[i].Name < g[j].Name })
	return g
}

// Lookup finds a guest by name.
func Lookup(name string) (Guest, error) {
	for _, g := range manifest {
		if g.Name == name {
			return g, nil
		}
	}
	return Guest{}, fmt.Errorf("no embedded guest named %q", name)
}

// Image returns the guest's flat binary.
func (g Guest) Image() ([]byte, error) {
	b, err := images.ReadFile(g.Name + ".bin")
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return b, nil
}
