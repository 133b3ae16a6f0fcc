// Package console connects the user's terminal to a guest's serial port:
// it puts a terminal into raw mode while the guest runs, forwards the bytes
// typed to the UART's receive FIFO (waiting while the FIFO is full), and
// reads QEMU's escape sequences: Ctrl-A x quits, Ctrl-A Ctrl-A sends one
// Ctrl-A, Ctrl-A h prints the help.
package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// EscapeChar is Ctrl-A, QEMU's escape character.
const EscapeChar = 0x01

// Help is what Ctrl-A h prints.
const Help = "\r\nC-a x    exit walkvm\r\nC-a h    this help\r\nC-a C-a  send C-a to the guest\r\n"

// Action is what a typed byte asks for.
type Action uint8

// Actions of the escape parser.
const (
	Forward  Action = iota // send the byte to the guest
	Swallow                // part of an escape: send nothing
	Quit                   // Ctrl-A x
	ShowHelp               // Ctrl-A h
)

// Escape is the escape-sequence state machine; its zero value is ready.
type Escape struct{ pending bool }

// Feed classifies one typed byte. After Ctrl-A, x quits, h shows the help,
// Ctrl-A forwards one Ctrl-A, and any other byte is forwarded alone (the
// Ctrl-A before it is dropped, as QEMU does).
func (e *Escape) Feed(b byte) Action {
	if !e.pending {
		if b == EscapeChar {
			e.pending = true
			return Swallow
		}
		return Forward
	}
	e.pending = false
	switch b {
	case 'x', 'X':
		return Quit
	case 'h', 'H', '?':
		return ShowHelp
	}
	return Forward
}

// Sink takes received bytes, as a UART's receive FIFO does: it returns how
// many it accepted (fewer when the FIFO is full).
type Sink func(b []byte) int

// Input forwards bytes from a reader to a guest's UART.
type Input struct {
	r     io.Reader
	sink  Sink
	echo  io.Writer // where the help goes
	quit  func()
	retry time.Duration
}

// NewInput returns an Input reading r into sink; Ctrl-A x calls quit and
// Ctrl-A h writes the help to echo.
func NewInput(r io.Reader, sink Sink, echo io.Writer, quit func()) *Input {
	return &Input{r: r, sink: sink, echo: echo, quit: quit, retry: time.Millisecond}
}

// Run forwards until the reader ends (nil at EOF), fails, or Ctrl-A x is
// typed (then it calls quit and returns nil).
func (in *Input) Run() error {
	var esc Escape
	buf := make([]byte, 256)
	out := make([]byte, 0, 256)
	for {
		n, err := in.r.Read(buf)
		out = out[:0]
		for _, b := range buf[:n] {
			switch esc.Feed(b) {
			case Forward:
				out = append(out, b)
			case Quit:
				in.deliver(out)
				in.quit()
				return nil
			case ShowHelp:
				io.WriteString(in.echo, Help)
			}
		}
		in.deliver(out)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("console input: %w", err)
		}
	}
}

// deliver hands b to the sink, waiting while the guest has not drained the
// FIFO.
func (in *Input) deliver(b []byte) {
	for len(b) > 0 {
		n := in.sink(b)
		b = b[n:]
		if len(b) > 0 {
			time.Sleep(in.retry)
		}
	}
}

// Terminal is a terminal put into raw mode; Restore puts it back.
type Terminal struct {
	fd    int
	state *term.State
}

// MakeRaw puts f into raw mode if it is a terminal (so typed bytes, Ctrl-C
// included, reach the guest unchanged) but keeps output processing, as
// QEMU does for its stdio: a guest's (or walkvm's own) bare newline still
// returns the cursor to the line's start. For anything else it returns a
// Terminal whose Restore does nothing.
func MakeRaw(f *os.File) (*Terminal, error) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return &Terminal{fd: -1}, nil
	}
	st, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("raw mode on %s: %w", f.Name(), err)
	}
	t := &Terminal{fd: fd, state: st}
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		tio.Oflag |= unix.OPOST
		err = unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	}
	if err != nil {
		t.Restore()
		return nil, fmt.Errorf("output processing on %s: %w", f.Name(), err)
	}
	return t, nil
}

// IsRaw reports whether MakeRaw changed the terminal.
func (t *Terminal) IsRaw() bool { return t.state != nil }

// Restore returns the terminal to the mode it had before MakeRaw.
func (t *Terminal) Restore() error {
	if t.state == nil {
		return nil
	}
	return term.Restore(t.fd, t.state)
}
