package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSchedulersFileDatabase runs `ork schedulers` and `ork status` with
// the real binary: on the file database they name the one scheduler that
// holds the directory's lock, or say that none does.
func TestSchedulersFileDatabase(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	out, _ := mustRun(t, dir, "schedulers")
	if !strings.HasPrefix(out, "none: no scheduler serves this directory") {
		t.Errorf("ork schedulers with none running: %q", out)
	}
	out, _ = mustRun(t, dir, "status")
	if lines := nonEmptyLines(out); lines[len(lines)-1] != "Scheduler: none (start one with `ork run`)" {
		t.Errorf("ork status with no scheduler: last line %q", lines[len(lines)-1])
	}

	s := startSchedulerLocked(t, dir)
	out, _ = mustRun(t, dir, "schedulers")
	if !strings.HasPrefix(out, "one scheduler serves this directory: "+s.lockHolder()) {
		t.Errorf("ork schedulers with one running: %q, want it to name %q", out, s.lockHolder())
	}
	out, _ = mustRun(t, dir, "schedulers", "--json")
	var got struct {
		Holder  string `json:"holder"`
		Running bool   `json:"running"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.Running || !strings.HasPrefix(got.Holder, s.lockHolder()) {
		t.Errorf("ork schedulers --json: %q (%v)", out, err)
	}
	out, _ = mustRun(t, dir, "status")
	if lines := nonEmptyLines(out); !strings.HasPrefix(lines[len(lines)-1], "Scheduler: running ("+s.lockHolder()) {
		t.Errorf("ork status with a scheduler: last line %q, want it to name %q", lines[len(lines)-1], s.lockHolder())
	}
	// On the file database ork run does not print a takeover bound: no
	// other scheduler may serve the directory.
	if strings.Contains(s.output(), "takes over its runs") {
		t.Errorf("ork run on the file database speaks of takeovers:\n%s", s.output())
	}
}
