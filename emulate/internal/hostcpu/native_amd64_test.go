//go:build amd64 && linux

package hostcpu

import (
	"encoding/binary"
	"syscall"
	"testing"
)

// TestNative runs a few instructions that fall through, branch and fault,
// and checks what the runner captured.
func TestNative(t *testing.T) {
	n, err := OpenNative()
	if err != nil {
		t.Skipf("native runner unavailable: %v", err)
	}
	if err := n.Begin(); err != nil {
		t.Fatal(err)
	}
	defer n.End()
	r := n.Region()
	clear(r[XSaveIn-NativeBase : XSaveIn-NativeBase+1024])
	binary.LittleEndian.PutUint32(r[XSaveIn-NativeBase+24:], 0x1F80)
	var in NativeRegs
	var out NativeResult
	in.RFLAGS = 0x202
	in.GPR[4] = StackAddr + 0x1000
	in.GPR[0], in.GPR[3] = 5, 7
	n.Run([]byte{0x48, 0x01, 0xd8}, &in, &out) // add %rbx, %rax
	if out.Landing != LandFall || out.Regs.GPR[0] != 12 || out.Regs.GPR[4] != in.GPR[4] {
		t.Fatalf("add: %+v", out)
	}
	in.GPR[3] = 0
	n.Run([]byte{0x48, 0xf7, 0xf3}, &in, &out) // div %rbx
	if out.Landing != LandFault || out.Trap != 0 || out.Signal != int(syscall.SIGFPE) || out.Regs.GPR[0] != 5 {
		t.Fatalf("div by 0: %+v", out)
	}
	n.Run([]byte{0x48, 0x8b, 0x03}, &in, &out) // mov (%rbx), %rax at 0
	if out.Landing != LandFault || out.Trap != 14 || out.CR2 != 0 {
		t.Fatalf("mov from 0: %+v", out)
	}
	n.Run([]byte{0x0f, 0x0b}, &in, &out) // ud2
	if out.Landing != LandFault || out.Trap != 6 || out.FaultRIP != CodeAddr {
		t.Fatalf("ud2: %+v", out)
	}
	in.GPR[3] = DataAddr
	binary.LittleEndian.PutUint64(r[DataAddr-NativeBase:], BranchTarget)
	n.Run([]byte{0xff, 0x13}, &in, &out) // call *(%rbx)
	if out.Landing != LandBranch || out.Regs.GPR[4] != in.GPR[4]-8 ||
		binary.LittleEndian.Uint64(r[in.GPR[4]-8-NativeBase:]) != CodeAddr+2 {
		t.Fatalf("call: %+v", out)
	}
	// A Go fault while the handler is installed still panics as usual.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("nil dereference did not panic")
			}
		}()
		var p *int
		_ = *p
	}()
}
