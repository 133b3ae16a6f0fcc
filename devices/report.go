package devices

import (
	"fmt"
	"sync"

	"walkvm/x86"
)

// Report is a port device through which a test guest tells the host what
// happened, in a structured way the tests can assert (the UART is for
// people). It occupies ports ReportPort..ReportPort+3:
//
//	0xf0  ARG    write (1, 2 or 4 bytes): append one 32-bit argument,
//	             zero-extended; read (4 bytes): ReportMagic, so a guest can
//	             tell that the device is there
//	0xf1  EVENT  write (1 byte): record an event of that kind with the
//	             arguments written since the last event, and clear them
//
// Events and their arguments, in order:
//
//	1 exception    vector, error code, CR2[31:0], CR2[63:32], RIP[31:0], RIP[63:32]
//	2 stage        stage id: the guest reached that stage (mode)
//	3 refused      stage id, vector, error code: the host refused the stage
//	               (entering it raised that exception, e.g. #GP(0) on CR0.PG)
//	4 unsupported  stage id: the guest's CPUID lacks what the stage needs
//	5 value        tag, value[31:0], value[63:32]: something the guest measured
//
// Stage ids and value tags are the guests' (guest/walkvm.h, package guest).
// The verdict stays with the debug-exit port (0xf4): 0 is a pass,
// StatusSkipped says a required mode was refused or unsupported, and
// StatusException+vector an unexpected exception.
//
// The record keeps the first ReportLimit events in preallocated storage so
// that a report allocates nothing; later ones are counted as dropped.
type Report struct {
	mu      sync.Mutex
	args    [ReportMaxArgs]uint32
	nargs   int
	over    bool
	log     []Event
	dropped uint64
	bad     uint64
}

// Report ports, event kinds and limits.
const (
	ReportPort      = 0xf0
	ReportPorts     = 4
	ReportArgPort   = ReportPort
	ReportEventPort = ReportPort + 1
	ReportMagic     = 0x5052_4b57 // "WKRP" in little-endian bytes
	ReportMaxArgs   = 8
	ReportLimit     = 256
)

// Guest verdicts written to the debug-exit port besides 0 (pass) and the
// guests' own failure codes 1..63.
const (
	// StatusSkipped: the host refused a mode the guest needs, or the guest's
	// CPUID lacks a feature it needs; the guest reported which before.
	StatusSkipped = 77
	// StatusException is the base of an unexpected exception's verdict:
	// StatusException+vector.
	StatusException = 0x80
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	EventException   EventKind = 1
	EventStage       EventKind = 2
	EventRefused     EventKind = 3
	EventUnsupported EventKind = 4
	EventValue       EventKind = 5
)

var eventArgs = [...]int{EventException: 6, EventStage: 1, EventRefused: 3, EventUnsupported: 1, EventValue: 3}
var eventNames = [...]string{EventException: "exception", EventStage: "stage", EventRefused: "refused", EventUnsupported: "unsupported", EventValue: "value"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one report. Args[:NArgs] are the arguments as written; the
// accessors decode them for the kinds that carry them.
type Event struct {
	Kind     EventKind
	Args     [ReportMaxArgs]uint32
	NArgs    int
	Overflow bool // more than ReportMaxArgs arguments were written; the rest were dropped
}

// WellFormed reports whether the event is of a known kind with exactly the
// arguments that kind takes.
func (e Event) WellFormed() bool {
	return int(e.Kind) < len(eventArgs) && eventArgs[e.Kind] != 0 && e.NArgs == eventArgs[e.Kind] && !e.Overflow
}

func (e Event) u64(i int) uint64 { return uint64(e.Args[i]) | uint64(e.Args[i+1])<<32 }

// Vector is the exception vector (exception, refused).
func (e Event) Vector() uint8 {
	switch e.Kind {
	case EventException:
		return uint8(e.Args[0])
	case EventRefused:
		return uint8(e.Args[1])
	}
	return 0
}

// ErrorCode is the exception's error code (exception, refused).
func (e Event) ErrorCode() uint32 {
	switch e.Kind {
	case EventException:
		return e.Args[1]
	case EventRefused:
		return e.Args[2]
	}
	return 0
}

// CR2 is CR2 when the exception was taken.
func (e Event) CR2() uint64 {
	if e.Kind != EventException {
		return 0
	}
	return e.u64(2)
}

// RIP is where the exception was raised (the instruction's address for a
// fault).
func (e Event) RIP() uint64 {
	if e.Kind != EventException {
		return 0
	}
	return e.u64(4)
}

// Stage is the stage id (stage, refused, unsupported) or the value's tag.
func (e Event) Stage() uint32 {
	switch e.Kind {
	case EventStage, EventRefused, EventUnsupported, EventValue:
		return e.Args[0]
	}
	return 0
}

// Value is a value event's value.
func (e Event) Value() uint64 {
	if e.Kind != EventValue {
		return 0
	}
	return e.u64(1)
}

func (e Event) String() string {
	if !e.WellFormed() {
		return fmt.Sprintf("malformed %v with %d args %#x (overflow %v)", e.Kind, e.NArgs, e.Args[:min(e.NArgs, ReportMaxArgs)], e.Overflow)
	}
	switch e.Kind {
	case EventException:
		return fmt.Sprintf("exception %d error %#x cr2 %#x rip %#x", e.Vector(), e.ErrorCode(), e.CR2(), e.RIP())
	case EventRefused:
		return fmt.Sprintf("refused stage %d: exception %d error %#x", e.Stage(), e.Vector(), e.ErrorCode())
	case EventValue:
		return fmt.Sprintf("value %d = %#x", e.Stage(), e.Value())
	}
	return fmt.Sprintf("%v %d", e.Kind, e.Stage())
}

// NewReport returns an empty report device.
func NewReport() *Report {
	return &Report{log: make([]Event, 0, ReportLimit)}
}

// Read implements memory.Device: the ARG port reads as ReportMagic, the
// rest as zeros.
func (r *Report) Read(off uint64, data []byte) error {
	for i := range data {
		p := off + uint64(i)
		if p < 4 {
			data[i] = byte(uint32(ReportMagic) >> (8 * p))
		} else {
			data[i] = 0
		}
	}
	return nil
}

// Write implements memory.Device.
func (r *Report) Write(off uint64, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case off == 0 && len(data) <= 4:
		if r.nargs == ReportMaxArgs {
			r.over = true
			return nil
		}
		r.args[r.nargs] = uint32(x86.Value(data))
		r.nargs++
	case off == 1 && len(data) == 1:
		e := Event{Kind: EventKind(data[0]), Args: r.args, NArgs: r.nargs, Overflow: r.over}
		r.args, r.nargs, r.over = [ReportMaxArgs]uint32{}, 0, false
		if len(r.log) == cap(r.log) {
			r.dropped++
			return nil
		}
		r.log = append(r.log, e)
	default:
		// Not part of the protocol; counted so a test can notice.
		r.bad++
	}
	return nil
}

// Events returns a copy of the recorded events, oldest first.
func (r *Report) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.log...)
}

// Counts returns how many events were dropped because the record was full
// and how many writes did not follow the protocol.
func (r *Report) Counts() (dropped, bad uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped, r.bad
}
