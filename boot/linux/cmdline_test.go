package linux

import (
	"os"
	"strings"
	"testing"
)

func TestCmdline(t *testing.T) {
	items := DefaultCmdline()
	var params []string
	seen := map[string]bool{}
	for _, it := range items {
		key, _, _ := strings.Cut(it.Param, "=")
		if seen[key] || it.Why == "" || strings.ContainsAny(it.Param, " \t") {
			t.Errorf("item %+v: repeated, unexplained or not one word", it)
		}
		seen[key] = true
		params = append(params, it.Param)
	}
	def := strings.Join(params, " ")
	for _, c := range []struct{ extra, want string }{
		{"", def},
		{"  ", def},
		{"quiet", def + " quiet"},
		{" console=hvc0 loglevel=7 ", def + " console=hvc0 loglevel=7"},
	} {
		if got := Cmdline(c.extra); got != c.want {
			t.Errorf("Cmdline(%q) = %q, want %q", c.extra, got, c.want)
		}
	}
	for _, must := range []string{"console=ttyS0", "reboot=k", "panic=-1", "acpi=off", "pci=off"} {
		if !seen[strings.Split(must, "=")[0]] || !strings.Contains(def, must) {
			t.Errorf("default command line %q lacks %s", def, must)
		}
	}
}

// The README explains every item of the default command line.
func TestCmdlineInREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range DefaultCmdline() {
		if !strings.Contains(string(b), "`"+it.Param+"`") {
			t.Errorf("README.md does not explain `%s` (%s)", it.Param, it.Why)
		}
	}
}
