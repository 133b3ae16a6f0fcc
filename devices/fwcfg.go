package devices

import (
	"encoding/binary"
	"sync"

	"walkvm/x86"
)

// fw_cfg selector keys (QEMU's docs/specs/fw_cfg.rst).
const (
	FwCfgSignature = 0x00
	FwCfgID        = 0x01
	FwCfgRAMSize   = 0x03
	FwCfgNbCPUs    = 0x05
	FwCfgMaxCPUs   = 0x0f

	fwCfgArchLocal = 0x8000 // architecture-specific keys (ACPI tables, E820, ...): none here
	fwCfgEntryMask = 0x3fff // the key without the write-channel and arch-local bits
	fwCfgIDTrad    = 0x01   // FwCfgID bit 0: the traditional (port) interface; bit 1 (DMA) clear
)

// FwCfg is QEMU's firmware configuration device through its traditional
// port interface, at FwCfgPort (ports 0x510-0x511, QEMU's combined region):
// a 16-bit write selects an item and rewinds it, each 1-byte read at either
// port returns the item's next byte. Items: the "QEMU" signature, the
// interface ID (traditional only, no DMA), the RAM size (u64), the number of
// CPUs and the maximum number of CPUs (u16), all little-endian. Every other
// item, and every read past an item's end, returns 0. Byte writes (the
// long-gone write channel) are ignored, as are accesses of other sizes;
// those reads return all ones.
//
// kvm-unit-tests reads NB_CPUS to know how many APs to wait for and
// RAM_SIZE for its memory map.
type FwCfg struct {
	mu    sync.Mutex
	items map[uint16][]byte
	cur   []byte // the selected item; nil when none
	off   int
}

// NewFwCfg returns fw_cfg describing a machine with ramSize bytes of RAM
// and cpus vCPUs.
func NewFwCfg(ramSize uint64, cpus int) *FwCfg {
	u16 := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
	return &FwCfg{items: map[uint16][]byte{
		FwCfgSignature: []byte("QEMU"),
		FwCfgID:        binary.LittleEndian.AppendUint32(nil, fwCfgIDTrad),
		FwCfgRAMSize:   binary.LittleEndian.AppendUint64(nil, ramSize),
		FwCfgNbCPUs:    u16(cpus),
		FwCfgMaxCPUs:   u16(cpus),
	}}
}

// Read implements memory.Device.
func (f *FwCfg) Read(off uint64, data []byte) error {
	if len(data) != 1 {
		fill(data, 0xff)
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	data[0] = 0
	if f.off < len(f.cur) {
		data[0] = f.cur[f.off]
		f.off++
	}
	return nil
}

// Write implements memory.Device.
func (f *FwCfg) Write(off uint64, data []byte) error {
	if off != 0 || len(data) != 2 {
		return nil
	}
	key := uint16(x86.Value(data))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur, f.off = nil, 0
	if key&fwCfgArchLocal == 0 {
		f.cur = f.items[key&fwCfgEntryMask]
	}
	return nil
}
