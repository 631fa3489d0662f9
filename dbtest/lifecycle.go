package dbtest

import (
	"errors"
	"slices"
	"testing"

	"github.com/ork-run/ork/model"
)

// ---- Cancel requests and reopening ----

// testCancelRequests: any process may ask to cancel an unfinished run; the
// request is seen by CancelRequests until the run ends.
func (s *suite) testCancelRequests(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	if err := db.RequestCancel(ctx, "no-such-run"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("RequestCancel of a missing run = %v, want ErrNotFound", err)
	}
	a, b, done := newRun(w, at(1)), newRun(w, at(2)), newRun(w, at(3))
	for _, r := range []*model.Run{a, b, done} {
		mustCreateRun(ctx, t, db, r)
	}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: done.ID, Status: model.RunSuccess, At: at(4)}})
	for _, r := range []*model.Run{a, b, done} {
		if err := db.RequestCancel(ctx, r.ID); err != nil {
			t.Fatalf("RequestCancel(%s): %v", r.ID, err)
		}
	}
	if err := db.RequestCancel(ctx, a.ID); err != nil {
		t.Fatalf("a second RequestCancel: %v", err)
	}
	got, err := db.CancelRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("CancelRequests = %v, want the two unfinished runs %v", got, want)
	}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: a.ID, Status: model.RunCancelled, At: at(5)}})
	if got, err := db.CancelRequests(ctx); err != nil || !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("CancelRequests after run a ended = %v, %v; want only %s", got, err, b.ID)
	}
	// Run b ends otherwise before its request is applied (its scheduler
	// was stopping), and is retried: the request was for the run that
	// ended, not for the retry.
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: b.ID, Status: model.RunFailed, At: at(6)}})
	if err := db.ReopenRun(ctx, b.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := db.CancelRequests(ctx); err != nil || len(got) != 0 {
		t.Fatalf("CancelRequests after run b ended and was retried = %v, %v; want none: a request made before the retry must not cancel it", got, err)
	}
}

// testReopenRun: a finished run is made pending again; reset tasks become
// pending with their attempts kept, removed ones are gone.
func (s *suite) testReopenRun(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	if err := db.ReopenRun(ctx, r.ID, nil, nil); err == nil {
		t.Fatalf("ReopenRun of a running run succeeded")
	}
	var us []model.TaskUpdate
	for _, tk := range tasks {
		us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Status: model.TaskDispatched, At: at(2)})
	}
	if _, err := db.UpdateTasks(ctx, us); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, At: at(3)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskFailed, ExitCode: &one, Error: "exit status 1", At: at(3)},
		{TaskID: tasks[2].ID, RunID: r.ID, Status: model.TaskCancelled, At: at(3)},
	}); err != nil {
		t.Fatal(err)
	}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, Error: "1 of 3 tasks failed", At: at(4)}})
	if err := db.ReopenRun(ctx, r.ID, []string{tasks[1].ID}, []string{tasks[2].ID}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetRun(ctx, r.ID)
	if err != nil || got.Status != model.RunPending || got.Error != "" || got.FinishedAt != nil {
		t.Fatalf("run after ReopenRun = %+v, %v; want pending without error or end", got, err)
	}
	ts, err := db.ListTasks(ctx, r.ID)
	if err != nil || len(ts) != 2 {
		t.Fatalf("%d tasks after ReopenRun (%v), want 2 (one removed)", len(ts), err)
	}
	for _, tk := range ts {
		switch tk.ID {
		case tasks[0].ID:
			if tk.Status != model.TaskSuccess {
				t.Errorf("the succeeded task became %s", tk.Status)
			}
		case tasks[1].ID:
			if tk.Status != model.TaskPending || tk.Error != "" || tk.ExitCode != nil || tk.Attempt != 1 || len(tk.Attempts) != 1 {
				t.Errorf("reset task = %+v, want pending, attempt 1 kept on record", tk)
			}
		default:
			t.Errorf("unexpected task %s", tk.ID)
		}
	}
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskSuccess: 1, model.TaskPending: 1})
	if runs, err := db.PendingRuns(ctx, 0); err != nil || len(runs) != 1 || runs[0].ID != r.ID {
		t.Errorf("PendingRuns after ReopenRun = %v, %v; want the reopened run", runs, err)
	}
}
