package sched_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// slowStartExecutor takes startDelay to start an attempt (as a fork and
// exec take on a loaded host), then runs it until Stop.
type slowStartExecutor struct {
	updates    chan exec.StatusUpdate
	startDelay time.Duration

	mu      sync.Mutex
	started map[string]time.Time // task id -> when Execute returned
	stopped map[string]time.Time // task id -> when Stop was called
}

func (x *slowStartExecutor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	time.Sleep(x.startDelay)
	now := time.Now()
	x.mu.Lock()
	x.started[t.Task.ID] = now
	x.mu.Unlock()
	x.updates <- exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt,
		Status: model.TaskRunning, ExecutionName: "slow", At: now}
	return "slow", nil
}

func (x *slowStartExecutor) Stop(ctx context.Context, t model.TaskWithWorkflow) error {
	now := time.Now()
	x.mu.Lock()
	x.stopped[t.Task.ID] = now
	x.mu.Unlock()
	x.updates <- exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt,
		Status: model.TaskFailed, Error: "stopped", At: now}
	return nil
}

func (x *slowStartExecutor) Check(ctx context.Context, t model.TaskWithWorkflow) (exec.StatusUpdate, bool, error) {
	return exec.StatusUpdate{}, false, nil
}

func (x *slowStartExecutor) Shutdown(ctx context.Context) error { return nil }

// A task's timeout counts from the moment it started, not from the moment
// the scheduler began to start it: a slow start (a loaded host, a cold
// cache) must not eat into the time the task was given.
func TestTimeoutCountsFromTheStart(t *testing.T) {
	e := newEnv(t)
	const limit = 300 * time.Millisecond
	w := &model.Workflow{Name: "slow", JobName: "slow.sh", TaskCount: 1, Timeout: model.Duration(limit)}
	if err := e.db.CreateWorkflow(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	r := e.trigger(e.db, w)

	updates := make(chan exec.StatusUpdate, 16)
	x := &slowStartExecutor{updates: updates, startDelay: 2 * limit,
		started: map[string]time.Time{}, stopped: map[string]time.Time{}}
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, x)
	s := sched.New(e.db, mgr, sched.Config{Logger: e.logger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	got := e.wait(s, r)
	if got.Status != model.RunFailed {
		t.Fatalf("run = %s, want failed by the timeout", got.Status)
	}
	ts := e.tasks(r)
	if len(ts) != 1 || ts[0].Error != "timed out after 300ms" {
		t.Fatalf("tasks = %+v, want one timed out", ts)
	}
	// Execute may still be returning: wait for it.
	var started, stopped time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		x.mu.Lock()
		started, stopped = x.started[ts[0].ID], x.stopped[ts[0].ID]
		x.mu.Unlock()
		if !started.IsZero() {
			break
		}
	}
	if started.IsZero() || stopped.IsZero() {
		t.Fatalf("started %v, stopped %v: want both", started, stopped)
	}
	if ran := stopped.Sub(started); ran < limit {
		t.Errorf("the task was stopped %s after it started, before its timeout of %s", ran, limit)
	}
}
