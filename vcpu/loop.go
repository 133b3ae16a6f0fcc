// Package vcpu runs a vCPU: KVM_RUN, exit dispatch to the port-I/O bus and
// to an MMIO handler, and the decisions that end a run (halt, debug exit,
// triple fault, failed entry, internal error, timeout).
//
// The MMIO handler is the seam where walkvm's own MMIO path plugs in; the
// plain BusMMIO handler just routes accesses to the MMIO bus.
package vcpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/x86"
)

// Exit statuses of a run, as `vmm run` reports them.
const (
	StatusHalted  = 0
	StatusTimeout = 124
	StatusFailed  = 125
)

// MMIOHandler serves the exits that touch MMIO.
type MMIOHandler interface {
	// MMIO serves one KVM_EXIT_MMIO; for a read it fills Data[:Len].
	MMIO(exit *kvm.MMIOExit) error
	// EmulationFailure handles KVM_INTERNAL_ERROR_EMULATION; nil resumes
	// the guest, an error ends the run.
	EmulationFailure(f *kvm.EmulationFailure) error
}

// BusMMIO routes MMIO exits to a bus. Reads of unmapped addresses return
// all ones and writes to them are dropped, as on a PC.
type BusMMIO struct {
	Bus *memory.Bus
	Log logrus.FieldLogger
}

// MMIO implements MMIOHandler.
func (h *BusMMIO) MMIO(exit *kvm.MMIOExit) error {
	return ServeMMIO(h.Bus, exit, h.Log)
}

// ServeMMIO performs exit's access on bus.
func ServeMMIO(bus *memory.Bus, exit *kvm.MMIOExit, log logrus.FieldLogger) error {
	n := min(int(exit.Len), len(exit.Data))
	data := exit.Data[:n]
	var err error
	if exit.IsWrite != 0 {
		err = bus.Write(exit.PhysAddr, data)
	} else {
		err = bus.Read(exit.PhysAddr, data)
	}
	if errors.Is(err, memory.ErrNoDevice) {
		if exit.IsWrite == 0 {
			for i := range data {
				data[i] = 0xff
			}
		}
		if log != nil {
			log.Debugf("unassigned MMIO: %v", err)
		}
		return nil
	}
	return err
}

// EmulationFailure implements MMIOHandler: without an own MMIO path an
// instruction KVM cannot emulate ends the run.
func (h *BusMMIO) EmulationFailure(f *kvm.EmulationFailure) error {
	return fmt.Errorf("KVM could not emulate the instruction % x", f.Instruction())
}

// Observer sees every exit.
type Observer interface {
	// BeginExit runs before the exit is handled; an error ends the run.
	BeginExit(reason kvm.ExitReason) error
	// EndExit runs after it was handled.
	EndExit(reason kvm.ExitReason, emulationFailure bool)
}

// Loop runs one vCPU.
type Loop struct {
	CPU  *kvm.VCPU
	PIO  *memory.Bus
	MMIO MMIOHandler
	Log  logrus.FieldLogger

	// Observer, when set, sees every exit before and after it is handled:
	// the own MMIO path loads the vCPU state there, and counts and traces.
	Observer Observer

	stop atomic.Bool
	tid  atomic.Int32
}

// Result is how a run ended.
type Result struct {
	Status int    // the process exit status walkvm reports
	Reason string // "halt", "debug-exit", "timeout", "shutdown", "error"
	Err    error  // set when the VM or walkvm failed
	Dump   string // register and segment dump for failures
}

// Run enters the guest until the run ends; timeout 0 means none.
func (l *Loop) Run(timeout time.Duration) Result {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l.tid.Store(int32(unix.Gettid()))
	if timeout > 0 {
		t := time.AfterFunc(timeout, l.Stop)
		defer t.Stop()
	}
	for {
		if l.stop.Load() {
			return Result{Status: StatusTimeout, Reason: "timeout", Err: fmt.Errorf("guest still running after %v", timeout)}
		}
		err := l.CPU.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			l.CPU.SetImmediateExit(false)
			continue
		}
		if err != nil {
			return l.fail(fmt.Errorf("KVM_RUN: %w", err))
		}
		reason := l.CPU.ExitReason()
		if l.Observer != nil {
			if err := l.Observer.BeginExit(reason); err != nil {
				return l.fail(fmt.Errorf("reading vCPU state at a %v exit: %w", reason, err))
			}
		}
		res, done := l.handle(reason)
		if l.Observer != nil {
			l.Observer.EndExit(reason, reason == kvm.ExitInternalError && l.CPU.InternalError().Suberror == kvm.InternalErrorEmulation)
		}
		if done {
			return res
		}
	}
}

// Stop makes Run return with StatusTimeout as soon as the vCPU leaves the
// guest; it may be called from any goroutine.
func (l *Loop) Stop() {
	l.stop.Store(true)
	l.CPU.SetImmediateExit(true)
	if tid := l.tid.Load(); tid != 0 {
		// Kick the thread out of KVM_RUN; Go's runtime ignores a stray SIGURG.
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}
}

func (l *Loop) handle(reason kvm.ExitReason) (Result, bool) {
	switch reason {
	case kvm.ExitIO:
		if err := l.io(); err != nil {
			var req *devices.ExitRequest
			if errors.As(err, &req) {
				return Result{Status: req.Status, Reason: "debug-exit"}, true
			}
			return l.fail(err), true
		}
	case kvm.ExitMMIO:
		if err := l.MMIO.MMIO(l.CPU.MMIO()); err != nil {
			var req *devices.ExitRequest
			if errors.As(err, &req) {
				return Result{Status: req.Status, Reason: "debug-exit"}, true
			}
			return l.fail(fmt.Errorf("MMIO exit at GPA %#x: %w", l.CPU.MMIO().PhysAddr, err)), true
		}
	case kvm.ExitHLT:
		var regs kvm.Regs
		if err := l.CPU.GetRegs(&regs); err == nil && regs.RFLAGS&x86.FlagIF != 0 && l.Log != nil {
			l.Log.Warnf("guest halted with interrupts enabled at RIP %#x; walkvm has no interrupt sources, so the run ends", regs.RIP)
		}
		return Result{Status: StatusHalted, Reason: "halt"}, true
	case kvm.ExitShutdown:
		return l.fail(errors.New("guest shut down (triple fault)")), true
	case kvm.ExitFailEntry:
		return l.fail(fmt.Errorf("VM entry failed: hardware reason %#x", l.CPU.FailEntry().HardwareEntryFailureReason)), true
	case kvm.ExitInternalError:
		ie := l.CPU.InternalError()
		if ie.Suberror == kvm.InternalErrorEmulation {
			if err := l.MMIO.EmulationFailure(l.CPU.EmulationFailure()); err != nil {
				var req *devices.ExitRequest
				if errors.As(err, &req) {
					return Result{Status: req.Status, Reason: "debug-exit"}, true
				}
				return l.fail(fmt.Errorf("emulation failure: %w", err)), true
			}
			return Result{}, false
		}
		return l.fail(fmt.Errorf("KVM internal error, suberror %d, data % x", ie.Suberror, ie.Data[:min(int(ie.NData), len(ie.Data))])), true
	case kvm.ExitIntr:
		// A signal interrupted the guest; the loop checks for a stop.
	case kvm.ExitDebug:
		d := l.CPU.Debug()
		return l.fail(fmt.Errorf("unexpected debug exit: exception %d at %#x", d.Exception, d.PC)), true
	default:
		return l.fail(fmt.Errorf("unhandled exit reason %v", reason)), true
	}
	return Result{}, false
}

// io serves a port-I/O exit, element by element for string I/O. Reads of
// unassigned ports return all ones; writes to them are dropped.
func (l *Loop) io() error {
	io := l.CPU.IO()
	data, err := l.CPU.IOData()
	if err != nil {
		return err
	}
	size := int(io.Size)
	if size == 0 {
		return fmt.Errorf("IO exit with size 0 at port %#x", io.Port)
	}
	for off := 0; off+size <= len(data); off += size {
		el := data[off : off+size]
		if io.Direction == kvm.IOOut {
			err = l.PIO.Write(uint64(io.Port), el)
		} else {
			err = l.PIO.Read(uint64(io.Port), el)
		}
		if errors.Is(err, memory.ErrNoDevice) {
			if io.Direction == kvm.IOIn {
				for i := range el {
					el[i] = 0xff
				}
			}
			if l.Log != nil {
				l.Log.Debugf("unassigned port: %v", err)
			}
			err = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Loop) fail(err error) Result {
	return Result{Status: StatusFailed, Reason: "error", Err: err, Dump: DumpState(l.CPU)}
}
