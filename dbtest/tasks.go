package dbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Tasks ----

func (s *suite) testCreateListTasks(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	other, otherTasks := startRun(ctx, t, db, w, at(2))

	// Tasks of two names, with indexes whose decimal forms sort otherwise.
	var tasks []*model.Task
	for _, name := range []string{"b/c.sh", "a.sh"} {
		for _, i := range []int{10, 2, 0} {
			tasks = append(tasks, &model.Task{
				ID:        model.TaskID(r.ID, name, i),
				RunID:     r.ID,
				Name:      name,
				TaskIndex: i,
				Status:    model.TaskPending,
				Params:    map[string]any{"index": float64(i), "nested": map[string]any{"name": name}},
				CreatedAt: at(3),
			})
		}
	}
	want := cloneTasks(tasks)
	mustCreateTasks(ctx, t, db, tasks)
	sortTasks(want)
	checkTasks(ctx, t, db, r.ID, want)
	checkTasks(ctx, t, db, other.ID, otherTasks)
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskPending: 6})
}

func (s *suite) testRunWithoutTasks(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	checkTasks(ctx, t, db, r.ID, nil)
	checkCounts(ctx, t, db, r.ID, nil)
	checkPendingTasks(ctx, t, db, 10, nil, nil)
	checkActiveTasks(ctx, t, db, nil, nil)
}

func (s *suite) testCreateTasksIdempotent(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 4)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	o := newOracle(tasks)

	// Creating the same tasks again changes nothing.
	mustCreateTasks(ctx, t, db, model.NewTasks(r, at(5)))
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))

	// Move some on, then create them all again, as a scheduler that died
	// half-way through would after a restart.
	us := []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, ExecutionName: "exec-0", At: at(10)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, ExecutionName: "exec-1", At: at(10)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, At: at(11)},
		{TaskID: tasks[2].ID, RunID: r.ID, Status: model.TaskCancelled, Error: "cancelled", At: at(12)},
	}
	mustUpdateTasks(ctx, t, db, o, us)
	mustCreateTasks(ctx, t, db, model.NewTasks(r, at(20)))
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkCounts(ctx, t, db, r.ID, o.counts(r.ID))
	checkPendingTasks(ctx, t, db, 10, []*model.Task{o.get(tasks[3].ID)}, map[string]*model.Workflow{r.ID: r.Workflow})

	// A batch of old and new tasks creates the new ones only.
	extra := &model.Task{
		ID: model.TaskID(r.ID, "extra.sh", 0), RunID: r.ID, Name: "extra.sh", Status: model.TaskPending, CreatedAt: at(21),
	}
	batch := append(model.NewTasks(r, at(21)), extra)
	mustCreateTasks(ctx, t, db, batch)
	o.add(extra)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkCounts(ctx, t, db, r.ID, o.counts(r.ID))
}

func (s *suite) testPendingTasks(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	older := newRun(w, at(1))
	// The newer run is of an edited workflow: its tasks carry its snapshot.
	edited := cloneWorkflow(w)
	edited.TaskCount = 2
	edited.JobName = "jobs/edited.sh"
	edited.Params = map[string]any{"edited": true}
	newer := newRun(edited, at(2))
	mustCreateRun(ctx, t, db, older)
	mustCreateRun(ctx, t, db, newer)

	// The newer run's tasks are created first: the order is by run.
	newerTasks := model.NewTasks(newer, at(3))
	olderTasks := model.NewTasks(older, at(4))
	o := newOracle(newerTasks, olderTasks)
	mustCreateTasks(ctx, t, db, newerTasks)
	mustCreateTasks(ctx, t, db, olderTasks)
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{
		{RunID: newer.ID, Status: model.RunRunning, At: at(5)},
		{RunID: older.ID, Status: model.RunRunning, At: at(5)},
	})
	wfs := map[string]*model.Workflow{older.ID: older.Workflow, newer.ID: newer.Workflow}

	all := append(cloneTasks(olderTasks), cloneTasks(newerTasks)...)
	checkPendingTasks(ctx, t, db, 10, all, wfs)
	checkPendingTasks(ctx, t, db, 5, all, wfs)
	checkPendingTasks(ctx, t, db, 2, all[:2], wfs)
	checkPendingTasks(ctx, t, db, 4, all[:4], wfs)

	// Dispatched, running and finished tasks are not pending.
	us := []model.TaskUpdate{
		{TaskID: olderTasks[0].ID, RunID: older.ID, Status: model.TaskDispatched, At: at(10)},
		{TaskID: olderTasks[2].ID, RunID: older.ID, Status: model.TaskDispatched, At: at(10)},
		{TaskID: olderTasks[2].ID, RunID: older.ID, Status: model.TaskRunning, At: at(11)},
		{TaskID: newerTasks[0].ID, RunID: newer.ID, Status: model.TaskCancelled, At: at(12)},
	}
	mustUpdateTasks(ctx, t, db, o, us)
	checkPendingTasks(ctx, t, db, 10, []*model.Task{o.get(olderTasks[1].ID), o.get(newerTasks[1].ID)}, wfs)
	checkPendingTasks(ctx, t, db, 1, []*model.Task{o.get(olderTasks[1].ID)}, wfs)

	// A requeued task is pending again, in its place.
	mustUpdateTasks(ctx, t, db, o, []model.TaskUpdate{
		{TaskID: olderTasks[2].ID, RunID: older.ID, Attempt: 1, Status: model.TaskPending, Error: "requeued", At: at(20)},
	})
	checkPendingTasks(ctx, t, db, 10, []*model.Task{o.get(olderTasks[1].ID), o.get(olderTasks[2].ID), o.get(newerTasks[1].ID)}, wfs)
}

func (s *suite) testActiveTasks(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 6)
	mustCreateWorkflow(ctx, t, db, w)
	r1, tasks1 := startRun(ctx, t, db, w, at(1))
	r2, tasks2 := startRun(ctx, t, db, w, at(2))
	o := newOracle(tasks1, tasks2)
	wfs := map[string]*model.Workflow{r1.ID: r1.Workflow, r2.ID: r2.Workflow}
	checkActiveTasks(ctx, t, db, nil, wfs)

	// Tasks of r1 in every status; two dispatched tasks of r2.
	var us []model.TaskUpdate
	for i := 1; i < 6; i++ {
		us = append(us, model.TaskUpdate{TaskID: tasks1[i].ID, RunID: r1.ID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("e", i), At: at(10)})
	}
	us = append(us,
		model.TaskUpdate{TaskID: tasks1[2].ID, RunID: r1.ID, Status: model.TaskRunning, At: at(11)},
		model.TaskUpdate{TaskID: tasks1[3].ID, RunID: r1.ID, Status: model.TaskRunning, At: at(11)},
		model.TaskUpdate{TaskID: tasks1[3].ID, RunID: r1.ID, Status: model.TaskSuccess, At: at(12)},
		model.TaskUpdate{TaskID: tasks1[4].ID, RunID: r1.ID, Status: model.TaskFailed, Error: "boom", ExitCode: intPtr(1), At: at(12)},
		model.TaskUpdate{TaskID: tasks1[5].ID, RunID: r1.ID, Status: model.TaskCancelled, At: at(12)},
		model.TaskUpdate{TaskID: tasks2[0].ID, RunID: r2.ID, Status: model.TaskDispatched, At: at(13)},
		model.TaskUpdate{TaskID: tasks2[5].ID, RunID: r2.ID, Status: model.TaskDispatched, At: at(13)},
	)
	mustUpdateTasks(ctx, t, db, o, us)
	want := []*model.Task{o.get(tasks1[1].ID), o.get(tasks1[2].ID), o.get(tasks2[0].ID), o.get(tasks2[5].ID)}
	checkActiveTasks(ctx, t, db, want, wfs)
	checkCounts(ctx, t, db, r1.ID, map[model.TaskStatus]int{
		model.TaskPending: 1, model.TaskDispatched: 1, model.TaskRunning: 1,
		model.TaskSuccess: 1, model.TaskFailed: 1, model.TaskCancelled: 1,
	})
	checkCounts(ctx, t, db, r2.ID, map[model.TaskStatus]int{model.TaskPending: 4, model.TaskDispatched: 2})
}

// testUpdateTasksRules drives one run's tasks through every rule of
// model.ApplyTaskUpdate, batch by batch, and checks after each batch what
// UpdateTasks returned and what the database holds.
func (s *suite) testUpdateTasksRules(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 6)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	o := newOracle(tasks)
	wfs := map[string]*model.Workflow{r.ID: r.Workflow}
	id := func(i int) string { return tasks[i].ID }
	u := func(i int, status model.TaskStatus, attempt int, atSec int) model.TaskUpdate {
		return model.TaskUpdate{TaskID: id(i), RunID: r.ID, Status: status, Attempt: attempt, At: at(atSec)}
	}
	with := func(u model.TaskUpdate, edit func(*model.TaskUpdate)) model.TaskUpdate { edit(&u); return u }

	batches := []struct {
		desc        string
		us          []model.TaskUpdate
		wantChanged []int
		wantPending []int
	}{
		{
			desc: "dispatch, counting attempts or taking the given one; pending never jumps to running",
			us: []model.TaskUpdate{
				with(u(0, model.TaskDispatched, 1, 10), func(u *model.TaskUpdate) { u.ExecutionName = "exec-0" }),
				u(1, model.TaskDispatched, 1, 10),
				u(2, model.TaskDispatched, 1, 10),
				u(3, model.TaskDispatched, 0, 10),
				u(4, model.TaskDispatched, 3, 10),
				u(5, model.TaskRunning, 0, 10),
			},
			wantChanged: []int{0, 1, 2, 3, 4},
			wantPending: []int{5},
		},
		{
			desc: "running records the start; a stale attempt and a second dispatch are ignored",
			us: []model.TaskUpdate{
				with(u(0, model.TaskRunning, 1, 20), func(u *model.TaskUpdate) { u.ExecutionName = "exec-0-started" }),
				u(1, model.TaskRunning, 1, 20),
				u(2, model.TaskRunning, 7, 20),
				u(3, model.TaskDispatched, 0, 20),
				u(4, model.TaskRunning, 2, 20),
			},
			wantChanged: []int{0, 1},
			wantPending: []int{5},
		},
		{
			desc: "terminal statuses record the end; active to pending requeues; a pending task is cancelled",
			us: []model.TaskUpdate{
				with(u(0, model.TaskSuccess, 1, 30), func(u *model.TaskUpdate) {
					u.ExitCode = intPtr(0)
					u.Output = json.RawMessage(`{"rows": 42, "files": ["a", "b"]}`)
				}),
				with(u(1, model.TaskFailed, 1, 30), func(u *model.TaskUpdate) {
					u.ExitCode = intPtr(2)
					u.Error = "exit status 2"
				}),
				with(u(2, model.TaskPending, 1, 30), func(u *model.TaskUpdate) { u.Error = "scheduler restarted" }),
				u(4, model.TaskPending, 3, 30),
				with(u(5, model.TaskCancelled, 0, 30), func(u *model.TaskUpdate) { u.Error = "run cancelled" }),
			},
			wantChanged: []int{0, 1, 2, 4, 5},
			wantPending: []int{2, 4},
		},
		{
			desc: "late updates never overwrite a terminal task; stale attempts are ignored; a requeued task is dispatched again",
			us: []model.TaskUpdate{
				u(0, model.TaskRunning, 1, 40),
				with(u(0, model.TaskFailed, 1, 40), func(u *model.TaskUpdate) { u.Error = "late failure" }),
				u(1, model.TaskSuccess, 0, 40),
				u(1, model.TaskPending, 1, 40),
				u(3, model.TaskSuccess, 2, 40),
				with(u(2, model.TaskDispatched, 2, 40), func(u *model.TaskUpdate) { u.ExecutionName = "exec-2-again" }),
				u(4, model.TaskDispatched, 3, 40),
				u(5, model.TaskDispatched, 0, 40),
			},
			wantChanged: []int{2},
			wantPending: []int{4},
		},
		{
			desc: "the old attempt of a re-dispatched task is stale; attempt 0 matches any",
			us: []model.TaskUpdate{
				u(2, model.TaskSuccess, 1, 50),
				u(3, model.TaskRunning, 0, 50),
				u(4, model.TaskDispatched, 0, 50),
			},
			wantChanged: []int{3, 4},
			wantPending: nil,
		},
		{
			desc: "everything ends",
			us: []model.TaskUpdate{
				u(2, model.TaskRunning, 2, 60),
				u(2, model.TaskSuccess, 2, 61),
				with(u(3, model.TaskFailed, 1, 61), func(u *model.TaskUpdate) { u.Error = "killed"; u.ExitCode = intPtr(-1) }),
				u(4, model.TaskCancelled, 4, 61),
			},
			wantChanged: []int{2, 3, 4},
			wantPending: nil,
		},
	}
	for _, b := range batches {
		changed := o.apply(t, b.us)
		// The test's own expectations agree with the model's rules.
		var changedIdx []int
		for _, c := range changed {
			changedIdx = append(changedIdx, c.TaskIndex)
		}
		slices.Sort(changedIdx)
		if !slices.Equal(changedIdx, b.wantChanged) {
			t.Fatalf("test bug in %q: model.ApplyTaskUpdate changes tasks %v, the test expects %v", b.desc, changedIdx, b.wantChanged)
		}

		got, err := db.UpdateTasks(ctx, b.us)
		if err != nil {
			t.Fatalf("%s: UpdateTasks: %v", b.desc, err)
		}
		checkTaskSet(t, b.desc+": UpdateTasks returned", got, changed)
		checkTasks(ctx, t, db, r.ID, o.list(r.ID))
		checkCounts(ctx, t, db, r.ID, o.counts(r.ID))
		var pending []*model.Task
		for _, i := range b.wantPending {
			pending = append(pending, o.get(id(i)))
		}
		checkPendingTasks(ctx, t, db, 10, pending, wfs)
		checkActiveTasks(ctx, t, db, o.active(), wfs)
	}
	final := o.counts(r.ID)
	if final[model.TaskSuccess] != 2 || final[model.TaskFailed] != 2 || final[model.TaskCancelled] != 2 {
		t.Fatalf("test bug: final counts %v", final)
	}
}

func (s *suite) testUpdateTasksSameTaskTwice(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	o := newOracle(tasks)
	// A dispatch and the start it caused in one batch, and a dispatch
	// whose start failed at once.
	us := []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, Attempt: 1, ExecutionName: "exec-0", At: at(10)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, Attempt: 1, At: at(10)},
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskRunning, Attempt: 1, At: at(11)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskFailed, Attempt: 1, Error: "exec format error", At: at(11)},
	}
	changed := o.apply(t, us)
	got, err := db.UpdateTasks(ctx, us)
	if err != nil {
		t.Fatalf("UpdateTasks: %v", err)
	}
	checkTaskSet(t, "UpdateTasks with two updates of each task returned", got, changed)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	if o.get(tasks[0].ID).Status != model.TaskRunning || o.get(tasks[1].ID).Status != model.TaskFailed {
		t.Fatalf("test bug: statuses %s, %s", o.get(tasks[0].ID).Status, o.get(tasks[1].ID).Status)
	}
}

func (s *suite) testBatchVisibleOnReturn(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	tasks := model.NewTasks(r, at(2))
	mustCreateTasks(ctx, t, db, tasks)
	o := newOracle(tasks)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))

	ru := model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(3)}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{ru})
	model.ApplyRunUpdate(r, ru)
	checkRun(ctx, t, db, r)
	checkPendingRuns(ctx, t, db, 10, nil)
	checkListRuns(ctx, t, db, []*model.Run{r})

	var us []model.TaskUpdate
	for _, tk := range tasks {
		us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Status: model.TaskDispatched, At: at(4)})
	}
	mustUpdateTasks(ctx, t, db, o, us)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskDispatched: 3})
	checkPendingTasks(ctx, t, db, 10, nil, nil)

	us = us[:0]
	for _, tk := range tasks {
		us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: intPtr(0), At: at(5)})
	}
	mustUpdateTasks(ctx, t, db, o, us)
	ru = model.RunUpdate{RunID: r.ID, Status: model.RunSuccess, At: at(6)}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{ru})
	model.ApplyRunUpdate(r, ru)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkActiveTasks(ctx, t, db, nil, nil)
	checkRun(ctx, t, db, r)
	checkListRuns(ctx, t, db, []*model.Run{r})
}

func (s *suite) testEmptyBatches(t *testing.T) {
	ctx, db := s.setup(t)
	if err := db.CreateTasks(ctx, nil); err != nil {
		t.Errorf("CreateTasks(nil) = %v, want nil", err)
	}
	if err := db.CreateTasks(ctx, []*model.Task{}); err != nil {
		t.Errorf("CreateTasks(empty) = %v, want nil", err)
	}
	if got, err := db.UpdateTasks(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("UpdateTasks(nil) = %d tasks, %v; want none, nil", len(got), err)
	}
	if err := db.UpdateRuns(ctx, nil); err != nil {
		t.Errorf("UpdateRuns(nil) = %v, want nil", err)
	}
}

// testTaskCopies checks that a task the caller changes after CreateTasks,
// or after a method returned it, stays as stored. A scheduler may well set
// the attempt of a task it is about to execute on the value PendingTasks
// gave it.
func (s *suite) testTaskCopies(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutate func(ctx context.Context, t *testing.T, db model.Database, created, updated []*model.Task)
	}{
		{"ChangingWhatCreateTasksWasGiven", func(ctx context.Context, t *testing.T, db model.Database, created, _ []*model.Task) {
			for _, tk := range created {
				tk.Status = model.TaskFailed
				tk.Attempt = 5
				tk.Error = "changed by the caller"
			}
		}},
		{"ChangingWhatPendingTasksReturned", func(ctx context.Context, t *testing.T, db model.Database, _, _ []*model.Task) {
			pending, err := db.PendingTasks(ctx, 10)
			if err != nil || len(pending) != 1 {
				t.Fatalf("PendingTasks = %d tasks, %v; want 1", len(pending), err)
			}
			pending[0].Task.Attempt = 7
			pending[0].Task.Status = model.TaskDispatched
			if pending[0].Workflow != nil {
				pending[0].Workflow.JobName = "changed.sh"
			}
		}},
		{"ChangingWhatActiveTasksReturned", func(ctx context.Context, t *testing.T, db model.Database, _, _ []*model.Task) {
			active, err := db.ActiveTasks(ctx)
			if err != nil || len(active) != 1 {
				t.Fatalf("ActiveTasks = %d tasks, %v; want 1", len(active), err)
			}
			active[0].Task.Status = model.TaskSuccess
			if active[0].Workflow != nil {
				active[0].Workflow.JobName = "changed.sh"
			}
		}},
		{"ChangingWhatListTasksReturned", func(ctx context.Context, t *testing.T, db model.Database, created, _ []*model.Task) {
			list, err := db.ListTasks(ctx, created[0].RunID)
			if err != nil || len(list) != 2 {
				t.Fatalf("ListTasks = %d tasks, %v; want 2", len(list), err)
			}
			for _, tk := range list {
				tk.Status = model.TaskCancelled
				tk.Attempt = 9
			}
		}},
		{"ChangingWhatUpdateTasksReturned", func(ctx context.Context, t *testing.T, db model.Database, _, updated []*model.Task) {
			for _, tk := range updated {
				tk.Status = model.TaskFailed
				tk.Attempt = 3
				tk.Error = "changed by the caller"
			}
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			ctx, db := s.setup(t)
			w := newWorkflow("hello", 2)
			mustCreateWorkflow(ctx, t, db, w)
			r := newRun(w, at(1))
			mustCreateRun(ctx, t, db, r)
			created := model.NewTasks(r, at(2))
			o := newOracle(created)
			mustCreateTasks(ctx, t, db, created)
			ru := model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(3)}
			mustUpdateRuns(ctx, t, db, []model.RunUpdate{ru})
			model.ApplyRunUpdate(r, ru)
			wfs := map[string]*model.Workflow{r.ID: cloneWorkflow(r.Workflow)}
			ids := []string{created[0].ID, created[1].ID}

			// Task 0 is dispatched; task 1 stays pending.
			updated := mustUpdateTasks(ctx, t, db, o, []model.TaskUpdate{{TaskID: ids[0], RunID: r.ID, Status: model.TaskDispatched, At: at(10)}})

			m.mutate(ctx, t, db, created, updated)
			checkTasks(ctx, t, db, r.ID, o.list(r.ID))
			checkPendingTasks(ctx, t, db, 10, []*model.Task{o.get(ids[1])}, wfs)
			checkActiveTasks(ctx, t, db, []*model.Task{o.get(ids[0])}, wfs)
			checkCounts(ctx, t, db, r.ID, o.counts(r.ID))
		})
	}
}

// testRetryAt: a task put back in the queue to be retried later is not
// pending work before its time, and keeps the record of its attempt.
func (s *suite) testRetryAt(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: tasks[0].RunID, Status: model.TaskDispatched, At: at(2)},
		{TaskID: tasks[1].ID, RunID: tasks[1].RunID, Status: model.TaskDispatched, At: at(2)},
	}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Second)
	changed, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: tasks[0].RunID, Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed", Error: "exit status 1", RetryAt: &later, At: at(3)},
		{TaskID: tasks[1].ID, RunID: tasks[1].RunID, Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed", Error: "exit status 1", RetryAt: &past, At: at(3)},
	})
	if err != nil || len(changed) != 2 {
		t.Fatalf("requeue for retry: %d changed, %v", len(changed), err)
	}
	pend, err := db.PendingTasks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 1 || pend[0].Task.ID != tasks[1].ID {
		t.Fatalf("PendingTasks = %d tasks, want only the one whose retry time has come", len(pend))
	}
	ts, err := db.ListTasks(ctx, r.ID)
	if err != nil || len(ts) != 2 {
		t.Fatalf("ListTasks = %d tasks, %v; want both", len(ts), err)
	}
	sameTime := func(got *time.Time, want time.Time) bool {
		return got != nil && (got.Equal(want) || got.Equal(want.UTC().Truncate(time.Microsecond)))
	}
	for i, tk := range ts {
		if tk.ID != tasks[i].ID || tk.Status != model.TaskPending || tk.Attempt != 1 || tk.Error != "exit status 1" {
			t.Errorf("task %d = %s attempt %d error %q, want task %s pending after attempt 1, its error kept", i, tk.Status, tk.Attempt, tk.Error, tasks[i].ID)
		}
		if len(tk.Attempts) != 1 || tk.Attempts[0].Attempt != 1 || tk.Attempts[0].Status != model.TaskFailed || tk.Attempts[0].Error != "exit status 1" {
			t.Errorf("task %d attempts = %+v, want the failed first attempt", tk.TaskIndex, tk.Attempts)
		}
	}
	if !sameTime(ts[0].RetryAt, later) {
		t.Errorf("task 0 retry_at = %v, want %v", ts[0].RetryAt, later)
	}
	if !sameTime(ts[1].RetryAt, past) {
		t.Errorf("task 1 retry_at = %v, want %v", ts[1].RetryAt, past)
	}
	// Dispatching the due task leaves the other waiting: still no pending
	// work before its time.
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 2, Status: model.TaskDispatched, At: at(4)}}); err != nil {
		t.Fatal(err)
	}
	if pend, err := db.PendingTasks(ctx, 10); err != nil || len(pend) != 0 {
		t.Fatalf("PendingTasks after the due task left = %d tasks, %v; want none before the retry time", len(pend), err)
	}
}

// testGetTask: model.GetTask (one call on a TaskGetter) returns each task
// as ListTasks lists it — unfinished, finished, one the run's workflow does
// not have — and an error wrapping ErrNotFound for a task not created yet,
// an unknown name or index, and an unknown run.
func (s *suite) testGetTask(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 4)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	other, otherTasks := startRun(ctx, t, db, w, at(2))
	o := newOracle(tasks, otherTasks)
	extra := &model.Task{
		ID: model.TaskID(r.ID, "extra.sh", 0), RunID: r.ID, Name: "extra.sh", Status: model.TaskPending, CreatedAt: at(3),
	}
	mustCreateTasks(ctx, t, db, []*model.Task{extra})
	o.add(extra)
	mustUpdateTasks(ctx, t, db, o, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, ExecutionName: "exec-0", At: at(10)},
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, Log: "logs/0.log", At: at(11)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, ExecutionName: "exec-1", At: at(10)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, At: at(11)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: intPtr(0), At: at(12)},
		{TaskID: tasks[2].ID, RunID: r.ID, Status: model.TaskCancelled, Error: "cancelled", At: at(12)},
	})
	for _, want := range append(o.list(r.ID), o.list(other.ID)...) {
		got, err := model.GetTask(ctx, db, want.RunID, want.Name, want.TaskIndex)
		if err != nil {
			t.Errorf("GetTask(%s, %s[%d]): %v", want.RunID, want.Name, want.TaskIndex, err)
			continue
		}
		checkTaskList(t, fmt.Sprintf("GetTask(%s, %s[%d])", want.RunID, want.Name, want.TaskIndex), []*model.Task{got}, []*model.Task{want})
	}

	pending := newRun(w, at(4))
	mustCreateRun(ctx, t, db, pending)
	for _, c := range []struct {
		what, runID, name string
		index             int
	}{
		{"a task not created yet", pending.ID, tasks[0].Name, 0},
		{"an unknown name", r.ID, "no-such.sh", 0},
		{"an index beyond the run's", r.ID, tasks[0].Name, 99},
		{"an unknown run", "no-such-run", tasks[0].Name, 0},
	} {
		got, err := model.GetTask(ctx, db, c.runID, c.name, c.index)
		if !errors.Is(err, model.ErrNotFound) {
			t.Errorf("GetTask of %s = %+v, %v; want an error wrapping ErrNotFound", c.what, got, err)
		}
	}
}

// testWatchTask: a TaskWatcher wakes when its task is created and written,
// and when its run ends — not when the run's other tasks are written.
func (s *suite) testWatchTask(t *testing.T) {
	ctx, db := s.setup(t)
	tw, ok := db.(model.TaskWatcher)
	if !ok {
		t.Skip("the database cannot watch one task")
	}
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	tasks := model.NewTasks(r, at(2))
	wk := newWaker(t, fmt.Sprintf("WatchTask(%s[%d])", tasks[1].Name, tasks[1].TaskIndex))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watched before the run has a task.
	wk.watching(tw.WatchTask(wctx, r.ID, tasks[1].Name, tasks[1].TaskIndex, wk.fn))
	mustCreateTasks(ctx, t, db, tasks)
	wk.want("the creation of the task")
	time.Sleep(300 * time.Millisecond)
	wk.forget() // the rest of the creation
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
		{TaskID: tasks[2].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
	}); err != nil {
		t.Fatal(err)
	}
	wk.none("a write of other tasks")
	if _, err := db.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(4)}}); err != nil {
		t.Fatal(err)
	}
	wk.want("a write of the task")
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: r.ID, Status: model.RunCancelled, At: at(5)}})
	wk.want("the end of its run")
}

// testRunTaskCounts: model.RunTaskCounts (one call on a RunTaskCounter)
// answers for each run what TaskCounts answers, and an empty count for a
// run without tasks or unknown.
func (s *suite) testRunTaskCounts(t *testing.T) {
	ctx, db := s.setup(t)
	three, five := newWorkflow("three", 3), newWorkflow("five", 5)
	mustCreateWorkflow(ctx, t, db, three)
	mustCreateWorkflow(ctx, t, db, five)
	a, _ := startRun(ctx, t, db, three, at(1))
	b, _ := startRun(ctx, t, db, five, at(2))
	empty := newRun(three, at(3))
	mustCreateRun(ctx, t, db, empty)
	if _, err := model.ClaimTasks(ctx, db, model.Claim{Limit: 4}); err != nil {
		t.Fatal(err)
	}
	ids := []string{a.ID, b.ID, empty.ID, "no-such-run"}
	got, err := model.RunTaskCounts(ctx, db, ids)
	if err != nil {
		t.Fatalf("RunTaskCounts: %v", err)
	}
	if len(got) != len(ids) {
		t.Errorf("RunTaskCounts answered for %d runs, want %d: %v", len(got), len(ids), got)
	}
	sums := map[string]int{}
	for _, id := range ids {
		c, ok := got[id]
		if !ok {
			t.Errorf("RunTaskCounts left out run %s", id)
			continue
		}
		want, err := db.TaskCounts(ctx, id)
		if err != nil {
			t.Fatalf("TaskCounts(%s): %v", id, err)
		}
		for _, st := range model.TaskStatuses {
			if c[st] != want[st] {
				t.Errorf("RunTaskCounts[%s][%s] = %d, TaskCounts says %d", id, st, c[st], want[st])
			}
		}
		for st, n := range c {
			sums[id] += n
			sums[string(st)] += n
		}
	}
	if sums[a.ID] != 3 || sums[b.ID] != 5 || sums[empty.ID] != 0 || sums["no-such-run"] != 0 || sums[string(model.TaskDispatched)] != 4 {
		t.Errorf("RunTaskCounts sums %v; want 3, 5, 0, 0 tasks and 4 dispatched", sums)
	}
}
