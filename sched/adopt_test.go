package sched_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// adoptingExecutor says, at recovery, that it still runs every attempt it is
// asked about (as an executor of remote jobs does), and records the
// ORK_UPSTREAM of what it starts; it ends every started task at once.
type adoptingExecutor struct {
	updates chan<- exec.StatusUpdate
	mu      sync.Mutex
	up      map[string]json.RawMessage
}

func (e *adoptingExecutor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	e.mu.Lock()
	e.up[t.Task.Name] = t.Upstream
	e.mu.Unlock()
	go func() {
		code := 0
		e.updates <- exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt, Status: model.TaskSuccess, ExitCode: &code, At: time.Now()}
	}()
	return "x", nil
}

func (e *adoptingExecutor) Check(ctx context.Context, t model.TaskWithWorkflow) (exec.StatusUpdate, bool, error) {
	return exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt, Status: model.TaskRunning}, true, nil
}

func (e *adoptingExecutor) Shutdown(ctx context.Context) error { return nil }

// A task adopted at recovery (its executor still runs it) keeps its index:
// when it ends, its output is the upstream of the next node at its own
// place, not over task 0's.
func TestAdoptedTaskOutputKeepsItsIndex(t *testing.T) {
	e := newEnv(t)
	w := e.dagWorkflow("fan", map[string]*model.TaskSpec{
		"part": {JobName: "x.sh", TaskCount: 2},
		"sum":  {JobName: "x.sh", DependsOn: []string{"part"}},
	})
	ctx := context.Background()
	r, parts := e.runningRun(w, 2)
	zero := 0
	e.up([]model.TaskUpdate{{TaskID: parts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched}, {TaskID: parts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched}},
		[]model.TaskUpdate{{TaskID: parts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: &zero, Output: json.RawMessage(`{"n":0}`)},
			{TaskID: parts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning}})
	e.db.Close()
	e.db = e.open()

	updates := make(chan exec.StatusUpdate, 64)
	mgr := exec.NewManager(updates)
	ex := &adoptingExecutor{updates: updates, up: map[string]json.RawMessage{}}
	mgr.Register(model.ExecutorProcess, ex)
	s := sched.New(e.db, mgr, sched.Config{Logger: e.logger(), PollInterval: time.Hour, NoSchedules: true})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Run(rctx)
	time.Sleep(300 * time.Millisecond) // recovered, part[1] adopted
	updates <- exec.StatusUpdate{TaskID: parts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: &zero, Output: json.RawMessage(`{"n":10}`), At: time.Now()}
	got := e.wait(s, r)
	ex.mu.Lock()
	defer ex.mu.Unlock()
	t.Logf("run %s; sum saw ORK_UPSTREAM=%s", got.Status, ex.up["sum"])
	if string(ex.up["sum"]) != `{"part":[{"n":0},{"n":10}]}` {
		t.Fatalf("sum saw ORK_UPSTREAM=%s, want part's outputs by index", ex.up["sum"])
	}
}

// heldExecutor adopts, at recovery, every attempt it is asked about, and
// holds every task it starts running until the test ends it (end).
type heldExecutor struct {
	updates chan<- exec.StatusUpdate
	mu      sync.Mutex
	started []*model.Task
	checked int // Check calls: attempts adopted
}

func (e *heldExecutor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	e.mu.Lock()
	e.started = append(e.started, t.Task)
	e.mu.Unlock()
	return "x", nil
}

func (e *heldExecutor) Check(ctx context.Context, t model.TaskWithWorkflow) (exec.StatusUpdate, bool, error) {
	e.mu.Lock()
	e.checked++
	e.mu.Unlock()
	return exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt, Status: model.TaskRunning}, true, nil
}

func (e *heldExecutor) Shutdown(ctx context.Context) error { return nil }

func (e *heldExecutor) starts() []*model.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.started)
}

func (e *heldExecutor) end(t *model.Task) {
	zero := 0
	e.updates <- exec.StatusUpdate{TaskID: t.ID, RunID: t.RunID, Attempt: t.Attempt, Status: model.TaskSuccess, ExitCode: &zero, At: time.Now()}
}

// A task adopted at recovery counts in its node's max_parallel: while it
// runs, no other task of its node starts beyond the limit, and once it has
// ended the limit is what it was — not one more.
func TestAdoptedTaskCountsInMaxParallel(t *testing.T) {
	e := newEnv(t)
	w := e.dagWorkflow("fan", map[string]*model.TaskSpec{
		"busy": {JobName: "x.sh", TaskCount: 4, MaxParallel: 1},
	})
	ctx := context.Background()
	r, tasks := e.runningRun(w, 4)
	// A scheduler that died left task 0 running.
	e.up([]model.TaskUpdate{{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched}},
		[]model.TaskUpdate{{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning}})
	e.db.Close()
	e.db = e.open()

	updates := make(chan exec.StatusUpdate, 64)
	mgr := exec.NewManager(updates)
	ex := &heldExecutor{updates: updates}
	mgr.Register(model.ExecutorProcess, ex)
	s := sched.New(e.db, mgr, sched.Config{Logger: e.logger(), NoSchedules: true})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Run(rctx)

	// Task 0 is adopted: it holds busy's one place.
	waitUntil(t, 10*time.Second, "task 0 is adopted", func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return ex.checked > 0
	})
	time.Sleep(500 * time.Millisecond) // the loops that follow recovery
	if got := ex.starts(); len(got) != 0 {
		t.Fatalf("%d tasks of busy started while the adopted task 0 ran, want none (max_parallel 1)", len(got))
	}
	// Then one at a time.
	held := tasks[0]
	for n := 1; n <= 3; n++ {
		ex.end(held)
		waitUntil(t, 10*time.Second, "the next task of busy starts", func() bool { return len(ex.starts()) >= n })
		time.Sleep(300 * time.Millisecond)
		got := ex.starts()
		if len(got) != n {
			t.Fatalf("%d tasks of busy started with %d ended, want %d: one at a time (max_parallel 1)", len(got), n, n)
		}
		held = got[n-1]
	}
	ex.end(held)
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
}
