package dbtest

import (
	"testing"

	"github.com/ork-run/ork/model"
)

// testWithdrawUnstarted: an attempt that never started is withdrawn (the
// task is pending again with its previous attempt number, no attempt
// record, and pending work again), while the same update for a task whose
// start was recorded is an interruption, on record.
func (s *suite) testWithdrawUnstarted(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(2)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(2)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, At: at(3)},
	}); err != nil {
		t.Fatal(err)
	}
	changed, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, Unstarted: true, At: at(4)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, Unstarted: true, Error: "x", At: at(4)},
	})
	if err != nil || len(changed) != 2 {
		t.Fatalf("withdraw: %d changed, %v; want 2, nil", len(changed), err)
	}
	ts, err := db.ListTasks(ctx, r.ID)
	if err != nil || len(ts) != 2 {
		t.Fatalf("ListTasks = %d tasks, %v", len(ts), err)
	}
	if tk := ts[0]; tk.Status != model.TaskPending || tk.Attempt != 0 || len(tk.Attempts) != 0 || tk.DispatchedAt != nil {
		t.Errorf("never-started task = %s attempt %d, %d on record, dispatched_at %v; want pending, attempt 0, nothing on record",
			tk.Status, tk.Attempt, len(tk.Attempts), tk.DispatchedAt)
	}
	if tk := ts[1]; tk.Status != model.TaskPending || tk.Attempt != 1 || len(tk.Attempts) != 1 || tk.Attempts[0].Status != model.AttemptInterrupted {
		t.Errorf("started task = %s attempt %d, attempts %+v; want pending after attempt 1 interrupted", tk.Status, tk.Attempt, tk.Attempts)
	}
	pend, err := db.PendingTasks(ctx, 10)
	if err != nil || len(pend) != 2 {
		t.Fatalf("PendingTasks = %d, %v; want both tasks", len(pend), err)
	}
	// The withdrawn task's next dispatch is attempt 1 again.
	changed, err = db.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(5)}})
	if err != nil || len(changed) != 1 || changed[0].Attempt != 1 {
		t.Fatalf("dispatch after the withdrawal: %+v, %v; want attempt 1", changed, err)
	}
}
