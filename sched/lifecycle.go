package sched

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// flight is a task this scheduler dispatched that has not ended.
type flight struct {
	attempt  int
	runID    string
	name     string
	index    int
	probed   bool   // its executor can tell whether an attempt began (exec.StartProber)
	failures int    // failed attempts before this one (interrupted ones do not count)
	sched    string // the scheduler that dispatched the attempt (another's when adopted)
}

// fly records a dispatched task as in flight.
func (s *Scheduler) fly(p model.TaskWithWorkflow) {
	f := flight{attempt: p.Task.Attempt, runID: p.Task.RunID, name: p.Task.Name, index: p.Task.TaskIndex, failures: p.Task.Failures(), sched: p.Task.Scheduler}
	if e, err := s.mgr.ForTask(p); err == nil {
		_, f.probed = e.(exec.StartProber)
	}
	s.inflight[p.Task.ID] = f
	if ns := s.nodeState(p.Task.RunID, p.Task.Name); ns != nil {
		ns.active++
	}
}

// land forgets a task that is no longer in flight.
func (s *Scheduler) land(id string) {
	f, ok := s.inflight[id]
	if !ok {
		return
	}
	delete(s.inflight, id)
	if ns := s.nodeState(f.runID, f.name); ns != nil {
		ns.active--
	}
}

// ends reports whether update u ends the flight of its task: a terminal
// status or a move back to the queue, for the attempt in flight.
func (s *Scheduler) ends(u model.TaskUpdate) (flight, bool) {
	if !u.Status.Terminal() && u.Status != model.TaskPending {
		return flight{}, false
	}
	f, ok := s.inflight[u.TaskID]
	return f, ok && (u.Attempt == 0 || f.attempt == u.Attempt)
}

func (s *Scheduler) nodeState(runID, name string) *nodeState {
	if rs := s.runs[runID]; rs != nil {
		return rs.byName[name]
	}
	return nil
}

// retries turns the failures in the buffer of attempts that may be retried
// into moves back to the queue, not before their backoff: the task's
// `retries` bounds its failed attempts (interrupted ones do not count); the
// delay grows exponentially from its retry_backoff with each failure, with
// jitter.
func (s *Scheduler) retries(now time.Time) {
	for i, u := range s.buf {
		if u.Status != model.TaskFailed || u.Attempt == 0 {
			continue
		}
		f, ok := s.inflight[u.TaskID]
		if !ok || f.attempt != u.Attempt {
			continue
		}
		ns := s.nodeState(f.runID, f.name)
		failure := f.failures + 1 // this one
		if ns == nil || failure > ns.node.Retries {
			continue
		}
		at := now.Add(model.RetryDelay(ns.node.RetryBackoff, failure))
		u.Status = model.TaskPending
		u.AttemptStatus = string(model.TaskFailed)
		u.RetryAt = &at
		u.Error = fmt.Sprintf("attempt %d failed: %s; retry %d of %d", u.Attempt, u.Error, failure, ns.node.Retries)
		s.buf[i] = u
		s.retryTimes = append(s.retryTimes, at)
		s.log.Warn("task failed; will retry", "run", f.runID, "task", f.name, "task_id", u.TaskID, "attempt", u.Attempt, "retry_at", at.Format(time.RFC3339Nano))
	}
}

// nextWake returns the earliest time the loop must look again: a retry
// coming due or a timeout expiring (zero if none).
func (s *Scheduler) nextWake(now time.Time) time.Time {
	var next time.Time
	kept := s.retryTimes[:0]
	for _, t := range s.retryTimes {
		if t.After(now) {
			kept = append(kept, t)
			if next.IsZero() || t.Before(next) {
				next = t
			}
		} else {
			s.queueDry = false // a retry is due: the claim takes it first
		}
	}
	s.retryTimes = kept
	if d := s.launch.nextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
		next = d
	}
	return next
}

// timeouts stops the attempts whose timeout expired. When the process has
// ended, its attempt is recorded failed "timed out after 30s" (see
// launcher.forward), and the retry rules apply.
func (s *Scheduler) timeouts(ctx context.Context, now time.Time) {
	for _, p := range s.launch.expired(now) {
		t := p.Task
		s.log.Warn("task timed out; stopping it", "run", t.RunID, "task", t.Label(), "attempt", t.Attempt, "timeout", p.Node().Timeout)
		s.stop(ctx, p)
	}
}

// stop asks the task's executor to stop it, if it can.
func (s *Scheduler) stop(ctx context.Context, p model.TaskWithWorkflow) {
	e, err := s.mgr.ForTask(p)
	if err != nil {
		return
	}
	if st, ok := e.(exec.Stopper); ok {
		go func() {
			if err := st.Stop(ctx, p); err != nil {
				s.log.Warn("stop task", "task", p.Task.Label(), "err", err)
			}
		}()
	}
}

// cancels applies the cancel requests of runs: tasks not ended become
// cancelled, the running ones are stopped, tasks not created yet never will
// be, and the run ends cancelled.
// It reports whether it applied them all (false: look again later).
func (s *Scheduler) cancels(ctx context.Context) bool {
	ids, err := s.db.CancelRequests(ctx)
	if err != nil {
		s.log.Error("read cancel requests", "err", err)
		return false
	}
	// Requests for runs another scheduler holds are its to apply; but the
	// holder may be dead, and its runs ours once reaped and claimed: keep
	// looking until no request is left, or one would be missed (the
	// takeover itself signals no change).
	others := false
	if !s.sole {
		all := len(ids)
		ids = s.cancelsToApply(ctx, ids)
		others = len(ids) < all
	}
	if len(ids) == 0 {
		return !others
	}
	// A task that ended before the cancel is recorded as it ended, not
	// cancelled: the exits the executors have reported so far are written
	// first, and a run they complete ends as it would have.
	s.launch.sync(s.add)
	s.flush(ctx)
	if len(s.buf) > 0 {
		return false // the disk refuses writes: look again later
	}
	s.finishRuns(ctx)
	for _, id := range ids {
		if err := s.cancelRun(ctx, id); err != nil {
			s.writeFailed("cancel run "+id, err)
			return false
		}
	}
	return !others
}

// cancelsToApply keeps, of the runs whose cancel is requested, those this
// scheduler applies where several serve the database: the runs it holds —
// it runs their tasks, and stops them — and the runs nobody holds.
func (s *Scheduler) cancelsToApply(ctx context.Context, ids []string) []string {
	var out []string
	for _, id := range ids {
		if s.runs[id] != nil || slices.ContainsFunc(s.waiting, func(r *model.Run) bool { return r.ID == id }) {
			out = append(out, id)
			continue
		}
		if r, err := s.db.GetRun(ctx, id); err == nil && r.Scheduler == "" {
			out = append(out, id)
		}
	}
	return out
}

func (s *Scheduler) cancelRun(ctx context.Context, id string) error {
	// What the run has waiting for a slot does not start.
	var ks []attemptKey
	for tid, f := range s.inflight {
		if f.runID == id {
			ks = append(ks, attemptKey{tid, f.attempt})
		}
	}
	s.launch.cancel(ks)
	stops, n, err := cancelRecords(ctx, s.db, id)
	if err != nil {
		return err
	}
	for _, p := range stops {
		s.stop(ctx, p)
		s.land(p.Task.ID)
	}
	s.untrack(id)
	s.waiting = slices.DeleteFunc(s.waiting, func(r *model.Run) bool { return r.ID == id })
	s.log.Warn("run cancelled", "run", id, "stopped_tasks", len(stops), "cancelled_tasks", n)
	s.wake(id)
	return nil
}

// cancelRecords records the cancel of a run: every task not ended becomes
// cancelled and the run ends cancelled. It returns the tasks that were
// running (to be stopped) and how many tasks it cancelled.
func cancelRecords(ctx context.Context, db model.Database, id string) ([]model.TaskWithWorkflow, int, error) {
	r, err := db.GetRun(ctx, id)
	if err != nil || r.Status.Terminal() {
		return nil, 0, err
	}
	ts, err := db.ListTasks(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	now := time.Now()
	var us []model.TaskUpdate
	var stops []model.TaskWithWorkflow
	for _, t := range ts {
		if t.Status.Terminal() {
			continue
		}
		us = append(us, model.TaskUpdate{TaskID: t.ID, RunID: id, Status: model.TaskCancelled, Error: "cancelled", At: now})
		if t.Status.Active() {
			stops = append(stops, model.TaskWithWorkflow{Task: t, Workflow: r.Workflow})
		}
	}
	if _, err := db.UpdateTasks(ctx, us); err != nil {
		return nil, 0, err
	}
	counts := map[model.TaskStatus]int{}
	for _, t := range ts {
		if t.Status.Terminal() {
			counts[t.Status]++
		} else {
			counts[model.TaskCancelled]++
		}
	}
	if n := r.TaskCount() - len(ts); n > 0 {
		counts[model.TaskCancelled] += n // never created
	}
	if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: id, Status: model.RunCancelled, Error: "cancelled on request", At: now, TaskCounts: counts}}); err != nil {
		return nil, 0, err
	}
	return stops, len(us), nil
}

// CancelRun cancels a run while no scheduler runs (the caller holds the
// scheduler lock): its tasks that did not end become cancelled and the run
// ends cancelled. With a scheduler running, use Database.RequestCancel.
func CancelRun(ctx context.Context, db model.Database, runID string) error {
	_, _, err := cancelRecords(ctx, db, runID)
	return err
}
