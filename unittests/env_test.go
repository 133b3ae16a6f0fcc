package unittests

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseKernelVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want KernelVersion
		ok   bool
	}{
		{"6.18.44-fc-v1045", KernelVersion{"6.18.44-fc-v1045", 6, 18, "44", ""}, true},
		{"6.1.0-31-amd64", KernelVersion{"6.1.0-31-amd64", 6, 1, "0", "31"}, true},
		{"5.15.0", KernelVersion{"5.15.0", 5, 15, "0", ""}, true},
		{"6.9", KernelVersion{"6.9", 6, 9, "", ""}, true},
		{"6.10-rc3", KernelVersion{"6.10-rc3", 6, 10, "", ""}, true},
		{"linux", KernelVersion{}, false},
	} {
		got, err := ParseKernelVersion(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("ParseKernelVersion(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestErratumHave(t *testing.T) {
	k := func(s string) KernelVersion {
		v, err := ParseKernelVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		min, kernel string
		want        bool
	}{
		{"4.9", "6.1.0", true},
		{"4.9", "4.10.0", true},
		{"4.9", "4.8.17", false},
		{"4.9", "3.18.0", false},
		{"4.9", "4.9.0", true},
		{"4.9.3", "4.9.2", false},
		{"4.9.3", "4.9.4", true},
		{"4.9.3", "4.9", false}, // kernel gives no sublevel: the minimum's nonzero one wins
		{"4.9.0", "4.9", true},  // … a zero one does not
		{"4.9.3-2", "4.9.3-1", false},
		{"4.9.3-2", "4.9.3-2", true},
		{"4.9.3-2", "4.9.3", false},
		{"4.9.3-0", "4.9.3", true},
		{"4.9.3", "4.9.3-5", true},
	} {
		got, err := Erratum{"abc", tc.min}.Have(k(tc.kernel))
		if err != nil || got != tc.want {
			t.Errorf("min %s on %s: %v, %v; want %v", tc.min, tc.kernel, got, err, tc.want)
		}
	}
	if _, err := (Erratum{"abc", "x.1"}).Have(k("6.1")); err == nil {
		t.Error("bad minimum version: no error")
	}
}

const errataTxt = `#---------------:-------------------------------:---
# commit        : minimum kernel                : summary
#---------------:-------------------------------:---
9e3f7a296940    : 4.9                           : arm64: KVM: pmu: Fix
8c58be34494b    : 5.6                           : KVM: arm/arm64: vgic-its
aaaaaaaaaaaa    : 7.0                           : a future fix
bbbbbbbbbbbb    : 3.0                           : overridden by the environment
`

func TestParseErrata(t *testing.T) {
	got, err := ParseErrata(strings.NewReader(errataTxt))
	if err != nil {
		t.Fatal(err)
	}
	want := []Erratum{{"9e3f7a296940", "4.9"}, {"8c58be34494b", "5.6"}, {"aaaaaaaaaaaa", "7.0"}, {"bbbbbbbbbbbb", "3.0"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ParseErrata(strings.NewReader("abc\n")); err == nil {
		t.Error("a line without a version: no error")
	}
}

func TestEnvironGenerate(t *testing.T) {
	errata, err := ParseErrata(strings.NewReader(errataTxt))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ParseKernelVersion("6.18.44-fc-v1045")
	en := Environ{
		Kernel: k, Errata: errata,
		Env: []string{"PATH=/bin", "ERRATA_bbbbbbbbbbbb=n", "ERRATA_FORCE=y"},
		Old: "NR_CPUS=2\n  MEMSIZE=64\nTARGET=kvmtool\n# comment\n1BAD=x\n",
	}
	got, err := en.Generate()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"TARGET=qemu", "QEMU_ACCEL=kvm", "QEMU_VERSION_STRING=", "QEMU_MAJOR=", "QEMU_MINOR=", "QEMU_MICRO=",
		"KERNEL_VERSION_STRING=6.18.44-fc-v1045", "KERNEL_VERSION=6", "KERNEL_PATCHLEVEL=18", "KERNEL_SUBLEVEL=44", "KERNEL_EXTRAVERSION=",
		"NR_CPUS=2", "MEMSIZE=64",
		"ERRATA_8c58be34494b=y", "ERRATA_9e3f7a296940=y", "ERRATA_FORCE=y", "ERRATA_aaaaaaaaaaaa=n", "ERRATA_bbbbbbbbbbbb=n",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env file\n got %q\nwant %q", got, want)
	}
}
