package model

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotFound is returned (wrapped) when a workflow, run or task does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned (wrapped) when creating something that already exists.
var ErrExists = errors.New("already exists")

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	WorkflowName string    // only runs of this workflow; "" for all
	Status       RunStatus // only runs in this status; "" for all
	Limit        int       // at most this many; 0 for all
}

// Database is the storage contract of ork. Every backend implements it and
// passes the shared conformance suite (package dbtest).
//
// Workflows are looked up by name. Runs and tasks by id. Batch methods apply
// all their changes durably before they return: an acknowledged write
// survives a crash. A batch method (CreateTasks, UpdateTasks, UpdateRuns)
// may return a *PartialError: the records it names were not written (each
// for a reason of its own, such as a file damaged by hand), every other
// record was; the caller reports those and goes on.
type Database interface {
	// CreateWorkflow stores a new workflow; ErrExists if the name is taken.
	CreateWorkflow(ctx context.Context, w *Workflow) error
	// GetWorkflow returns the workflow with that name, or ErrNotFound.
	GetWorkflow(ctx context.Context, name string) (*Workflow, error)
	// ListWorkflows returns every workflow that loads, by name. Workflows
	// that do not load are reported in the error (each a *FileError where
	// the backend has files), and the others are still returned.
	ListWorkflows(ctx context.Context) ([]*Workflow, error)
	// DeleteWorkflow removes a workflow; its runs stay. ErrNotFound if absent.
	DeleteWorkflow(ctx context.Context, name string) error

	// CreateRun stores a new run (normally pending); ErrExists if the id is taken.
	CreateRun(ctx context.Context, r *Run) error
	// GetRun returns a run by id, or ErrNotFound.
	GetRun(ctx context.Context, id string) (*Run, error)
	// ListRuns returns runs newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]*Run, error)
	// PendingRuns returns up to limit pending runs (all if limit <= 0),
	// oldest first.
	PendingRuns(ctx context.Context, limit int) ([]*Run, error)
	// UpdateRuns applies run status changes in one batch (see ApplyRunUpdate).
	UpdateRuns(ctx context.Context, us []RunUpdate) error

	// CreateTasks stores new tasks in one batch. A task whose id exists is
	// left as it is, so creating a run's tasks twice is harmless.
	CreateTasks(ctx context.Context, ts []*Task) error
	// PendingTasks returns up to limit pending tasks with their workflows,
	// oldest run first, then by task index; not those whose RetryAt is
	// still to come.
	PendingTasks(ctx context.Context, limit int) ([]TaskWithWorkflow, error)
	// ActiveTasks returns every dispatched or running task.
	ActiveTasks(ctx context.Context) ([]TaskWithWorkflow, error)
	// UpdateTasks applies task status changes in one batch (see
	// ApplyTaskUpdate) and returns the tasks that changed, as they are now.
	UpdateTasks(ctx context.Context, us []TaskUpdate) ([]*Task, error)
	// ListTasks returns the tasks of a run by name and index.
	ListTasks(ctx context.Context, runID string) ([]*Task, error)
	// TaskCounts returns how many tasks of a run are in each status.
	TaskCounts(ctx context.Context, runID string) (map[TaskStatus]int, error)

	// ReopenRun makes a finished run pending again, to retry it: the tasks
	// in reset go back to pending (keeping their attempts), the tasks in
	// remove are deleted (the scheduler creates them again in their turn).
	ReopenRun(ctx context.Context, runID string, reset, remove []string) error

	// RequestCancel asks the scheduler to cancel an unfinished run (any
	// process may call it; the scheduler applies it). ErrNotFound if the
	// run does not exist.
	RequestCancel(ctx context.Context, runID string) error
	// CancelRequests returns the unfinished runs whose cancel was requested.
	CancelRequests(ctx context.Context) ([]string, error)

	// Close releases the database's resources.
	Close() error
}

// RunTaskCounter is implemented by databases that count the tasks of many
// runs in one call (one query) instead of one TaskCounts each: the
// scheduler asks, every loop, about each run whose tasks changed.
type RunTaskCounter interface {
	// RunTaskCounts returns TaskCounts of each run of ids; a run with no
	// task maps to an empty map. On an error, the runs whose counts could
	// not be read are missing from the map.
	RunTaskCounts(ctx context.Context, ids []string) (map[string]map[TaskStatus]int, error)
}

// RunTaskCounts returns TaskCounts of each run of ids (see
// RunTaskCounter), in one call when db is a RunTaskCounter, else one
// TaskCounts per run. On an error, the runs whose counts could not be read
// are missing from the map, and the error is the first one.
func RunTaskCounts(ctx context.Context, db Database, ids []string) (map[string]map[TaskStatus]int, error) {
	if len(ids) == 0 {
		return map[string]map[TaskStatus]int{}, nil
	}
	if c, ok := db.(RunTaskCounter); ok {
		return c.RunTaskCounts(ctx, ids)
	}
	out := make(map[string]map[TaskStatus]int, len(ids))
	var first error
	for _, id := range ids {
		counts, err := db.TaskCounts(ctx, id)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if counts == nil {
			counts = map[TaskStatus]int{}
		}
		out[id] = counts
	}
	return out, first
}

// TaskGetter is implemented by databases that read one task of a run
// without listing the others: one file, one row. A process that follows
// one task (`ork logs --follow`) looks at it again and again, and a
// listing of a fan-out of 10,000 tasks each time would cost 10,000 reads.
type TaskGetter interface {
	// GetTask returns the task name[index] of run runID as ListTasks
	// would list it, or an error wrapping ErrNotFound when the run has no
	// such task (not created yet, or no such run). A record that exists
	// but cannot be read (a file damaged by hand) is an error of its own.
	GetTask(ctx context.Context, runID, name string, index int) (*Task, error)
}

// GetTask returns task name[index] of run runID: in one call when db is a
// TaskGetter, else by listing the tasks of the run. An error wraps
// ErrNotFound when the run has no such task.
func GetTask(ctx context.Context, db Database, runID, name string, index int) (*Task, error) {
	if g, ok := db.(TaskGetter); ok {
		return g.GetTask(ctx, runID, name, index)
	}
	ts, err := db.ListTasks(ctx, runID)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.Name == name && t.TaskIndex == index {
			return t, nil
		}
	}
	return nil, TaskNotFound(runID, name, index)
}

// TaskNotFound is the error of a GetTask that finds no task name[index] in
// run runID: it wraps ErrNotFound.
func TaskNotFound(runID, name string, index int) error {
	return fmt.Errorf("task %s[%d] of run %q: %w", name, index, runID, ErrNotFound)
}

// Notifier is implemented by databases that can tell the scheduler when
// another process changed something (a new run, an edited workflow), so it
// wakes at once instead of at its next poll. The channel has a buffer of one
// and never closes; a receive means "look again".
type Notifier interface {
	Changes() <-chan struct{}
}

// ChangeWatcher is implemented by databases that can tell observers — the
// web UI's event stream — at once which runs changed: a run record or a
// task record of the run, written by this process or by another.
// WatchChanges calls fn with the id of each run that may have changed, or
// with "" when it lost track (then look at everything), until ctx ends; it
// returns once it watches. fn must return quickly and must not call the
// database. Unlike Notifier, whose one channel belongs to the scheduler,
// any number of observers may watch.
type ChangeWatcher interface {
	WatchChanges(ctx context.Context, fn func(runID string)) error
}

// RunWatcher is implemented by databases that can tell a process waiting
// for one run (`ork trigger --wait`, `ork cancel`) when that run may have
// ended, by this process or by another. WatchRun calls fn then — at least
// then: a backend may also call it at other writes of the run's record —
// and when it lost track (look again), until ctx ends; it returns once it
// watches. Unlike ChangeWatcher it reads nothing to begin with and is not
// woken by each task of the run, so its cost does not grow with the
// history nor with the size of the run. fn must return quickly and must not call the
// database. A database that cannot watch here returns an error wrapping
// errors.ErrUnsupported; the caller then looks at the run from time to
// time.
type RunWatcher interface {
	WatchRun(ctx context.Context, runID string, fn func()) error
}

// TaskWatcher is implemented by databases that can tell a process
// following one task (`ork logs --follow`) when that task's record, or
// its run's, may have changed, written by this process or by another.
// WatchTask calls fn then, and when it lost track (look again), until ctx
// ends; it returns once it watches. Like RunWatcher it reads nothing to
// begin with, and is not woken by the run's other tasks. fn must return
// quickly and must not call the database. A database that cannot watch
// here returns an error wrapping errors.ErrUnsupported; the caller then
// looks at the task from time to time.
type TaskWatcher interface {
	WatchTask(ctx context.Context, runID, name string, index int, fn func()) error
}

// SchedulerLocker is implemented by databases that can make sure only one
// scheduler serves them. LockScheduler returns at once: a release function,
// or a *LockedError naming the holder.
type SchedulerLocker interface {
	LockScheduler(ctx context.Context) (release func(), err error)
}

// LockedError says another scheduler holds the lock.
type LockedError struct {
	Holder string // who holds it, e.g. "pid 1234 on host x since ..."
	Where  string // what is locked, e.g. the directory
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another scheduler is running on %s (%s)", e.Where, e.Holder)
}
