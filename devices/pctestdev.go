package devices

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// ISAIRQFunc sets ISA interrupt line irq (0..23, a GSI of the in-kernel
// PIC/IOAPIC) to a level; the machine implements it with KVM_IRQ_LINE.
type ISAIRQFunc func(irq int, high bool) error

// FlushPageFunc is asked to make KVM forget its mapping of the guest page at
// gpa (page-aligned), so that the guest's next access to it faults into KVM
// again.
type FlushPageFunc func(gpa uint64) error

// pc-testdev's port layout, relative to PCTestDevPort (0xe0).
const (
	pcTestScratch = 0x0 // 0xe0-0xe3: 32-bit scratch register, any access size
	pcTestFlush   = 0x4 // 0xe4: 4-byte write: flush the page at that GPA
	pcTestByte    = 0x8 // 0xe8-0xeb: the same scratch register, served byte by byte
	pcTestPorts   = 0xc
)

// PCTestDev is the port part of QEMU's pc-testdev (hw/misc/pc-testdev.c),
// which kvm-unit-tests' x86 guests use:
//
//	0xe0-0xe3  a 32-bit scratch register with byte lanes: an access of 1, 2
//	           or 4 bytes at offset n reads or writes bytes n.. of it
//	0xe4       4-byte write: "flush page" at the written GPA (see below)
//	0xe8-0xeb  the same scratch register; QEMU splits these accesses into
//	           single bytes, which gives the same result
//	0x2000+n   1-byte write (the IRQ ports, PCTestDevIRQ): ISA IRQ n := !!data
//
// QEMU flushes a page by mprotect()ing its host mapping to PROT_NONE and back,
// which makes the host kernel zap KVM's mapping of it (eventinj uses this to
// take an EPT/NPT violation while delivering an event). walkvm calls its
// FlushPageFunc with the page's GPA if it has one; the machine can implement
// it the same way (mprotect of the host page backing gpa). Without one the
// write is counted (Flushes) and nothing else happens: KVM keeps its mapping
// and eventinj's flush-dependent checks run without the fault they aim for.
//
// The 64 KiB RAM-like window at 0xff000000 is TestWindow.
type PCTestDev struct {
	mu        sync.Mutex
	scratch   [4]byte
	flush     FlushPageFunc
	flushes   uint64
	lastFlush uint64
}

// NewPCTestDev returns pc-testdev's ports 0xe0-0xeb; flush may be nil.
func NewPCTestDev(flush FlushPageFunc) *PCTestDev { return &PCTestDev{flush: flush} }

// Read implements memory.Device.
func (p *PCTestDev) Read(off uint64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case off < pcTestFlush, off >= pcTestByte && off < pcTestPorts:
		copy(data, p.scratch[off&3:])
	default:
		fill(data, 0xff)
	}
	return nil
}

// Write implements memory.Device.
func (p *PCTestDev) Write(off uint64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case off < pcTestFlush, off >= pcTestByte && off < pcTestPorts:
		copy(p.scratch[off&3:], data)
	case off == pcTestFlush && len(data) == 4:
		gpa := uint64(binary.LittleEndian.Uint32(data)) &^ 0xfff
		p.flushes++
		p.lastFlush = gpa
		if p.flush != nil {
			if err := p.flush(gpa); err != nil {
				return fmt.Errorf("pc-testdev: flush page %#x: %w", gpa, err)
			}
		}
	}
	return nil
}

// Scratch is the scratch register's value.
func (p *PCTestDev) Scratch() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return binary.LittleEndian.Uint32(p.scratch[:])
}

// Flushes returns how many flush-page writes the guest made and the GPA of
// the last.
func (p *PCTestDev) Flushes() (n, lastGPA uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushes, p.lastFlush
}

// PCTestDevIRQ is pc-testdev's ports 0x2000+n (n < PCTestDevIRQPorts): a
// byte d written to port 0x2000+n sets ISA IRQ n to d != 0. The ports take
// single bytes (QEMU's valid.max_access_size = 1), so QEMU splits a wider
// access into one byte per port, in address order, and so does walkvm:
// kvm-unit-tests' realmode test raises IRQ 11 with `outl %eax, %dx` at
// 0x200b, which sets IRQ 11 to EAX's low byte and IRQs 12-14 to the others.
// Bytes past the last port are dropped; reads return all ones.
type PCTestDevIRQ struct {
	set ISAIRQFunc
}

// NewPCTestDevIRQ returns the IRQ ports, driving lines through set.
func NewPCTestDevIRQ(set ISAIRQFunc) *PCTestDevIRQ { return &PCTestDevIRQ{set: set} }

// Read implements memory.Device.
func (*PCTestDevIRQ) Read(off uint64, data []byte) error {
	fill(data, 0xff)
	return nil
}

// Write implements memory.Device.
func (p *PCTestDevIRQ) Write(off uint64, data []byte) error {
	for i, d := range data {
		irq := off + uint64(i)
		if irq >= PCTestDevIRQPorts {
			break
		}
		if p.set == nil {
			return fmt.Errorf("pc-testdev: IRQ %d := %d: the machine has no interrupt controller", irq, d)
		}
		if err := p.set(int(irq), d != 0); err != nil {
			return fmt.Errorf("pc-testdev: IRQ %d := %d: %w", irq, d, err)
		}
	}
	return nil
}
