// Package runctl is what a person may ask of runs — trigger one, cancel
// one, retry one — written once for every front end (the CLI, the web UI)
// on any model.Database.
//
// It follows the rule of one writer per record: it creates a pending run,
// asks for a cancel, or reopens a finished run, and the scheduler applies
// them. The one exception is a cancel while no scheduler serves the
// database: then Cancel takes the scheduler lock (where the backend has
// one) and cancels the run itself, so that no scheduler starts meanwhile.
//
// It never runs tasks, never waits, and never prints: the caller decides
// how to wait (the CLI polls, the web UI streams events) and what to say.
package runctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// ErrConflict is matched (errors.Is) by a *ConflictError.
var ErrConflict = errors.New("conflict")

// ConflictError says a run is in no state for what was asked: retrying a
// run that has not ended, or one that succeeded.
type ConflictError struct {
	RunID  string
	Status model.RunStatus
	Op     string // "retry"
}

func (e *ConflictError) Error() string {
	if e.Status == model.RunSuccess {
		return fmt.Sprintf("run %s succeeded: nothing to %s", e.RunID, e.Op)
	}
	return fmt.Sprintf("run %s is still %s: %s it once it has ended", e.RunID, e.Status, e.Op)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// RefusedError says a check refused to run a workflow (one that needs an
// executor this ork was built without, say).
type RefusedError struct {
	Workflow string
	Err      error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// NewRun makes a pending run of the workflow called name, with params
// overriding the workflow's own; it does not store it (see Trigger). The
// error wraps model.ErrNotFound when there is no such workflow, and is a
// *RefusedError when one of checks refuses the workflow.
func NewRun(ctx context.Context, db model.Database, name string, params map[string]any, triggeredBy string, checks ...func(*model.Workflow) error) (*model.Run, error) {
	w, err := db.GetWorkflow(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, check := range checks {
		if check == nil {
			continue
		}
		if err := check(w); err != nil {
			return nil, &RefusedError{Workflow: w.Name, Err: err}
		}
	}
	return model.NewRun(w, params, triggeredBy, time.Now()), nil
}

// Trigger makes and stores a pending run of the workflow called name, if
// checks allow; a scheduler starts it.
func Trigger(ctx context.Context, db model.Database, name string, params map[string]any, triggeredBy string, checks ...func(*model.Workflow) error) (*model.Run, error) {
	r, err := NewRun(ctx, db, name, params, triggeredBy, checks...)
	if err != nil {
		return nil, err
	}
	if err := db.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// CancelOutcome says what Cancel did.
type CancelOutcome int

const (
	// AlreadyEnded: the run had ended; nothing was done.
	AlreadyEnded CancelOutcome = iota
	// Cancelled: no scheduler was running, so the run was cancelled here,
	// under the scheduler lock.
	Cancelled
	// Requested: the cancel was requested; the running scheduler applies
	// it (it stops the tasks, then ends the run cancelled).
	Requested
	// RequestedNoScheduler: the cancel was requested, but no scheduler is
	// live to apply it — the run's died (its lease ended) and none is left
	// to reap it. The next scheduler to start applies it. (Not here: a
	// scheduler past its lease may yet be running the run's tasks.)
	RequestedNoScheduler
)

func (o CancelOutcome) String() string {
	switch o {
	case AlreadyEnded:
		return "already-ended"
	case Cancelled:
		return "cancelled"
	case RequestedNoScheduler:
		return "requested-no-scheduler"
	}
	return "requested"
}

// Cancel cancels the run with that id: it returns the run as it was read
// and what was done. The error wraps model.ErrNotFound for an unknown run.
func Cancel(ctx context.Context, db model.Database, id string) (*model.Run, CancelOutcome, error) {
	r, err := db.GetRun(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if r.Status.Terminal() {
		return r, AlreadyEnded, nil
	}
	// Where several schedulers may serve the database, the one holding the
	// run applies the request (it stops the run's running tasks); with no
	// scheduler live, cancel here.
	if cl, ok := db.(model.Cluster); ok {
		ss, err := cl.Schedulers(ctx)
		if err != nil {
			return r, 0, err
		}
		if len(ss) == 0 {
			if err := sched.CancelRun(ctx, db, id); err != nil {
				return r, 0, err
			}
			return r, Cancelled, nil
		}
		now := time.Now()
		if !slices.ContainsFunc(ss, func(s model.SchedulerInfo) bool { return !s.Expired(now) }) {
			if err := db.RequestCancel(ctx, id); err != nil {
				return r, 0, err
			}
			return r, RequestedNoScheduler, nil
		}
	} else if l, ok := db.(model.SchedulerLocker); ok {
		// No scheduler: cancel here, holding the lock so none starts
		// meanwhile.
		if release, err := l.LockScheduler(ctx); err == nil {
			defer release()
			if err := sched.CancelRun(ctx, db, id); err != nil {
				return r, 0, err
			}
			return r, Cancelled, nil
		}
	}
	if err := db.RequestCancel(ctx, id); err != nil {
		return r, 0, err
	}
	return r, Requested, nil
}

// RetryPlan is what retrying a run will do.
type RetryPlan struct {
	Run *model.Run
	// Reset: failed tasks, and cancelled ones that had started, run again
	// as new attempts.
	Reset []string
	// Remove: skipped tasks and cancelled ones that never started are
	// deleted; the scheduler creates them again in their turn.
	Remove []string
	// NeverRan counts the tasks that will run for the first time: those
	// removed and those never created.
	NeverRan int
}

// PlanRetry works out how to retry the run with that id. The error wraps
// model.ErrNotFound for an unknown run, and is a *ConflictError for a run
// that has not ended or that succeeded.
func PlanRetry(ctx context.Context, db model.Database, id string) (*RetryPlan, error) {
	r, err := db.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if !r.Status.Terminal() || r.Status == model.RunSuccess {
		return nil, &ConflictError{RunID: r.ID, Status: r.Status, Op: "retry"}
	}
	ts, err := db.ListTasks(ctx, id)
	if err != nil {
		return nil, err
	}
	p := &RetryPlan{Run: r}
	for _, t := range ts {
		switch {
		case t.Status == model.TaskFailed, t.Status == model.TaskCancelled && t.Attempt > 0:
			p.Reset = append(p.Reset, t.ID)
		case t.Status == model.TaskSkipped, t.Status == model.TaskCancelled:
			p.Remove = append(p.Remove, t.ID)
		}
	}
	p.NeverRan = len(p.Remove) + r.TaskCount() - len(ts)
	return p, nil
}

// Apply reopens the run: it becomes pending, and the scheduler runs what
// the plan says.
func (p *RetryPlan) Apply(ctx context.Context, db model.Database) error {
	return db.ReopenRun(ctx, p.Run.ID, p.Reset, p.Remove)
}

// Retry plans and applies the retry of the run with that id.
func Retry(ctx context.Context, db model.Database, id string) (*RetryPlan, error) {
	p, err := PlanRetry(ctx, db, id)
	if err != nil {
		return nil, err
	}
	return p, p.Apply(ctx, db)
}
