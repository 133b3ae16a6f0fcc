package guest

import "testing"

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
		switch g.Entry {
		case "real", "protected", "long":
		default:
			t.Errorf("%s: bad entry mode %q", g.Name, g.Entry)
		}
	}
	if _, err := Lookup(Default); err != nil {
		t.Fatalf("default guest: %v", err)
	}
}
