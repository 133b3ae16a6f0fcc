package guest

import (
	"testing"

	"walkvm/boot/format"
)

func TestManifestImages(t *testing.T) {
	for _, g := range All() {
		b, err := g.Image()
		if err != nil {
			t.Errorf("%s: %v", g.Name, err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s: empty image", g.Name)
		}
		kind, why, err := format.Detect(b)
		if err != nil {
			t.Errorf("%s: %v image: %v", g.Name, kind, err)
		}
		if kind == format.Flat {
			switch g.Entry {
			case "real", "protected", "long":
			default:
				t.Errorf("%s: flat image with bad entry mode %q", g.Name, g.Entry)
			}
		} else if g.Entry != "" || g.Load != 0 {
			t.Errorf("%s: a %v image (%s) is loaded by its headers, but the manifest gives entry %q load %#x", g.Name, kind, why, g.Entry, g.Load)
		}
		if _, err := g.InitrdData(); err != nil {
			t.Errorf("%s: %v", g.Name, err)
		}
		switch g.DebugExit {
		case "", "qemu":
		default:
			t.Errorf("%s: debug-exit form %q", g.Name, g.DebugExit)
		}
	}
	if _, err := Lookup(Default); err != nil {
		t.Fatalf("default guest: %v", err)
	}
}
