package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/boot"
	"walkvm/boot/mptable"
	"walkvm/cpuid"
	"walkvm/devices"
	"walkvm/guest"
	"walkvm/machine"
	"walkvm/ownpath"
	"walkvm/suite"
	"walkvm/trace"
	"walkvm/vcpu"
)

// runOptions are the flags of `vmm run`.
type runOptions struct {
	mem   uint64
	load  uint64
	entry boot.Mode
	// appendText and initrd are -append and -initrd (a file).
	appendText string
	initrd     string
	smp        int
	cpu        *cpuid.Model // nil: -cpu not given ("host")
	debugExit  devices.DebugExitForm
	irqchip    machine.IRQChipMode
	// set names the flags given, which win over an embedded guest's own
	// way of running.
	set      map[string]bool
	timeout  time.Duration
	logLevel logrus.Level
	guest    string
	image    string
	kvmPath  string
	verify   ownpath.Verify
	trace    string
	stats    string
	// statsFile receives the statistics instead of stderr.
	statsFile string
	// sink says where the trace goes (-trace, -trace-format, -report).
	sink traceSink
}

func parseRun(args []string, stderr io.Writer) (*runOptions, error) {
	fs := flag.NewFlagSet("vmm run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mem := fs.String("mem", "128M", "guest RAM size (bytes, or with K, M, G suffix)")
	load := fs.String("load", "0x1000", "guest-physical load address of IMAGE")
	entry := fs.String("entry", "real", "entry mode of IMAGE: real, protected or long")
	timeout := fs.Duration("timeout", 10*time.Second, "stop the guest after this long (0: never)")
	level := fs.String("log-level", "warning", "log level: panic, fatal, error, warning, info, debug, trace")
	name := fs.String("guest", "", "run the embedded guest NAME instead of IMAGE")
	kvmPath := fs.String("kvm", "/dev/kvm", "KVM device node")
	verify := fs.String("verify", "warn", "cross-checks of the own MMIO path against KVM: off, warn, strict or exec")
	trace := fs.String("trace", "", "write one JSON object per exit to FILE (- for stderr)")
	stats := fs.String("stats", "text", "run statistics printed to stderr at the end: text, json or off")
	statsFile := fs.String("stats-file", "", "write the statistics to FILE instead of stderr")
	traceFormat := fs.String("trace-format", "json", "-trace as json (one object per exit) or chrome (trace events for Perfetto UI)")
	reportFile := fs.String("report", "", "write an HTML report of the run (see vmm report) to FILE")
	kernel := fs.String("kernel", "", "the image to boot, as IMAGE (for Linux users: -kernel bzImage -initrd FILE -append TEXT)")
	appendText := fs.String("append", "", "command line of a multiboot, bzImage or PVH kernel (a kernel's is added to walkvm's default)")
	initrd := fs.String("initrd", "", "FILE as the multiboot module or the kernel's initrd")
	smp := fs.Int("smp", 1, "number of vCPUs (more than one needs the in-kernel irqchip)")
	cpuSpec := fs.String("cpu", "", "CPU model: host, max, qemu64, ... with +feature, -feature, vendor=..., phys-bits=... (default: host, KVM's supported CPUID)")
	debugExit := fs.String("debug-exit", "walkvm", "debug-exit port 0xf4: walkvm (status v & 0xff) or qemu (isa-debug-exit: status (v<<1)|1, ports 0xf4-0xf7)")
	irqchip := fs.String("irqchip", "auto", "KVM's in-kernel PIC, I/O APIC, local APICs and PIT: auto (kernels and -smp > 1), on or off")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vmm run [flags] [IMAGE]")
		fmt.Fprintln(stderr, "IMAGE is recognised by its bytes: multiboot (ELF or a.out kludge), bzImage, PVH ELF, other ELF (entered at e_entry in -entry mode), else flat (at -load, in -entry mode).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o := &runOptions{timeout: *timeout, guest: *name, kvmPath: *kvmPath, trace: *trace, stats: *stats, statsFile: *statsFile,
		appendText: *appendText, initrd: *initrd, smp: *smp}
	o.sink = traceSink{trace: *trace, format: *traceFormat, report: *reportFile}
	if *traceFormat != "json" && *traceFormat != "chrome" {
		return nil, fmt.Errorf("-trace-format %q: want json or chrome", *traceFormat)
	}
	var err error
	if o.mem, err = parseSize(*mem); err != nil {
		return nil, fmt.Errorf("-mem %q: %w", *mem, err)
	}
	if err := checkMem(o.mem); err != nil {
		return nil, fmt.Errorf("-mem %s: %w", *mem, err)
	}
	if o.load, err = strconv.ParseUint(*load, 0, 64); err != nil {
		return nil, fmt.Errorf("-load %q: not a number", *load)
	}
	if o.entry, err = boot.ParseMode(*entry); err != nil {
		return nil, fmt.Errorf("-entry: %w", err)
	}
	if o.verify, err = ownpath.ParseVerify(*verify); err != nil {
		return nil, fmt.Errorf("-verify: %w", err)
	}
	if o.smp < 1 || o.smp > mptable.MaxCPUs {
		return nil, fmt.Errorf("-smp %d: want 1 to %d vCPUs", o.smp, mptable.MaxCPUs)
	}
	if *cpuSpec != "" {
		m, err := cpuid.Parse(*cpuSpec)
		if err != nil {
			return nil, err // it names -cpu
		}
		o.cpu = &m
	}
	if o.debugExit, err = devices.ParseDebugExitForm(*debugExit); err != nil {
		return nil, fmt.Errorf("-debug-exit: %w", err)
	}
	if o.irqchip, err = machine.ParseIRQChip(*irqchip); err != nil {
		return nil, fmt.Errorf("-irqchip: %w", err)
	}
	if o.irqchip == machine.IRQChipOff && o.smp > 1 {
		return nil, fmt.Errorf("-smp %d needs the in-kernel irqchip (-irqchip auto or on): the application processors start on INIT and SIPI from the boot vCPU's local APIC", o.smp)
	}
	switch o.stats {
	case "text", "json":
	case "off":
		o.stats = ""
	default:
		return nil, fmt.Errorf("-stats %q: want text, json or off", o.stats)
	}
	if o.logLevel, err = logrus.ParseLevel(*level); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	if *timeout < 0 {
		return nil, fmt.Errorf("-timeout %v: must not be negative", *timeout)
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	switch fs.NArg() {
	case 0:
	case 1:
		o.image = fs.Arg(0)
	default:
		return nil, fmt.Errorf("run takes one IMAGE, got %d arguments", fs.NArg())
	}
	if *kernel != "" {
		if o.image != "" {
			return nil, fmt.Errorf("give the image once: -kernel %s or IMAGE %s", *kernel, o.image)
		}
		o.image = *kernel
	}
	if o.image != "" && o.guest != "" {
		return nil, errors.New("give either IMAGE or -guest, not both")
	}
	if o.image == "" {
		if o.guest == "" {
			o.guest = guest.Default
		}
		if o.set["load"] || o.set["entry"] || o.set["initrd"] {
			return nil, fmt.Errorf("-load, -entry and -initrd apply to an IMAGE file; embedded guest %q has its own", o.guest)
		}
	}
	return o, nil
}

// parseSize reads "64M", "1G", "65536", "512K".
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	t := strings.ToUpper(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	case strings.HasSuffix(t, "T"):
		mult, t = 1<<40, t[:len(t)-1]
	}
	n, err := strconv.ParseUint(t, 0, 64)
	if err != nil || n == 0 {
		return 0, errors.New("not a positive size")
	}
	if n > ^uint64(0)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	o, err := parseRun(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return vcpu.StatusFailed
	}
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetLevel(o.logLevel)

	cfg, err := o.machineConfig(log)
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return vcpu.StatusFailed
	}
	cfg.Console = stdout
	// The trace and the console are set up while KVM creates the VM
	// (machine.Prepare), and the VM is closed as soon as the run and the
	// console end.
	m, err := machine.Prepare(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", explainKVM(err, o.kvmPath, host{"/"}, append([]string{"run"}, args...)))
		return vcpu.StatusFailed
	}
	defer m.Close()
	log.Infof("machine: %d MiB, %d vCPU(s), in-kernel irqchip and PIT %s, debug exit %v", o.mem>>20, o.smp, onOff(m.IRQChip()), o.debugExit)
	out := runOutputs{closeTrace: func() {}}
	tracePath, err := o.sink.path()
	if err != nil {
		fmt.Fprintf(stderr, "vmm run: -trace: %v\n", err)
		return vcpu.StatusFailed
	}
	if tracePath != "" {
		tw, c, err := openOutput(tracePath, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "vmm run: -trace: %v\n", err)
			return vcpu.StatusFailed
		}
		out.closeTrace = c
		out.tracer = trace.NewTracer(tw)
	}
	detach := attachConsole(m, m.UART, os.Stdin, stderr, log)
	defer detach()
	if err := m.Create(); err != nil {
		out.closeTrace()
		fmt.Fprintf(stderr, "vmm run: %v\n", explainKVM(err, o.kvmPath, host{"/"}, append([]string{"run"}, args...)))
		return vcpu.StatusFailed
	}
	own, err := m.OwnPath(o.verify, out.tracer)
	if err != nil {
		out.closeTrace()
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return vcpu.StatusFailed
	}
	end := m.RunOwn(own, o.timeout)
	// The console first: its input and signals reach the machine until
	// it is detached.
	detach()
	if err := m.Close(); err != nil {
		log.Warnf("vmm run: closing the VM: %v", err)
	}
	return o.finish(end, own.Stats(), &out, stderr)
}

// runOutputs is what a run writes besides the console: the trace, until
// finish closes it.
type runOutputs struct {
	tracer     *trace.Tracer
	closeTrace func()
}

// finish says why the run ended, flushes and closes the trace, turns it
// into a report or Chrome trace, writes the statistics and returns the
// exit status: the same whether the guest ended the run or a signal
// (attachConsole) did.
func (o *runOptions) finish(end vcpu.End, stats *trace.Stats, out *runOutputs, stderr io.Writer) int {
	report(stderr, end)
	out.closeTrace()
	if out.tracer != nil && out.tracer.Err() != nil {
		fmt.Fprintf(stderr, "vmm run: -trace: %v\n", out.tracer.Err())
	}
	if err := o.sink.finish(stderr); err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
	}
	if err := o.writeStats(stats, stderr); err != nil {
		fmt.Fprintf(stderr, "vmm run: %v\n", err)
		return vcpu.StatusFailed
	}
	return end.ExitStatus()
}

// openOutput opens FILE, or stderr for "-".
func openOutput(name string, stderr io.Writer) (io.Writer, func(), error) {
	if name == "-" {
		return stderr, func() {}, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	return bw, func() { bw.Flush(); f.Close() }, nil
}

func (o *runOptions) writeStats(s *trace.Stats, stderr io.Writer) error {
	if o.stats == "" {
		return nil
	}
	w := stderr
	if o.statsFile != "" {
		f, err := os.Create(o.statsFile)
		if err != nil {
			return fmt.Errorf("-stats-file: %w", err)
		}
		defer f.Close()
		w = f
	}
	if o.stats == "text" {
		return s.WriteText(w)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// machineConfig reads the image (or the embedded guest) and the initrd,
// picks the loader by the image's bytes and says which and why at level
// info.
func (o *runOptions) machineConfig(log logrus.FieldLogger) (machine.Config, error) {
	if o.image == "" {
		return o.guestConfig(log)
	}
	cfg := machine.Config{MemSize: o.mem, VCPUs: o.smp, CPU: o.cpu, IRQChip: o.irqchip, DebugExit: o.debugExit, Log: log, KVMPath: o.kvmPath}
	opt := boot.Options{Name: o.image, Append: o.appendText, Load: o.load, Mode: o.entry}
	data, err := readImage(o.image, o.mem)
	if err != nil {
		return cfg, err
	}
	if o.initrd != "" {
		b, err := readFile("initrd", o.initrd, o.mem, true)
		if err != nil {
			return cfg, err
		}
		opt.Initrd, opt.InitrdName = b, o.initrd
	}
	c, err := boot.Select(data, opt)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", opt.Name, err)
	}
	log.Infof("%s: %v image: %s", opt.Name, c.Format, c.Reason)
	cfg.Loader = c.Loader
	return cfg, nil
}

// guestConfig runs the embedded guest as its manifest says (suite), with
// the flags given winning.
func (o *runOptions) guestConfig(log logrus.FieldLogger) (machine.Config, error) {
	g, err := guest.Lookup(o.guest)
	if err != nil {
		return machine.Config{}, err
	}
	if o.set["append"] {
		g.Append = o.appendText
	}
	if o.set["smp"] {
		g.VCPUs = o.smp
	}
	if o.set["debug-exit"] {
		g.DebugExit = o.debugExit.String()
	}
	if o.set["mem"] {
		g.Mem = o.mem
	}
	cfg, err := suite.MachineConfig(g, o.mem)
	if err != nil {
		return cfg, err
	}
	o.mem, o.smp, o.debugExit = cfg.MemSize, max(cfg.VCPUs, 1), cfg.DebugExit
	cfg.CPU, cfg.IRQChip, cfg.Log, cfg.KVMPath = o.cpu, o.irqchip, log, o.kvmPath
	log.Infof("guest %s: %s", g.Name, g.FileName())
	return cfg, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// report says on w why a run ended, unless the guest ended it.
func report(w io.Writer, end vcpu.End) {
	switch end.Kind {
	case vcpu.EndHalted, vcpu.EndDebugExit:
		return
	case vcpu.EndReset, vcpu.EndPowerOff:
		fmt.Fprintf(w, "vmm run: the guest asked for a %v (vCPU %d)\n", end.Kind, end.VCPU)
		return
	case vcpu.EndQuit:
		fmt.Fprintf(w, "vmm run: quit (status %d)\n", end.Status)
		return
	}
	fmt.Fprintf(w, "vmm run: %v\n", end.Err)
	if end.Dump != "" {
		fmt.Fprintln(w, end.Dump)
	}
}
