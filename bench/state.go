package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"unsafe"

	"walkvm/boot"
	"walkvm/kvm"
	"walkvm/machine"
	"walkvm/memory"
)

// The floor's STATE file (floor.c, struct state_header): walkvm's memslots,
// the RAM contents and entry registers boot.Load produces, so that the
// floor runs exactly what walkvm runs without a loader of its own.
const (
	stateMagic   = "WVMFLOOR"
	stateVersion = 1
	pageSize     = 4096
)

type stateHeader struct {
	Magic           [8]byte
	Version         uint32
	NSlots          uint32
	NChunks         uint32
	_               uint32
	MemSize         uint64
	TSSAddr         uint64
	IdentityMapAddr uint64
}

type stateSlot struct{ GPA, Offset, Size uint64 }

type stateChunk struct{ Offset, Len uint64 }

// WriteState writes the floor's STATE for img in memSize bytes of RAM.
func WriteState(w io.Writer, memSize uint64, img boot.Image) error {
	mm, err := memory.PCMap(memSize)
	if err != nil {
		return err
	}
	ram, err := memory.NewRAMFromMap(mm)
	if err != nil {
		return err
	}
	defer ram.Close()
	entry, err := boot.Load(ram, mm, boot.Flat(img))
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	regs, sregs := &entry.Regs, &entry.Sregs
	// Mapping offset == GPA for every region (memory.NewRAMFromMap).
	var slots []stateSlot
	var chunks []stateChunk
	for _, rg := range ram.Regions() {
		slots = append(slots, stateSlot{GPA: rg.GPA, Offset: rg.GPA, Size: uint64(len(rg.Host))})
		for off := 0; off < len(rg.Host); off += pageSize {
			page := rg.Host[off:min(off+pageSize, len(rg.Host))]
			if allZero(page) {
				continue
			}
			gpa := rg.GPA + uint64(off)
			if n := len(chunks); n > 0 && chunks[n-1].Offset+chunks[n-1].Len == gpa {
				chunks[n-1].Len += uint64(len(page))
				continue
			}
			chunks = append(chunks, stateChunk{Offset: gpa, Len: uint64(len(page))})
		}
	}
	h := stateHeader{Version: stateVersion, NSlots: uint32(len(slots)), NChunks: uint32(len(chunks)),
		MemSize: memSize, TSSAddr: machine.TSSAddr, IdentityMapAddr: machine.IdentityMapAddr}
	copy(h.Magic[:], stateMagic)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, &h); err != nil {
		return err
	}
	b.Write(structBytes(regs))
	b.Write(structBytes(sregs))
	for _, s := range slots {
		if err := binary.Write(&b, binary.LittleEndian, &s); err != nil {
			return err
		}
	}
	for _, c := range chunks {
		if err := binary.Write(&b, binary.LittleEndian, &c); err != nil {
			return err
		}
		data, err := ram.Slice(c.Offset, c.Len)
		if err != nil {
			return err
		}
		b.Write(data)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// structBytes views a KVM register struct as the bytes KVM reads (they are
// passed to the ioctls by pointer, so their Go layout is KVM's).
func structBytes[T kvm.Regs | kvm.Sregs](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}
