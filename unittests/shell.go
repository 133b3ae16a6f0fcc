package unittests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Shell splits cfg values into words the way kvm-unit-tests' runner does
// when it evals its command line: quotes group words; a value using $VAR,
// $((…)) or `command` (kvmclock_test's `date +%s`, smp = $MAX_SMP) is
// expanded by bash with Env, as the runner's own eval would.
type Shell struct {
	// Env is the environment of the expansion (MAX_SMP, TARGET, …).
	Env []string
	// Bash is the shell used for expansions; "" means "bash" from PATH.
	Bash string
}

// needsShell reports whether s uses expansions that only a shell can do.
func needsShell(s string) bool {
	return strings.ContainsAny(s, "$`")
}

// Words returns the words of s.
func (sh Shell) Words(s string) ([]string, error) {
	if needsShell(s) {
		out, err := sh.run(`for w in ` + s + `; do printf '%s\0' "$w"; done`)
		if err != nil {
			return nil, fmt.Errorf("expanding %q: %w", s, err)
		}
		words := strings.Split(string(out), "\x00")
		return words[:len(words)-1], nil
	}
	return splitWords(s)
}

// True evaluates a bash condition (disabled_if) to its exit status.
func (sh Shell) True(cond string) (bool, error) {
	_, err := sh.run(cond)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("evaluating %q: %w", cond, err)
	}
	return true, nil
}

func (sh Shell) run(script string) ([]byte, error) {
	bash := sh.Bash
	if bash == "" {
		bash = "bash"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", script)
	cmd.Env = sh.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return out, nil
}

// splitWords splits s at blanks, honouring single quotes (literal), double
// quotes (backslash escapes ", \, $ and `) and backslash escapes outside
// quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%q: unterminated single quote at offset %d", s, i)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += 1 + j
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q: unterminated double quote", s)
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
