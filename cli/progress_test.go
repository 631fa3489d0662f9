package cli

import (
	"strings"
	"testing"

	"github.com/ork-run/ork/model"
)

// TestProgressLine checks the --wait progress line: running and dispatched
// tasks counted apart, every ended task (skipped too) counted done, and the
// line cleared before it is written, so a shorter one leaves nothing of a
// longer one behind.
func TestProgressLine(t *testing.T) {
	counts := map[model.TaskStatus]int{
		model.TaskRunning: 2, model.TaskDispatched: 3, model.TaskSuccess: 4,
		model.TaskFailed: 1, model.TaskSkipped: 2, model.TaskPending: 8,
	}
	line := progressLine(model.RunRunning, counts, 20)
	if !strings.HasPrefix(line, "\r\033[K") {
		t.Errorf("progress line %q does not clear the line first", line)
	}
	for _, want := range []string{"running: 7/20 tasks done", "2 running", "3 dispatched", "1 failed"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
}
