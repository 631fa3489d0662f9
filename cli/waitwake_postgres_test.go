//go:build postgres && linux

package cli

import (
	"context"
	"testing"
	"time"
)

// TestPostgresTriggerWaitWakesWhenAnotherSchedulerEndsTheRun: under a
// running `ork run` on PostgreSQL, `ork trigger --wait` learns that its run
// ended from the database's notification of the end (WatchRun), not from
// its next tick (an hour here).
func TestPostgresTriggerWaitWakesWhenAnotherSchedulerEndsTheRun(t *testing.T) {
	p := newPGProject(t)
	p.mustRun("init")
	writeScript(t, p.dir, "quick.sh", "#!/bin/sh\nexit 0\n")
	p.mustRun("create-workflow", "--name", "quick", "--job-name", "quick.sh", "--task-count", "2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.startScheduler(ctx)
	for range 3 {
		id := triggerWaitInProcess(t, p.dir, "quick", 30*time.Second, "--database-url", p.url)
		out, _ := p.mustRun("status", id, "--json")
		var r jsonRun
		decodeJSON(t, "status --json", out, &r)
		if r.Status != "success" {
			t.Fatalf("run %s: %+v, want success", id, r)
		}
	}
}
