package unittests

import "testing"

func TestExtractSummary(t *testing.T) {
	for _, tc := range []struct{ console, want string }{
		{"PASS: a\nSUMMARY: 12 tests, 1 unexpected failures\n", "12 tests, 1 unexpected failures"},
		{"SUMMARY: 3 tests, 2 skipped\r\n", "3 tests, 2 skipped"},
		{"SUMMARY: 3 tests\n1\n2\n3\n4\n", "3 tests"},
		{"SUMMARY: 3 tests\n1\n2\n3\n4\n5\n", ""}, // only the last five lines count
		{"  SUMMARY: 3 tests\n", ""},
		{"", ""},
	} {
		if got := ExtractSummary([]byte(tc.console)); got != tc.want {
			t.Errorf("ExtractSummary(%q) = %q, want %q", tc.console, got, tc.want)
		}
	}
}

func TestJudge(t *testing.T) {
	sum := "SUMMARY: 5 tests, 1 skipped\n"
	for _, tc := range []struct {
		name string
		o    Outcome
		want Judgement
	}{
		{"pass", Outcome{Status: 1, Stdout: []byte(sum)}, Judgement{Pass, "5 tests, 1 skipped", ""}},
		{"pass without summary", Outcome{Status: 1}, Judgement{Pass, "", ""}},
		{"fail", Outcome{Status: 3, Stdout: []byte("SUMMARY: 5 tests, 2 unexpected failures\n")}, Judgement{Fail, "5 tests, 2 unexpected failures", ""}},
		{"skip", Outcome{Status: 77, Stdout: []byte("SUMMARY: 2 tests, 2 skipped\n")}, Judgement{Skip, "2 tests, 2 skipped", ""}},
		{"timeout", Outcome{Status: 124, TimeoutText: "30", Stdout: []byte(sum)}, Judgement{Fail, "5 tests, 1 skipped", "timeout; duration=30"}},
		{"signal", Outcome{Status: -1, Signal: "SIGSEGV"}, Judgement{Fail, "", "terminated on SIGSEGV"}},
		{"walkvm failure", Outcome{Status: 125, Stderr: []byte("level=warning msg=x\nvmm run: vCPU 0: triple fault at 0x8:0x401000\nvmm run: second\n")},
			Judgement{Fail, "", "walkvm: vCPU 0: triple fault at 0x8:0x401000"}},
		{"walkvm failure, bare line", Outcome{Status: 125, Stderr: []byte("boom\n\n")}, Judgement{Fail, "", "walkvm: boom"}},
		{"walkvm failure, silent", Outcome{Status: 125}, Judgement{Fail, "", "walkvm: failed without saying why"}},
		{"cpu refused", Outcome{Status: 125, Stderr: []byte(`vmm run: -cpu: -cpu "host,hv_passthrough": unknown option "hv_passthrough"` + "\n")},
			Judgement{Skip, "", `-cpu: -cpu "host,hv_passthrough": unknown option "hv_passthrough"`}},
		{"cpu feature refused", Outcome{Status: 125, Stderr: []byte("vmm run: KVM does not support CPU feature \"svm\"\n")},
			Judgement{Skip, "", `KVM does not support CPU feature "svm"`}},
		{"status 0", Outcome{Status: 0}, Judgement{Fail, "", "exited 0 without the debug-exit"}},
		{"abort", Outcome{Status: 127}, Judgement{Fail, "", "aborted"}},
		{"abort with summary", Outcome{Status: 127, Stdout: []byte(sum)}, Judgement{Fail, "5 tests, 1 skipped", ""}},
		{"odd status", Outcome{Status: 2, Stderr: []byte("flag provided but not defined: -smp\n")}, Judgement{Fail, "", "status 2: flag provided but not defined: -smp"}},
		{"odd status with summary", Outcome{Status: 5, Stdout: []byte(sum)}, Judgement{Fail, "5 tests, 1 skipped", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Judge(tc.o); got != tc.want {
				t.Errorf("Judge = %+v, want %+v", got, tc.want)
			}
		})
	}
}
