package main

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"walkvm/console"
	"walkvm/devices"
)

// quitter ends a run from outside the guest (machine.Machine.Quit).
type quitter interface{ Quit(status int) }

// quitSignals end a run with status 128 + the signal's number, the
// terminal restored first.
var quitSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// attachConsole connects stdin to the guest's UART for one run: a terminal
// goes into raw mode (console.MakeRaw) unless walkvm runs in the
// background (then stdin is left alone), stdin's bytes go to the UART's receive FIFO (waiting while it
// is full), Ctrl-A x ends the run with status 0 and Ctrl-A h prints the
// escapes on stderr; SIGINT, SIGTERM and SIGHUP end it with 128 + the
// signal. Without a terminal stdin's bytes still flow, and its end just
// stops the input; the null device is not read. detach restores the
// terminal and stops the forwarding; call it as soon as the run ends (again
// later is harmless).
func attachConsole(m quitter, uart *devices.UART, stdin *os.File, stderr io.Writer, log logrus.FieldLogger) (detach func()) {
	var detached atomic.Bool
	done := make(chan struct{})
	stop := make(chan int, 1)
	request := func(status int) {
		select {
		case stop <- status:
		default:
		}
	}
	// A stop asked for before the run has begun would be lost: ask again
	// until the run is over.
	go func() {
		select {
		case status := <-stop:
			for {
				m.Quit(status)
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		case <-done:
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, quitSignals...)
	go func() {
		select {
		case s := <-sigs:
			log.Warnf("vmm run: %v: ending the run", s)
			request(128 + int(s.(syscall.Signal)))
		case <-done:
		}
	}()

	if stdin != nil && (inBackground(stdin) || isNullDevice(stdin)) {
		stdin = nil
	}
	var term *console.Terminal
	if stdin != nil {
		t, err := console.MakeRaw(stdin)
		if err != nil {
			log.Warnf("vmm run: %v: typing goes through the terminal's line discipline", err)
		} else {
			term = t
		}
	}
	if stdin != nil {
		sink := func(b []byte) int {
			if detached.Load() {
				return len(b) // the run is over: drop
			}
			n, err := uart.Receive(b)
			if err != nil {
				log.Warnf("vmm run: serial input: %v", err)
			}
			return n
		}
		in := console.NewInput(stdin, sink, stderr, func() { request(0) })
		go func() {
			if err := in.Run(); err != nil && !detached.Load() {
				log.Warnf("vmm run: %v: no more input", err)
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			detached.Store(true)
			close(done)
			signal.Stop(sigs)
			if term != nil {
				if err := term.Restore(); err != nil {
					log.Warnf("vmm run: %v", err)
				}
			}
		})
	}
}

// isNullDevice reports whether f is the null device (character device 1:3,
// /dev/null): its reads end at once, so there is no input to forward and no
// goroutine to start for it. A VMM run by another program without a stdin
// of its own (exec.Cmd, a test runner) has it.
func isNullDevice(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
}

// inBackground reports whether f is this process's controlling terminal
// and another process group is in its foreground: putting it into raw mode
// would stop walkvm (SIGTTOU), and reading it would too (SIGTTIN).
func inBackground(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp != unix.Getpgrp()
}
