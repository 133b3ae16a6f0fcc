package boot

import (
	"fmt"

	"walkvm/boot/elfload"
	"walkvm/boot/format"
	"walkvm/boot/linux"
	"walkvm/boot/loader"
	"walkvm/boot/multiboot"
	"walkvm/boot/pvh"
	"walkvm/memory"
)

// Options are what an image is booted with besides its bytes.
type Options struct {
	// Name is the image's name, the first word of a multiboot command line
	// (kvm-unit-tests takes argv[0] from it).
	Name string
	// Append is the command line: after Name for a multiboot kernel,
	// after walkvm's default (linux.Cmdline) for a bzImage or PVH kernel.
	Append string
	// Initrd, when non-nil, is the multiboot module or the kernel's
	// initrd; InitrdName is its name (the multiboot module's string).
	Initrd     []byte
	InitrdName string
	// Load is where a flat image goes; Mode is how a flat image or a
	// plain ELF is entered.
	Load uint64
	Mode Mode
}

// Needs is what a loaded image expects of the machine besides its RAM.
type Needs struct {
	// Firmware: the memory a PC's firmware leaves for a kernel
	// (memory.FirmwareMap: the first MiB backed) with its tables in it
	// (Firmware).
	Firmware bool
	// IRQChip: KVM's in-kernel interrupt controllers and PIT, which the
	// kernel programs.
	IRQChip bool
	// ROMScan: the kernel reads the option-ROM area below 1 MiB as a
	// PC's firmware left it (Linux probes for adapter ROMs and scans
	// 0x80000-0xfffff for an iBFT in 16-byte steps), so no MMIO window may
	// sit there: each read would be an exit (8224 for the low test window).
	ROMScan bool
}

// NeedsOf says what l needs of the machine: what its Needs method says,
// or nothing (a flat image runs on the bare machine).
func NeedsOf(l Loader) Needs {
	if n, ok := l.(interface{ Needs() Needs }); ok {
		return n.Needs()
	}
	return Needs{}
}

// Choice is the loader Select picked for an image, and why.
type Choice struct {
	Format format.Kind
	Reason string // what in the image's bytes said so
	Loader Loader
}

// Select picks the loader for image by its bytes (format.Detect): a
// multiboot kernel (ELF or a.out kludge), a bzImage, a PVH ELF kernel, a
// plain ELF entered at e_entry in o.Mode, or else a flat image at o.Load
// in o.Mode. An image that starts like a format but is malformed is an
// error, not a flat image.
func Select(image []byte, o Options) (Choice, error) {
	kind, why, err := format.Detect(image)
	c := Choice{Format: kind, Reason: why}
	if err != nil {
		return c, fmt.Errorf("%v image (%s): %w", kind, why, err)
	}
	switch kind {
	case format.Flat, format.ELF:
		if o.Append != "" || o.Initrd != nil {
			return c, fmt.Errorf("a command line and an initrd are for multiboot, bzImage and PVH kernels, not %v images (%s)", kind, why)
		}
	}
	switch kind {
	case format.Flat:
		c.Loader = Flat(Image{Data: image, Load: o.Load, Mode: o.Mode})
	case format.ELF:
		c.Loader = &elfImage{image: image, mode: o.Mode}
	case format.MultibootELF, format.MultibootAout:
		cfg := multiboot.Config{Name: o.Name, Append: o.Append, Initrd: o.Initrd, InitrdName: o.InitrdName}
		c.Loader = &kernel{format: kind, load: func(mem loader.Memory, mm *memory.Map) (*loader.Entry, error) {
			cfg.Map = mm
			return multiboot.Load(mem, image, cfg)
		}}
	case format.BzImage:
		cfg := linux.Config{Cmdline: linux.Cmdline(o.Append), Initrd: o.Initrd, RSDP: RSDPBase}
		c.Loader = &kernel{format: kind, load: func(mem loader.Memory, mm *memory.Map) (*loader.Entry, error) {
			cfg.Map = mm
			return linux.Load(mem, image, cfg)
		}}
	case format.PVH:
		cfg := pvh.Config{Cmdline: linux.Cmdline(o.Append), Initrd: o.Initrd, RSDP: RSDPBase}
		c.Loader = &kernel{format: kind, load: func(mem loader.Memory, mm *memory.Map) (*loader.Entry, error) {
			cfg.Map = mm
			return pvh.Load(mem, image, cfg)
		}}
	default:
		return c, fmt.Errorf("image format %v: no loader", kind)
	}
	return c, nil
}

// kernel is the Loader of a multiboot, bzImage or PVH kernel: one of the
// image loaders (packages multiboot, linux, pvh), which place and write in
// one pass. Plan runs it over memory that only checks and records (so
// that it claims exactly what Load will write), Load runs it again over
// RAM with the same memory map, which gives the same placement.
type kernel struct {
	format format.Kind
	load   func(mem loader.Memory, mm *memory.Map) (*loader.Entry, error)
	mm     *memory.Map // the memory map as Plan found it
}

// Needs implements the Needs method NeedsOf reads.
func (k *kernel) Needs() Needs {
	linux := k.format == format.BzImage || k.format == format.PVH
	return Needs{Firmware: true, IRQChip: true, ROMScan: linux}
}

// Plan implements Loader.
func (k *kernel) Plan(mm *memory.Map) error {
	k.mm = mm.Clone()
	e, err := k.load(planMem{k.mm}, k.mm)
	if err != nil {
		return err
	}
	for _, r := range e.Occupied {
		if err := mm.Claim(r.What, r.Base, r.Size); err != nil {
			return fmt.Errorf("%v: %w", k.format, err)
		}
	}
	return nil
}

// Load implements Loader.
func (k *kernel) Load(ram *memory.RAM) (*Entry, error) {
	if k.mm == nil {
		return nil, fmt.Errorf("%v: Load before Plan", k.format)
	}
	e, err := k.load(ram, k.mm)
	if err != nil {
		return nil, err
	}
	regs, sregs, err := EntryState(e)
	if err != nil {
		return nil, err
	}
	out := &Entry{Regs: *regs, Sregs: *sregs, Mode: Protected}
	if e.Mode == loader.Long64 {
		out.Mode = Long
	}
	for _, r := range e.Occupied {
		out.Written = append(out.Written, memory.Range{Name: r.What, Start: r.Base, Size: r.Size, Kind: memory.KindRAM})
	}
	return out, nil
}

// planMem is guest memory for Plan's pass: writes are checked against the
// memory map and dropped, reads give zeros.
type planMem struct{ mm *memory.Map }

func (p planMem) Read(gpa uint64, b []byte) error {
	if !p.mm.IsBacked(gpa, uint64(len(b))) {
		return &memory.RangeError{GPA: gpa, Len: uint64(len(b))}
	}
	clear(b)
	return nil
}

func (p planMem) Write(gpa uint64, b []byte) error {
	if !p.mm.IsBacked(gpa, uint64(len(b))) {
		return &memory.RangeError{GPA: gpa, Len: uint64(len(b))}
	}
	return nil
}

// elfImage is the Loader of an ELF without a multiboot header or PVH
// note: its PT_LOAD segments at p_paddr, entered at e_entry in mode with
// walkvm's GDT (and for long mode its identity map), as a flat image.
type elfImage struct {
	image []byte
	mode  Mode
	file  *elfload.File
	mm    *memory.Map
}

// Needs implements the Needs method NeedsOf reads: the machine of a
// kernel, without the in-kernel irqchip unless asked for.
func (l *elfImage) Needs() Needs { return Needs{Firmware: true} }

// Plan implements Loader.
func (l *elfImage) Plan(mm *memory.Map) error {
	f, err := elfload.Parse(l.image)
	if err != nil {
		return err
	}
	if l.mode != Real && l.mode != Protected && l.mode != Long {
		return fmt.Errorf("unknown entry mode %v", l.mode)
	}
	if l.mode == Real && f.Entry >= memory.HoleStart {
		return fmt.Errorf("ELF: e_entry %#x cannot be entered in real mode (it must lie below %#x)", f.Entry, memory.HoleStart)
	}
	if l.mode != Long && f.Entry >= loader.Below4G {
		return fmt.Errorf("ELF: e_entry %#x is not a 32-bit address; enter it in long mode", f.Entry)
	}
	l.file, l.mm = f, mm.Clone()
	for _, r := range writtenFor(l.mode) {
		if err := mm.Claim(r.Name, r.Start, r.Size); err != nil {
			return err
		}
	}
	pl := loader.NewPlacer(mm)
	segs, err := f.Load(planMem{mm}, pl, l.image)
	if err != nil {
		return err
	}
	for _, r := range segs {
		if err := mm.Claim(r.What, r.Base, r.Size); err != nil {
			return err
		}
	}
	return nil
}

// Load implements Loader.
func (l *elfImage) Load(ram *memory.RAM) (*Entry, error) {
	if l.file == nil {
		return nil, fmt.Errorf("ELF: Load before Plan")
	}
	written := writtenFor(l.mode)
	pl := loader.NewPlacer(l.mm)
	for _, r := range written {
		if err := pl.Claim(r.Name, r.Start, r.Size); err != nil {
			return nil, err
		}
	}
	segs, err := l.file.Load(ram, pl, l.image)
	if err != nil {
		return nil, err
	}
	stack := l.file.Entry
	for _, r := range segs {
		stack = min(stack, r.Base)
		written = append(written, memory.Range{Name: r.What, Start: r.Base, Size: r.Size, Kind: memory.KindRAM})
	}
	return enter(ram, l.mode, l.file.Entry, stack, written)
}
