package vcpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// EndKind is why a run ended.
type EndKind uint8

// How a run ends.
const (
	EndNone      EndKind = iota // the run has not ended
	EndHalted                   // HLT (walkvm has no interrupt sources to wake the vCPU)
	EndDebugExit                // the guest wrote a status to the debug-exit port
	EndShutdown                 // a triple fault (KVM_EXIT_SHUTDOWN)
	EndReset                    // the guest asked for a reset (i8042 pulse, system event)
	EndPowerOff                 // the guest asked to power off (system event)
	EndTimeout                  // the run's time limit passed
	EndFailure                  // the VM or walkvm failed
	EndQuit                     // walkvm was told to stop (Ctrl-A x, a signal)
)

var endNames = [...]string{"none", "halt", "debug-exit", "shutdown", "reset", "power-off", "timeout", "error", "quit"}

func (k EndKind) String() string {
	if int(k) < len(endNames) {
		return endNames[k]
	}
	return fmt.Sprintf("end(%d)", uint8(k))
}

// Exit statuses of a run, as `vmm run` reports them.
const (
	StatusHalted  = 0
	StatusTimeout = 124
	StatusFailed  = 125
)

// End is how a run ended.
type End struct {
	Kind   EndKind
	Status int   // the guest's debug-exit status (EndDebugExit), the status asked for (EndQuit)
	Err    error // what failed (EndShutdown, EndFailure) or the time limit (EndTimeout)
	// VCPU is the vCPU whose exit ended the run, -1 for none (a timeout,
	// or a request from outside the vCPUs' threads).
	VCPU int
	Dump string // the vCPU's registers and segments, for failures
}

// ExitStatus is the process exit status `vmm run` reports for the end: the
// debug-exit status & 0xff; 0 for a halt, reset or power-off; the status
// asked for with a quit; 124 for a timeout; 125 for a triple fault or a
// failure.
func (e End) ExitStatus() int {
	switch e.Kind {
	case EndDebugExit:
		return e.Status & 0xff
	case EndQuit:
		return e.Status
	case EndHalted, EndReset, EndPowerOff:
		return StatusHalted
	case EndTimeout:
		return StatusTimeout
	}
	return StatusFailed
}

// Group runs the loops of one VM's vCPUs, each on its own locked OS thread,
// until the first end: a vCPU's exit, a device's request (the Group is the
// devices.Stopper the machine hands to devices), or the time limit. Then it
// kicks every other vCPU out of KVM_RUN and returns once all have stopped.
// A Group runs one set of loops at a time and may run again afterwards.
type Group struct {
	mu    sync.Mutex
	loops []*Loop
	ended bool
	end   End
}

// Run runs loops until the first end; timeout 0 means no time limit.
func (g *Group) Run(loops []*Loop, timeout time.Duration) End {
	if len(loops) == 0 {
		return End{Kind: EndFailure, Err: errors.New("no vCPU to run"), VCPU: -1}
	}
	g.mu.Lock()
	g.loops, g.ended, g.end = loops, false, End{}
	g.mu.Unlock()
	for _, l := range loops {
		l.stop.Store(false)
	}
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			g.Finish(End{Kind: EndTimeout, Err: fmt.Errorf("guest still running after %v", timeout), VCPU: -1})
		})
		defer t.Stop()
	}
	reserveProcs(len(loops))
	defer releaseProcs(len(loops))
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(g)
		}()
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.loops = nil
	return g.end
}

// Finish ends the run with e unless it has already ended, and stops every
// loop. It may be called from any goroutine.
func (g *Group) Finish(e End) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return
	}
	g.ended, g.end = true, e
	for _, l := range g.loops {
		l.kick()
	}
}

// Exit implements devices.Stopper: the run ends with the guest's status.
func (g *Group) Exit(status int) {
	g.Finish(End{Kind: EndDebugExit, Status: status, VCPU: g.callingVCPU()})
}

// Quit ends the run from outside the guest (the user's Ctrl-A x, a
// signal) with exit status status.
func (g *Group) Quit(status int) {
	g.Finish(End{Kind: EndQuit, Status: status, VCPU: -1})
}

// Reset implements devices.Stopper: the guest asked for a reset.
func (g *Group) Reset() {
	g.Finish(End{Kind: EndReset, VCPU: g.callingVCPU()})
}

// callingVCPU is the index of the vCPU whose thread calls, or -1. Devices
// are served on the thread of the vCPU whose exit reached them, and every
// loop holds its thread while it runs.
func (g *Group) callingVCPU() int {
	tid := int32(unix.Gettid())
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.loops {
		if l.tid.Load() == tid {
			return l.Index
		}
	}
	return -1
}

// procs keeps one P (GOMAXPROCS) per vCPU running in this process, plus one
// for everything else. A loop keeps its P while its guest runs, because
// kvm.VCPU.Run enters KVM_RUN through RawSyscall; with fewer Ps than vCPUs,
// a vCPU whose guest sits halted inside KVM would keep another vCPU, the
// time limit and the devices' goroutines off the CPU until the runtime
// preempts it (about 10 ms later), and an SMP guest would run its vCPUs by
// turns in 10 ms slices. GOMAXPROCS is the process's, so this is too.
var procs struct {
	sync.Mutex
	vcpus int // vCPUs running in all Groups
	base  int // GOMAXPROCS when the first of them started
}

// reserveProcs raises GOMAXPROCS to the running vCPUs plus one.
func reserveProcs(n int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.vcpus == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.vcpus += n
	if want := procs.vcpus + 1; runtime.GOMAXPROCS(0) < want {
		runtime.GOMAXPROCS(want)
	}
}

// releaseProcs gives back what reserveProcs took: GOMAXPROCS returns to
// what it was once no vCPU runs.
func releaseProcs(n int) {
	procs.Lock()
	defer procs.Unlock()
	procs.vcpus -= n
	if procs.vcpus == 0 && runtime.GOMAXPROCS(0) != procs.base {
		runtime.GOMAXPROCS(procs.base)
	}
}
