package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"walkvm/boot"
)

// QEMU runs the bench guests whose entry state PVH provides (32-bit flat
// protected mode, paging off) on QEMU's microvm machine with KVM: the same
// image bytes, wrapped in an ELF whose PT_LOAD puts them at the same
// address and whose XEN_ELFNOTE_PHYS32_ENTRY note enters at its first
// byte. microvm here has no devices but the debug exit, so the guests' MMIO
// and port accesses reach QEMU as unassigned: the same exits, served by
// QEMU's memory core. QEMU's firmware (qboot) and loader make its boot
// seconds where walkvm's is milliseconds, so its per-exit cost is its time
// less its boot time in the same round (the exit-at-once guest).
type QEMU struct {
	Path string
}

// qemuSupports reports whether w can run under QEMU's PVH entry: the
// protected-mode guests, and the exit-at-once guest, whose two instructions
// mean the same in 16- and 32-bit code.
func qemuSupports(w Workload) bool {
	return w.Mode == boot.Protected || w.Name == "boot"
}

// qemuExitStatus is isa-debug-exit's process status for a guest's write of
// v: (v << 1) | 1.
func qemuExitStatus(v int) int { return v<<1 | 1 }

// FindQEMU returns qemu-system-x86_64 when it is installed; the error says
// why not.
func FindQEMU() (*QEMU, error) {
	p := os.Getenv("WALKVM_QEMU")
	if p == "" {
		var err error
		if p, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			return nil, errors.New("qemu-system-x86_64 is not installed here")
		}
	}
	return &QEMU{Path: p}, nil
}

// firmwareDir is where Debian keeps QEMU's firmware (qboot, pvh.bin).
// QEMU looks for it relative to its binary (BIN/../share/qemu), which
// misses it when the binary is copied elsewhere, as into the nested KVM's
// /bin; -L adds it.
const firmwareDir = "/usr/share/qemu"

// Args is QEMU's command line for the PVH ELF at elf, with accel kvm or
// tcg.
func (q *QEMU) Args(elf, accel string) []string {
	args := []string{q.Path}
	if st, err := os.Stat(firmwareDir); err == nil && st.IsDir() {
		args = append(args, "-L", firmwareDir)
	}
	return append(args,
		"-M", "microvm,pit=off,pic=off,rtc=off,isa-serial=off,acpi=off,pcie=off",
		"-accel", accel, "-cpu", "max", "-m", "64M", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=1", 0xf4),
		"-kernel", elf)
}

// Run runs the ELF at elf once and checks that the guest exited with 0.
func (q *QEMU) Run(elf, accel string, timeout time.Duration) (time.Duration, error) {
	args := q.Args(elf, accel)
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	wall := time.Since(t0)
	// QEMU's own errors exit with 1 too, the status of a guest's 0: they
	// are told apart by QEMU's message.
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == qemuExitStatus(0) && out.Len() == 0 {
		return wall, nil
	}
	if err == nil {
		return 0, fmt.Errorf("%v: exited 0: the guest never wrote the debug-exit port\n%s", args, out.Bytes())
	}
	return 0, fmt.Errorf("%v: %w (want status %d, the guest's 0)\n%s", args, err, qemuExitStatus(0), out.Bytes())
}

// PVHELF wraps a flat image loaded at load in an ELF64 executable that a
// PVH loader enters at load: one PT_LOAD of the image at load (virtual and
// physical), and one PT_NOTE with XEN_ELFNOTE_PHYS32_ENTRY = load.
func PVHELF(image []byte, load uint64) ([]byte, error) {
	if load > 0xffffffff-uint64(len(image)) {
		return nil, fmt.Errorf("image at %#x does not fit below 4 GiB", load)
	}
	const (
		ehdrSize = 64
		phdrSize = 56
		noteOff  = ehdrSize + 2*phdrSize
		noteSize = 12 + 4 + 4 // header, "Xen\0", the entry
		imageOff = 0x1000     // page-aligned like its address
	)
	le := binary.LittleEndian
	f := make([]byte, imageOff+len(image))
	copy(f, "\x7fELF")
	f[4], f[5], f[6] = 2, 1, 1 // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	le.PutUint16(f[16:], 2)    // ET_EXEC
	le.PutUint16(f[18:], 62)   // EM_X86_64
	le.PutUint32(f[20:], 1)    // EV_CURRENT
	le.PutUint64(f[24:], load) // e_entry
	le.PutUint64(f[32:], 64)   // e_phoff
	le.PutUint16(f[52:], 64)   // e_ehsize
	le.PutUint16(f[54:], 56)   // e_phentsize
	le.PutUint16(f[56:], 2)    // e_phnum
	ph := f[ehdrSize:]         // PT_LOAD, R+X
	le.PutUint32(ph[0:], 1)    // p_type
	le.PutUint32(ph[4:], 5)    // p_flags
	le.PutUint64(ph[8:], imageOff)
	le.PutUint64(ph[16:], load) // p_vaddr
	le.PutUint64(ph[24:], load) // p_paddr
	le.PutUint64(ph[32:], uint64(len(image)))
	le.PutUint64(ph[40:], uint64(len(image)))
	le.PutUint64(ph[48:], 0x1000)
	ph = f[ehdrSize+phdrSize:] // PT_NOTE
	le.PutUint32(ph[0:], 4)
	le.PutUint32(ph[4:], 4)
	le.PutUint64(ph[8:], noteOff)
	le.PutUint64(ph[32:], noteSize)
	le.PutUint64(ph[40:], noteSize)
	le.PutUint64(ph[48:], 4)
	n := f[noteOff:]
	le.PutUint32(n[0:], 4)  // namesz: "Xen\0"
	le.PutUint32(n[4:], 4)  // descsz
	le.PutUint32(n[8:], 18) // XEN_ELFNOTE_PHYS32_ENTRY
	copy(n[12:], "Xen\x00")
	le.PutUint32(n[16:], uint32(load))
	copy(f[imageOff:], image)
	return f, nil
}
