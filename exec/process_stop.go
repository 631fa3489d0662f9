package exec

import (
	"context"
	"syscall"
	"time"

	"github.com/ork-run/ork/model"
)

var _ Stopper = (*ProcessExecutor)(nil)

// Stop stops one attempt, for a timeout or a cancel: SIGTERM to its whole
// process group now; after the kill grace, SIGKILL to the group and to every
// process still carrying the attempt's environment (a child that ignored
// SIGTERM and outlived the script). It returns at once; the attempt then ends as usual, with its
// terminal update. An attempt that is not running is left alone.
func (e *ProcessExecutor) Stop(ctx context.Context, t model.TaskWithWorkflow) error {
	key := attemptKey{taskID: t.Task.ID, attempt: t.Task.Attempt}
	e.mu.Lock()
	a, ok := e.byTask[key]
	if !ok || a.name == "" {
		e.mu.Unlock()
		return nil
	}
	proc := a.cmd.Process
	_ = signalGroup(proc, syscall.SIGTERM)
	e.mu.Unlock()
	go func() {
		timer := time.NewTimer(max(e.killGrace, 0))
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-e.finished:
			return
		}
		e.mu.Lock()
		if e.byName[a.name] == a {
			_ = signalGroup(proc, syscall.SIGKILL)
		}
		e.mu.Unlock()
		// What ignored SIGTERM and outlived the script (or left its
		// process group) is found by its environment.
		killAttempt(e.logKey, key.taskID, key.attempt)
	}()
	return nil
}
