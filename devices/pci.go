package devices

import (
	"sync"

	"walkvm/x86"
)

// PCI configuration mechanism #1 ports, relative to PCIConfigPort (0xcf8).
const (
	pciAddress = 0x0 // 0xcf8: 32-bit CONFIG_ADDRESS
	pciRCR     = 0x1 // 0xcf9: 1-byte reset control register (PIIX/ICH)
	pciData    = 0x4 // 0xcfc-0xcff: CONFIG_DATA

	rcrSysRst = 0x02 // hard reset when RST_CPU is set
	rcrRstCPU = 0x04 // writing it resets the machine
)

// PCIConfig is a host bridge with nothing behind it, on ports 0xcf8-0xcff:
// CONFIG_ADDRESS (a 32-bit access at 0xcf8) reads back what was written,
// every CONFIG_DATA read (0xcfc-0xcff, any size) returns all ones, "no
// device", and data writes are dropped. Other accesses to 0xcf8-0xcfb are
// ignored (reads all ones), as QEMU's host bridge does, except the 1-byte
// reset control register at 0xcf9: writing it with RST_CPU (bit 2) set ends
// the run as a reset request (Linux's reboot=pci), bit 1 is kept.
type PCIConfig struct {
	mu      sync.Mutex
	address uint32
	rcr     byte
	stop    Stopper
}

// NewPCIConfig returns the configuration ports; a reset through 0xcf9 ends
// the run through stop (nil: the reset is ignored).
func NewPCIConfig(stop Stopper) *PCIConfig { return &PCIConfig{stop: stop} }

// Read implements memory.Device.
func (p *PCIConfig) Read(off uint64, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case off == pciAddress && len(data) == 4:
		data[0], data[1], data[2], data[3] = byte(p.address), byte(p.address>>8), byte(p.address>>16), byte(p.address>>24)
	case off == pciRCR && len(data) == 1:
		data[0] = p.rcr
	default:
		fill(data, 0xff)
	}
	return nil
}

// Write implements memory.Device.
func (p *PCIConfig) Write(off uint64, data []byte) error {
	p.mu.Lock()
	switch {
	case off == pciAddress && len(data) == 4:
		p.address = uint32(x86.Value(data))
	case off == pciRCR && len(data) == 1:
		if data[0]&rcrRstCPU != 0 && p.stop != nil {
			p.mu.Unlock()
			p.stop.Reset()
			return nil
		}
		p.rcr = data[0] & rcrSysRst
	}
	p.mu.Unlock()
	return nil
}
