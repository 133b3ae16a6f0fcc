package jsontext

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "mov %eax,(%rbx)", `quote " backslash \`, "nl\n cr\r tab\t bell\a vt\v nul\x00 del\x7f esc\x1b",
		"<script>&</script>", "invalid \xff\xfe utf-8 \xc3", "ok é ✓ 𝄞", "line sep \u2028 para \u2029",
	} {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q wrote %s: %v", s, b, err)
		}
		if !sameReplaced(got, s) {
			t.Errorf("%q came back as %q", s, got)
		}
		// encoding/json writes the same text.
		if want, _ := json.Marshal(s); utf8.ValidString(s) && string(b) != string(want) {
			t.Errorf("%q: wrote %s, encoding/json %s", s, b, want)
		}
	}
}

// sameReplaced says got is s with each invalid byte replaced by U+FFFD.
func sameReplaced(got, s string) bool {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return got == b.String()
}

// FuzzAppendString: whatever the bytes, the output is one valid JSON
// string that decodes to the input with invalid bytes replaced.
func FuzzAppendString(f *testing.F) {
	f.Add("mov\x00\xff<\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q wrote %s: %v", s, b, err)
		}
		if !sameReplaced(got, s) {
			t.Fatalf("%q came back as %q", s, got)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendString(buf[:0], "mov %eax,0x10(%rbx,%rcx,4) <bad> \x01")
	}
}
