package machine

// Quit ends the present run from outside the guest (the user's Ctrl-A x, a
// signal) with exit status status; with no run going it does nothing.
func (m *Machine) Quit(status int) { m.group.Quit(status) }
