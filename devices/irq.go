package devices

// IRQLine is one interrupt line a device drives: an ISA IRQ (a GSI of KVM's
// in-kernel PIC and IOAPIC, set with KVM_IRQ_LINE) or, in tests, a recorder.
// SetLevel raises (high) or lowers the line; edge-triggered users pulse it.
// Implementations are safe for use from several vCPU threads.
type IRQLine interface {
	SetLevel(high bool) error
}

// IRQFunc adapts a function to IRQLine.
type IRQFunc func(high bool) error

// SetLevel implements IRQLine.
func (f IRQFunc) SetLevel(high bool) error { return f(high) }
