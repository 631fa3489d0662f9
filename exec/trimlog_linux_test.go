//go:build linux

package exec

import (
	"bytes"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-run/ork/internal/synctrace"
)

// TrimLog replaces a log durably, as strace(1) sees it: the trimmed copy
// is written, synced, renamed over the log, and the directory synced.
func TestTrimLogIsDurable(t *testing.T) {
	if p := os.Getenv("ORK_TRIM_CHILD"); p != "" {
		if err := TrimLog(p, 1000); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "task.0.1.log")
	if err := os.WriteFile(log, bytes.Repeat([]byte("a line of output\n"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := osexec.Command(os.Args[0], "-test.run", "^TestTrimLogIsDurable$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ORK_TRIM_CHILD="+log)
	calls, err := synctrace.Run(cmd, dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _, problems := synctrace.Check(calls, nil)
	for _, p := range problems {
		t.Error(p)
	}
	if files != 1 {
		t.Fatalf("the trace shows %d files made visible, want the trimmed log: %v", files, calls)
	}
	got, err := os.ReadFile(log)
	if err != nil || len(got) > 1100 || !strings.HasPrefix(string(got), "[ork: the first") {
		t.Fatalf("trimmed log = %d bytes, %v", len(got), err)
	}
}
