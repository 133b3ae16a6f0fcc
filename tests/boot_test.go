package tests

import (
	"bytes"
	"testing"
	"time"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/guest"
	"walkvm/internal/kvmtest"
	"walkvm/machine"
	"walkvm/vcpu"
)

func newGuestMachine(t *testing.T, name string, console *bytes.Buffer) *machine.Machine {
	t.Helper()
	kvmtest.Require(t)
	g, err := guest.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := g.Image()
	if err != nil {
		t.Fatal(err)
	}
	mode, err := boot.ParseMode(g.Entry)
	if err != nil {
		t.Fatal(err)
	}
	m, err := machine.New(machine.Config{MemSize: 64 << 20, Image: boot.Image{Data: data, Load: g.Load, Mode: mode}, Console: console})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestHelloGuest(t *testing.T) {
	var console bytes.Buffer
	m := newGuestMachine(t, "hello", &console)
	res := m.Run(10 * time.Second)
	if res.ExitStatus() != 0 || res.Kind != vcpu.EndDebugExit {
		t.Fatalf("run ended %s with status %d: %v\n%s\nconsole: %q", res.Kind, res.ExitStatus(), res.Err, res.Dump, console.String())
	}
	g, _ := guest.Lookup("hello")
	if console.String() != g.Output {
		t.Errorf("console %q, want %q", console.String(), g.Output)
	}
	const w = devices.TestWindowLow
	want := []devices.Access{
		{GPA: w + 0x10, Size: 2, Write: true, Value: 0x1234}, {GPA: w + 0x10, Size: 2, Value: 0x1234},
		{GPA: w + 0x26, Size: 2, Write: true, Value: 0xbeef}, {GPA: w + 0x26, Size: 2, Value: 0xbeef},
		{GPA: w + 0x300, Size: 1, Write: true, Value: 0x5a}, {GPA: w + 0x300, Size: 1, Value: 0x5a},
		{GPA: w + 0x48, Size: 4, Write: true, Value: 0xdeadbeef}, {GPA: w + 0x48, Size: 4, Value: 0xdeadbeef},
		{GPA: w + 0x64, Size: 2, Write: true, Value: 0xcafe}, {GPA: w + 0x64, Size: 2, Value: 0xcafe},
		{GPA: w + 0x80, Size: 2, Write: true, Value: 0x0bad}, {GPA: w + 0x80, Size: 2, Value: 0x0bad},
	}
	got := m.WindowLow.Accesses()
	if len(got) != len(want) {
		t.Fatalf("window saw %d accesses, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("access %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(m.WindowHigh.Accesses()) != 0 {
		t.Errorf("high window touched: %+v", m.WindowHigh.Accesses())
	}
}

// A guest that never stops is stopped by the timeout with status 124.
func TestTimeout(t *testing.T) {
	kvmtest.Require(t)
	spin := []byte{0xeb, 0xfe} // jmp .
	m, err := machine.New(machine.Config{MemSize: 8 << 20, Image: boot.Image{Data: spin, Load: 0x1000, Mode: boot.Real}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res := m.Run(200 * time.Millisecond)
	if res.ExitStatus() != 124 || res.Kind != vcpu.EndTimeout {
		t.Fatalf("status %d reason %s, want 124 timeout", res.ExitStatus(), res.Kind)
	}
}

// Each entry mode runs a tiny image that reports through the debug-exit port.
func TestEntryModes(t *testing.T) {
	kvmtest.Require(t)
	for _, c := range []struct {
		mode boot.Mode
		code []byte
	}{
		{boot.Real, []byte{0xb0, 0x11, 0xe6, 0xf4}},                      // mov $0x11,%al; out %al,$0xf4
		{boot.Protected, []byte{0xb0, 0x22, 0xe6, 0xf4}},                 // same in 32-bit code
		{boot.Long, []byte{0x48, 0xc7, 0xc0, 0x33, 0, 0, 0, 0xe6, 0xf4}}, // mov $0x33,%rax; out
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			m, err := machine.New(machine.Config{MemSize: 8 << 20, Image: boot.Image{Data: c.code, Load: 0x1000, Mode: c.mode}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			res := m.Run(5 * time.Second)
			want := map[boot.Mode]int{boot.Real: 0x11, boot.Protected: 0x22, boot.Long: 0x33}[c.mode]
			if res.ExitStatus() != want {
				t.Fatalf("status %d (%s: %v), want %#x\n%s", res.ExitStatus(), res.Kind, res.Err, want, res.Dump)
			}
		})
	}
}

// A triple fault ends the run as a failure, not a clean exit.
func TestTripleFault(t *testing.T) {
	kvmtest.Require(t)
	// Protected mode with an empty IDT: ud2 -> #UD -> #DF -> shutdown.
	m, err := machine.New(machine.Config{MemSize: 8 << 20, Image: boot.Image{Data: []byte{0x0f, 0x0b}, Load: 0x1000, Mode: boot.Protected}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res := m.Run(5 * time.Second)
	if res.ExitStatus() != 125 || res.Dump == "" {
		t.Fatalf("status %d reason %s err %v, want 125 with a register dump", res.ExitStatus(), res.Kind, res.Err)
	}
}

func mustGuest(t *testing.T, name string) boot.Image {
	t.Helper()
	g, err := guest.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := g.Image()
	if err != nil {
		t.Fatal(err)
	}
	mode, err := boot.ParseMode(g.Entry)
	if err != nil {
		t.Fatal(err)
	}
	return boot.Image{Data: data, Load: g.Load, Mode: mode}
}
