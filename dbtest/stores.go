package dbtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Several handles on one store ----

// Store opens handles on one store: each call returns a new handle (as
// another process would open it) on the same data, and registers its own
// cleanup. Closing one handle leaves the data to the others.
type Store func(t *testing.T) model.Database

// RunStores runs the whole suite, and the tests that need several handles
// on one store: visibility across handles, concurrent creates of one name
// or id through two handles, change notifications from one handle to the
// other, persistence after close and reopen, batches that fail as a whole,
// and the optional interfaces (model.Notifier, model.SchedulerLocker)
// where the backend implements them. newStore must make a new, empty store
// each call.
func RunStores(t *testing.T, newStore func(t *testing.T) Store) {
	Run(t, func(t *testing.T) model.Database { return newStore(t)(t) })
	s := &stores{newStore: newStore}
	t.Run("Stores", func(t *testing.T) {
		t.Run("SecondHandleSees", s.testSecondHandleSees)
		t.Run("ConcurrentCreatesOfOneName", s.testConcurrentCreates)
		t.Run("PersistsAfterReopen", s.testPersistsAfterReopen)
		t.Run("FailedBatchChangesNothing", s.testFailedBatch)
		t.Run("Notifier", s.testNotifier)
		t.Run("SchedulerLocker", s.testSchedulerLocker)
	})
	// cluster.go: only for a model.TaskClaimer, a model.Cluster.
	t.Run("Claimers", func(t *testing.T) {
		t.Run("EachTaskOnce", s.testClaimEachOnce)
		t.Run("OneDispatchWins", s.testOneDispatchWins)
	})
	t.Run("Cluster", func(t *testing.T) {
		t.Run("ClaimRuns", s.testClaimRuns)
		t.Run("ClaimRunsMaxActive", s.testClaimRunsMaxActive)
		t.Run("ClaimRunsMaxActiveRacing", s.testClaimRunsMaxActiveRacing)
		t.Run("ManySchedulers", s.testManySchedulers)
		t.Run("ReapAndFence", s.testReapAndFence)
		t.Run("LeaderTerms", s.testLeaderTerms)
	})
}

type stores struct {
	newStore func(t *testing.T) Store
}

// setup makes a store and two handles on it.
func (s *stores) setup(t *testing.T) (context.Context, Store, model.Database, model.Database) {
	t.Helper()
	open := s.newStore(t)
	a, b := open(t), open(t)
	if a == nil || b == nil {
		t.Fatal("the store opened a nil Database")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, open, a, b
}

// eventually retries check until it returns "" or 10 seconds passed, and
// fails the test with its last complaint.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after 10s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testSecondHandleSees: what one handle wrote, another handle on the same
// store reads as soon as the write returned; its pending work (what a
// scheduler reads) shows a run another handle created within moments, and
// a cancel requested through one handle is seen through the other.
func (s *stores) testSecondHandleSees(t *testing.T) {
	ctx, _, a, b := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, a, w)
	got, err := b.GetWorkflow(ctx, w.Name)
	if err != nil {
		t.Fatalf("GetWorkflow through the second handle: %v", err)
	}
	checkWorkflow(t, "second handle's GetWorkflow", got, w)
	if ws, err := b.ListWorkflows(ctx); err != nil || !slices.Equal(workflowNames(ws), []string{w.Name}) {
		t.Fatalf("second handle's ListWorkflows = %v, %v; want [%s]", workflowNames(ws), err, w.Name)
	}

	// b plays the scheduler: it has looked at pending work before a's run exists.
	if runs, err := b.PendingRuns(ctx, 0); err != nil || len(runs) != 0 {
		t.Fatalf("PendingRuns of an empty store = %d runs, %v", len(runs), err)
	}
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, a, r)
	checkRun(ctx, t, b, r)
	checkListRuns(ctx, t, b, []*model.Run{r})
	eventually(t, "the scheduler's handle sees a run another handle created", func() string {
		runs, err := b.PendingRuns(ctx, 0)
		if err != nil {
			return err.Error()
		}
		if len(runs) != 1 || runs[0].ID != r.ID {
			return fmt.Sprintf("PendingRuns = %d runs, want %s", len(runs), r.ID)
		}
		checkRunValue(t, "PendingRuns through the second handle", runs[0], r)
		return ""
	})

	// The scheduler (b) creates and runs the tasks; a reads them.
	tasks := model.NewTasks(r, at(2))
	mustCreateTasks(ctx, t, b, tasks)
	mustUpdateRuns(ctx, t, b, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: at(3)}})
	r = cloneRun(r)
	model.ApplyRunUpdate(r, model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(3)})
	o := newOracle(tasks)
	mustUpdateTasks(ctx, t, b, o, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(4)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(4)},
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, At: at(5)},
	})
	checkRun(ctx, t, a, r)
	checkTasks(ctx, t, a, r.ID, o.list(r.ID))
	checkCounts(ctx, t, a, r.ID, o.counts(r.ID))

	if err := a.RequestCancel(ctx, r.ID); err != nil {
		t.Fatalf("RequestCancel through the first handle: %v", err)
	}
	eventually(t, "the scheduler's handle sees a cancel requested through another", func() string {
		ids, err := b.CancelRequests(ctx)
		if err != nil {
			return err.Error()
		}
		if !slices.Equal(ids, []string{r.ID}) {
			return fmt.Sprintf("CancelRequests = %v, want [%s]", ids, r.ID)
		}
		return ""
	})
}

// testConcurrentCreates: goroutines on two handles create one workflow
// name and one run id at the same time; exactly one create of each wins,
// the others get ErrExists, and the winner's record is what is stored.
func (s *stores) testConcurrentCreates(t *testing.T) {
	ctx, _, a, b := s.setup(t)
	const perHandle = 4
	handles := []model.Database{a, b}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[string][]string{} // "workflow"/"run" -> descriptions of the winners
	var unexpected []error
	run := newRun(newWorkflow("shared", 1), at(1))
	for h, db := range handles {
		for i := range perHandle {
			wg.Add(1)
			go func() {
				defer wg.Done()
				who := fmt.Sprintf("handle %d writer %d", h, i)
				w := newWorkflow("shared", 1)
				w.Description = who
				werr := db.CreateWorkflow(ctx, w)
				r := cloneRun(run)
				r.TriggeredBy = who
				rerr := db.CreateRun(ctx, r)
				mu.Lock()
				defer mu.Unlock()
				for kind, err := range map[string]error{"workflow": werr, "run": rerr} {
					switch {
					case err == nil:
						wins[kind] = append(wins[kind], who)
					case !errors.Is(err, model.ErrExists):
						unexpected = append(unexpected, fmt.Errorf("%s: create %s: %w", who, kind, err))
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, err := range unexpected {
		t.Errorf("%v, want nil or ErrExists", err)
	}
	if len(wins["workflow"]) != 1 || len(wins["run"]) != 1 {
		t.Fatalf("winners: workflow %v, run %v; want exactly one of each", wins["workflow"], wins["run"])
	}
	for _, db := range handles {
		if w, err := db.GetWorkflow(ctx, "shared"); err != nil || w.Description != wins["workflow"][0] {
			t.Errorf("stored workflow = %+v, %v; want the winner's (%s)", w, err, wins["workflow"][0])
		}
		if r, err := db.GetRun(ctx, run.ID); err != nil || r.TriggeredBy != wins["run"][0] {
			t.Errorf("stored run = %+v, %v; want the winner's (%s)", r, err, wins["run"][0])
		}
	}
}

// testPersistsAfterReopen: everything written through a handle that is
// then closed — workflows, runs, tasks with their attempts, outputs and
// retry times, cancel requests — is there, unchanged, through a handle
// opened afterwards.
func (s *stores) testPersistsAfterReopen(t *testing.T) {
	ctx, open, a, _ := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, a, w)
	r, tasks := startRun(ctx, t, a, w, at(1))
	pending := newRun(w, at(2))
	mustCreateRun(ctx, t, a, pending)
	if err := a.RequestCancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	o := newOracle(tasks)
	retry := at(100)
	mustUpdateTasks(ctx, t, a, o, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
		{TaskID: tasks[2].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
	})
	mustUpdateTasks(ctx, t, a, o, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, Log: "logs/0.1.log", At: at(4)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed", Error: "exit status 3", ExitCode: intPtr(3), RetryAt: &retry, At: at(4)},
		{TaskID: tasks[2].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, Output: []byte(`{"rows": 42}`), ExitCode: intPtr(0), At: at(5)},
	})
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c := open(t)
	got, err := c.GetWorkflow(ctx, w.Name)
	if err != nil {
		t.Fatalf("GetWorkflow after reopen: %v", err)
	}
	checkWorkflow(t, "GetWorkflow after reopen", got, w)
	checkRun(ctx, t, c, r)
	checkRun(ctx, t, c, pending)
	checkTasks(ctx, t, c, r.ID, o.list(r.ID))
	checkPendingRuns(ctx, t, c, 0, []*model.Run{pending})
	if ids, err := c.CancelRequests(ctx); err != nil || !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("CancelRequests after reopen = %v, %v; want [%s]", ids, err, r.ID)
	}
	act, err := c.ActiveTasks(ctx)
	if err != nil || len(act) != 1 || act[0].Task.ID != tasks[0].ID {
		t.Errorf("ActiveTasks after reopen = %d tasks, %v; want the running one", len(act), err)
	}
}

// testFailedBatch: a batch the database refuses changes nothing it did
// not say it wrote. A batch of new tasks with one task of a run that does
// not exist is either refused whole (none of its tasks is stored) or, where
// the backend reports failures record by record (model.PartialError), the
// orphan alone is refused and named while the others are stored. A batch
// of updates with one output that is not JSON is refused, and none of its
// updates is applied.
func (s *stores) testFailedBatch(t *testing.T) {
	ctx, _, a, b := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, a, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, a, r)
	tasks := model.NewTasks(r, at(2))
	orphan := cloneTask(tasks[0])
	orphan.ID, orphan.RunID = "task-of-no-run", "no-such-run"
	batch := append(cloneTasks(tasks), orphan)
	err := a.CreateTasks(ctx, batch)
	if err == nil {
		t.Fatal("CreateTasks with a task of a run that does not exist succeeded, want an error")
	}
	want := 0
	var pe *model.PartialError
	if errors.As(err, &pe) {
		if len(pe.Records) != 1 || pe.Records[0].TaskID != orphan.ID {
			t.Fatalf("CreateTasks = %v; want only the orphan task refused", err)
		}
		want = len(tasks)
	}
	for _, db := range []model.Database{a, b} {
		if ts, err := db.ListTasks(ctx, r.ID); err != nil || len(ts) != want {
			t.Fatalf("after CreateTasks refused (%v), the run has %d tasks (%v), want %d", pe != nil, len(ts), err, want)
		}
	}

	if want == 0 {
		mustCreateTasks(ctx, t, a, tasks)
	}
	o := newOracle(tasks)
	mustUpdateTasks(ctx, t, a, o, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
		{TaskID: tasks[1].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(3)},
	})
	_, err = a.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, Output: []byte(`{"ok": true}`), At: at(4)},
		{TaskID: tasks[2].ID, RunID: r.ID, Status: model.TaskDispatched, At: at(4)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, Output: []byte(`{"rows": `), At: at(4)},
	})
	if err == nil {
		t.Fatal("UpdateTasks with an output that is not JSON succeeded, want an error")
	}
	for _, db := range []model.Database{a, b} {
		checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	}
}

// testNotifier: a backend that implements model.Notifier signals a handle
// when another handle creates a run, requests a cancel or creates a
// workflow — after that handle has looked at its pending work, as a
// scheduler does before it waits.
func (s *stores) testNotifier(t *testing.T) {
	ctx, _, a, b := s.setup(t)
	n, ok := b.(model.Notifier)
	if !ok {
		t.Skip("the backend does not implement model.Notifier")
	}
	ch := n.Changes()
	if _, err := b.PendingRuns(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Let signals of start-up pass.
	for quiet := time.NewTimer(300 * time.Millisecond); ; {
		select {
		case <-ch:
			quiet.Reset(300 * time.Millisecond)
			continue
		case <-quiet.C:
		}
		break
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no change signalled within 10s after another handle %s", what)
		}
		// Several signals may merge into one; more may follow.
		time.Sleep(50 * time.Millisecond)
		select {
		case <-ch:
		default:
		}
	}
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, a, w)
	expect("created a workflow")
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, a, r)
	expect("created a run")
	if err := a.RequestCancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	expect("requested a cancel")
}

// testSchedulerLocker: a backend that implements model.SchedulerLocker
// lets one scheduler at a time hold the store: a second LockScheduler,
// through the same handle or another, gets a *model.LockedError naming
// the holder, and the lock is free again once released.
func (s *stores) testSchedulerLocker(t *testing.T) {
	ctx, _, a, b := s.setup(t)
	la, ok := a.(model.SchedulerLocker)
	if !ok {
		t.Skip("the backend does not implement model.SchedulerLocker")
	}
	lb := b.(model.SchedulerLocker)
	release, err := la.LockScheduler(ctx)
	if err != nil {
		t.Fatalf("LockScheduler of a free store: %v", err)
	}
	for name, l := range map[string]model.SchedulerLocker{"the same handle": la, "another handle": lb} {
		rel, err := l.LockScheduler(ctx)
		var le *model.LockedError
		if !errors.As(err, &le) {
			if rel != nil {
				rel()
			}
			t.Fatalf("LockScheduler through %s while held = %v, want a *model.LockedError", name, err)
		}
		if le.Holder == "" || le.Where == "" {
			t.Errorf("LockedError through %s = %+v, want the holder and what is locked named", name, le)
		}
	}
	release()
	var rel func()
	eventually(t, "the lock is free after release", func() string {
		var err error
		if rel, err = lb.LockScheduler(ctx); err != nil {
			return err.Error()
		}
		return ""
	})
	rel()
}
