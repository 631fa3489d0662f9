package exec

import (
	"context"
	"syscall"
	"time"

	"github.com/ork-run/ork/model"
)

var _ Stopper = (*ProcessExecutor)(nil)

// Stop stops one attempt, for a timeout or a cancel: SIGTERM to its whole
// process group now, SIGKILL after the kill grace if anything of it is
// still there. It returns at once; the attempt then ends as usual, with its
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
		defer e.mu.Unlock()
		if e.byName[a.name] == a {
			_ = signalGroup(proc, syscall.SIGKILL)
		}
	}()
	return nil
}
