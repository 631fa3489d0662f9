package cli

import (
	"io"
	"slices"
	"testing"
)

// Flags may come before or after arguments, the global ones too: a global
// flag given after the command goes back in front of it.
func TestInterspersed(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"ork", "trigger", "hello", "--wait"}, []string{"ork", "trigger", "--wait", "hello"}},
		{[]string{"ork", "trigger", "hello", "--param", "a=1", "--wait"}, []string{"ork", "trigger", "--param", "a=1", "--wait", "hello"}},
		{[]string{"ork", "trigger", "hello", "--dir", "/p/.ork", "--wait"}, []string{"ork", "--dir", "/p/.ork", "trigger", "--wait", "hello"}},
		{[]string{"ork", "status", "--dir=/p/.ork"}, []string{"ork", "--dir=/p/.ork", "status"}},
		{[]string{"ork", "--dir", "/a", "status", "--limit", "3"}, []string{"ork", "--dir", "/a", "status", "--limit", "3"}},
		{[]string{"ork", "logs", "abc", "--", "--dir"}, []string{"ork", "logs", "abc", "--", "--dir"}},
	} {
		if got := interspersed(app, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
