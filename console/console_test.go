package console

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"walkvm/internal/ptytest"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Action
	}{
		{"ab", []Action{Forward, Forward}},
		{"\x01x", []Action{Swallow, Quit}},
		{"\x01X", []Action{Swallow, Quit}},
		{"\x01h", []Action{Swallow, ShowHelp}},
		{"\x01\x01", []Action{Swallow, Forward}},
		{"\x01a", []Action{Swallow, Forward}},
		{"x\x01\x01x", []Action{Forward, Swallow, Forward, Forward}},
	} {
		var e Escape
		var got []Action
		for _, b := range []byte(c.in) {
			got = append(got, e.Feed(b))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
		}
	}
}

// fifo is a receive FIFO of a few bytes that a "guest" drains.
type fifo struct {
	mu   sync.Mutex
	cap  int
	buf  []byte
	got  []byte
	full int // how often a byte did not fit
}

func (f *fifo) receive(b []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(len(b), f.cap-len(f.buf))
	if n < len(b) {
		f.full++
	}
	f.buf = append(f.buf, b[:n]...)
	return n
}

func (f *fifo) drain() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, f.buf...)
	f.buf = f.buf[:0]
}

func TestInputForwardsAndQuits(t *testing.T) {
	f := &fifo{cap: 4}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the guest's driver, draining the FIFO
		defer wg.Done()
		for {
			select {
			case <-stop:
				f.drain()
				return
			default:
				f.drain()
			}
		}
	}()
	var help bytes.Buffer
	quits := 0
	typed := "echo hello, world\r\x01h\x01\x01ls\r\x01xnot sent"
	in := NewInput(strings.NewReader(typed), f.receive, &help, func() { quits++ })
	if err := in.Run(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if want := "echo hello, world\r\x01ls\r"; string(f.got) != want {
		t.Errorf("guest received %q, want %q", f.got, want)
	}
	if quits != 1 {
		t.Errorf("quit called %d times", quits)
	}
	if help.String() != Help {
		t.Errorf("help %q", help.String())
	}
	if f.full == 0 {
		t.Error("the 4-byte FIFO never filled: the test did not exercise waiting")
	}
}

func TestInputEOF(t *testing.T) {
	f := &fifo{cap: 64}
	in := NewInput(strings.NewReader("abc"), f.receive, io.Discard, func() { t.Error("quit at EOF") })
	if err := in.Run(); err != nil {
		t.Fatal(err)
	}
	f.drain()
	if string(f.got) != "abc" {
		t.Errorf("received %q", f.got)
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, fmt.Errorf("device gone") }

func TestInputError(t *testing.T) {
	err := NewInput(failReader{}, func(b []byte) int { return len(b) }, io.Discard, func() {}).Run()
	if err == nil || !strings.Contains(err.Error(), "console input: device gone") {
		t.Errorf("err %v", err)
	}
}

func TestMakeRawAndRestore(t *testing.T) {
	_, pts := ptytest.Open(t)
	fd := int(pts.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 {
		t.Fatalf("a new pty is expected in cooked mode, lflag %#x", before.Lflag)
	}
	term, err := MakeRaw(pts)
	if err != nil {
		t.Fatal(err)
	}
	if !term.IsRaw() {
		t.Fatal("a pty was not recognised as a terminal")
	}
	raw, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Errorf("raw mode keeps lflag %#x (ICANON/ECHO/ISIG must be off: Ctrl-C goes to the guest)", raw.Lflag)
	}
	if raw.Iflag&(unix.ICRNL|unix.IXON) != 0 || raw.Cflag&unix.CSIZE != unix.CS8 || raw.Cc[unix.VMIN] != 1 {
		t.Errorf("raw mode: iflag %#x (ICRNL, IXON must be off), cflag %#x (CS8), VMIN %d", raw.Iflag, raw.Cflag, raw.Cc[unix.VMIN])
	}
	if raw.Oflag&unix.OPOST == 0 || raw.Oflag&unix.ONLCR != before.Oflag&unix.ONLCR {
		t.Errorf("raw mode: oflag %#x, want OPOST on and ONLCR as before (%#x), as QEMU keeps them", raw.Oflag, before.Oflag)
	}
	if err := term.Restore(); err != nil {
		t.Fatal(err)
	}
	after, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("restore: lflag %#x iflag %#x oflag %#x, want %#x %#x %#x", after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
	}
}

func TestMakeRawNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	term, err := MakeRaw(r)
	if err != nil {
		t.Fatal(err)
	}
	if term.IsRaw() {
		t.Error("a pipe was put in raw mode")
	}
	if err := term.Restore(); err != nil {
		t.Error(err)
	}
}
