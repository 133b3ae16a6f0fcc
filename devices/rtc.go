package devices

import (
	"sync"
	"time"
)

// MC146818 RTC registers and CMOS locations (QEMU's hw/rtc/mc146818rtc.c and
// hw/i386/pc.c for the memory sizes).
const (
	rtcSeconds    = 0x00
	rtcMinutes    = 0x02
	rtcHours      = 0x04
	rtcDayOfWeek  = 0x06
	rtcDayOfMonth = 0x07
	rtcMonth      = 0x08
	rtcYear       = 0x09
	rtcRegA       = 0x0a
	rtcRegB       = 0x0b
	rtcRegC       = 0x0c
	rtcRegD       = 0x0d
	rtcCentury    = 0x32

	rtcAUIP  = 0x80 // register A: update in progress (never set here)
	rtcBSET  = 0x80 // register B: updates halted while the time is set
	rtcBDM   = 0x04 // register B: binary (not BCD) time
	rtc24H   = 0x02 // register B: 24-hour hours
	rtcDVRT  = 0x80 // register D: valid RAM and time
	rtcHPM   = 0x80 // hours in 12-hour mode: PM
	rtcIndex = 0x7f // index port bits; bit 7 is the NMI mask, ignored

	// Register values at reset: A = 32.768 kHz time base, 1024 Hz periodic
	// rate; B = 24-hour BCD, no interrupts.
	rtcResetA = 0x26
	rtcResetB = rtc24H
)

// rtcTimeRegs are the registers that hold the time of day and date.
var rtcTimeRegs = [...]byte{rtcSeconds, rtcMinutes, rtcHours, rtcDayOfWeek, rtcDayOfMonth, rtcMonth, rtcYear, rtcCentury}

// RTCConfig describes what the RTC reports.
type RTCConfig struct {
	// Now is the wall clock (nil: time.Now); the RTC shows it in UTC plus
	// whatever offset the guest sets.
	Now func() time.Time
	// RAMBelow4G and RAMAbove4G are the guest's RAM in bytes below and
	// above 4 GiB, reported in the CMOS memory-size bytes as QEMU does.
	RAMBelow4G, RAMAbove4G uint64
	// CPUs is the vCPU count, reported at 0x5f (minus one) as QEMU does.
	CPUs int
}

// RTC is the PC's MC146818 real-time clock and CMOS RAM on ports 0x70
// (index; bit 7 masks NMI and is ignored; reads return all ones) and 0x71
// (data). The time registers (seconds, minutes, hours, day of week, day of
// month, month, year at 0x00-0x09 and the century at 0x32) show the clock in
// BCD or binary and 24- or 12-hour form as register B says. Register A
// never shows an update in progress, so a guest never waits for one; B
// starts as 24-hour BCD; C (interrupt flags) reads 0: the periodic, alarm
// and update interrupts are not generated; D reads "valid RAM and time".
// Writing the time registers sets the clock (as an offset to Now), at once
// or, while B.SET is set, when SET is cleared. The rest of the 128 bytes is
// CMOS RAM, zero at reset but for the memory sizes at 0x15-0x18, 0x30-0x31,
// 0x34-0x35, 0x5b-0x5d, the CPU count at 0x5f and the checksum of
// 0x10-0x2d at 0x2e-0x2f.
type RTC struct {
	mu     sync.Mutex
	now    func() time.Time
	offset time.Duration
	index  byte
	ram    [128]byte
}

// NewRTC returns an RTC as cfg describes.
func NewRTC(cfg RTCConfig) *RTC {
	r := &RTC{now: cfg.Now}
	if r.now == nil {
		r.now = time.Now
	}
	r.ram[rtcRegA] = rtcResetA
	r.ram[rtcRegB] = rtcResetB
	r.ram[rtcRegD] = rtcDVRT
	r.ram[0x15], r.ram[0x16] = 640&0xff, 640>>8 // base memory in KiB
	ext := min(max(int64(cfg.RAMBelow4G/1024)-1024, 0), 0xffff)
	r.ram[0x17], r.ram[0x18] = byte(ext), byte(ext>>8) // extended memory in KiB, above 1 MiB
	r.ram[0x30], r.ram[0x31] = byte(ext), byte(ext>>8)
	var above16 uint64
	if cfg.RAMBelow4G > 16<<20 {
		above16 = min((cfg.RAMBelow4G-16<<20)>>16, 0xffff) // 64 KiB units above 16 MiB
	}
	r.ram[0x34], r.ram[0x35] = byte(above16), byte(above16>>8)
	high := cfg.RAMAbove4G >> 16 // 64 KiB units above 4 GiB
	r.ram[0x5b], r.ram[0x5c], r.ram[0x5d] = byte(high), byte(high>>8), byte(high>>16)
	if cfg.CPUs > 0 {
		r.ram[0x5f] = byte(cfg.CPUs - 1)
	}
	var sum uint16
	for _, b := range r.ram[0x10:0x2e] {
		sum += uint16(b)
	}
	r.ram[0x2e], r.ram[0x2f] = byte(sum>>8), byte(sum)
	return r
}

// Read implements memory.Device.
func (r *RTC) Read(off uint64, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		if off+uint64(i) == 0 {
			data[i] = 0xff
			continue
		}
		data[i] = r.readData()
	}
	return nil
}

// Write implements memory.Device.
func (r *RTC) Write(off uint64, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range data {
		if off+uint64(i) == 0 {
			r.index = v & rtcIndex
			continue
		}
		r.writeData(v)
	}
	return nil
}

func isTimeReg(i byte) bool {
	for _, t := range rtcTimeRegs {
		if t == i {
			return true
		}
	}
	return false
}

func (r *RTC) readData() byte {
	i := r.index
	switch {
	case isTimeReg(i) && r.ram[rtcRegB]&rtcBSET == 0:
		return r.encode(i, r.clock())
	case i == rtcRegA:
		return r.ram[rtcRegA] &^ rtcAUIP
	case i == rtcRegC:
		v := r.ram[rtcRegC]
		r.ram[rtcRegC] = 0
		return v
	}
	return r.ram[i]
}

func (r *RTC) writeData(v byte) {
	i := r.index
	switch {
	case isTimeReg(i):
		set := r.ram[rtcRegB]&rtcBSET != 0
		if !set {
			r.freeze()
		}
		r.ram[i] = v
		if !set {
			r.commit()
		}
	case i == rtcRegA:
		r.ram[rtcRegA] = v &^ rtcAUIP
	case i == rtcRegB:
		old := r.ram[rtcRegB]
		switch {
		case v&rtcBSET != 0 && old&rtcBSET == 0:
			r.ram[rtcRegB] = v
			r.freeze()
		case v&rtcBSET == 0 && old&rtcBSET != 0:
			r.commit() // in the format the registers were written in
			r.ram[rtcRegB] = v
		default:
			r.ram[rtcRegB] = v
		}
	case i == rtcRegC, i == rtcRegD:
		// read-only
	default:
		r.ram[i] = v
	}
}

func (r *RTC) clock() time.Time { return r.now().Add(r.offset).UTC() }

// freeze copies the present time into the time registers.
func (r *RTC) freeze() {
	t := r.clock()
	for _, i := range rtcTimeRegs {
		r.ram[i] = r.encode(i, t)
	}
}

// commit sets the clock from the time registers.
func (r *RTC) commit() {
	h := r.ram[rtcHours]
	hour := r.decode(h &^ rtcHPM)
	if r.ram[rtcRegB]&rtc24H == 0 {
		hour %= 12
		if h&rtcHPM != 0 {
			hour += 12
		}
	}
	t := time.Date(r.decode(r.ram[rtcCentury])*100+r.decode(r.ram[rtcYear]), time.Month(r.decode(r.ram[rtcMonth])),
		r.decode(r.ram[rtcDayOfMonth]), hour, r.decode(r.ram[rtcMinutes]), r.decode(r.ram[rtcSeconds]), 0, time.UTC)
	r.offset = t.Sub(r.now())
}

func (r *RTC) encode(i byte, t time.Time) byte {
	var v int
	switch i {
	case rtcSeconds:
		v = t.Second()
	case rtcMinutes:
		v = t.Minute()
	case rtcHours:
		v = t.Hour()
		if r.ram[rtcRegB]&rtc24H == 0 {
			pm := v >= 12
			if v %= 12; v == 0 {
				v = 12
			}
			if pm {
				return r.toReg(v) | rtcHPM
			}
		}
	case rtcDayOfWeek:
		v = int(t.Weekday()) + 1 // Sunday is 1
	case rtcDayOfMonth:
		v = t.Day()
	case rtcMonth:
		v = int(t.Month())
	case rtcYear:
		v = t.Year() % 100
	case rtcCentury:
		v = t.Year() / 100
	}
	return r.toReg(v)
}

func (r *RTC) toReg(v int) byte {
	if r.ram[rtcRegB]&rtcBDM != 0 {
		return byte(v)
	}
	return byte(v/10<<4 | v%10)
}

func (r *RTC) decode(b byte) int {
	if r.ram[rtcRegB]&rtcBDM != 0 {
		return int(b)
	}
	return int(b>>4)*10 + int(b&0x0f)
}
