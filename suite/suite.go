// Package suite runs walkvm's embedded test guests through the own MMIO
// path and judges them: pass, fail, or skip with the reason the guest
// measured (a mode the host refused, a CPUID feature it lacks). `vmm test`
// and `vmm probe` are built on it.
package suite

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/boot"
	"walkvm/devices"
	"walkvm/guest"
	"walkvm/machine"
	"walkvm/ownpath"
	"walkvm/trace"
	"walkvm/vcpu"
	"walkvm/x86"
)

// Verdicts.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
)

// Options say how guests run.
type Options struct {
	Verify  ownpath.Verify
	Timeout time.Duration
	MemSize uint64
	Log     logrus.FieldLogger
}

// Outcome is how one guest ran.
type Outcome struct {
	Guest   guest.Guest
	Verdict string
	Reason  string // why it failed or was skipped
	Status  int
	Stats   *trace.Stats
	Events  []devices.Event
	Console string
	Err     error
}

// Modes lists the modes the guest's exits were seen in, in order.
func (o *Outcome) Modes() []string {
	if o.Stats == nil {
		return nil
	}
	return o.Stats.ModeNames()
}

// MachineConfig is how g runs (its manifest entry) on a machine with
// memSize bytes of RAM unless g asks for its own: the loader picked by the
// image's bytes (boot.Select), its vCPUs, command line, module and
// debug-exit form.
func MachineConfig(g guest.Guest, memSize uint64) (machine.Config, error) {
	cfg := machine.Config{MemSize: memSize, VCPUs: g.VCPUs}
	if g.Mem != 0 {
		cfg.MemSize = g.Mem
	}
	data, err := g.Image()
	if err != nil {
		return cfg, err
	}
	initrd, err := g.InitrdData()
	if err != nil {
		return cfg, err
	}
	opt := boot.Options{Name: "guest/" + g.FileName(), Append: g.Append, Initrd: initrd, InitrdName: g.Initrd, Load: g.Load}
	if g.Entry != "" {
		if opt.Mode, err = boot.ParseMode(g.Entry); err != nil {
			return cfg, fmt.Errorf("guest %s: %w", g.Name, err)
		}
	}
	if g.Initrd != "" {
		opt.InitrdName = "guest/" + g.Initrd
	}
	c, err := boot.Select(data, opt)
	if err != nil {
		return cfg, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	cfg.Loader = c.Loader
	if g.DebugExit != "" {
		if cfg.DebugExit, err = devices.ParseDebugExitForm(g.DebugExit); err != nil {
			return cfg, fmt.Errorf("guest %s: %w", g.Name, err)
		}
	}
	return cfg, nil
}

// Run boots g through the own MMIO path and judges it.
func Run(g guest.Guest, opt Options) Outcome {
	out := Outcome{Guest: g}
	if opt.MemSize == 0 {
		opt.MemSize = 64 << 20
	}
	if opt.Timeout == 0 {
		opt.Timeout = 30 * time.Second
	}
	cfg, err := MachineConfig(g, opt.MemSize)
	if err != nil {
		return out.failed(err)
	}
	var console bytes.Buffer
	cfg.Console, cfg.Log = &console, opt.Log
	m, err := machine.New(cfg)
	if err != nil {
		return out.failed(err)
	}
	defer m.Close()
	own, err := m.OwnPath(opt.Verify, nil)
	if err != nil {
		return out.failed(err)
	}
	res := m.RunOwn(own, opt.Timeout)
	out.Status, out.Stats, out.Console = res.ExitStatus(), own.Stats(), console.String()
	out.Events = m.Report.Events()
	switch {
	case out.Status == g.PassStatus() && res.Err == nil:
		out.Verdict = Pass
		if g.Output != "" && !strings.HasSuffix(out.Console, g.Output) {
			out.Verdict, out.Reason = Fail, fmt.Sprintf("console does not end with %q", g.Output)
		}
		if out.Stats.MMIO.Disagreed != 0 {
			out.Verdict, out.Reason = Fail, fmt.Sprintf("%d disagreements with KVM", out.Stats.MMIO.Disagreed)
		}
	case res.Kind == vcpu.EndDebugExit && out.Status == devices.StatusSkipped:
		out.Verdict, out.Reason = Skip, SkipReason(out.Events)
	default:
		out.Verdict, out.Err = Fail, res.Err
		out.Reason = fmt.Sprintf("exit status %d", out.Status)
		if res.Kind == vcpu.EndDebugExit && out.Status >= devices.StatusException && out.Status < devices.StatusException+32 {
			out.Reason = fmt.Sprintf("unexpected exception vector %d", out.Status-devices.StatusException)
		}
		if res.Err != nil {
			out.Reason += ": " + firstLine(res.Err.Error())
		}
	}
	return out
}

func (o Outcome) failed(err error) Outcome {
	o.Verdict, o.Err, o.Reason, o.Status = Fail, err, firstLine(err.Error()), vcpu.StatusFailed
	return o
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// SkipReason turns a guest's refused/unsupported reports into words.
func SkipReason(events []devices.Event) string {
	var parts []string
	for _, e := range events {
		switch e.Kind {
		case devices.EventRefused:
			parts = append(parts, fmt.Sprintf("host refused %s (%s entering it)", guest.Stage(e.Stage()), Exception(e.Vector(), e.ErrorCode())))
		case devices.EventUnsupported:
			parts = append(parts, fmt.Sprintf("the guest's CPUID lacks %s", guest.Stage(e.Stage())))
		}
	}
	if len(parts) == 0 {
		return "the guest exited with the skip status without saying why"
	}
	return strings.Join(parts, "; ")
}

// Exception renders an exception as the SDM writes it: #GP(0x0), #UD.
func Exception(vector uint8, code uint32) string {
	switch vector {
	case x86.VectorDF, x86.VectorTS, x86.VectorNP, x86.VectorSS, x86.VectorGP, x86.VectorPF, x86.VectorAC:
		return fmt.Sprintf("%s(%#x)", x86.VectorName(vector), code)
	}
	return x86.VectorName(vector)
}
