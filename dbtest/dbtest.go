// Package dbtest is the conformance suite of model.Database: one set of
// tests that every storage backend runs from its own tests, so that the file
// database, PostgreSQL and any backend after them keep the same contract.
//
//	func TestDatabase(t *testing.T) {
//		dbtest.Run(t, func(t *testing.T) model.Database {
//			db, err := mybackend.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// The suite uses only the exported API of model, and takes the rules of
// status changes from model.ApplyTaskUpdate and model.ApplyRunUpdate: it
// keeps its own copy of every record, applies each update to it with those
// functions, and checks that the database agrees.
//
// Where the contract in model/database.go leaves a point open, the suite
// decides it like this:
//
//   - Records compare as JSON after normalizing: times as instants (any
//     location), at microsecond precision; empty and nil params alike; a
//     task's output as a JSON value, not as bytes.
//   - The updates of one batch apply in order. A task that one batch changes
//     more than once is returned once, as it is at the end of the batch. The
//     order of the tasks UpdateTasks returns does not matter.
//   - PendingTasks orders by the creation time of the run, then by task
//     index, whenever the tasks themselves were created.
//   - Empty batches (no updates, no tasks) are no-ops without error.
//   - ListTasks of a run that has no tasks yet is empty, not an error.
//   - TaskCounts may leave out a status that no task has.
//   - Numbers in params come back with the digits they were given
//     (12345678901234567890 and 1.10 as written): a backend that stores
//     JSON decodes them as json.Number, never through float64.
//   - ListRuns and PendingRuns return whole runs, the workflow snapshot
//     included.
//   - A database holds copies: changing a value after passing it to a
//     Create method, or a value a method returned, does not change what is
//     stored or what later calls return. This covers the workflow snapshot
//     of a run and of a TaskWithWorkflow, not the inside of params maps.
//
// A backend that implements model.ScheduleStore also runs the schedule
// tests (schedule.go): a tick claimed once, even by claimers racing for it;
// ticks at or before Through refused; AdvanceSchedule never moving back;
// pause and unpause.
//
// Left untested, because the contract does not say and a backend may
// reasonably choose: updates of ids that do not exist, ListTasks and
// TaskCounts of a run that does not exist, a limit of zero, whether the
// tasks of a run that is still pending or already finished are pending
// tasks (the suite marks a run running once its tasks exist, as the
// scheduler does), and whether CreateWorkflow validates. Reopening a
// database after Close and reading files damaged by hand are
// backend-specific and belong in the backend's own tests.
//
// dbtest must never import a backend.
package dbtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// testTimeout bounds each test of the suite.
const testTimeout = 2 * time.Minute

// base is the time the suite's records start at. It has microseconds,
// which every backend must keep.
var base = time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

// Run runs the whole suite against databases made by open. open must
// return a new, empty database each call (on t.TempDir() for files, a fresh
// schema for SQL) and register its own cleanup.
func Run(t *testing.T, open func(t *testing.T) model.Database) {
	s := &suite{open: open}
	t.Run("Workflows", func(t *testing.T) {
		t.Run("CreateGet", s.testWorkflowCreateGet)
		t.Run("NotFoundAndExists", s.testWorkflowErrors)
		t.Run("ListSortedByName", s.testWorkflowList)
		t.Run("Delete", s.testWorkflowDelete)
		t.Run("DeleteKeepsRuns", s.testWorkflowDeleteKeepsRuns)
		t.Run("Copies", s.testWorkflowCopies)
	})
	t.Run("Runs", func(t *testing.T) {
		t.Run("CreateGet", s.testRunCreateGet)
		t.Run("NotFoundAndExists", s.testRunErrors)
		t.Run("ListRuns", s.testListRuns)
		t.Run("PendingRuns", s.testPendingRuns)
		t.Run("UpdateRuns", s.testUpdateRuns)
		t.Run("UpdateRunsBatch", s.testUpdateRunsBatch)
		t.Run("Copies", s.testRunCopies)
		t.Run("CancelRequests", s.testCancelRequests)
		t.Run("ReopenRun", s.testReopenRun)
		t.Run("ParamsKeepDigits", s.testParamsKeepDigits)
	})
	t.Run("Tasks", func(t *testing.T) {
		t.Run("CreateList", s.testCreateListTasks)
		t.Run("RunWithoutTasks", s.testRunWithoutTasks)
		t.Run("CreateTasksIdempotent", s.testCreateTasksIdempotent)
		t.Run("PendingTasks", s.testPendingTasks)
		t.Run("ActiveTasks", s.testActiveTasks)
		t.Run("RetryAt", s.testRetryAt)
		t.Run("WithdrawUnstarted", s.testWithdrawUnstarted)
		t.Run("UpdateTasksRules", s.testUpdateTasksRules)
		t.Run("UpdateTasksSameTaskTwice", s.testUpdateTasksSameTaskTwice)
		t.Run("BatchVisibleOnReturn", s.testBatchVisibleOnReturn)
		t.Run("EmptyBatches", s.testEmptyBatches)
		t.Run("Copies", s.testTaskCopies)
	})
	t.Run("Concurrent", s.testConcurrent)
	t.Run("LargeBatch", s.testLargeBatch)
	t.Run("Schedules", s.testSchedules) // schedule.go: only for a model.ScheduleStore
}

type suite struct {
	open func(t *testing.T) model.Database
}

// setup opens a fresh database and a context that ends with the test.
func (s *suite) setup(t *testing.T) (context.Context, model.Database) {
	t.Helper()
	db := s.open(t)
	if db == nil {
		t.Fatal("open returned a nil Database")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, db
}

// ---- Workflows ----

func (s *suite) testWorkflowCreateGet(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	// A time in another zone must come back as the same instant.
	w.UpdatedAt = at(60).In(time.FixedZone("UTC+2", 2*60*60))
	mustCreateWorkflow(ctx, t, db, w)

	got, err := db.GetWorkflow(ctx, "hello")
	if err != nil {
		t.Fatalf("GetWorkflow(hello) after CreateWorkflow: %v", err)
	}
	checkWorkflow(t, "GetWorkflow(hello)", got, w)
}

func (s *suite) testWorkflowErrors(t *testing.T) {
	ctx, db := s.setup(t)
	if _, err := db.GetWorkflow(ctx, "missing"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetWorkflow(missing) = %v, want ErrNotFound", err)
	}
	if err := db.DeleteWorkflow(ctx, "missing"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("DeleteWorkflow(missing) = %v, want ErrNotFound", err)
	}

	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	dup := newWorkflow("hello", 5)
	dup.Description = "a second workflow of the same name"
	if err := db.CreateWorkflow(ctx, dup); !errors.Is(err, model.ErrExists) {
		t.Errorf("CreateWorkflow of a taken name = %v, want ErrExists", err)
	}
	got, err := db.GetWorkflow(ctx, "hello")
	if err != nil {
		t.Fatalf("GetWorkflow(hello): %v", err)
	}
	checkWorkflow(t, "GetWorkflow(hello) after a refused duplicate", got, w)
}

func (s *suite) testWorkflowList(t *testing.T) {
	ctx, db := s.setup(t)
	ws, err := db.ListWorkflows(ctx)
	if err != nil || len(ws) != 0 {
		t.Fatalf("ListWorkflows of an empty database = %d workflows, %v; want none, nil", len(ws), err)
	}

	want := map[string]*model.Workflow{}
	for i, name := range []string{"charlie", "alpha", "bravo", "alphabet"} {
		w := newWorkflow(name, i+1)
		want[name] = w
		mustCreateWorkflow(ctx, t, db, w)
	}
	ws, err = db.ListWorkflows(ctx)
	if err != nil {
		t.Fatalf("ListWorkflows: %v", err)
	}
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	if wantNames := []string{"alpha", "alphabet", "bravo", "charlie"}; !slices.Equal(names, wantNames) {
		t.Fatalf("ListWorkflows names = %q, want %q (sorted by name)", names, wantNames)
	}
	for _, w := range ws {
		checkWorkflow(t, "ListWorkflows entry "+w.Name, w, want[w.Name])
	}
}

func (s *suite) testWorkflowDelete(t *testing.T) {
	ctx, db := s.setup(t)
	mustCreateWorkflow(ctx, t, db, newWorkflow("alpha", 1))
	bravo := newWorkflow("bravo", 1)
	mustCreateWorkflow(ctx, t, db, bravo)

	if err := db.DeleteWorkflow(ctx, "alpha"); err != nil {
		t.Fatalf("DeleteWorkflow(alpha): %v", err)
	}
	if _, err := db.GetWorkflow(ctx, "alpha"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetWorkflow(alpha) after delete = %v, want ErrNotFound", err)
	}
	if err := db.DeleteWorkflow(ctx, "alpha"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("second DeleteWorkflow(alpha) = %v, want ErrNotFound", err)
	}
	ws, err := db.ListWorkflows(ctx)
	if err != nil {
		t.Fatalf("ListWorkflows: %v", err)
	}
	if len(ws) != 1 || ws[0].Name != "bravo" {
		t.Fatalf("ListWorkflows after deleting alpha = %v, want only bravo", workflowNames(ws))
	}
	checkWorkflow(t, "ListWorkflows entry bravo", ws[0], bravo)

	// The name is free again.
	again := newWorkflow("alpha", 3)
	again.Description = "alpha, the second"
	mustCreateWorkflow(ctx, t, db, again)
	got, err := db.GetWorkflow(ctx, "alpha")
	if err != nil {
		t.Fatalf("GetWorkflow(alpha) after re-creating it: %v", err)
	}
	checkWorkflow(t, "GetWorkflow(alpha) after re-creating it", got, again)
}

func (s *suite) testWorkflowDeleteKeepsRuns(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))

	if err := db.DeleteWorkflow(ctx, "hello"); err != nil {
		t.Fatalf("DeleteWorkflow(hello): %v", err)
	}
	checkRun(ctx, t, db, r)
	checkTasks(ctx, t, db, r.ID, tasks)

	// A new workflow of the same name does not change what the run runs:
	// its tasks come with the run's snapshot.
	edited := newWorkflow("hello", 7)
	edited.Description = "edited after the run"
	edited.JobName = "jobs/other.sh"
	mustCreateWorkflow(ctx, t, db, edited)
	checkRun(ctx, t, db, r)
	checkPendingTasks(ctx, t, db, 10, tasks, map[string]*model.Workflow{r.ID: r.Workflow})
}

// testWorkflowCopies checks that a workflow the caller changes after
// CreateWorkflow, or after a method returned it, stays as stored.
func (s *suite) testWorkflowCopies(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutate func(ctx context.Context, t *testing.T, db model.Database, created *model.Workflow)
	}{
		{"ChangingWhatCreateWorkflowWasGiven", func(ctx context.Context, t *testing.T, db model.Database, created *model.Workflow) {
			created.Description = "changed by the caller"
			created.TaskCount = 99
		}},
		{"ChangingWhatGetWorkflowReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Workflow) {
			got, err := db.GetWorkflow(ctx, "hello")
			if err != nil {
				t.Fatalf("GetWorkflow(hello): %v", err)
			}
			got.Description = "changed by the caller"
			got.JobName = "changed.sh"
		}},
		{"ChangingWhatListWorkflowsReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Workflow) {
			list, err := db.ListWorkflows(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("ListWorkflows = %v, %v; want hello", workflowNames(list), err)
			}
			list[0].Description = "changed by the caller"
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			ctx, db := s.setup(t)
			w := newWorkflow("hello", 1)
			want := cloneWorkflow(w)
			mustCreateWorkflow(ctx, t, db, w)
			m.mutate(ctx, t, db, w)
			got, err := db.GetWorkflow(ctx, "hello")
			if err != nil {
				t.Fatalf("GetWorkflow(hello): %v", err)
			}
			checkWorkflow(t, "GetWorkflow after the caller changed a workflow it passed in or got back (the database must keep its own copy)", got, want)
		})
	}
}

// ---- Runs ----

func (s *suite) testRunCreateGet(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	checkRun(ctx, t, db, r)

	// A run without trigger params, of a workflow without params.
	bare := newWorkflow("bare", 1)
	bare.Params = nil
	mustCreateWorkflow(ctx, t, db, bare)
	r2 := model.NewRun(bare, nil, "", at(2))
	mustCreateRun(ctx, t, db, r2)
	checkRun(ctx, t, db, r2)
}

func (s *suite) testRunErrors(t *testing.T) {
	ctx, db := s.setup(t)
	if _, err := db.GetRun(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetRun of a missing id = %v, want ErrNotFound", err)
	}
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)

	dup := cloneRun(r)
	dup.TriggeredBy = "someone else"
	dup.CreatedAt = at(2)
	if err := db.CreateRun(ctx, dup); !errors.Is(err, model.ErrExists) {
		t.Errorf("CreateRun of a taken id = %v, want ErrExists", err)
	}
	checkRun(ctx, t, db, r)
}

func (s *suite) testListRuns(t *testing.T) {
	ctx, db := s.setup(t)
	if runs, err := db.ListRuns(ctx, model.RunFilter{}); err != nil || len(runs) != 0 {
		t.Fatalf("ListRuns of an empty database = %d runs, %v; want none, nil", len(runs), err)
	}
	a, b := newWorkflow("a", 1), newWorkflow("b", 1)
	mustCreateWorkflow(ctx, t, db, a)
	mustCreateWorkflow(ctx, t, db, b)
	runs := map[string]*model.Run{
		"a1": newRun(a, at(1)),
		"b1": newRun(b, at(2)),
		"a2": newRun(a, at(3)),
		"b2": newRun(b, at(4)),
		"a3": newRun(a, at(5)),
	}
	// Created out of order: the order comes from CreatedAt.
	for _, k := range []string{"a2", "b1", "a3", "a1", "b2"} {
		mustCreateRun(ctx, t, db, runs[k])
	}
	// a2 runs, b2 has finished; the others are pending.
	us := []model.RunUpdate{
		{RunID: runs["a2"].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs["b2"].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs["b2"].ID, Status: model.RunSuccess, At: at(11)},
	}
	mustUpdateRuns(ctx, t, db, us)
	label := map[string]string{}
	for k, r := range runs {
		label[r.ID] = k
	}
	for _, u := range us {
		model.ApplyRunUpdate(runs[label[u.RunID]], u)
	}
	tests := []struct {
		f    model.RunFilter
		want []string
	}{
		{model.RunFilter{}, []string{"a3", "b2", "a2", "b1", "a1"}},
		{model.RunFilter{WorkflowName: "a"}, []string{"a3", "a2", "a1"}},
		{model.RunFilter{WorkflowName: "b"}, []string{"b2", "b1"}},
		{model.RunFilter{Limit: 2}, []string{"a3", "b2"}},
		{model.RunFilter{Limit: 10}, []string{"a3", "b2", "a2", "b1", "a1"}},
		{model.RunFilter{WorkflowName: "b", Limit: 1}, []string{"b2"}},
		{model.RunFilter{WorkflowName: "nope"}, nil},
		{model.RunFilter{Status: model.RunPending}, []string{"a3", "b1", "a1"}},
		{model.RunFilter{Status: model.RunRunning}, []string{"a2"}},
		{model.RunFilter{Status: model.RunSuccess, WorkflowName: "b"}, []string{"b2"}},
		{model.RunFilter{Status: model.RunSuccess, WorkflowName: "a"}, nil},
		{model.RunFilter{Status: model.RunPending, WorkflowName: "a", Limit: 1}, []string{"a3"}},
		{model.RunFilter{Status: model.RunPending, Limit: 2}, []string{"a3", "b1"}},
		{model.RunFilter{Status: model.RunFailed}, nil},
	}
	for _, tt := range tests {
		got, err := db.ListRuns(ctx, tt.f)
		if err != nil {
			t.Errorf("ListRuns(%+v): %v", tt.f, err)
			continue
		}
		var gotLabels []string
		for _, r := range got {
			gotLabels = append(gotLabels, cmp.Or(label[r.ID], r.ID))
		}
		if !slices.Equal(gotLabels, tt.want) {
			t.Errorf("ListRuns(%+v) = %q, want %q (newest first)", tt.f, gotLabels, tt.want)
			continue
		}
		for _, r := range got {
			checkRunValue(t, "ListRuns entry "+label[r.ID], r, runs[label[r.ID]])
		}
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

// testParamsKeepDigits: numbers in the params of a workflow, a run (and
// its workflow snapshot) and a task come back with every digit.
func (s *suite) testParamsKeepDigits(t *testing.T) {
	ctx, db := s.setup(t)
	digits := func() map[string]any {
		return map[string]any{"big": json.Number("12345678901234567890"), "dec": json.Number("1.10"),
			"nested": map[string]any{"list": []any{json.Number("0.10")}}}
	}
	const want = `{"big":12345678901234567890,"dec":1.10,"nested":{"list":[0.10]}}`
	check := func(what string, p map[string]any) {
		t.Helper()
		b, err := json.Marshal(p)
		if err != nil || string(b) != want {
			t.Errorf("%s params = %s (%v), want %s", what, b, err, want)
		}
	}
	w := newWorkflow("digits", 1)
	w.Params = digits()
	mustCreateWorkflow(ctx, t, db, w)
	r := model.NewRun(w, digits(), "dbtest", at(1))
	mustCreateRun(ctx, t, db, r)
	mustCreateTasks(ctx, t, db, []*model.Task{{
		ID: model.TaskID(r.ID, w.JobName, 0), RunID: r.ID, Name: w.JobName,
		Status: model.TaskPending, Params: digits(), CreatedAt: at(2),
	}})

	gw, err := db.GetWorkflow(ctx, "digits")
	if err != nil {
		t.Fatal(err)
	}
	check("GetWorkflow", gw.Params)
	gr, err := db.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("GetRun", gr.Params)
	if gr.Workflow == nil {
		t.Fatal("GetRun: no workflow snapshot")
	}
	check("GetRun's workflow snapshot", gr.Workflow.Params)
	ts, err := db.ListTasks(ctx, r.ID)
	if err != nil || len(ts) != 1 {
		t.Fatalf("ListTasks: %d tasks, %v", len(ts), err)
	}
	check("ListTasks", ts[0].Params)
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
	if runs, err := db.PendingRuns(ctx, 0); err != nil || len(runs) != 1 || runs[0].ID != r.ID {
		t.Errorf("PendingRuns after ReopenRun = %v, %v; want the reopened run", runs, err)
	}
}

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
}

func (s *suite) testPendingRuns(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	if runs, err := db.PendingRuns(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("PendingRuns of an empty database = %d runs, %v; want none, nil", len(runs), err)
	}
	p := make([]*model.Run, 5)
	for i := range p {
		p[i] = newRun(w, at(i+1))
	}
	for _, i := range []int{3, 0, 4, 2, 1} {
		mustCreateRun(ctx, t, db, p[i])
	}
	// p[1] starts, p[3] is cancelled before it starts.
	us := []model.RunUpdate{
		{RunID: p[1].ID, Status: model.RunRunning, At: at(10)},
		{RunID: p[3].ID, Status: model.RunCancelled, Error: "cancelled", At: at(10)},
	}
	mustUpdateRuns(ctx, t, db, us)
	for _, u := range us {
		for _, r := range p {
			if r.ID == u.RunID {
				model.ApplyRunUpdate(r, u)
			}
		}
	}
	checkPendingRuns(ctx, t, db, 10, []*model.Run{p[0], p[2], p[4]})
	checkPendingRuns(ctx, t, db, 2, []*model.Run{p[0], p[2]})
	checkPendingRuns(ctx, t, db, 1, []*model.Run{p[0]})
}

func (s *suite) testUpdateRuns(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	other := newRun(w, at(2))
	mustCreateRun(ctx, t, db, r)
	mustCreateRun(ctx, t, db, other)

	steps := []struct {
		desc  string
		u     model.RunUpdate
		check func(t *testing.T, got *model.Run)
	}{
		{
			desc: "pending to running",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(10)},
			check: func(t *testing.T, got *model.Run) {
				if got.Status != model.RunRunning || got.StartedAt == nil || !got.StartedAt.Equal(at(10)) || got.FinishedAt != nil {
					t.Errorf("after pending -> running: status %s, started %v, finished %v; want running, %v, none",
						got.Status, got.StartedAt, got.FinishedAt, at(10))
				}
			},
		},
		{
			desc: "running never goes back to pending",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunPending, At: at(11)},
		},
		{
			desc: "running to success",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunSuccess, At: at(20)},
			check: func(t *testing.T, got *model.Run) {
				if got.Status != model.RunSuccess || got.FinishedAt == nil || !got.FinishedAt.Equal(at(20)) || got.Error != "" ||
					got.StartedAt == nil || !got.StartedAt.Equal(at(10)) {
					t.Errorf("after running -> success: status %s, started %v, finished %v, error %q; want success, %v, %v, none",
						got.Status, got.StartedAt, got.FinishedAt, got.Error, at(10), at(20))
				}
			},
		},
		{
			desc: "a late running after success",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(21)},
		},
		{
			desc: "a late failed after success",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunFailed, Error: "late failure", At: at(22)},
		},
		{
			desc: "pending straight to failed",
			u:    model.RunUpdate{RunID: other.ID, Status: model.RunFailed, Error: "workflow is broken", At: at(30)},
			check: func(t *testing.T, got *model.Run) {
				if got.Status != model.RunFailed || got.Error != "workflow is broken" || got.FinishedAt == nil || !got.FinishedAt.Equal(at(30)) {
					t.Errorf("after pending -> failed: status %s, error %q, finished %v; want failed, the error, %v",
						got.Status, got.Error, got.FinishedAt, at(30))
				}
			},
		},
		{
			desc: "a late cancel after failed",
			u:    model.RunUpdate{RunID: other.ID, Status: model.RunCancelled, Error: "too late", At: at(31)},
		},
	}
	runs := map[string]*model.Run{r.ID: r, other.ID: other}
	for _, step := range steps {
		mustUpdateRuns(ctx, t, db, []model.RunUpdate{step.u})
		want := runs[step.u.RunID]
		model.ApplyRunUpdate(want, step.u)
		got, err := db.GetRun(ctx, step.u.RunID)
		if err != nil {
			t.Fatalf("%s: GetRun: %v", step.desc, err)
		}
		checkRunValue(t, step.desc, got, want)
		if step.check != nil {
			step.check(t, got)
		}
	}
	if got, err := db.GetRun(ctx, r.ID); err == nil && got.Status != model.RunSuccess {
		t.Errorf("a terminal run was overwritten: status %s, want success", got.Status)
	}
}

func (s *suite) testUpdateRunsBatch(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	var runs []*model.Run
	for i := range 4 {
		r := newRun(w, at(i+1))
		runs = append(runs, r)
		mustCreateRun(ctx, t, db, r)
	}
	// One batch: several runs, one of them twice, in order.
	us := []model.RunUpdate{
		{RunID: runs[0].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs[1].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs[1].ID, Status: model.RunSuccess, At: at(11)},
		{RunID: runs[2].ID, Status: model.RunCancelled, Error: "cancelled by user", At: at(12)},
		{RunID: runs[2].ID, Status: model.RunRunning, At: at(13)},
	}
	mustUpdateRuns(ctx, t, db, us)
	for _, u := range us {
		for _, r := range runs {
			if r.ID == u.RunID {
				model.ApplyRunUpdate(r, u)
			}
		}
	}
	wantStatus := []model.RunStatus{model.RunRunning, model.RunSuccess, model.RunCancelled, model.RunPending}
	for i, r := range runs {
		got := checkRun(ctx, t, db, r)
		if got != nil && got.Status != wantStatus[i] {
			t.Errorf("run %d after the batch: status %s, want %s", i, got.Status, wantStatus[i])
		}
	}
	checkPendingRuns(ctx, t, db, 10, []*model.Run{runs[3]})
}

// testRunCopies checks that a run the caller changes after CreateRun, or
// after a method returned it, stays as stored.
func (s *suite) testRunCopies(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutate func(ctx context.Context, t *testing.T, db model.Database, created *model.Run)
	}{
		{"ChangingWhatCreateRunWasGiven", func(ctx context.Context, t *testing.T, db model.Database, created *model.Run) {
			created.Status = model.RunFailed
			created.TriggeredBy = "changed by the caller"
			created.Workflow.JobName = "changed.sh"
		}},
		{"ChangingWhatGetRunReturned", func(ctx context.Context, t *testing.T, db model.Database, created *model.Run) {
			got, err := db.GetRun(ctx, created.ID)
			if err != nil {
				t.Fatalf("GetRun: %v", err)
			}
			got.Status = model.RunSuccess
			got.Error = "changed by the caller"
			if got.Workflow != nil {
				got.Workflow.JobName = "changed.sh"
			}
		}},
		{"ChangingWhatPendingRunsReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Run) {
			pending, err := db.PendingRuns(ctx, 10)
			if err != nil || len(pending) != 1 {
				t.Fatalf("PendingRuns = %d runs, %v; want 1", len(pending), err)
			}
			pending[0].Status = model.RunRunning
			if pending[0].Workflow != nil {
				pending[0].Workflow.JobName = "changed.sh"
			}
		}},
		{"ChangingWhatListRunsReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Run) {
			list, err := db.ListRuns(ctx, model.RunFilter{})
			if err != nil || len(list) != 1 {
				t.Fatalf("ListRuns = %d runs, %v; want 1", len(list), err)
			}
			list[0].Status = model.RunCancelled
			if list[0].Workflow != nil {
				list[0].Workflow.JobName = "changed.sh"
			}
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			ctx, db := s.setup(t)
			w := newWorkflow("hello", 1)
			mustCreateWorkflow(ctx, t, db, w)
			r := newRun(w, at(1))
			want := cloneRun(r)
			mustCreateRun(ctx, t, db, r)
			m.mutate(ctx, t, db, r)
			checkRun(ctx, t, db, want)
			checkPendingRuns(ctx, t, db, 10, []*model.Run{want})
			checkListRuns(ctx, t, db, []*model.Run{want})
		})
	}
}

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

// ---- Concurrency and size ----

// testConcurrent has 8 writers drive disjoint tasks through their life at
// the same time, while readers read. Run it with -race.
func (s *suite) testConcurrent(t *testing.T) {
	ctx, db := s.setup(t)
	const (
		writers        = 8
		tasksPerWriter = 8 // per run
	)
	w := newWorkflow("hello", writers*tasksPerWriter)
	mustCreateWorkflow(ctx, t, db, w)
	rA, tasksA := startRun(ctx, t, db, w, at(1))
	rB, tasksB := startRun(ctx, t, db, w, at(2))
	total := len(tasksA)

	// Writer i owns tasks i, i+writers, ... of both runs.
	owned := make([][]*model.Task, writers)
	for i, tk := range tasksA {
		owned[i%writers] = append(owned[i%writers], tk, tasksB[i])
	}

	var writersDone sync.WaitGroup
	done := make(chan struct{})
	for wi := range writers {
		writersDone.Go(func() {
			o := newOracle(owned[wi])
			update := func(us []model.TaskUpdate) bool {
				want := o.apply(t, us)
				got, err := db.UpdateTasks(ctx, us)
				if err != nil {
					t.Errorf("writer %d: UpdateTasks: %v", wi, err)
					return false
				}
				checkTaskSet(t, fmt.Sprintf("writer %d: UpdateTasks returned", wi), got, want)
				return true
			}
			var us []model.TaskUpdate
			for _, tk := range owned[wi] {
				us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("writer-", wi), At: at(10)})
			}
			if !update(us) {
				return
			}
			for _, tk := range owned[wi] {
				if !update([]model.TaskUpdate{{TaskID: tk.ID, RunID: tk.RunID, Attempt: 1, Status: model.TaskRunning, At: at(11)}}) {
					return
				}
			}
			for i := 0; i < len(owned[wi]); i += 2 {
				us := []model.TaskUpdate{
					{TaskID: owned[wi][i].ID, RunID: owned[wi][i].RunID, Attempt: 1, Status: endStatus(owned[wi][i]), At: at(12)},
					{TaskID: owned[wi][i+1].ID, RunID: owned[wi][i+1].RunID, Attempt: 1, Status: endStatus(owned[wi][i+1]), At: at(12)},
				}
				if !update(us) {
					return
				}
			}
		})
	}

	var readersDone sync.WaitGroup
	for ri := range 2 {
		readersDone.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
				if !readOnce(ctx, t, db, ri, rA.ID, rB.ID, total) {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	writersDone.Wait()
	close(done)
	readersDone.Wait()
	if t.Failed() {
		return
	}

	o := newOracle(tasksA, tasksB)
	for wi := range writers {
		var us []model.TaskUpdate
		for _, tk := range owned[wi] {
			us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("writer-", wi), At: at(10)})
		}
		for _, tk := range owned[wi] {
			us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Attempt: 1, Status: model.TaskRunning, At: at(11)})
		}
		for _, tk := range owned[wi] {
			us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Attempt: 1, Status: endStatus(tk), At: at(12)})
		}
		o.apply(t, us)
	}
	checkTasks(ctx, t, db, rA.ID, o.list(rA.ID))
	checkTasks(ctx, t, db, rB.ID, o.list(rB.ID))
	half := total / 2
	checkCounts(ctx, t, db, rA.ID, map[model.TaskStatus]int{model.TaskSuccess: half, model.TaskFailed: total - half})
	checkCounts(ctx, t, db, rB.ID, map[model.TaskStatus]int{model.TaskSuccess: half, model.TaskFailed: total - half})
	checkActiveTasks(ctx, t, db, nil, nil)
	checkPendingTasks(ctx, t, db, 10, nil, nil)
}

// endStatus is how a task of the concurrency test ends: even indexes
// succeed, odd ones fail.
func endStatus(tk *model.Task) model.TaskStatus {
	if tk.TaskIndex%2 == 0 {
		return model.TaskSuccess
	}
	return model.TaskFailed
}

// readOnce reads everything a scheduler and a web UI read, while writers
// write, and checks what must hold at every moment. It reports whether to
// go on.
func readOnce(ctx context.Context, t *testing.T, db model.Database, reader int, runA, runB string, total int) bool {
	fail := func(format string, args ...any) bool {
		t.Errorf("reader %d: "+format, append([]any{reader}, args...)...)
		return false
	}
	pending, err := db.PendingTasks(ctx, 1000)
	if err != nil {
		return fail("PendingTasks: %v", err)
	}
	for _, p := range pending {
		if p.Task == nil || p.Workflow == nil {
			return fail("PendingTasks returned a task or workflow that is nil")
		}
		if p.Task.Status != model.TaskPending {
			return fail("PendingTasks returned %s in status %s", p.Task.Label(), p.Task.Status)
		}
	}
	active, err := db.ActiveTasks(ctx)
	if err != nil {
		return fail("ActiveTasks: %v", err)
	}
	for _, a := range active {
		if a.Task == nil || !a.Task.Status.Active() {
			return fail("ActiveTasks returned a task that is not active")
		}
	}
	for _, runID := range []string{runA, runB} {
		tasks, err := db.ListTasks(ctx, runID)
		if err != nil {
			return fail("ListTasks: %v", err)
		}
		if len(tasks) != total {
			return fail("ListTasks returned %d tasks, want %d", len(tasks), total)
		}
		for i, tk := range tasks {
			if tk.TaskIndex != i {
				return fail("ListTasks entry %d has index %d", i, tk.TaskIndex)
			}
		}
		counts, err := db.TaskCounts(ctx, runID)
		if err != nil {
			return fail("TaskCounts: %v", err)
		}
		sum := 0
		for _, n := range counts {
			sum += n
		}
		if sum != total {
			return fail("TaskCounts %v add up to %d, want %d", counts, sum, total)
		}
		if _, err := db.GetRun(ctx, runID); err != nil {
			return fail("GetRun: %v", err)
		}
	}
	if _, err := db.ListRuns(ctx, model.RunFilter{Limit: 10}); err != nil {
		return fail("ListRuns: %v", err)
	}
	return true
}

func (s *suite) testLargeBatch(t *testing.T) {
	ctx, db := s.setup(t)
	const n = 500
	w := newWorkflow("big", n)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	tasks := model.NewTasks(r, at(2))
	o := newOracle(tasks)
	mustCreateTasks(ctx, t, db, tasks) // all 500 in one batch
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: at(3)}})
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskPending: n})
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkPendingTasks(ctx, t, db, n+1, o.list(r.ID), map[string]*model.Workflow{r.ID: r.Workflow})

	us := make([]model.TaskUpdate, n)
	for i, tk := range tasks {
		us[i] = model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("exec-", i), At: at(10)}
	}
	if got := mustUpdateTasks(ctx, t, db, o, us); len(got) != n {
		t.Fatalf("dispatching %d tasks in one batch changed %d", n, len(got))
	}
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskDispatched: n})
	checkPendingTasks(ctx, t, db, n, nil, nil)

	for i, tk := range tasks {
		us[i] = model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: intPtr(0), At: at(20)}
	}
	if got := mustUpdateTasks(ctx, t, db, o, us); len(got) != n {
		t.Fatalf("finishing %d tasks in one batch changed %d", n, len(got))
	}
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskSuccess: n})
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkActiveTasks(ctx, t, db, nil, nil)
}

// ---- Building records ----

// newWorkflow returns a valid, normalized workflow with every field set.
func newWorkflow(name string, taskCount int) *model.Workflow {
	w := &model.Workflow{
		Name:         name,
		Description:  "the " + name + " workflow",
		JobName:      "jobs/" + name + ".sh",
		ExecutorType: model.ExecutorProcess,
		TaskCount:    taskCount,
		Params: map[string]any{
			"greeting": "hello",
			"count":    3.0,
			"nested": map[string]any{
				"list": []any{1.0, "two", true, nil},
				"deep": map[string]any{"x": "y"},
			},
		},
		Project:   "project-1",
		Region:    "europe-west1",
		CreatedAt: base,
		UpdatedAt: at(60),
	}
	w.Normalize()
	return w
}

// newRun returns a pending run of w created at created, with params that
// override some of the workflow's.
func newRun(w *model.Workflow, created time.Time) *model.Run {
	return model.NewRun(w, map[string]any{"count": 5.0, "extra": map[string]any{"k": "v"}}, "dbtest", created)
}

// startRun does what the scheduler does with a new run: creates it, creates
// its tasks and marks it running. It returns the run and its tasks as they
// should be stored.
func startRun(ctx context.Context, t *testing.T, db model.Database, w *model.Workflow, created time.Time) (*model.Run, []*model.Task) {
	t.Helper()
	r := newRun(w, created)
	mustCreateRun(ctx, t, db, r)
	tasks := model.NewTasks(r, created.Add(time.Second))
	mustCreateTasks(ctx, t, db, tasks)
	u := model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: created.Add(2 * time.Second)}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{u})
	r = cloneRun(r)
	model.ApplyRunUpdate(r, u)
	return r, cloneTasks(tasks)
}

func intPtr(n int) *int { return &n }

// ---- Calls that must succeed ----

func mustCreateWorkflow(ctx context.Context, t *testing.T, db model.Database, w *model.Workflow) {
	t.Helper()
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatalf("CreateWorkflow(%s): %v", w.Name, err)
	}
}

func mustCreateRun(ctx context.Context, t *testing.T, db model.Database, r *model.Run) {
	t.Helper()
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatalf("CreateRun(%s): %v", r.ID, err)
	}
}

func mustCreateTasks(ctx context.Context, t *testing.T, db model.Database, ts []*model.Task) {
	t.Helper()
	if err := db.CreateTasks(ctx, ts); err != nil {
		t.Fatalf("CreateTasks(%d tasks): %v", len(ts), err)
	}
}

func mustUpdateRuns(ctx context.Context, t *testing.T, db model.Database, us []model.RunUpdate) {
	t.Helper()
	if err := db.UpdateRuns(ctx, us); err != nil {
		t.Fatalf("UpdateRuns(%d updates): %v", len(us), err)
	}
}

// mustUpdateTasks applies us to the database and to o, checks that the
// database returned the tasks o says changed, and returns what it returned.
func mustUpdateTasks(ctx context.Context, t *testing.T, db model.Database, o *oracle, us []model.TaskUpdate) []*model.Task {
	t.Helper()
	want := o.apply(t, us)
	got, err := db.UpdateTasks(ctx, us)
	if err != nil {
		t.Fatalf("UpdateTasks(%d updates): %v", len(us), err)
	}
	checkTaskSet(t, "UpdateTasks returned", got, want)
	return got
}

// ---- The suite's own copy of the tasks ----

// oracle holds what a database should hold for a set of tasks: each update
// applied with model.ApplyTaskUpdate, the rules every backend shares.
type oracle struct {
	tasks map[string]*model.Task
}

func newOracle(sets ...[]*model.Task) *oracle {
	o := &oracle{tasks: make(map[string]*model.Task)}
	for _, ts := range sets {
		for _, tk := range ts {
			o.add(tk)
		}
	}
	return o
}

func (o *oracle) add(tk *model.Task) { o.tasks[tk.ID] = cloneTask(tk) }

func (o *oracle) get(id string) *model.Task { return cloneTask(o.tasks[id]) }

// apply applies one batch in order and returns the tasks it changed, each
// once, as they are after the batch. It may run on any goroutine.
func (o *oracle) apply(t *testing.T, us []model.TaskUpdate) []*model.Task {
	t.Helper()
	var ids []string
	for _, u := range us {
		tk, ok := o.tasks[u.TaskID]
		if !ok {
			t.Errorf("test bug: update of unknown task %s", u.TaskID)
			continue
		}
		if model.ApplyTaskUpdate(tk, u) && !slices.Contains(ids, u.TaskID) {
			ids = append(ids, u.TaskID)
		}
	}
	out := make([]*model.Task, len(ids))
	for i, id := range ids {
		out[i] = o.get(id)
	}
	return out
}

// list returns the tasks of a run as ListTasks should: by name and index.
func (o *oracle) list(runID string) []*model.Task {
	var out []*model.Task
	for _, tk := range o.tasks {
		if tk.RunID == runID {
			out = append(out, cloneTask(tk))
		}
	}
	sortTasks(out)
	return out
}

func (o *oracle) active() []*model.Task {
	var out []*model.Task
	for _, tk := range o.tasks {
		if tk.Status.Active() {
			out = append(out, cloneTask(tk))
		}
	}
	return out
}

func (o *oracle) counts(runID string) map[model.TaskStatus]int {
	c := make(map[model.TaskStatus]int)
	for _, tk := range o.tasks {
		if tk.RunID == runID {
			c[tk.Status]++
		}
	}
	return c
}

func sortTasks(ts []*model.Task) {
	slices.SortFunc(ts, func(a, b *model.Task) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.TaskIndex, b.TaskIndex))
	})
}

func cloneTask(tk *model.Task) *model.Task {
	c := *tk
	c.DispatchedAt = cloneTime(tk.DispatchedAt)
	c.StartedAt = cloneTime(tk.StartedAt)
	c.FinishedAt = cloneTime(tk.FinishedAt)
	if tk.ExitCode != nil {
		c.ExitCode = intPtr(*tk.ExitCode)
	}
	c.Output = bytes.Clone(tk.Output)
	return &c
}

func cloneTasks(ts []*model.Task) []*model.Task {
	out := make([]*model.Task, len(ts))
	for i, tk := range ts {
		out[i] = cloneTask(tk)
	}
	return out
}

func cloneRun(r *model.Run) *model.Run {
	c := *r
	c.StartedAt = cloneTime(r.StartedAt)
	c.FinishedAt = cloneTime(r.FinishedAt)
	if r.Workflow != nil {
		c.Workflow = cloneWorkflow(r.Workflow)
	}
	return &c
}

func cloneWorkflow(w *model.Workflow) *model.Workflow {
	c := *w
	return &c
}

func cloneTime(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// ---- Checks ----

func checkWorkflow(t *testing.T, what string, got, want *model.Workflow) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil workflow, want %s", what, workflowJSON(want))
		return
	}
	if g, w := workflowJSON(got), workflowJSON(want); g != w {
		t.Errorf("%s: %s\n got  %s\n want %s", what, diffJSON(g, w), g, w)
	}
}

// checkRun checks that GetRun returns want, and returns what it got.
func checkRun(ctx context.Context, t *testing.T, db model.Database, want *model.Run) *model.Run {
	t.Helper()
	got, err := db.GetRun(ctx, want.ID)
	if err != nil {
		t.Errorf("GetRun(%s): %v", want.ID, err)
		return nil
	}
	checkRunValue(t, "GetRun("+want.ID+")", got, want)
	return got
}

func checkRunValue(t *testing.T, what string, got, want *model.Run) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil run, want %s", what, runJSON(want))
		return
	}
	if g, w := runJSON(got), runJSON(want); g != w {
		t.Errorf("%s: %s\n got  %s\n want %s", what, diffJSON(g, w), g, w)
	}
}

func checkRunList(t *testing.T, what string, got, want []*model.Run) {
	t.Helper()
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, r := range got {
		g[i] = runJSON(r)
	}
	for i, r := range want {
		w[i] = runJSON(r)
	}
	if slices.Equal(g, w) {
		return
	}
	var diffs []string
	if len(g) == len(w) {
		for i := range g {
			if g[i] != w[i] {
				diffs = append(diffs, fmt.Sprintf("[%d] %s", i, diffJSON(g[i], w[i])))
			}
		}
	}
	t.Errorf("%s: %s\n got  %d runs:\n  %s\n want %d runs:\n  %s", what, strings.Join(diffs, "; "),
		len(g), strings.Join(g, "\n  "), len(w), strings.Join(w, "\n  "))
}

func checkPendingRuns(ctx context.Context, t *testing.T, db model.Database, limit int, want []*model.Run) {
	t.Helper()
	got, err := db.PendingRuns(ctx, limit)
	if err != nil {
		t.Errorf("PendingRuns(%d): %v", limit, err)
		return
	}
	checkRunList(t, fmt.Sprintf("PendingRuns(%d) (oldest first)", limit), got, want)
}

func checkListRuns(ctx context.Context, t *testing.T, db model.Database, want []*model.Run) {
	t.Helper()
	got, err := db.ListRuns(ctx, model.RunFilter{})
	if err != nil {
		t.Errorf("ListRuns: %v", err)
		return
	}
	checkRunList(t, "ListRuns (newest first)", got, want)
}

// checkTasks checks that ListTasks(runID) returns want, in that order.
func checkTasks(ctx context.Context, t *testing.T, db model.Database, runID string, want []*model.Task) {
	t.Helper()
	got, err := db.ListTasks(ctx, runID)
	if err != nil {
		t.Errorf("ListTasks(%s): %v", runID, err)
		return
	}
	checkTaskList(t, "ListTasks (by name and index)", got, want)
}

func checkTaskList(t *testing.T, what string, got, want []*model.Task) {
	t.Helper()
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, tk := range got {
		g[i] = taskJSON(tk)
	}
	for i, tk := range want {
		w[i] = taskJSON(tk)
	}
	if slices.Equal(g, w) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: got %d tasks, want %d", what, len(g), len(w))
	for i := range max(len(g), len(w)) {
		gs, ws := "(none)", "(none)"
		if i < len(g) {
			gs = g[i]
		}
		if i < len(w) {
			ws = w[i]
		}
		if gs != ws {
			if i < len(g) && i < len(w) {
				fmt.Fprintf(&b, "\n [%d] %s", i, diffJSON(gs, ws))
			}
			fmt.Fprintf(&b, "\n [%d] got  %s\n [%d] want %s", i, gs, i, ws)
		}
	}
	t.Error(b.String())
}

// checkTaskSet is checkTaskList in any order.
func checkTaskSet(t *testing.T, what string, got, want []*model.Task) {
	t.Helper()
	byID := func(a, b *model.Task) int { return strings.Compare(a.ID, b.ID) }
	got = slices.Clone(got)
	want = slices.Clone(want)
	for _, tk := range got {
		if tk == nil {
			t.Errorf("%s: a nil task", what)
			return
		}
	}
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	checkTaskList(t, what+" (in any order)", got, want)
}

// checkPendingTasks checks that PendingTasks(limit) returns the first
// limit tasks of want, in that order, each with its run's workflow
// snapshot from wfs (by run id).
func checkPendingTasks(ctx context.Context, t *testing.T, db model.Database, limit int, want []*model.Task, wfs map[string]*model.Workflow) {
	t.Helper()
	got, err := db.PendingTasks(ctx, limit)
	if err != nil {
		t.Errorf("PendingTasks(%d): %v", limit, err)
		return
	}
	if len(want) > limit {
		want = want[:limit]
	}
	what := fmt.Sprintf("PendingTasks(%d) (oldest run first, then by index)", limit)
	checkTaskList(t, what, tasksOf(t, what, got), want)
	checkWorkflows(t, what, got, wfs)
}

// checkActiveTasks checks that ActiveTasks returns want, in any order,
// each with its run's workflow snapshot from wfs.
func checkActiveTasks(ctx context.Context, t *testing.T, db model.Database, want []*model.Task, wfs map[string]*model.Workflow) {
	t.Helper()
	got, err := db.ActiveTasks(ctx)
	if err != nil {
		t.Errorf("ActiveTasks: %v", err)
		return
	}
	const what = "ActiveTasks (dispatched and running)"
	checkTaskSet(t, what, tasksOf(t, what, got), want)
	checkWorkflows(t, what, got, wfs)
}

func tasksOf(t *testing.T, what string, tws []model.TaskWithWorkflow) []*model.Task {
	t.Helper()
	out := make([]*model.Task, 0, len(tws))
	for i, tw := range tws {
		if tw.Task == nil {
			t.Errorf("%s: entry %d has a nil Task", what, i)
			continue
		}
		out = append(out, tw.Task)
	}
	return out
}

func checkWorkflows(t *testing.T, what string, tws []model.TaskWithWorkflow, wfs map[string]*model.Workflow) {
	t.Helper()
	for _, tw := range tws {
		if tw.Task == nil {
			continue
		}
		want, ok := wfs[tw.Task.RunID]
		if !ok {
			continue
		}
		checkWorkflow(t, fmt.Sprintf("%s: workflow of %s (the run's snapshot)", what, tw.Task.Label()), tw.Workflow, want)
	}
}

func checkCounts(ctx context.Context, t *testing.T, db model.Database, runID string, want map[model.TaskStatus]int) {
	t.Helper()
	got, err := db.TaskCounts(ctx, runID)
	if err != nil {
		t.Errorf("TaskCounts(%s): %v", runID, err)
		return
	}
	ok := true
	for s, n := range got {
		if want[s] != n {
			ok = false
		}
	}
	for s, n := range want {
		if got[s] != n {
			ok = false
		}
	}
	if !ok {
		t.Errorf("TaskCounts(%s) = %v, want %v", runID, got, want)
	}
}

func workflowNames(ws []*model.Workflow) []string {
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	return names
}

// ---- Comparing records ----

// The records compare as JSON, after normalizing what a backend may
// represent differently without being wrong.

func workflowJSON(w *model.Workflow) string {
	if w == nil {
		return "null"
	}
	return toJSON(normWorkflow(w))
}

func runJSON(r *model.Run) string {
	if r == nil {
		return "null"
	}
	c := cloneRun(r)
	c.CreatedAt = c.CreatedAt.UTC()
	c.StartedAt = utc(c.StartedAt)
	c.FinishedAt = utc(c.FinishedAt)
	c.ScheduledAt = utc(c.ScheduledAt)
	c.Params = normParams(c.Params)
	if c.Workflow != nil {
		c.Workflow = normWorkflow(c.Workflow)
	}
	return toJSON(c)
}

func taskJSON(tk *model.Task) string {
	if tk == nil {
		return "null"
	}
	c := cloneTask(tk)
	c.CreatedAt = c.CreatedAt.UTC()
	c.DispatchedAt = utc(c.DispatchedAt)
	c.StartedAt = utc(c.StartedAt)
	c.FinishedAt = utc(c.FinishedAt)
	c.Params = normParams(c.Params)
	c.Output = normOutput(c.Output)
	return toJSON(c)
}

func normWorkflow(w *model.Workflow) *model.Workflow {
	c := cloneWorkflow(w)
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	c.Params = normParams(c.Params)
	return c
}

func normParams(p map[string]any) map[string]any {
	if len(p) == 0 {
		return nil
	}
	return p
}

func normOutput(m json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(m)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil
	}
	var v any
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return m // not JSON: compare the bytes
	}
	b, err := json.Marshal(v)
	if err != nil {
		return m
	}
	return b
}

func utc(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	u := p.UTC()
	return &u
}

// diffJSON names the fields in which two JSON objects differ.
func diffJSON(got, want string) string {
	var g, w any
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return "differs"
	}
	var diffs []string
	var walk func(path string, g, w any)
	walk = func(path string, g, w any) {
		gm, gok := g.(map[string]any)
		wm, wok := w.(map[string]any)
		if gok && wok {
			var keys []string
			for k := range gm {
				keys = append(keys, k)
			}
			for k := range wm {
				if _, ok := gm[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(strings.TrimPrefix(path+"."+k, "."), gm[k], wm[k])
			}
			return
		}
		if gj, wj := toJSON(g), toJSON(w); gj != wj {
			diffs = append(diffs, fmt.Sprintf("%s is %s, want %s", cmp.Or(path, "value"), gj, wj))
		}
	}
	walk("", g, w)
	if len(diffs) == 0 {
		return "differs"
	}
	return strings.Join(diffs, ", ")
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(does not encode: %v) %+v", err, v)
	}
	return string(b)
}
