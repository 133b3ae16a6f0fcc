package vcpu

import (
	"fmt"
	"strings"

	"walkvm/kvm"
)

// DumpState formats the vCPU's registers and segments for a failure report.
func DumpState(c CPU) string {
	var r kvm.Regs
	var s kvm.Sregs
	var b strings.Builder
	if err := c.GetRegs(&r); err != nil {
		return "registers unavailable: " + err.Error()
	}
	if err := c.GetSregs(&s); err != nil {
		return "segment registers unavailable: " + err.Error()
	}
	fmt.Fprintf(&b, "RAX=%016x RBX=%016x RCX=%016x RDX=%016x\n", r.RAX, r.RBX, r.RCX, r.RDX)
	fmt.Fprintf(&b, "RSI=%016x RDI=%016x RBP=%016x RSP=%016x\n", r.RSI, r.RDI, r.RBP, r.RSP)
	fmt.Fprintf(&b, "R8 =%016x R9 =%016x R10=%016x R11=%016x\n", r.R8, r.R9, r.R10, r.R11)
	fmt.Fprintf(&b, "R12=%016x R13=%016x R14=%016x R15=%016x\n", r.R12, r.R13, r.R14, r.R15)
	fmt.Fprintf(&b, "RIP=%016x RFLAGS=%08x\n", r.RIP, r.RFLAGS)
	for _, sg := range []struct {
		name string
		seg  *kvm.Segment
	}{{"CS", &s.CS}, {"SS", &s.SS}, {"DS", &s.DS}, {"ES", &s.ES}, {"FS", &s.FS}, {"GS", &s.GS}, {"TR", &s.TR}, {"LDT", &s.LDT}} {
		g := sg.seg
		fmt.Fprintf(&b, "%-3s=%04x base=%016x limit=%08x type=%x s=%d dpl=%d p=%d db=%d l=%d g=%d\n",
			sg.name, g.Selector, g.Base, g.Limit, g.Typ, g.S, g.DPL, g.Present, g.DB, g.L, g.G)
	}
	fmt.Fprintf(&b, "GDT=%016x/%04x IDT=%016x/%04x\n", s.GDT.Base, s.GDT.Limit, s.IDT.Base, s.IDT.Limit)
	fmt.Fprintf(&b, "CR0=%08x CR2=%016x CR3=%016x CR4=%08x EFER=%x", s.CR0, s.CR2, s.CR3, s.CR4, s.EFER)
	return b.String()
}
