package main

import (
	"bytes"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"walkvm/devices"
	"walkvm/internal/ptytest"
)

// quits records the statuses a console asked a run to end with.
type quits struct {
	mu sync.Mutex
	st []int
}

func (q *quits) Quit(status int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.st = append(q.st, status)
}

func (q *quits) first() (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.st) == 0 {
		return 0, false
	}
	return q.st[0], true
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// drainUART reads the UART's receive buffer as a polling guest would,
// until it has n bytes or a second has passed.
func drainUART(t *testing.T, u *devices.UART, n int) string {
	t.Helper()
	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		var lsr [1]byte
		u.Read(5, lsr[:])
		if lsr[0]&1 == 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		var b [1]byte
		u.Read(0, b[:])
		got = append(got, b[0])
	}
	return string(got)
}

func waitQuit(t *testing.T, q *quits) int {
	t.Helper()
	for range 500 {
		if s, ok := q.first(); ok {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no quit")
	return 0
}

// On a terminal: raw mode while attached (typed bytes, Ctrl-C too, reach
// the UART unchanged), Ctrl-A h prints the help, Ctrl-A x quits with 0,
// and detach restores the terminal.
func TestConsoleTerminal(t *testing.T) {
	ptm, pts := ptytest.Open(t)
	fd := int(pts.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	u := devices.NewUART(nil)
	q := &quits{}
	var help bytes.Buffer
	detach := attachConsole(q, u, pts, &help, quietLog())
	raw, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Errorf("attached terminal not raw: lflag %#x", raw.Lflag)
	}
	ptm.Write([]byte("ls\x03\r\x01h"))
	if got := drainUART(t, u, 4); got != "ls\x03\r" {
		t.Errorf("UART received %q, want %q", got, "ls\x03\r")
	}
	ptm.Write([]byte("\x01x"))
	if s := waitQuit(t, q); s != 0 {
		t.Errorf("Ctrl-A x quit with %d, want 0", s)
	}
	detach()
	detach()
	after, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("detach did not restore the terminal: lflag %#x, want %#x", after.Lflag, before.Lflag)
	}
	if help.String() == "" {
		t.Error("Ctrl-A h printed nothing")
	}
}

// Without a terminal, stdin's bytes still arrive, more than the FIFO
// holds, and its end stops only the input.
func TestConsolePipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u := devices.NewUART(nil)
	q := &quits{}
	detach := attachConsole(q, u, r, io.Discard, quietLog())
	defer detach()
	msg := "echo one two three four five\n"
	w.Write([]byte(msg))
	w.Close()
	if got := drainUART(t, u, len(msg)); got != msg {
		t.Errorf("UART received %q, want %q", got, msg)
	}
	time.Sleep(50 * time.Millisecond)
	if s, ok := q.first(); ok {
		t.Errorf("end of input quit the run with %d", s)
	}
}

// Only the null device is the null device: /dev/zero (1:5) has bytes, a
// pipe and a file may.
func TestIsNullDevice(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	open := func(name string) *os.File {
		f, err := os.Open(name)
		if err != nil {
			t.Skipf("%s: %v", name, err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	for _, c := range []struct {
		name string
		f    func() *os.File
		want bool
	}{
		{"/dev/null", func() *os.File { return open("/dev/null") }, true},
		{"/dev/zero", func() *os.File { return open("/dev/zero") }, false},
		{"pipe", func() *os.File { return r }, false},
		{"regular file", func() *os.File { return file }, false},
	} {
		if got := isNullDevice(c.f()); got != c.want {
			t.Errorf("%s: isNullDevice %v, want %v", c.name, got, c.want)
		}
	}
}

// A signal ends the run with 128 + its number.
func TestConsoleSignal(t *testing.T) {
	q := &quits{}
	detach := attachConsole(q, devices.NewUART(nil), nil, io.Discard, quietLog())
	defer detach()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if s := waitQuit(t, q); s != 128+int(syscall.SIGHUP) {
		t.Errorf("SIGHUP quit with %d, want %d", s, 128+int(syscall.SIGHUP))
	}
}
