package dbtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// The contract of model.ScheduleStore, run by Run for backends that
// implement it (and skipped for the others). Where the contract leaves a
// point open the suite decides: ScheduleState of a workflow never seen is
// the zero state without error, whether or not the workflow exists.

func (s *suite) scheduleStore(t *testing.T) (context.Context, model.Database, model.ScheduleStore) {
	t.Helper()
	ctx, db := s.setup(t)
	ss, ok := db.(model.ScheduleStore)
	if !ok {
		t.Skip("the backend does not implement model.ScheduleStore")
	}
	return ctx, db, ss
}

func (s *suite) testSchedules(t *testing.T) {
	t.Run("ZeroState", s.testScheduleZeroState)
	t.Run("ClaimOnce", s.testClaimTickOnce)
	t.Run("ClaimRefusesTicksDealtWith", s.testClaimRefusesOldTicks)
	t.Run("Advance", s.testAdvanceSchedule)
	t.Run("Pause", s.testPauseSchedule)
	t.Run("ClaimConcurrent", s.testClaimTickConcurrent)
}

func scheduledWorkflow(name string) *model.Workflow {
	w := newWorkflow(name, 2)
	w.Schedule = &model.Schedule{Cron: "@hourly", Timezone: "Europe/Berlin"}
	return w
}

func mustClaim(ctx context.Context, t *testing.T, ss model.ScheduleStore, r *model.Run, want bool) {
	t.Helper()
	got, err := ss.ClaimTick(ctx, r)
	if err != nil {
		t.Fatalf("ClaimTick(%s at %s): %v", r.WorkflowName, r.ScheduledAt, err)
	}
	if got != want {
		t.Fatalf("ClaimTick(%s at %s) claimed = %v, want %v", r.WorkflowName, r.ScheduledAt, got, want)
	}
}

func mustState(ctx context.Context, t *testing.T, ss model.ScheduleStore, name string) model.ScheduleState {
	t.Helper()
	st, err := ss.ScheduleState(ctx, name)
	if err != nil {
		t.Fatalf("ScheduleState(%s): %v", name, err)
	}
	return st
}

func checkLast(t *testing.T, what string, st model.ScheduleState, through time.Time, last *model.Run) {
	t.Helper()
	if !st.Through.Equal(through) {
		t.Errorf("%s: Through = %s, want %s", what, st.Through, through)
	}
	switch {
	case last == nil && (st.LastTick != nil || st.LastRunID != ""):
		t.Errorf("%s: LastTick, LastRunID = %v, %q, want none", what, st.LastTick, st.LastRunID)
	case last != nil && (st.LastTick == nil || !st.LastTick.Equal(*last.ScheduledAt) || st.LastRunID != last.ID):
		t.Errorf("%s: LastTick, LastRunID = %v, %q, want %s, %q", what, st.LastTick, st.LastRunID, last.ScheduledAt, last.ID)
	}
}

// scheduledRuns returns the runs of workflow name, by id.
func scheduledRuns(ctx context.Context, t *testing.T, db model.Database, name string) map[string]*model.Run {
	t.Helper()
	rs, err := db.ListRuns(ctx, model.RunFilter{WorkflowName: name})
	if err != nil {
		t.Fatalf("ListRuns(%s): %v", name, err)
	}
	out := make(map[string]*model.Run, len(rs))
	for _, r := range rs {
		if out[r.ID] != nil {
			t.Fatalf("ListRuns lists run %s twice", r.ID)
		}
		out[r.ID] = r
	}
	return out
}

func (s *suite) testScheduleZeroState(t *testing.T) {
	ctx, db, ss := s.scheduleStore(t)
	mustCreateWorkflow(ctx, t, db, scheduledWorkflow("nightly"))
	for _, name := range []string{"nightly", "never-created"} {
		if st := mustState(ctx, t, ss, name); st.Paused || st.PausedAt != nil || !st.Through.IsZero() || st.LastTick != nil || st.LastRunID != "" {
			t.Errorf("ScheduleState(%s) = %+v, want the zero state", name, st)
		}
	}
}

func (s *suite) testClaimTickOnce(t *testing.T) {
	ctx, db, ss := s.scheduleStore(t)
	w := scheduledWorkflow("nightly")
	mustCreateWorkflow(ctx, t, db, w)
	tick := at(3600)
	r := model.NewScheduledRun(w, tick, at(3601))
	mustClaim(ctx, t, ss, r, true)
	got := checkRun(ctx, t, db, r)
	if got.TriggeredBy != model.TriggeredBySchedule || got.ScheduledAt == nil || !got.ScheduledAt.Equal(tick) {
		t.Errorf("stored run: triggered_by %q, scheduled_at %v; want %q, %s", got.TriggeredBy, got.ScheduledAt, model.TriggeredBySchedule, tick)
	}
	checkLast(t, "after the claim", mustState(ctx, t, ss, "nightly"), tick, r)
	checkPendingRuns(ctx, t, db, 0, []*model.Run{r})

	// The same tick again, made afresh (another scheduler, or this one
	// after a restart): refused, and nothing new is stored.
	again := model.NewScheduledRun(w, tick, at(3700))
	mustClaim(ctx, t, ss, again, false)
	if rs := scheduledRuns(ctx, t, db, "nightly"); len(rs) != 1 {
		t.Fatalf("after claiming one tick twice there are %d runs, want 1", len(rs))
	}
	checkRun(ctx, t, db, r)

	// The next tick is claimed, and the state moves on.
	r2 := model.NewScheduledRun(w, tick.Add(time.Hour), at(7201))
	mustClaim(ctx, t, ss, r2, true)
	checkLast(t, "after the second tick", mustState(ctx, t, ss, "nightly"), tick.Add(time.Hour), r2)
	if rs := scheduledRuns(ctx, t, db, "nightly"); len(rs) != 2 || rs[r.ID] == nil || rs[r2.ID] == nil {
		t.Fatalf("runs = %v, want the two ticks' runs", rs)
	}

	// Another workflow's schedule is its own.
	o := scheduledWorkflow("other")
	mustCreateWorkflow(ctx, t, db, o)
	ro := model.NewScheduledRun(o, tick, at(3602))
	mustClaim(ctx, t, ss, ro, true)
	checkLast(t, "other workflow", mustState(ctx, t, ss, "other"), tick, ro)
	checkLast(t, "first workflow, untouched", mustState(ctx, t, ss, "nightly"), tick.Add(time.Hour), r2)
}

func (s *suite) testClaimRefusesOldTicks(t *testing.T) {
	ctx, db, ss := s.scheduleStore(t)
	w := scheduledWorkflow("nightly")
	mustCreateWorkflow(ctx, t, db, w)
	late := model.NewScheduledRun(w, at(7200), at(7201))
	mustClaim(ctx, t, ss, late, true)
	// A tick before one that fired was dealt with: it passed.
	mustClaim(ctx, t, ss, model.NewScheduledRun(w, at(3600), at(7202)), false)
	// Ticks that passed without runs (AdvanceSchedule) are dealt with too.
	if err := ss.AdvanceSchedule(ctx, "nightly", at(3*3600), ""); err != nil {
		t.Fatal(err)
	}
	mustClaim(ctx, t, ss, model.NewScheduledRun(w, at(3*3600), at(3*3600+1)), false)
	if rs := scheduledRuns(ctx, t, db, "nightly"); len(rs) != 1 || rs[late.ID] == nil {
		t.Fatalf("runs = %v, want only the run of the tick claimed", rs)
	}
	checkLast(t, "after the refusals", mustState(ctx, t, ss, "nightly"), at(3*3600), late)
	mustClaim(ctx, t, ss, model.NewScheduledRun(w, at(4*3600), at(4*3600+1)), true)
}

func (s *suite) testAdvanceSchedule(t *testing.T) {
	ctx, db, ss := s.scheduleStore(t)
	mustCreateWorkflow(ctx, t, db, scheduledWorkflow("nightly"))
	for _, step := range []struct {
		to, want   time.Time
		spec, then string
	}{
		{at(100), at(100), "@hourly in UTC", "@hourly in UTC"},
		{at(50), at(100), "", "@hourly in UTC"},                                            // never back
		{at(100), at(100), "*/5 * * * * in Europe/Berlin", "*/5 * * * * in Europe/Berlin"}, // the spec changes alone
		{at(200), at(200), "", "*/5 * * * * in Europe/Berlin"},
	} {
		if err := ss.AdvanceSchedule(ctx, "nightly", step.to, step.spec); err != nil {
			t.Fatalf("AdvanceSchedule(%s, %q): %v", step.to, step.spec, err)
		}
		st := mustState(ctx, t, ss, "nightly")
		checkLast(t, fmt.Sprint("advanced to ", step.to), st, step.want, nil)
		if st.Spec != step.then {
			t.Errorf("after AdvanceSchedule(%s, %q): Spec = %q, want %q", step.to, step.spec, st.Spec, step.then)
		}
	}
	if rs := scheduledRuns(ctx, t, db, "nightly"); len(rs) != 0 {
		t.Fatalf("AdvanceSchedule made runs: %v", rs)
	}
}

func (s *suite) testPauseSchedule(t *testing.T) {
	ctx, db, ss := s.scheduleStore(t)
	w := scheduledWorkflow("nightly")
	mustCreateWorkflow(ctx, t, db, w)
	r := model.NewScheduledRun(w, at(3600), at(3601))
	mustClaim(ctx, t, ss, r, true)
	before := time.Now().Add(-time.Second)
	if err := ss.SetPaused(ctx, "nightly", true); err != nil {
		t.Fatal(err)
	}
	st := mustState(ctx, t, ss, "nightly")
	if !st.Paused || st.PausedAt == nil || st.PausedAt.Before(before) {
		t.Fatalf("after SetPaused(true): %+v, want paused with the time", st)
	}
	checkLast(t, "paused", st, at(3600), r)
	first := *st.PausedAt
	// Idempotent, keeping the time of the first pause.
	if err := ss.SetPaused(ctx, "nightly", true); err != nil {
		t.Fatal(err)
	}
	if st := mustState(ctx, t, ss, "nightly"); !st.Paused || st.PausedAt == nil || !st.PausedAt.Equal(first) {
		t.Fatalf("after a second pause: %+v, want paused since %s", st, first)
	}
	if st := mustState(ctx, t, ss, "other"); st.Paused {
		t.Fatal("pausing one schedule paused another")
	}
	// The state of the ticks goes on while paused.
	if err := ss.AdvanceSchedule(ctx, "nightly", at(7200), ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ss.SetPaused(ctx, "nightly", false); err != nil {
			t.Fatal(err)
		}
		st = mustState(ctx, t, ss, "nightly")
		if st.Paused || st.PausedAt != nil {
			t.Fatalf("after SetPaused(false): %+v, want not paused", st)
		}
		checkLast(t, "unpaused", st, at(7200), r)
	}
}

func (s *suite) testClaimTickConcurrent(t *testing.T) {
	ctx, db, ss := s.scheduleStore(t)
	w := scheduledWorkflow("busy")
	mustCreateWorkflow(ctx, t, db, w)
	const (
		claimers = 8
		ticks    = 10
	)
	// Every claimer claims every tick, in the same order, as schedulers
	// that all woke for the same ticks do.
	wins := make([][]bool, claimers)
	var wg sync.WaitGroup
	for c := range claimers {
		wins[c] = make([]bool, ticks)
		wg.Go(func() {
			for i := range ticks {
				r := model.NewScheduledRun(w, at(60*(i+1)), at(60*(i+1)+c))
				ok, err := ss.ClaimTick(ctx, r)
				if err != nil {
					t.Errorf("claimer %d, tick %d: %v", c, i, err)
					return
				}
				wins[c][i] = ok
			}
		})
	}
	wg.Wait()
	for i := range ticks {
		n := 0
		for c := range claimers {
			if wins[c][i] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("tick %d was claimed %d times, want once", i, n)
		}
	}
	rs := scheduledRuns(ctx, t, db, "busy")
	if len(rs) != ticks {
		t.Fatalf("%d runs for %d ticks", len(rs), ticks)
	}
	for i := range ticks {
		if rs[model.ScheduledRunID("busy", at(60*(i+1)))] == nil {
			t.Errorf("no run for tick %d", i)
		}
	}
	last := model.NewScheduledRun(w, at(60*ticks), at(0))
	checkLast(t, "after the race", mustState(ctx, t, ss, "busy"), at(60*ticks), last)
}
