package exec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrimLogKeepsMode checks that a trimmed log keeps the mode of every
// other log (it was 0600, from its temporary file, beside 0644 ones).
func TestTrimLogKeepsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.0.1.log")
	if err := os.WriteFile(p, []byte(strings.Repeat("line\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := TrimLog(p, 100); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 200 {
		t.Errorf("log is %d bytes after TrimLog(100)", st.Size())
	}
	if got := st.Mode().Perm(); got != 0o644 {
		t.Errorf("trimmed log has mode %o, want 644", got)
	}
}

// TestReadOutputSaysWhere checks that an ORK_OUTPUT file that is not a JSON
// object is reported with the line and column of the problem.
func TestReadOutputSaysWhere(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ data, want string }{
		{"{\"rows\": 10,\n  \"x\": }\n", "line 2, column 8: invalid character '}'"},
		{"[1, 2]", "line 1, column 1: the file must be an object"},
		{"", "file is empty"},
		{"null", "it is null"},
	} {
		p := filepath.Join(dir, "out.json")
		if err := os.WriteFile(p, []byte(tt.data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadOutput(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "$ORK_OUTPUT") {
			t.Errorf("ReadOutput(%q): %v, want an error saying %q", tt.data, err, tt.want)
		}
	}
	if _, err := ReadOutput(filepath.Join(dir, "none.json")); err != nil {
		t.Errorf("ReadOutput of a missing file: %v, want nil", err)
	}
}
