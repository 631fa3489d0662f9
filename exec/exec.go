// Package exec runs tasks: the Executor interface, the StatusUpdate that
// executors report, the Manager that picks an executor for a workflow, and
// ProcessExecutor, which runs local scripts.
//
// exec never touches the database: executors start work and report what
// happened on a channel; the scheduler records it. exec imports model only.
package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/ork-run/ork/model"
)

// StatusUpdate is what an executor reports about one attempt of a task:
// that it runs, or how it ended.
type StatusUpdate struct {
	TaskID        string
	RunID         string
	Attempt       int
	Status        model.TaskStatus // running, success or failed
	ExecutionName string
	ExitCode      *int
	Error         string
	Output        json.RawMessage
	At            time.Time
	Log           string // the attempt's log file, if it has one
}

// TaskUpdate converts u into the database's form.
func (u StatusUpdate) TaskUpdate() model.TaskUpdate {
	return model.TaskUpdate{
		TaskID: u.TaskID, RunID: u.RunID, Attempt: u.Attempt, Status: u.Status,
		ExecutionName: u.ExecutionName, Error: u.Error, ExitCode: u.ExitCode,
		Output: u.Output, At: u.At, Log: u.Log,
	}
}

// Executor starts task attempts and reports their progress on the updates
// channel it was built with.
type Executor interface {
	// Execute starts attempt t.Task.Attempt of the task and returns its
	// execution name once it has started. An error means it did not start;
	// no update is sent for it then. After a nil error the executor sends
	// exactly one terminal update (success or failed) for the attempt, and
	// before it usually a running update.
	Execute(ctx context.Context, t model.TaskWithWorkflow) (executionName string, err error)
	// Check reports what the executor knows of an attempt started earlier,
	// perhaps by a scheduler that has since died. known is false when the
	// executor has no trace of it (a local process of a dead scheduler);
	// otherwise the update tells its current state.
	Check(ctx context.Context, t model.TaskWithWorkflow) (u StatusUpdate, known bool, err error)
	// Shutdown stops every attempt still running (gracefully, then by force
	// when ctx ends) and returns when they are gone. No update is sent after
	// Shutdown returns.
	Shutdown(ctx context.Context) error
}

// Manager maps executor types to executors. It is safe for concurrent use.
type Manager struct {
	updates chan StatusUpdate

	mu        sync.RWMutex
	executors map[string]Executor
}

// NewManager returns a Manager whose executors report on updates.
func NewManager(updates chan StatusUpdate) *Manager {
	return &Manager{updates: updates, executors: make(map[string]Executor)}
}

// Updates is the channel every registered executor reports on.
func (m *Manager) Updates() <-chan StatusUpdate { return m.updates }

// Register makes e the executor of workflows whose executor_type is typ.
func (m *Manager) Register(typ string, e Executor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.executors[typ] = e
}

// For returns the executor for workflow w.
func (m *Manager) For(w *model.Workflow) (Executor, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	typ := w.ExecutorType
	if typ == "" {
		typ = model.ExecutorProcess
	}
	e, ok := m.executors[typ]
	if !ok {
		if typ == model.ExecutorCloudRun {
			return nil, fmt.Errorf("no executor for executor_type %q in this build of ork: build it with `go build -tags cloudrun`", typ)
		}
		return nil, fmt.Errorf("no executor for executor_type %q in this build of ork", typ)
	}
	return e, nil
}

// ForTask returns the executor for task t: its node's executor_type.
func (m *Manager) ForTask(t model.TaskWithWorkflow) (Executor, error) {
	return m.For(&model.Workflow{ExecutorType: t.Node().ExecutorType})
}

// Shutdown shuts every registered executor down.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.RLock()
	es := make([]Executor, 0, len(m.executors))
	for _, e := range m.executors {
		es = append(es, e)
	}
	m.mu.RUnlock()
	var first error
	for _, e := range es {
		if err := e.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Sweeper is implemented by executors that can find work a dead scheduler
// left behind on this machine and stop it: a scheduler calls Sweep once at
// start-up with the tasks recorded as unfinished (dispatched or running),
// before it retries them, so that no task ever runs twice at the same
// time. Sweep stops what belongs to those tasks, and nothing else.
type Sweeper interface {
	Sweep(ctx context.Context, unfinished []model.TaskWithWorkflow) (stopped int, err error)
}

// StartProber is implemented by executors that can tell whether an attempt
// they do not know (Check said known=false) ever began to start. An
// attempt that did not is withdrawn by the scheduler rather than counted:
// its task goes back to the queue with its attempt number unchanged.
// When in doubt, Began must say true.
type StartProber interface {
	Began(ctx context.Context, t model.TaskWithWorkflow) (bool, error)
}

// Sweep calls Sweep on every registered executor that is a Sweeper and
// returns how many leftovers they stopped in all.
func (m *Manager) Sweep(ctx context.Context, unfinished []model.TaskWithWorkflow) (int, error) {
	m.mu.RLock()
	es := make([]Executor, 0, len(m.executors))
	for _, e := range m.executors {
		es = append(es, e)
	}
	m.mu.RUnlock()
	total := 0
	var first error
	for _, e := range es {
		if sw, ok := e.(Sweeper); ok {
			n, err := sw.Sweep(ctx, unfinished)
			total += n
			if err != nil && first == nil {
				first = err
			}
		}
	}
	return total, first
}

// Stopper is implemented by executors that can stop one attempt — for a
// timeout or a cancel. Stop returns at once; the attempt then ends as
// usual, with its terminal update.
type Stopper interface {
	Stop(ctx context.Context, t model.TaskWithWorkflow) error
}
