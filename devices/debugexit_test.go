package devices

import "testing"

func TestDebugExitForms(t *testing.T) {
	for _, tc := range []struct {
		form DebugExitForm
		data []byte
		want int
	}{
		{DebugExitWalkvm, []byte{0}, 0},
		{DebugExitWalkvm, []byte{0x2a, 0x01}, 0x2a},
		{DebugExitWalkvm, []byte{77, 0, 0, 0}, 77},
		{DebugExitQEMU, []byte{0, 0, 0, 0}, 1},   // kvm-unit-tests pass
		{DebugExitQEMU, []byte{1, 0, 0, 0}, 3},   // fail
		{DebugExitQEMU, []byte{38, 0, 0, 0}, 77}, // skip
		{DebugExitQEMU, []byte{63}, 127},         // abort
		{DebugExitQEMU, []byte{0x80, 0, 0, 0}, 1},
	} {
		var got []int
		d := NewDebugExit(tc.form, StopFuncs{OnExit: func(s int) { got = append(got, s) }})
		if err := d.Write(0, tc.data); err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%v write % x: ended with %v, %v; want [%d]", tc.form, tc.data, got, err, tc.want)
		}
	}
	for _, s := range []string{"walkvm", "qemu"} {
		if f, err := ParseDebugExitForm(s); err != nil || f.String() != s {
			t.Errorf("ParseDebugExitForm(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseDebugExitForm("bochs"); err == nil {
		t.Error("ParseDebugExitForm accepted bochs")
	}
}
