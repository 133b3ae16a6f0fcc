package bench

import (
	"bufio"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Env says where a bench ran: which KVM, on which CPU.
type Env struct {
	// KVM describes the KVM the guests ran on.
	KVM string `json:"kvm"`
	// Nested is set inside tests/nested/run (WALKVM_NESTED=1): KVM in a
	// QEMU TCG guest, where every figure is only meaningful as a ratio.
	Nested bool `json:"nested"`
	// Hypervisor is CPUID.1:ECX[31] as /proc/cpuinfo shows it: the host
	// running the VMMs is itself a virtual machine.
	Hypervisor bool   `json:"hypervisor"`
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
}

// DetectEnv reads the environment of this process.
func DetectEnv() Env {
	e := Env{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		Nested: os.Getenv("WALKVM_NESTED") == "1"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if e.CPU == "" {
					e.CPU = strings.TrimSpace(v)
				}
			case "flags":
				for _, fl := range strings.Fields(v) {
					if fl == "hypervisor" {
						e.Hypervisor = true
					}
				}
			}
		}
		f.Close()
	}
	e.KVM = describeKVM(e)
	return e
}

func describeKVM(e Env) string {
	module := ""
	for _, m := range []string{"kvm_pvm", "kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			module = m
			break
		}
	}
	var s string
	switch {
	case e.Nested:
		s = "nested: KVM inside a QEMU TCG guest with emulated SVM+NPT (tests/nested/run)"
		if module != "" {
			s += ", module " + module
		}
	case module == "kvm_pvm":
		s = "host /dev/kvm served by PVM (kvm_pvm, software virtualization without VMX/SVM)"
	case module != "":
		s = "host /dev/kvm (" + module + ")"
	default:
		s = "host /dev/kvm"
	}
	if e.Hypervisor && !e.Nested {
		s += ", the host itself a virtual machine (CPUID hypervisor bit)"
	}
	return s
}
