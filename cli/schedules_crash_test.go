//go:build linux

package cli

import (
	"testing"
	"time"
)

// TestE2EScheduleKill9 kills `ork run` with SIGKILL again and again at
// moments around a tick — just before, at, and just after it, while the
// tick's run is being created — and restarts it. With catchup, every tick
// from the first to the last has one run: none twice, none lost.
func TestE2EScheduleKill9(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "tick.sh", "#!/bin/sh\nexit 0\n")
	writeScheduled(t, dir, "tick", `{"cron": "@every 1s", "catchup": true, "overlap": "allow"}`)
	// Offsets from a whole second (a tick) at which the scheduler dies.
	offsets := []time.Duration{-30 * time.Millisecond, -3 * time.Millisecond, 0, time.Millisecond, 3 * time.Millisecond, 8 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond}
	for _, off := range offsets {
		// A restart just after a kill must get the lock (startAfterCrash
		// fails the test otherwise).
		s := startAfterCrash(t, dir)
		// Let it fire at least one tick, then die at off from the next.
		next := time.Now().Truncate(time.Second).Add(2 * time.Second)
		time.Sleep(time.Until(next.Add(off)))
		s.kill9(t)
	}
	s := startAfterCrash(t, dir)
	time.Sleep(1500 * time.Millisecond)
	s.stop(t)

	sr, _ := listRuns(t, dir, "tick")
	if len(sr) < len(offsets) {
		t.Fatalf("only %d scheduled runs in %d lives of the scheduler", len(sr), len(offsets)+1)
	}
	for i := 1; i < len(sr); i++ {
		prev, cur := *sr[i-1].ScheduledAt, *sr[i].ScheduledAt
		switch d := cur.Sub(prev); {
		case d == 0:
			t.Errorf("the tick %s made two runs: %s and %s", cur.Format(time.StampMilli), sr[i-1].ID, sr[i].ID)
		case d != time.Second:
			t.Errorf("no run for the ticks between %s and %s", prev.Format(time.StampMilli), cur.Format(time.StampMilli))
		}
	}
	t.Logf("%d ticks across %d kills", len(sr), len(offsets))
}
