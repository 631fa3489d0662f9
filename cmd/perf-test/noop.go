package main

import (
	"context"
	"sync"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// noopExecutor runs nothing. Each attempt is reported running at once and
// successful after the workload's task duration, from a goroutine, on the
// manager's updates channel: what is left is the cost of the scheduler and
// the database.
type noopExecutor struct {
	updates  chan<- exec.StatusUpdate
	duration time.Duration

	mu     sync.Mutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ exec.Executor = (*noopExecutor)(nil)

func newNoopExecutor(updates chan<- exec.StatusUpdate, d time.Duration) *noopExecutor {
	return &noopExecutor{updates: updates, duration: d, stop: make(chan struct{})}
}

// Execute starts the attempt and returns at once.
func (e *noopExecutor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return "", exec.ErrShutdown
	}
	e.wg.Add(1)
	e.mu.Unlock()
	name := "noop:" + t.Task.ID
	base := exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt, ExecutionName: name}
	started := time.Now()
	go func() {
		defer e.wg.Done()
		u := base
		u.Status, u.At = model.TaskRunning, started
		if !e.send(u) {
			return
		}
		if e.duration > 0 {
			tm := time.NewTimer(e.duration)
			select {
			case <-tm.C:
			case <-e.stop:
				tm.Stop()
				return
			}
		}
		code := 0
		u = base
		u.Status, u.ExitCode, u.At = model.TaskSuccess, &code, time.Now()
		e.send(u)
	}()
	return name, nil
}

func (e *noopExecutor) send(u exec.StatusUpdate) bool {
	select {
	case e.updates <- u:
		return true
	case <-e.stop:
		return false
	}
}

// Check knows nothing of attempts started by another process.
func (e *noopExecutor) Check(ctx context.Context, t model.TaskWithWorkflow) (exec.StatusUpdate, bool, error) {
	return exec.StatusUpdate{}, false, nil
}

// Shutdown abandons the attempts still waiting out their duration; they
// send nothing more.
func (e *noopExecutor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.stop)
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
