package filedb

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

func openQuiet(t *testing.T, dir string) *DB {
	t.Helper()
	d, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func scheduledWF(t *testing.T, d *DB, name string) *model.Workflow {
	t.Helper()
	w := &model.Workflow{Name: name, JobName: "a.sh", Schedule: &model.Schedule{Cron: "@hourly"}}
	if err := d.CreateWorkflow(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

var tick0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// The state of a schedule and its pause are on disk: a new process (a
// restarted scheduler, the CLI) sees them.
func TestScheduleStateSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d := openQuiet(t, dir)
	w := scheduledWF(t, d, "nightly")
	r := model.NewScheduledRun(w, tick0, tick0)
	if ok, err := d.ClaimTick(ctx, r); !ok || err != nil {
		t.Fatalf("ClaimTick = %v, %v", ok, err)
	}
	if err := d.AdvanceSchedule(ctx, "nightly", tick0.Add(2*time.Hour), "@hourly in UTC"); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPaused(ctx, "nightly", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SchedulesDir, "nightly.paused")); err != nil {
		t.Fatalf("no pause marker: %v", err)
	}
	d.Close()

	d2 := openQuiet(t, dir)
	st, err := d2.ScheduleState(ctx, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || st.PausedAt == nil || !st.Through.Equal(tick0.Add(2*time.Hour)) || st.LastRunID != r.ID || !st.LastTick.Equal(tick0) || st.Spec != "@hourly in UTC" {
		t.Fatalf("state after reopening = %+v", st)
	}
	// The tick stays claimed for the new process.
	if ok, err := d2.ClaimTick(ctx, model.NewScheduledRun(w, tick0, tick0.Add(time.Hour))); ok || err != nil {
		t.Fatalf("a claimed tick was claimed again after reopening: %v, %v", ok, err)
	}
	if err := d2.SetPaused(ctx, "nightly", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SchedulesDir, "nightly.paused")); !os.IsNotExist(err) {
		t.Fatalf("the pause marker is still there: %v", err)
	}
}

// A scheduler killed after it created a tick's run but before it recorded
// the tick leaves the run file alone: the run file is the claim. After a
// restart the tick is refused, and the state catches up with the run.
func TestClaimTickAfterCrashBeforeState(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d := openQuiet(t, dir)
	w := scheduledWF(t, d, "nightly")
	r := model.NewScheduledRun(w, tick0, tick0)
	// What the dead scheduler did: the run file, and nothing more.
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d2 := openQuiet(t, dir)
	again := model.NewScheduledRun(w, tick0, tick0.Add(5*time.Second))
	ok, err := d2.ClaimTick(ctx, again)
	if ok || err != nil {
		t.Fatalf("ClaimTick of a tick whose run exists = %v, %v; want false, nil", ok, err)
	}
	rs, err := d2.ListRuns(ctx, model.RunFilter{WorkflowName: "nightly"})
	if err != nil || len(rs) != 1 || rs[0].ID != r.ID || !rs[0].CreatedAt.Equal(r.CreatedAt) {
		t.Fatalf("runs = %v, %v; want the first run only, untouched", rs, err)
	}
	st, err := d2.ScheduleState(ctx, "nightly")
	if err != nil || !st.Through.Equal(tick0) || st.LastRunID != r.ID {
		t.Fatalf("state = %+v, %v; want through the tick, with its run", st, err)
	}
}

// Two processes that claim the same ticks at once (two DB handles on one
// directory, as `ork run` and a stray in-process scheduler would be) make
// one run per tick: link(2) lets one of them create each run file.
func TestClaimTickTwoHandlesOneDirectory(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	a, b := openQuiet(t, dir), openQuiet(t, dir)
	w := scheduledWF(t, a, "busy")
	const ticks = 20
	var wins [2][ticks]bool
	var wg sync.WaitGroup
	for h, d := range []*DB{a, b} {
		wg.Go(func() {
			for i := range ticks {
				tk := tick0.Add(time.Duration(i) * time.Minute)
				ok, err := d.ClaimTick(ctx, model.NewScheduledRun(w, tk, tk))
				if err != nil {
					t.Errorf("handle %d, tick %d: %v", h, i, err)
				}
				wins[h][i] = ok
			}
		})
	}
	wg.Wait()
	for i := range ticks {
		if wins[0][i] && wins[1][i] {
			t.Errorf("tick %d claimed by both", i)
		}
	}
	rs, err := a.ListRuns(ctx, model.RunFilter{WorkflowName: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.ScheduledAt.String()] {
			t.Errorf("two runs for tick %s", r.ScheduledAt)
		}
		seen[r.ScheduledAt.String()] = true
	}
}

// A state file damaged by hand is reported with its line and column and
// never overwritten; the schedule stops firing until it is fixed.
func TestDamagedScheduleStateIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d := openQuiet(t, dir)
	w := scheduledWF(t, d, "nightly")
	if err := d.AdvanceSchedule(ctx, "nightly", tick0, ""); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, SchedulesDir, "nightly.json")
	bad := []byte("{\n  \"through\": 2026-\n}\n")
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := d.ScheduleState(ctx, "nightly")
	if err == nil || !strings.Contains(err.Error(), p+": line 2, column") {
		t.Fatalf("ScheduleState of a damaged file: %v; want its path, line and column", err)
	}
	if ok, err := d.ClaimTick(ctx, model.NewScheduledRun(w, tick0.Add(time.Hour), tick0)); ok || err == nil {
		t.Fatalf("ClaimTick with a damaged state = %v, %v; want an error", ok, err)
	}
	if err := d.AdvanceSchedule(ctx, "nightly", tick0.Add(time.Hour), ""); err == nil {
		t.Fatal("AdvanceSchedule wrote over a damaged state file")
	}
	if got, _ := os.ReadFile(p); string(got) != string(bad) {
		t.Fatalf("the damaged file was changed to %q", got)
	}
	if rs, _ := d.ListRuns(ctx, model.RunFilter{WorkflowName: "nightly"}); len(rs) != 0 {
		t.Fatalf("runs made with a damaged state: %v", rs)
	}
	// ork doctor names it, with what to do.
	ps, err := Doctor(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pr := range ps {
		if pr.Kind == "damaged" && pr.Path == p && strings.Contains(pr.What, "line 2, column") && strings.Contains(pr.Fix, "starts afresh") {
			found = true
		}
	}
	if !found {
		t.Fatalf("Doctor = %+v, want the damaged schedule state", ps)
	}
}
