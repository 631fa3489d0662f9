package model

import (
	"encoding/json"
	"time"
)

// TaskUpdate is a change of one task's status, as an executor or the
// scheduler reports it. See ApplyTaskUpdate for the rules.
type TaskUpdate struct {
	TaskID string
	RunID  string
	// Attempt is the attempt the update is about. For TaskDispatched it is
	// the new attempt number; for other statuses an update whose Attempt is
	// not the task's current attempt is stale and ignored. Zero matches any.
	Attempt       int
	Status        TaskStatus
	ExecutionName string
	Error         string
	ExitCode      *int
	Output        json.RawMessage
	At            time.Time
	// Log is the log file of the attempt (sent with running).
	Log string
	// RetryAt, on a move back to pending, is the earliest time the task
	// may start again.
	RetryAt *time.Time
	// AttemptStatus, on a move back to pending, says how the attempt that
	// ends went: "failed" (to be retried) or, by default, "interrupted".
	AttemptStatus string
	// Unstarted, on a move back to pending, withdraws an attempt that never
	// started (no process was ever started for it): the task gets its
	// previous attempt number back and no attempt record. It applies only
	// to a dispatched task whose start was never recorded; otherwise the
	// update is an ordinary move back to pending (an interrupted attempt).
	Unstarted bool
	// Scheduler, on TaskDispatched, names the scheduler that claims the
	// attempt. On any other status it fences: the update is about the
	// attempt that scheduler dispatched, and is ignored if the task's
	// attempt is another scheduler's. "" matches any (a cancel, or a
	// database with one scheduler).
	Scheduler string
}

// ApplyTaskUpdate applies u to t in place and reports whether it changed t.
// The rules, shared by every backend:
//   - a terminal task never changes;
//   - an update for another attempt than the task's current one is ignored,
//     and so is one naming another scheduler than the attempt's;
//   - pending -> dispatched starts a new attempt (u.Attempt, or the next one);
//   - dispatched -> running records the start;
//   - any non-terminal status -> a terminal one records the end;
//   - dispatched or running -> pending puts a task back in the queue (a
//     retry, or a scheduler that died while the task ran), not before
//     RetryAt;
//   - dispatched -> pending with Unstarted, for a task whose start was
//     never recorded, withdraws the attempt: it never was one;
//   - a pending task becomes terminal only by an update for no particular
//     attempt (a cancel): a late executor report of an attempt that was
//     put back in the queue is stale;
//   - nothing moves backwards otherwise (running never becomes dispatched).
//
// Every attempt that ends — terminal, or back to pending — is appended to
// Attempts.
func ApplyTaskUpdate(t *Task, u TaskUpdate) bool {
	if t.Status.Terminal() || !u.Status.Valid() {
		return false
	}
	if u.Status != TaskDispatched && u.Scheduler != "" && t.Scheduler != "" && u.Scheduler != t.Scheduler {
		return false
	}
	at := u.At.UTC()
	if u.At.IsZero() {
		at = time.Now().UTC()
	}
	switch u.Status {
	case TaskDispatched:
		if t.Status != TaskPending {
			return false
		}
		next := t.Attempt + 1
		if u.Attempt != 0 {
			if u.Attempt <= t.Attempt {
				return false
			}
			next = u.Attempt
		}
		t.Attempt = next
		t.DispatchedAt = &at
		t.StartedAt, t.FinishedAt, t.ExitCode, t.RetryAt = nil, nil, nil, nil
		t.Error, t.Log = "", ""
		t.ExecutionName = u.ExecutionName
		t.Scheduler = u.Scheduler
	case TaskRunning:
		if t.Status != TaskDispatched || (u.Attempt != 0 && u.Attempt != t.Attempt) {
			return false
		}
		t.StartedAt = &at
		if u.ExecutionName != "" {
			t.ExecutionName = u.ExecutionName
		}
		if u.Log != "" {
			t.Log = u.Log
		}
	case TaskPending:
		if !t.Status.Active() || (u.Attempt != 0 && u.Attempt != t.Attempt) {
			return false
		}
		if u.Unstarted && t.Status == TaskDispatched && t.StartedAt == nil {
			t.Attempt--
			t.DispatchedAt, t.ExitCode, t.RetryAt = nil, nil, nil
			t.Error, t.Log, t.ExecutionName = u.Error, "", ""
			break
		}
		outcome := TaskStatus(u.AttemptStatus)
		if outcome == "" {
			outcome = AttemptInterrupted
		}
		t.Attempts = append(t.Attempts, Attempt{Attempt: t.Attempt, Status: outcome,
			StartedAt: t.StartedAt, FinishedAt: &at, ExitCode: u.ExitCode, Error: u.Error, Log: t.Log})
		t.Error = u.Error
		t.ExitCode = u.ExitCode
		t.ExecutionName = ""
		t.RetryAt = u.RetryAt
	default: // terminal
		if u.Attempt != 0 && (u.Attempt != t.Attempt || t.Status == TaskPending) {
			return false
		}
		t.FinishedAt = &at
		t.Error = u.Error
		t.ExitCode = u.ExitCode
		t.RetryAt = nil
		if u.ExecutionName != "" {
			t.ExecutionName = u.ExecutionName
		}
		if len(u.Output) > 0 {
			t.Output = u.Output
		}
		if t.Attempt > 0 && t.Status.Active() {
			t.Attempts = append(t.Attempts, Attempt{Attempt: t.Attempt, Status: u.Status,
				StartedAt: t.StartedAt, FinishedAt: &at, ExitCode: u.ExitCode, Error: u.Error, Log: t.Log})
		}
	}
	t.Status = u.Status
	return true
}

// RunUpdate is a change of one run's status.
type RunUpdate struct {
	RunID  string
	Status RunStatus
	Error  string
	At     time.Time
	// TaskCounts, with a terminal status: the run's tasks by status.
	TaskCounts map[TaskStatus]int
}

// ApplyRunUpdate applies u to r in place and reports whether it changed r.
// A terminal run never changes, and a running run never becomes pending.
func ApplyRunUpdate(r *Run, u RunUpdate) bool {
	if r.Status.Terminal() || !u.Status.Valid() || u.Status == RunPending || r.Status == u.Status {
		return false
	}
	at := u.At.UTC()
	if u.At.IsZero() {
		at = time.Now().UTC()
	}
	if u.Status == RunRunning || r.StartedAt == nil {
		r.StartedAt = &at
	}
	if u.Status.Terminal() {
		r.FinishedAt = &at
		r.Error = u.Error
		r.TaskCounts = u.TaskCounts
	}
	r.Status = u.Status
	return true
}
