// Package vcpu runs vCPUs: one run loop per vCPU (KVM_RUN, then the exit
// dispatched to the port-I/O bus or an MMIO handler), and a Group that runs
// the loops of one VM together until the first of them ends the run.
//
// An exit is a kvm.Exit value and its handling a function of it (Handle),
// so every exit kind is tested with made-up exits. The MMIO handler is the
// seam where walkvm's own MMIO path (package ownpath) plugs in; BusMMIO
// just routes accesses to the MMIO bus.
package vcpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/trace"
	"walkvm/x86"
)

// CPU is what a loop needs of its vCPU; *kvm.VCPU implements it.
type CPU interface {
	// Run enters the guest until the next exit (KVM_RUN); it returns
	// kvm.ErrInterrupted for EINTR.
	Run() error
	// ReadExit fills e from kvm_run.
	ReadExit(e *kvm.Exit) error
	// SetImmediateExit sets kvm_run.immediate_exit: the next Run returns
	// at once. It may be called from any thread.
	SetImmediateExit(on bool)
	GetRegs(r *kvm.Regs) error
	GetSregs(s *kvm.Sregs) error
}

// MMIOHandler serves the exits that touch MMIO; an error ends the run.
type MMIOHandler interface {
	// MMIORead serves a read exit: it fills e.MMIO's data.
	MMIORead(e *kvm.Exit) error
	// MMIOWrite serves a write exit.
	MMIOWrite(e *kvm.Exit) error
	// EmulationFailure handles an instruction KVM could not emulate; nil
	// resumes the guest.
	EmulationFailure(e *kvm.Exit) error
}

// Observer sees every exit the loop reads from kvm_run.
type Observer interface {
	// BeginExit runs before the exit is handled; an error ends the run.
	BeginExit(e *kvm.Exit) error
	// EndExit runs after it was handled.
	EndExit(e *kvm.Exit)
}

// DirectMMIO is implemented by an MMIO handler that may serve its MMIO
// exits as KVM reports them, unchecked: on a bus, counted in statistics as
// trace.Stats.CountMMIO counts. A loop without a clock or an observer
// then serves them itself, a call and a layer cheaper, and the handler
// sees only its emulation failures.
type DirectMMIO interface {
	// DirectMMIO returns the bus that serves the handler's MMIO exits and
	// the statistics that count them (nil: none), or a nil bus when the
	// handler must see each exit.
	DirectMMIO() (*memory.Bus, *trace.Stats)
}

// BusMMIO routes MMIO exits to a bus; KVM's emulation failures end the run.
type BusMMIO struct {
	Bus   *memory.Bus
	Stats *trace.Stats // counts the accesses, unassigned ones apart; may be nil
}

// MMIORead implements MMIOHandler.
func (h *BusMMIO) MMIORead(e *kvm.Exit) error { return h.serve(e.MMIO, false) }

// MMIOWrite implements MMIOHandler.
func (h *BusMMIO) MMIOWrite(e *kvm.Exit) error { return h.serve(e.MMIO, true) }

// DirectMMIO implements DirectMMIO: every exit goes to the bus.
func (h *BusMMIO) DirectMMIO() (*memory.Bus, *trace.Stats) { return h.Bus, h.Stats }

func (h *BusMMIO) serve(m *kvm.MMIOExit, write bool) error {
	mapped, err := h.Bus.Serve(m.PhysAddr, m.Bytes(), write)
	if h.Stats != nil {
		h.Stats.CountMMIO(write, mapped)
	}
	return err
}

// EmulationFailure implements MMIOHandler: without an own MMIO path an
// instruction KVM cannot emulate ends the run.
func (h *BusMMIO) EmulationFailure(e *kvm.Exit) error {
	return fmt.Errorf("KVM could not emulate the instruction % x", e.EmulationFailure.Instruction())
}

// Loop runs one vCPU.
type Loop struct {
	Index int // the vCPU's index: 0 is the boot vCPU
	CPU   CPU
	PIO   *memory.Bus
	MMIO  MMIOHandler
	// Stats, when set, counts every exit and unassigned port access.
	Stats *trace.Stats
	// Observer, when set, sees every exit before and after it is handled.
	Observer Observer
	// Clock, when set, times every exit (kvm.Exit's TimeNS and DurNS): two
	// reads of the monotonic clock per exit, when KVM_RUN returns and when
	// the exit is handled, before the Observer's EndExit.
	Clock *trace.Clock
	Log   logrus.FieldLogger

	exit kvm.Exit // the exit being handled, reused
	// mmioBus and mmioStats serve and count the MMIO exits of a
	// DirectMMIO handler in step; mmioBus is nil for a handler that
	// sees each exit.
	mmioBus   *memory.Bus
	mmioStats *trace.Stats
	end       End // how the run ended, once step says it did
	seq       uint64
	stop      atomic.Bool
	tid       atomic.Int32 // the OS thread running the loop, 0 when none
}

// run enters the guest until the loop is stopped or an exit ends the run,
// which it reports to g. The loop holds its OS thread, so that a kick can
// signal it.
func (l *Loop) run(g *Group) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l.tid.Store(int32(unix.Gettid()))
	defer l.tid.Store(0)
	l.mmioBus, l.mmioStats = nil, nil
	if d, ok := l.MMIO.(DirectMMIO); ok {
		l.mmioBus, l.mmioStats = d.DirectMMIO()
	}
	var done bool
	if l.Clock != nil || l.Observer != nil {
		for !done && !l.stop.Load() {
			done = l.stepObserved()
		}
	} else {
		done = l.steps()
	}
	if done {
		l.end.VCPU = l.Index
		g.Finish(l.end)
	}
}

// steps runs the guest from exit to exit until the loop is stopped or an
// exit ends the run; it says whether one did, with how in l.end. It serves
// the exits of a running guest (MMIO, port I/O) without a call per exit
// (those of a DirectMMIO handler on its bus); Handle has the rest. A loop
// that times its exits or has an observer steps with stepObserved
// instead.
func (l *Loop) steps() bool {
	e := &l.exit
	for !l.stop.Load() {
		if err := l.CPU.Run(); err != nil {
			if l.runError(err) {
				return true
			}
			continue
		}
		l.seq++
		e.Seq = l.seq
		if err := l.CPU.ReadExit(e); err != nil {
			return l.readError(e, err)
		}
		var err error
		switch e.Kind {
		case kvm.KindMMIO:
			if l.mmioBus == nil {
				err = l.handleMMIO(e)
				break
			}
			// A DirectMMIO handler's exit, on its bus, counted as the
			// handler counts: BusMMIO.serve's work, written out here
			// because a call to it (not inlined) costs an exit about 20
			// instructions more.
			m := e.MMIO
			write := m.IsWrite != 0
			var mapped bool
			mapped, err = l.mmioBus.Serve(m.PhysAddr, m.Bytes(), write)
			if l.mmioStats != nil {
				l.mmioStats.CountMMIO(write, mapped)
			}
			if err != nil {
				err = mmioError(m, err)
			}
		case kvm.KindIO:
			err = l.io(&e.IO)
		default:
			var done bool
			l.end, done = l.Handle(e)
			l.count(e.Kind)
			if done {
				return true
			}
			continue
		}
		l.count(e.Kind)
		if err != nil {
			l.end = l.fail(err)
			return true
		}
	}
	return false
}

// stepObserved runs the guest to its next exit and handles it as steps
// does, with the exit timed (Clock) and shown to the Observer before and
// after it is handled; when the exit ends the run it says so, with how in
// l.end.
func (l *Loop) stepObserved() bool {
	err := l.CPU.Run()
	var t0 int64
	if l.Clock != nil {
		t0 = l.Clock.Now()
	}
	if err != nil {
		return l.runError(err)
	}
	e := &l.exit
	l.seq++
	e.Seq = l.seq
	if err := l.CPU.ReadExit(e); err != nil {
		return l.readError(e, err)
	}
	if l.Clock != nil {
		e.TimeNS, e.Timed = t0, true
	}
	if l.Observer != nil {
		if err := l.Observer.BeginExit(e); err != nil {
			l.end = l.fail(fmt.Errorf("reading vCPU state at a %v exit: %w", e.Reason, err))
			return true
		}
	}
	var done bool
	switch e.Kind {
	case kvm.KindMMIO:
		err = l.handleMMIO(e)
	case kvm.KindIO:
		err = l.io(&e.IO)
	default:
		l.end, done = l.Handle(e)
	}
	if err != nil {
		l.end, done = l.fail(err), true
	}
	l.count(e.Kind)
	if l.Clock != nil {
		e.DurNS = l.Clock.Now() - t0
	}
	if l.Observer != nil {
		l.Observer.EndExit(e)
	}
	return done
}

// readError ends the run on an exit that could not be read.
func (l *Loop) readError(e *kvm.Exit, err error) bool {
	l.end = l.fail(fmt.Errorf("reading a %v exit: %w", e.Reason, err))
	return true
}

func (l *Loop) count(k kvm.ExitKind) {
	if l.Stats != nil {
		l.Stats.CountExit(k)
	}
}

// runError handles a KVM_RUN that returned no exit: an interruption is
// an exit of kind KindInterrupted, anything else ends the run.
func (l *Loop) runError(err error) bool {
	if !errors.Is(err, kvm.ErrInterrupted) {
		l.end = l.fail(fmt.Errorf("KVM_RUN: %w", err))
		return true
	}
	e := &l.exit
	*e = kvm.Exit{Kind: kvm.KindInterrupted, Seq: e.Seq}
	var done bool
	l.end, done = l.Handle(e)
	return done
}

// serve serves an MMIO or port-I/O exit, for Handle; the loops call io
// and handleMMIO themselves (steps serves a DirectMMIO handler's exits on
// its bus).
func (l *Loop) serve(e *kvm.Exit) error {
	if e.Kind == kvm.KindIO {
		return l.io(&e.IO)
	}
	return l.handleMMIO(e)
}

// handleMMIO serves an MMIO exit through the handler.
func (l *Loop) handleMMIO(e *kvm.Exit) error {
	var err error
	if e.MMIO.IsWrite != 0 {
		err = l.MMIO.MMIOWrite(e)
	} else {
		err = l.MMIO.MMIORead(e)
	}
	if err != nil {
		return mmioError(e.MMIO, err)
	}
	return nil
}

func mmioError(m *kvm.MMIOExit, err error) error {
	return fmt.Errorf("MMIO exit at GPA %#x: %w", m.PhysAddr, err)
}

// Handle serves one exit and says whether it ends the run, and how. A
// device that ends the run (debug exit) does so through the Group instead,
// which stops this loop before it enters the guest again.
func (l *Loop) Handle(e *kvm.Exit) (End, bool) {
	switch e.Kind {
	case kvm.KindIO, kvm.KindMMIO:
		if err := l.serve(e); err != nil {
			return l.fail(err), true
		}
	case kvm.KindEmulationFailure:
		if err := l.MMIO.EmulationFailure(e); err != nil {
			return l.fail(fmt.Errorf("emulation failure: %w", err)), true
		}
	case kvm.KindHLT:
		var regs kvm.Regs
		if err := l.CPU.GetRegs(&regs); err == nil && regs.RFLAGS&x86.FlagIF != 0 && l.Log != nil {
			l.Log.Warnf("guest halted with interrupts enabled at RIP %#x; walkvm has no interrupt sources, so the run ends", regs.RIP)
		}
		return End{Kind: EndHalted}, true
	case kvm.KindShutdown:
		end := l.fail(errors.New("guest shut down (triple fault)"))
		end.Kind = EndShutdown
		return end, true
	case kvm.KindSystemEvent:
		switch e.SystemEvent.Type {
		case kvm.SystemEventReset:
			return End{Kind: EndReset}, true
		case kvm.SystemEventShutdown:
			return End{Kind: EndPowerOff}, true
		}
		return l.fail(fmt.Errorf("system event %d, data %#x", e.SystemEvent.Type, e.SystemEvent.Data)), true
	case kvm.KindFailEntry:
		return l.fail(fmt.Errorf("VM entry failed: hardware reason %#x", e.FailEntry.HardwareEntryFailureReason)), true
	case kvm.KindInternalError:
		return l.fail(fmt.Errorf("KVM internal error, suberror %d, data % x", e.Internal.Suberror, e.Internal.Data)), true
	case kvm.KindInterrupted:
		// A kick or a stray signal; the loop checks whether it must stop.
		l.CPU.SetImmediateExit(false)
	case kvm.KindDebug:
		return l.fail(fmt.Errorf("unexpected debug exit: exception %d at %#x", e.Debug.Exception, e.Debug.PC)), true
	default:
		return l.fail(fmt.Errorf("unhandled exit reason %v", e.Reason)), true
	}
	return End{}, false
}

// io serves a port-I/O exit, element by element for string I/O. Reads of
// unassigned ports return all ones; writes to them are dropped.
func (l *Loop) io(a *kvm.IOAccess) error {
	size := int(a.Size)
	if len(a.Data) == size {
		// One element: all but string I/O.
		mapped, err := l.PIO.Serve(uint64(a.Port), a.Data, a.Out)
		if !mapped || err != nil {
			return l.ioDone(a, mapped, err)
		}
		return nil
	}
	for off := 0; off+size <= len(a.Data); off += size {
		mapped, err := l.PIO.Serve(uint64(a.Port), a.Data[off:off+size], a.Out)
		if !mapped || err != nil {
			if err := l.ioDone(a, mapped, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// ioDone counts an access to an unassigned port and wraps a device's
// error with the port.
func (l *Loop) ioDone(a *kvm.IOAccess, mapped bool, err error) error {
	if !mapped && l.Stats != nil {
		l.Stats.CountUnassigned(true, a.Out)
	}
	if err != nil {
		return fmt.Errorf("port %#x: %w", a.Port, err)
	}
	return nil
}

// kick stops the loop: it will not enter the guest again, and a KVM_RUN in
// progress returns EINTR. It may be called from any goroutine.
func (l *Loop) kick() {
	l.stop.Store(true)
	l.CPU.SetImmediateExit(true)
	// The signal interrupts KVM_RUN; Go's runtime ignores a stray SIGURG
	// (it uses it for preemption). A loop that kicks itself (a device on
	// its thread ending the run) is not in KVM_RUN and needs none.
	if tid := l.tid.Load(); tid != 0 && tid != int32(unix.Gettid()) {
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}
}

func (l *Loop) fail(err error) End {
	return End{Kind: EndFailure, Err: fmt.Errorf("vCPU %d: %w", l.Index, err), Dump: DumpState(l.CPU)}
}
