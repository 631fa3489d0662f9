package sched_test

import (
	"context"
	"encoding/json"
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
	r := e.trigger(e.db, w)
	parts := model.NewNodeTasks(r, w.Nodes()[0], 0, 2, time.Now())
	if err := e.db.CreateTasks(ctx, parts); err != nil {
		t.Fatal(err)
	}
	if err := e.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
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
