package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/devices"
	"walkvm/guest"
	"walkvm/internal/kvmtest"
	"walkvm/kvm"
	"walkvm/machine"
	"walkvm/mmu"
	"walkvm/ownpath"
	"walkvm/suite"
	"walkvm/vcpu"
	"walkvm/x86"
)

// guestRun is one guest's run and everything recorded about it.
type guestRun struct {
	g       guest.Guest
	m       *machine.Machine
	own     *machine.Own
	res     vcpu.End
	console string
	log     string // walkvm's warnings
	events  []devices.Event
	exits   []mmioExit // every KVM_EXIT_MMIO, in order
	image   []byte
}

type mmioExit struct {
	GPA   uint64
	Len   int
	Write bool
}

// exitRecorder notes every MMIO exit's GPA (including ones no device
// serves) before the own path handles it.
type exitRecorder struct {
	inner vcpu.Observer
	exits []mmioExit
}

func (r *exitRecorder) BeginExit(e *kvm.Exit) error {
	if e.Kind == kvm.KindMMIO && len(r.exits) < cap(r.exits) {
		r.exits = append(r.exits, mmioExit{GPA: e.MMIO.PhysAddr, Len: int(e.MMIO.Len), Write: e.MMIO.IsWrite != 0})
	}
	return r.inner.BeginExit(e)
}

func (r *exitRecorder) EndExit(e *kvm.Exit) { r.inner.EndExit(e) }

// runGuest boots g through walkvm's own MMIO path, checking it against KVM
// at every exit (-verify warn: a disagreement is logged and counted, and
// the guest runs on so that its own checks still count).
func runGuest(t *testing.T, g guest.Guest) *guestRun {
	t.Helper()
	return runGuestVerify(t, g, ownpath.VerifyWarn)
}

// runGuestVerify boots g through the own MMIO path at verify level v.
func runGuestVerify(t *testing.T, g guest.Guest, v ownpath.Verify) *guestRun {
	t.Helper()
	img, err := g.Image()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := suite.MachineConfig(g, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	var console, log bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&log)
	logger.SetLevel(logrus.WarnLevel)
	cfg.Console, cfg.Log = &console, logger
	m, err := machine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	own, err := m.OwnPath(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	loops := m.OwnLoops(own)
	rec := &exitRecorder{inner: loops[0].Observer, exits: make([]mmioExit, 0, 4096)}
	loops[0].Observer = rec
	res := m.RunLoops(loops, 20*time.Second)
	return &guestRun{g: g, m: m, own: own, res: res, console: console.String(), log: log.String(), events: m.Report.Events(), exits: rec.exits, image: img}
}

func (r *guestRun) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run ended %s with status %d: %v\n", r.res.Kind, r.res.ExitStatus(), r.res.Err)
	if r.res.Dump != "" {
		fmt.Fprintf(&b, "%s\n", r.res.Dump)
	}
	fmt.Fprintf(&b, "console:\n%s", r.console)
	if r.log != "" {
		fmt.Fprintf(&b, "walkvm log:\n%s", r.log)
	}
	for _, e := range r.events {
		fmt.Fprintf(&b, "event: %v\n", e)
	}
	return b.String()
}

// inImage reports whether addr lies in the guest's image.
func (r *guestRun) inImage(addr uint64) bool {
	return addr >= r.g.Load && addr < r.g.Load+uint64(len(r.image))
}

// onPVM reports whether /dev/kvm is PVM, which refuses legacy 32-bit
// paging and PAE (/work/shared/host-kvm.md).
func onPVM() bool {
	_, err := os.Stat("/sys/module/kvm_pvm")
	return err == nil
}

var vectorNames = map[uint8]string{0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF",
	10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM"}

func excName(vec uint8, code uint32) string {
	n, ok := vectorNames[vec]
	if !ok {
		n = fmt.Sprintf("vector %d", vec)
	}
	if code == 0 {
		return n + "(0)"
	}
	return fmt.Sprintf("%s(%#x)", n, code)
}

var unsupportedWhat = map[guest.Stage]string{
	guest.StageLA57:  "LA57 (CPUID 7.0:ECX[16])",
	guest.Stage1G:    "1 GiB pages (CPUID 0x80000001:EDX[26])",
	guest.StagePSE36: "PSE-36 (CPUID 1:EDX[17])",
	guest.StageAVX:   "AVX and XSAVE (CPUID 1:ECX[28] and ECX[26])",
	guest.StageSSE:   "SSSE3, SSE4.1, SSE4.2 or XSAVE (CPUID 1:ECX[9,19,20,26]), which walkvm's host vector unit needs for SSE arithmetic: the arithmetic was passed over",
}

// refusedWhat says what the guest did when the host refused a stage.
var refusedWhat = map[guest.Stage]string{
	guest.StageLA57: "CR4.LA57 write",
	guest.StageAVX:  "register-only vmovdqu %ymm0, %ymm1",
}

// declined lists the stages the guest reported refused or unsupported, as
// a measured reason.
func (r *guestRun) declined() (stages []guest.Stage, reason string) {
	var why []string
	for _, e := range r.events {
		s := guest.Stage(e.Stage())
		switch e.Kind {
		case devices.EventRefused:
			what := refusedWhat[s]
			if what == "" {
				what = "CR0.PG write"
			}
			how := "reported by the guest"
			if r.own.Stats().MMIO.ExceptionsInjected > 0 {
				how += "; KVM could not emulate the instruction and walkvm injected the fault"
			}
			stages = append(stages, s)
			why = append(why, fmt.Sprintf("host KVM refuses %v: the guest's %s raised %s (%s)", s, what, excName(e.Vector(), e.ErrorCode()), how))
		case devices.EventUnsupported:
			what := unsupportedWhat[s]
			if what == "" {
				what = s.String()
			}
			stages = append(stages, s)
			why = append(why, fmt.Sprintf("the guest's CPUID lacks %s (reported by the guest)", what))
		}
	}
	return stages, strings.Join(why, "; ")
}

// mustRunNested says which guests may never skip in the nested runner,
// whose KVM has every legacy paging mode.
var mustRunNested = map[string]bool{"paging32": true, "pae": true, "roundtrip": true}

// guestChecks holds the per-guest assertions beyond status and output.
var guestChecks = map[string]func(t *testing.T, r *guestRun){
	"hello":      checkHello,
	"realmode":   checkRealMode,
	"protmode":   checkProtMode,
	"paging32":   checkPaging32,
	"pae":        checkPAE,
	"long4":      checkLong4,
	"compat":     checkCompat,
	"pagefault":  checkPageFault,
	"mmiocross":  checkMMIOCross,
	"x87mmio":    checkX87,
	"avxmmio":    checkAVX,
	"ssemmio":    checkSSE,
	"roundtrip":  checkRoundTrip,
	"la57":       checkLA57,
	"mbelf32":    checkMultiboot,
	"mbelf64":    checkMultiboot,
	"mbelf64x32": checkMultiboot,
	"mbaout":     checkMultiboot,
	"smp":        checkSMP,
	"pcdev":      checkPCDev,
}

func TestGuests(t *testing.T) {
	kvmtest.Require(t)
	for _, g := range guest.All() {
		t.Run(g.Name, func(t *testing.T) {
			r := runGuest(t, g)
			if d, bad := r.m.Report.Counts(); d != 0 || bad != 0 {
				t.Errorf("report device: %d events dropped, %d writes outside the protocol", d, bad)
			}
			for _, e := range r.events {
				if !e.WellFormed() {
					t.Errorf("malformed report: %v", e)
				}
			}
			st := r.own.Stats()
			if st.MMIO.Disagreed != 0 || st.Translate.Mismatches != 0 {
				t.Errorf("own MMIO path disagreed with KVM: %d MMIO disagreements, %d KVM_TRANSLATE mismatches\n%s", st.MMIO.Disagreed, st.Translate.Mismatches, r.log)
			}
			switch {
			case r.res.Kind == vcpu.EndDebugExit && r.res.ExitStatus() == devices.StatusSkipped:
				_, why := r.declined()
				if why == "" {
					t.Fatalf("guest exited with the skip status without reporting a refused or unsupported stage\n%v", r)
				}
				if kvmtest.Nested() && mustRunNested[g.Name] {
					t.Fatalf("inside the nested runner every legacy mode must work, but %s\n%v", why, r)
				}
				t.Skip(why)
			case r.res.Kind != vcpu.EndDebugExit || r.res.ExitStatus() != g.PassStatus():
				t.Fatalf("%v", r)
			}
			if !strings.HasSuffix(r.console, g.Output) {
				t.Errorf("console does not end with %q\n%v", g.Output, r)
			}
			if check := guestChecks[g.Name]; check != nil {
				check(t, r)
			} else {
				t.Errorf("no checks for guest %s", g.Name)
			}
		})
	}
}

// wantAccesses compares a window's recorded accesses with want.
func wantAccesses(t *testing.T, what string, got, want []devices.Access) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d accesses, want %d\n got %+v\nwant %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: access %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// wantEvents compares the report events with want (kind and arguments).
func wantEvents(t *testing.T, got []devices.Event, want []devices.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d report events, want %d\n got %v\nwant %v", len(got), len(want), got, want)
		return
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].NArgs != want[i].NArgs || got[i].Args != want[i].Args {
			t.Errorf("event %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func ev(kind devices.EventKind, args ...uint32) devices.Event {
	e := devices.Event{Kind: kind, NArgs: len(args)}
	copy(e.Args[:], args)
	return e
}

func stageEv(s guest.Stage) devices.Event { return ev(devices.EventStage, uint32(s)) }

// rw is a write of v followed by a read of it at gpa.
func rw(gpa uint64, size int, v uint64) []devices.Access {
	return []devices.Access{{GPA: gpa, Size: size, Write: true, Value: v}, {GPA: gpa, Size: size, Value: v}}
}

func checkHello(t *testing.T, r *guestRun) {
	if len(r.m.WindowLow.Accesses()) != 12 || len(r.events) != 0 {
		t.Errorf("hello: %d low-window accesses (want 12), events %v", len(r.m.WindowLow.Accesses()), r.events)
	}
}

func checkRealMode(t *testing.T, r *guestRun) {
	const ds, ss, es, fs, gs = 0xd0000, 0xd1000, 0xd2000, 0xd3000, 0xd4000
	// Linear address of each form (see realmode.S): BX=0x100, SI=0x10,
	// DI=0x20, BP=0x300.
	forms := []uint64{
		ds + 0x110, ds + 0x120, ss + 0x310, ss + 0x320, ds + 0x10, ds + 0x20, ds + 0x600, ds + 0x100,
		ds + 0x118, ds + 0x118, ss + 0x318, ss + 0x330, ds + 0x18, ds + 0x18, ss + 0x308, ds + 0x17f,
		ds + 0x100, ds + 0x1120, ss + 0x1310, ss + 0x2320, ds + 0x1010, ds + 0x1020, ss + 0x1300, ds + 0x1100,
		es + 0x110, fs + 0x308, gs + 0x1020, ss + 0x100, ds + 0x320, ds + 0x700,
	}
	var want []devices.Access
	for i, gpa := range forms {
		want = append(want, rw(gpa, 2, uint64(0xa500+i))...)
	}
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), want)
	if n := len(r.m.WindowHigh.Accesses()); n != 0 {
		t.Errorf("high window: %d accesses, want none", n)
	}
	// The CS override reached the PC hole: unassigned MMIO.
	hole := []mmioExit{{GPA: 0xa0000, Len: 2}, {GPA: 0xa0002, Len: 2, Write: true}}
	var got []mmioExit
	for _, e := range r.exits {
		if e.GPA < devices.TestWindowLow || e.GPA >= devices.TestWindowLow+devices.TestWindowSize {
			got = append(got, e)
		}
	}
	if !slices.Equal(got, hole) {
		t.Errorf("MMIO exits outside the window: %+v, want %+v", got, hole)
	}
	if len(r.events) != 2 {
		t.Fatalf("events %v, want stage real and #UD", r.events)
	}
	wantEvents(t, r.events[:1], []devices.Event{stageEv(guest.StageReal)})
	if e := r.events[1]; e.Kind != devices.EventException || e.Vector() != 6 || e.ErrorCode() != 0 || !r.inImage(e.RIP()) {
		t.Errorf("event %v, want #UD with RIP in the image", e)
	}
}

func checkProtMode(t *testing.T, r *guestRun) {
	const hi = devices.TestWindowHigh
	var high []devices.Access
	for _, a := range [][]devices.Access{
		rw(hi+0x10, 4, 0x11111111), rw(hi+0x30, 4, 0x22222222),
		rw(hi+0x50, 2, 0x5555), rw(hi+0x68, 4, 0x66666666), rw(hi+0x70, 4, 0x77777777),
	} {
		high = append(high, a...)
	}
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), high)
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(),
		append(rw(devices.TestWindowLow+0x40, 4, 0x33333333), rw(devices.TestWindowLow+0x60, 4, 0x44444444)...))
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StageReal), stageEv(guest.StageProt32), stageEv(guest.StageProt16), stageEv(guest.StageProt32)})
}

// checkPSE36 checks the PSE-36 part of paging32's events: either unsupported, or reached with an all-ones read of GPA
// 0x1_0000_0010 (outside every memslot: KVM_EXIT_MMIO there, no device).
func checkPSE36(t *testing.T, r *guestRun, rest []devices.Event) {
	const gpa = 0x1_0000_0010
	var high []mmioExit
	for _, e := range r.exits {
		if e.GPA >= 1<<32 {
			high = append(high, e)
		}
	}
	if len(rest) == 1 && rest[0].Kind == devices.EventUnsupported && guest.Stage(rest[0].Stage()) == guest.StagePSE36 {
		if kvmtest.Nested() {
			t.Errorf("the nested CPU (qemu64) has PSE-36, but the guest's CPUID lacks it")
		}
		t.Logf("PSE-36 not exercised: the guest's CPUID lacks it (reported by the guest)")
		if len(high) != 0 {
			t.Errorf("MMIO exits above 4 GiB without PSE-36: %+v", high)
		}
		return
	}
	wantEvents(t, rest, []devices.Event{stageEv(guest.StagePSE36), ev(devices.EventValue, guest.TagPSE36Read, 0xffffffff, 0)})
	want := []mmioExit{{GPA: gpa, Len: 4, Write: true}, {GPA: gpa, Len: 4}}
	if !slices.Equal(high, want) {
		t.Errorf("MMIO exits above 4 GiB: %+v, want %+v (KVM's GPA for the PSE-36 page)", high, want)
	}
}

func checkPaging32(t *testing.T, r *guestRun) {
	const hi = devices.TestWindowHigh
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), rw(devices.TestWindowLow+0x100, 4, 0x01010101))
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), slices.Concat(
		rw(hi+0x1010, 4, 0x02020202), rw(hi+0x200, 4, 0x03030303), rw(hi+0x2010, 4, 0x04040404)))
	if len(r.events) < 3 {
		t.Fatalf("events %v", r.events)
	}
	wantEvents(t, r.events[:2], []devices.Event{stageEv(guest.StagePaging32), stageEv(guest.StagePSE)})
	checkPSE36(t, r, r.events[2:])
}

func checkPAE(t *testing.T, r *guestRun) {
	const hi = devices.TestWindowHigh
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), rw(devices.TestWindowLow+0x200, 4, 0x01010101))
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), slices.Concat(
		rw(hi+0x1010, 4, 0x02020202), rw(hi+0x300, 4, 0x03030303), rw(hi+0x2010, 4, 0x04040404)))
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StagePAE)})
}

func checkLong4(t *testing.T, r *guestRun) {
	const hi = devices.TestWindowHigh
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), rw(devices.TestWindowLow+0x500, 4, 0x01010101))
	high := slices.Concat(rw(hi+0x1010, 4, 0x02020202), rw(hi+0x400, 4, 0x03030303), rw(hi+0x2010, 4, 0x04040404))
	want := []devices.Event{stageEv(guest.StageLong)}
	if len(r.events) > 1 && r.events[1].Kind == devices.EventUnsupported {
		t.Logf("1 GiB pages not exercised: the guest's CPUID lacks them (reported by the guest)")
		want = append(want, ev(devices.EventUnsupported, uint32(guest.Stage1G)))
	} else {
		want = append(want, stageEv(guest.Stage1G))
		high = append(high, rw(hi+0x3000, 4, 0x05050505)...)
	}
	want = append(want, stageEv(guest.StageHigherHalf))
	high = slices.Concat(high, rw(hi+0x10, 4, 0x06060606), rw(hi+0x600, 4, 0x07070707),
		rw(hi+0x700, 1, 0x88), rw(hi+0x702, 2, 0x9999), rw(hi+0x704, 4, 0xaaaaaaaa), rw(hi+0x708, 8, 0xbbbbbbbbcccccccc))
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), high)
	wantEvents(t, r.events, want)
}

func checkCompat(t *testing.T, r *guestRun) {
	const hi, lo = devices.TestWindowHigh, devices.TestWindowLow
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), slices.Concat(
		rw(hi+0x800, 4, 0x01010101), rw(hi+0x810, 4, 0x02020202), rw(hi+0x830, 4, 0x04040404), rw(hi+0x840, 4, 0x06060606)))
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), slices.Concat(rw(lo+0x810, 4, 0x03030303), rw(lo+0x820, 4, 0x05050505)))
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StageLong), stageEv(guest.StageCompat), stageEv(guest.StageLong)})
}

// checkPageFault asserts the exact #PF error codes and CR2 (SDM Vol. 3A
// §4.7) the guest reported and replays each fault through walkvm's page
// walker (package mmu) with the guest's final paging state.
func checkPageFault(t *testing.T, r *guestRun) {
	type pf struct {
		cpl  uint8
		acc  x86.Access
		code uint32
		cr2  uint64
	}
	const (
		p, w, u, rsvd, id = x86.PFErrPresent, x86.PFErrWrite, x86.PFErrUser, x86.PFErrReserved, x86.PFErrFetch
	)
	faults := []pf{
		{0, x86.AccessRead, 0, 0x400010},          // not present
		{0, x86.AccessWrite, w, 0x400018},         // not present, write
		{0, x86.AccessWrite, p | w, 0x401020},     // read-only, CR0.WP=1
		{0, x86.AccessFetch, p | id, 0x403000},    // XD with EFER.NXE
		{0, x86.AccessRead, p | rsvd, 0x404030},   // bit 51 set
		{3, x86.AccessRead, p | u, 0x402040},      // user read, supervisor page
		{3, x86.AccessWrite, p | w | u, 0x402048}, // user write, supervisor page
	}
	var pfs []devices.Event
	var stages []devices.Event
	for _, e := range r.events {
		if e.Kind == devices.EventException {
			pfs = append(pfs, e)
		} else {
			stages = append(stages, e)
		}
	}
	wantEvents(t, stages, []devices.Event{stageEv(guest.StageLong), stageEv(guest.StageUser)})
	if len(pfs) != len(faults) {
		t.Fatalf("%d exceptions reported, want %d: %v", len(pfs), len(faults), pfs)
	}
	var sregs kvm.Sregs
	if err := r.m.CPU.GetSregs(&sregs); err != nil {
		t.Fatal(err)
	}
	if sregs.CR0&x86.CR0WP == 0 || sregs.EFER&x86.EFERNXE == 0 || sregs.EFER&x86.EFERLMA == 0 {
		t.Fatalf("guest left CR0 %#x EFER %#x, want WP, NXE and LMA set", sregs.CR0, sregs.EFER)
	}
	feat := mmu.FeaturesFromCPUID(r.m.CPUID.Leaves())
	for i, f := range faults {
		e := pfs[i]
		code := e.ErrorCode()
		if f.code&rsvd != 0 && code == f.code&^p && kvmtest.Nested() {
			// QEMU TCG, the nested runner's CPU, reports RSVD without P;
			// SDM Vol. 3A §4.7 sets P whenever RSVD is set.
			t.Logf("fault %d: the nested CPU (QEMU TCG) reported #PF(%#x) for a reserved bit, without P; judged as %#x", i+1, code, f.code)
			code = f.code
		}
		if e.Vector() != x86.VectorPF || code != f.code || e.CR2() != f.cr2 {
			t.Errorf("fault %d: guest saw %v, want #PF(%#x) at %#x", i+1, e, f.code, f.cr2)
		}
		if f.acc == x86.AccessFetch {
			if e.RIP() != f.cr2 {
				t.Errorf("fault %d: RIP %#x, want the fetched address %#x", i+1, e.RIP(), f.cr2)
			}
		} else if !r.inImage(e.RIP()) {
			t.Errorf("fault %d: RIP %#x outside the image", i+1, e.RIP())
		}
		st := mmu.State{CR0: sregs.CR0, CR3: sregs.CR3, CR4: sregs.CR4, EFER: sregs.EFER, CPL: f.cpl, CSL: true}
		var walk mmu.Walk
		err := mmu.Translate(r.m.RAM, &st, feat, e.CR2(), f.acc, &walk)
		var ex *x86.Exception
		if !errors.As(err, &ex) {
			t.Errorf("fault %d: walkvm's walker translated %#x for CPL %d without a fault (%v): %v", i+1, e.CR2(), f.cpl, err, &walk)
			continue
		}
		if ex.Vector != e.Vector() || ex.ErrorCode != code || ex.Addr != e.CR2() {
			t.Errorf("fault %d: walkvm's walker says %v, the CPU raised %v", i+1, ex, e)
		}
	}
}

func checkMMIOCross(t *testing.T, r *guestRun) {
	const hi, lo = devices.TestWindowHigh, devices.TestWindowLow
	// The dword at 0x600ffe is split across two non-adjacent window pages.
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), []devices.Access{
		{GPA: hi + 0x3ffe, Size: 2, Write: true, Value: 0x2211}, {GPA: hi + 0x7000, Size: 2, Write: true, Value: 0x4433},
		{GPA: hi + 0x3ffe, Size: 2, Value: 0x2211}, {GPA: hi + 0x7000, Size: 2, Value: 0x4433},
	})
	w := func(gpa uint64, size int, v uint64) devices.Access {
		return devices.Access{GPA: gpa, Size: size, Write: true, Value: v}
	}
	rd := func(gpa uint64, size int, v uint64) devices.Access {
		return devices.Access{GPA: gpa, Size: size, Value: v}
	}
	want := rw(lo+0xb10, 4, 0x55555555) // the page-crossing instructions
	for i := range uint64(4) {          // rep stosl
		want = append(want, w(lo+0xa00+4*i, 4, 0xa1a1a1a1))
	}
	for i := range uint64(4) { // rep movsl RAM -> MMIO
		want = append(want, w(lo+0xa10+4*i, 4, 0xb0b0b0b0+0x01010101*i))
	}
	for i := range uint64(4) { // rep movsl MMIO -> RAM
		want = append(want, rd(lo+0xa10+4*i, 4, 0xb0b0b0b0+0x01010101*i))
	}
	for i := range uint64(4) { // rep movsl MMIO -> MMIO
		want = append(want, rd(lo+0xa00+4*i, 4, 0xa1a1a1a1), w(lo+0xa20+4*i, 4, 0xa1a1a1a1))
	}
	for i := range uint64(4) { // rep lodsl
		want = append(want, rd(lo+0xa20+4*i, 4, 0xa1a1a1a1))
	}
	for i := range uint64(3) { // std; rep stosw
		want = append(want, w(lo+0xa3e-2*i, 2, 0xc3c3))
	}
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), want)
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StageLong)})
}

func checkX87(t *testing.T, r *guestRun) {
	const lo = devices.TestWindowLow + 0xc00
	w := func(off uint64, size int, v uint64) devices.Access {
		return devices.Access{GPA: lo + off, Size: size, Write: true, Value: v}
	}
	rd := func(off uint64, size int, v uint64) devices.Access {
		return devices.Access{GPA: lo + off, Size: size, Value: v}
	}
	const f15, d25, d15, f25 = 0x3fc00000, 0x4004000000000000, 0x3ff8000000000000, 0x40200000
	// The first four checks access exactly these; the forms after them
	// check themselves (the guest's verdict).
	got := r.m.WindowLow.Accesses()
	wantAccesses(t, "low window", got[:min(len(got), 14)], []devices.Access{
		w(0, 4, f15), w(8, 8, d25), // the operands, written with mov
		rd(0, 4, f15), w(4, 4, f15), rd(4, 4, f15), // flds; fstps; check
		rd(8, 8, d25), w(0x10, 8, d25), rd(0x10, 8, d25), // fldl; fstpl; check
		rd(0, 4, f15), w(0x18, 8, d15), rd(0x18, 8, d15), // flds; fstpl; check
		rd(8, 8, d25), w(0x20, 4, f25), rd(0x20, 4, f25), // fldl; fstps; check
	})
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StageLong), stageEv(guest.StageX87)})
}

// span is a run of adjacent accesses in one direction.
type span struct {
	GPA   uint64
	Len   int
	Write bool
}

// spans merges adjacent same-direction accesses: how an access wider than
// an exit is split is walkvm's business, which bytes are touched is not.
func spans(accs []devices.Access) []span {
	var out []span
	for _, a := range accs {
		if n := len(out); n > 0 && out[n-1].Write == a.Write && out[n-1].GPA+uint64(out[n-1].Len) == a.GPA {
			out[n-1].Len += a.Size
			continue
		}
		out = append(out, span{GPA: a.GPA, Len: a.Size, Write: a.Write})
	}
	return out
}

func checkAVX(t *testing.T, r *guestRun) {
	const lo = devices.TestWindowLow + 0xd00
	var want []span
	for _, s := range []struct {
		off uint64
		n   int
	}{{0, 16}, {0x20, 32}, {0x41, 32}, {0x80, 16}} {
		want = append(want, span{lo + s.off, s.n, true}, span{lo + s.off, s.n, false})
	}
	// The moves access exactly these; the arithmetic after them checks
	// itself (the guest's verdict).
	got := spans(r.m.WindowLow.Accesses())
	if len(got) > len(want) {
		got = got[:len(want)]
	}
	if !slices.Equal(got, want) {
		t.Errorf("low window spans %+v, want %+v", got, want)
	}
	mem := r.m.WindowLow.Bytes()
	for _, s := range []struct {
		off uint64
		n   int
	}{{0, 16}, {0x20, 32}, {0x41, 32}, {0x80, 16}} {
		off := lo - devices.TestWindowLow + s.off
		for i := range s.n {
			if mem[off+uint64(i)] != byte(0x40+i) {
				t.Errorf("window byte %#x = %#x, want %#x", off+uint64(i), mem[off+uint64(i)], 0x40+i)
				break
			}
		}
	}
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StageLong), stageEv(guest.StageAVX)})
}

func checkSSE(t *testing.T, r *guestRun) {
	mem := r.m.WindowLow.Bytes()
	// The pattern stored with movups, movdqa and movdqu, and its slot
	// (%xmm0, offset 160) in the FXSAVE image at 0xd0a00.
	for _, off := range []int{0x800, 0x810, 0x820, 0x831, 0xaa0} {
		for i := range 16 {
			if mem[off+i] != byte(0x10+i) {
				t.Errorf("window %#x: % x, want the pattern 10..1f", off, mem[off:off+16])
				break
			}
		}
	}
	want := []devices.Event{stageEv(guest.StageLong), stageEv(guest.StageSSE)}
	if len(r.events) == 3 {
		// The host's vector unit lacks what walkvm runs SSE arithmetic
		// on: the guest passed over it.
		want = append(want, ev(devices.EventUnsupported, uint32(guest.StageSSE)))
		t.Logf("ssemmio: %s", unsupportedWhat[guest.StageSSE])
	}
	wantEvents(t, r.events, want)
}

// checkRoundTrip asserts every step's stage event and MMIO, and which
// stages the host refused: on PVM exactly legacy 32-bit paging and PAE,
// elsewhere (a KVM with every mode, the nested runner) none.
func checkRoundTrip(t *testing.T, r *guestRun) {
	steps := []guest.Stage{
		guest.StageReal, guest.StageProt32, guest.StagePaging32, guest.StageProt32, guest.StagePAE, guest.StageProt32,
		guest.StageLong, guest.StageCompat, guest.StageLong, guest.StageProt32, guest.StageProt16, guest.StageReal,
	}
	refused := map[guest.Stage]bool{}
	if onPVM() && !kvmtest.Nested() {
		refused[guest.StagePaging32], refused[guest.StagePAE] = true, true
	}
	var access []devices.Access
	var want []devices.Event
	for i, st := range steps {
		if refused[st] {
			want = append(want, ev(devices.EventException), ev(devices.EventRefused, uint32(st), 13, 0))
			continue
		}
		want = append(want, stageEv(st))
		access = append(access, rw(devices.TestWindowLow+0xe00+4*uint64(i), 4, uint64(0x5a000000|i<<8|int(st)))...)
	}
	got := r.events
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d (refused on this host: %v)\n got %v", len(got), len(want), refused, got)
	}
	for i := range want {
		g, w := got[i], want[i]
		switch {
		case w.Kind == devices.EventException:
			if g.Kind != w.Kind || g.Vector() != 13 || g.ErrorCode() != 0 || !r.inImage(g.RIP()) {
				t.Errorf("event %d = %v, want the #GP(0) of a refused CR0.PG write", i, g)
			}
		case g.Kind != w.Kind || g.Args != w.Args || g.NArgs != w.NArgs:
			t.Errorf("event %d = %v, want %v", i, g, w)
		}
	}
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), access)
}

func checkLA57(t *testing.T, r *guestRun) {
	const hi = devices.TestWindowHigh
	wantAccesses(t, "low window", r.m.WindowLow.Accesses(), rw(devices.TestWindowLow+0x900, 4, 0x01010101))
	wantAccesses(t, "high window", r.m.WindowHigh.Accesses(), slices.Concat(rw(hi+0x900, 4, 0x02020202), rw(hi+0x910, 4, 0x03030303)))
	wantEvents(t, r.events, []devices.Event{stageEv(guest.StageLA57)})
}
