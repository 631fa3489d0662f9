// Package sched is ork's scheduler: it finds pending work in a
// model.Database, hands tasks to executors, and records what they report.
//
// One loop does everything, so every decision is made by one goroutine:
//
//  1. Status updates from executors are applied in one batch; a run whose
//     tasks are all terminal is finished (success, or failed naming the
//     failed tasks).
//  2. Runs are claimed (model.Cluster's ClaimRuns; cluster.go): the
//     scheduler keeps the state of each (dag.go) and creates its tasks node
//     by node as they become ready. A run that was running under a
//     scheduler that died has its tasks recovered first (recover).
//  3. Pending tasks, as many as the free slots allow (and as many again,
//     the lookahead), are claimed (model.ClaimTasks): marked dispatched
//     (their attempt number taken, the scheduler's id recorded) in the
//     same batch — before anything starts, so a crash can never hide an
//     attempt — and handed to the launcher, which starts each the moment a
//     running slot frees up, with a bounded number of executor calls in
//     flight (launch.go). Tasks that cannot start are recorded failed; those
//     that could not start for want of disk space, or that never started
//     because the scheduler stopped or died first, go back to the queue with
//     their attempt withdrawn. While the disk refuses writes, nothing starts.
//     A run's task records are created as slots free up, the first ones
//     already dispatched. On a database that writes new records with
//     updates (model.TaskBatchWriter: the file database) or in its claim
//     (model.TaskClaimer: PostgreSQL), the records of the nodes that the
//     batch's ends unblock go in that same batch, so a DAG hop is one
//     durable write; so do a run's next records while the last claim found
//     the queue empty (queueDry), so a loop is one round trip and one
//     commit. A claim creates records only in runs its scheduler holds: a
//     run whose creates it skipped (model.Claimed.Skipped) is another's,
//     and the scheduler starts none of them and forgets the run (lose). On
//     the file database a task's running report waits for the next batch,
//     100 ms at most (hold).
//  4. The runs started in step 2 are marked running.
//  5. The loop sleeps until a status update, a change signalled by the
//     database (model.Notifier: another process triggered a run), or the
//     poll interval.
//
// Beside the loop, a goroutine fires the workflows' schedules: it creates
// the run of each tick, exactly once, and the loop starts it like any
// other (schedule.go).
//
// A write that fails (a full disk) loses nothing: the updates stay queued
// in memory and are written when the disk accepts them again.
//
// At start-up, and when it takes over the runs of a dead peer, the
// scheduler deals with what a dead one left (recover): see
// docs/RELIABILITY.md. Several schedulers may serve a database that is a
// model.Cluster; the rules — run leases, heartbeats, the leader that reaps
// the dead, fencing — are in cluster.go. On any other database one
// scheduler serves it, and the code path is the same.
//
// An attempt cut short by its scheduler is recorded interrupted and does
// not count against the task's retries; a task whose attempts a dying
// scheduler interrupted more than MaxInterruptions times fails.
//
// sched knows model.Database and the exec interfaces only, never a
// concrete backend or executor.
package sched

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// Scheduler runs the loop. Make one with New and call Run.
type Scheduler struct {
	db  model.Database
	mgr *exec.Manager
	cfg Config
	log *slog.Logger
	id  string
	// cluster is the database's model.Cluster, or a soleCluster (sole).
	cluster model.Cluster
	sole    bool
	member  *member
	// hopInBatch: the database writes new tasks with the updates and the
	// claim in one durable batch (a model.TaskBatchWriter served by one
	// scheduler, or a model.TaskClaimer), so the tasks an end unblocks are
	// created with that end, and a run's next tasks with the claim while
	// the queue has nothing to go before them (queueDry).
	hopInBatch bool
	// holdRunning: running reports may wait for a batch to ride with (the
	// file database only; see hold).
	holdRunning bool
	// queueDry: the last claim found no more pending tasks than it took,
	// and nothing went back to the queue since (a retry, a task that did
	// not start, a run taken over). While it holds, a loop's new task
	// records ride in its claim: no pending task is passed over by them.
	queueDry bool
	// gone: runs this scheduler lost (lose): it writes nothing more about
	// them.
	gone map[string]bool

	// Owned by the loop goroutine.
	inflight map[string]flight // by task id: dispatched here and not yet ended
	launch   *launcher
	runs     map[string]*runState // unfinished runs this scheduler is creating tasks for
	order    []*runState          // the same, oldest first
	buf      []model.TaskUpdate   // updates not yet written
	touched  map[string]bool      // runs whose tasks changed since the last completion check
	retryAt  time.Time            // after a failed write, do not write again before this
	// held: running reports that wait for a batch to ride with (see
	// hold), since heldAt.
	held    []model.TaskUpdate
	heldAt  time.Time
	backoff time.Duration
	// retryTimes: when tasks put back in the queue for a retry come due.
	retryTimes []time.Time
	// behind: tasks put back in the queue because their scheduler died
	// while they ran; they start after the other pending tasks (see
	// behindOrder).
	behind map[string]behindTask
	// waiting: runs this scheduler holds that it has not started yet
	// (their workflow has as many runs active as max_active_runs allows),
	// oldest first.
	waiting []*model.Run
	// rescue: runs taken over whose tasks are still to be recovered (a
	// read failed).
	rescue []*model.Run
	// claimMore: one of several schedulers may find runs to claim — at
	// start, after a notification (a new run), a poll, a reaping, a run of
	// its own ending (room under max_active_runs), or a claim that took
	// all it asked for. A claim that took fewer clears it: claiming every
	// loop would cost a round trip each.
	claimMore bool
	// counted: the task counts of the runs claimed this loop, read by
	// claimRuns for startRuns.
	counted map[string]map[model.TaskStatus]int
	// pauseUntil (unix ns): a task could not start because the disk refused
	// a write; dispatch nothing before this.
	pauseUntil atomic.Int64
	// writesFailing: the last write failed (the disk refuses writes);
	// nothing new starts until one succeeds.
	writesFailing atomic.Bool

	drainOnce sync.Once
	drainCh   chan struct{} // closed by Drain

	mu      sync.Mutex
	waiters map[string][]chan struct{} // run id -> closed when the run ends
	running bool

	cfgErr error // from Config.Validate: Run returns it
}

// New returns a scheduler over db that runs tasks with the executors of mgr.
// A Config that does not validate (see Config.Validate) makes Run return
// the validation error at once.
func New(db model.Database, mgr *exec.Manager, cfg Config) *Scheduler {
	cfgErr := cfg.Validate()
	cfg = cfg.WithDefaults()
	if cfg.ID == "" {
		cfg.ID = newID()
	}
	c, ok := db.(model.Cluster)
	if !ok {
		c = &soleCluster{db: db}
	}
	return &Scheduler{
		cfgErr:      cfgErr,
		id:          cfg.ID,
		cluster:     c,
		sole:        !ok,
		holdRunning: holdRunning(db, ok),
		hopInBatch:  holdRunning(db, ok) || isClaimer(db),
		db:          db,
		mgr:         mgr,
		cfg:         cfg,
		log:         cfg.Logger,
		inflight:    make(map[string]flight),
		runs:        make(map[string]*runState),
		touched:     make(map[string]bool),
		gone:        make(map[string]bool),
		behind:      make(map[string]behindTask),
		waiters:     make(map[string][]chan struct{}),
		drainCh:     make(chan struct{}),

		claimMore: true,
		counted:   make(map[string]map[model.TaskStatus]int),
	}
}

// holdRunning reports whether db is the file database's kind: one
// scheduler (not a cluster), new records written with updates in one
// durable batch (model.TaskBatchWriter), no claim of its own.
func holdRunning(db model.Database, cluster bool) bool {
	_, bw := db.(model.TaskBatchWriter)
	return !cluster && bw && !isClaimer(db)
}

// isClaimer reports whether db claims tasks and creates a claim's new
// tasks in one batch (model.TaskClaimer).
func isClaimer(db model.Database) bool {
	_, tc := db.(model.TaskClaimer)
	return tc
}

// Drain makes Run return once the tasks running now have ended, however
// long they take: it starts nothing more (tasks dispatched but not started
// go back to the queue, with no attempt counted) and stops nothing. A
// scheduler that serves one caller's run — `ork trigger --wait` — drains
// when that run has ended, so that it never stops another run's task: the
// next scheduler finds the rest of the work in the queue. If Run's context
// is cancelled meanwhile, Run stops as usual, after its shutdown grace.
func (s *Scheduler) Drain() { s.drainOnce.Do(func() { close(s.drainCh) }) }

// diskRefuses reports whether the disk refuses writes now: a write failed
// and none has succeeded since, or a task could not start for lack of
// space a moment ago. Nothing new starts meanwhile.
func (s *Scheduler) diskRefuses() bool {
	return s.writesFailing.Load() || time.Now().UnixNano() < s.pauseUntil.Load()
}

// mayStart reports whether a task may start now. Not while the disk
// refuses writes: the start of a task could not be recorded, nor its end.
// Not by one of several schedulers whose lease may have run out: its
// dispatched tasks may be another's to run by now.
func (s *Scheduler) mayStart() bool {
	return !s.diskRefuses() && (s.sole || s.member.holds())
}

// ID returns the scheduler's id: host:pid:random unless Config.ID names it.
// Its tasks' records name it, and their processes get it as ORK_SCHEDULER.
func (s *Scheduler) ID() string { return s.id }

// Config returns the scheduler's settings, defaults filled in.
func (s *Scheduler) Config() Config { return s.cfg }

// Run runs the scheduler until ctx is cancelled, then stops dispatching,
// waits up to the shutdown grace for running tasks, stops what still runs
// and puts it back in the queue, and returns nil. It returns an error at
// once if another scheduler holds the database (a *model.LockedError).
func (s *Scheduler) Run(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("scheduler is already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	// One scheduler per database, unless the database is a Cluster.
	if l, ok := s.db.(model.SchedulerLocker); ok && s.sole {
		release, err := l.LockScheduler(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	// Database calls outlive ctx: a stopping scheduler still records what
	// its tasks report.
	dbctx := context.WithoutCancel(ctx)
	s.member = &member{c: s.cluster, lease: s.cfg.Lease, log: s.log,
		info:   model.SchedulerInfo{ID: s.id, Host: hostname(), PID: os.Getpid(), StartedAt: time.Now().UTC()},
		fenced: make(chan struct{}), reaped: make(chan struct{}, 1)}
	if err := s.member.join(ctx); err != nil {
		return fmt.Errorf("join the database's schedulers: %w", err)
	}
	// A clean stop leaves after its last write, so that its unfinished
	// runs are taken at once; a scheduler that was reaped does not.
	leave := true
	defer func() {
		if leave {
			lctx, cancel := context.WithTimeout(dbctx, 10*time.Second)
			defer cancel()
			if err := s.cluster.Leave(lctx, s.id); err != nil {
				s.log.Warn("leave the database's schedulers; the others take its runs when its lease ends", "err", err)
			}
		}
	}()
	beatCtx, stopBeat := context.WithCancel(dbctx)
	var beating sync.WaitGroup
	beating.Add(1)
	go func() { defer beating.Done(); s.member.beat(beatCtx) }()
	defer func() { stopBeat(); beating.Wait() }()
	s.log.Info("scheduler started", "scheduler", s.id, "config", s.cfg.String())
	s.launch = newLauncher(s)
	// The only scheduler recovers what a dead predecessor left before
	// anything starts; one of several takes runs in its loop, as it has
	// room.
	if s.sole {
		if _, err := s.claimRuns(dbctx, 0, true); err != nil {
			return fmt.Errorf("recover unfinished work: %w", err)
		}
	}
	s.launch.run(dbctx)
	launching := true
	defer func() {
		if launching {
			s.launch.halted()
			s.launch.stopped()
		}
	}()
	// Workflows' schedules fire in a goroutine of their own (schedule.go).
	var ticks *schedules
	if !s.cfg.NoSchedules {
		ticks = newSchedules(s.db, s.cfg.Clock, s.log)
	}
	defer ticks.start(ctx)()
	var changes <-chan struct{}
	if n, ok := s.db.(model.Notifier); ok {
		changes = n.Changes()
	}
	updates := s.launch.out
	done := ctx.Done()
	drain := (<-chan struct{})(s.drainCh)
	stopping := false
	lookCancels := true
	var grace <-chan time.Time
	timer := time.NewTimer(s.cfg.PollInterval)
	defer timer.Stop()

	for {
		select {
		case <-s.member.fenced:
			launching, leave = false, false
			return s.fenced(dbctx)
		default:
		}
		s.drain(updates)
		s.timeouts(dbctx, time.Now())
		more := false
		if lookCancels {
			// Only when another process may have asked: a cancel request
			// wakes the loop through the change signal. A stopping
			// scheduler applies it too: it stops the run's tasks now, not
			// at the end of its grace, and leaves no request behind.
			lookCancels = !s.cancels(dbctx)
		}
		if !stopping {
			started, at := s.startRuns(dbctx)
			more = s.step(dbctx, true)
			s.markRunning(dbctx, started, at)
		} else {
			s.step(dbctx, false)
		}
		s.finishRuns(dbctx)
		if stopping && len(s.inflight) == 0 && len(s.buf) == 0 {
			s.log.Info("scheduler stopped")
			return nil
		}
		if more {
			select {
			case <-done: // fall through to the select below, which sees it
			default:
				continue
			}
		}

		wait := s.cfg.PollInterval
		if len(s.buf) > 0 {
			wait = min(wait, time.Until(s.retryAt))
		}
		if len(s.held) > 0 {
			wait = min(wait, time.Until(s.heldAt.Add(runningHold)))
		}
		if next := s.nextWake(time.Now()); !next.IsZero() {
			wait = min(wait, time.Until(next))
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-drain:
			drain = nil
			if !stopping {
				stopping = true
				s.haltLaunches()
				if len(s.inflight) > 0 {
					s.log.Info("draining: waiting for running tasks to end", "tasks", len(s.inflight))
				}
			}
		case <-done:
			done = nil
			stopping = true
			s.haltLaunches()
			if len(s.inflight) > 0 {
				s.log.Info("stopping: waiting for running tasks", "tasks", len(s.inflight), "grace", s.cfg.ShutdownGrace)
			}
			if s.cfg.ShutdownGrace > 0 {
				grace = time.After(s.cfg.ShutdownGrace)
			} else {
				c := make(chan time.Time, 1)
				c <- time.Now()
				grace = c
			}
		case u := <-updates:
			s.add(u)
		case <-changes:
			lookCancels, s.claimMore = true, true
			ticks.poke() // a workflow may have been edited
		case <-timer.C:
			lookCancels, s.claimMore = true, true
		case <-grace:
			launching = false
			s.stopInflight(dbctx)
			return nil
		case <-s.member.reaped:
			// Runs were freed: take some if there is room.
			s.claimMore = true
		case <-s.member.fenced:
			launching, leave = false, false
			return s.fenced(dbctx)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// diedLast reports whether the last attempt of t was interrupted because
// its scheduler died.
func diedLast(t *model.Task) bool {
	n := len(t.Attempts)
	return n > 0 && t.Attempts[n-1].Status == model.AttemptInterrupted && strings.HasPrefix(t.Attempts[n-1].Error, model.SchedulerDied)
}

// lastEnd is when the last attempt of t ended (zero if none).
func lastEnd(t *model.Task) time.Time {
	if n := len(t.Attempts); n > 0 && t.Attempts[n-1].FinishedAt != nil {
		return *t.Attempts[n-1].FinishedAt
	}
	return time.Time{}
}

// toCreate reports whether run runID has tasks that are ready to be
// created and started (see materialize).
func (s *Scheduler) toCreate(runID string) bool {
	rs := s.runs[runID]
	if rs == nil {
		return false
	}
	for _, ns := range rs.nodes {
		if ns.missing() > 0 && rs.decide(ns) && ns.skip == "" {
			return true
		}
	}
	return false
}

// haltLaunches stops starting tasks; those dispatched but not started go
// back to the queue now, with no attempt counted: they never started.
func (s *Scheduler) haltLaunches() {
	for _, p := range s.launch.halted() {
		s.buf = append(s.buf, unstarted(p.Task, ""))
	}
}

// drain moves every update waiting in the channel into the buffer.
func (s *Scheduler) drain(updates <-chan model.TaskUpdate) {
	for {
		select {
		case u := <-updates:
			s.add(u)
		default:
			return
		}
	}
}

// add buffers an update from the launcher, naming the scheduler of the
// attempt it is about: this one, or the one whose attempt it adopted.
func (s *Scheduler) add(u model.TaskUpdate) {
	if u.Scheduler == "" {
		u.Scheduler = s.id
		if f, ok := s.inflight[u.TaskID]; ok && (u.Attempt == 0 || f.attempt == u.Attempt) && f.sched != "" {
			u.Scheduler = f.sched
		}
	}
	s.buf = append(s.buf, u)
}

// flush writes the buffered updates in one batch, dispatching nothing.
func (s *Scheduler) flush(ctx context.Context) { s.step(ctx, false) }

// step is one batch: the buffered status updates and, when dispatch is
// set, as many pending tasks as there are free slots, marked dispatched —
// all in one write, so one sync serves both. Then the newly dispatched
// tasks are handed to their executors. On a failed write everything stays
// buffered and is tried again after a backoff. step reports whether
// another step may find more to do at once.
func (s *Scheduler) step(ctx context.Context, dispatch bool) bool {
	if time.Now().Before(s.retryAt) {
		return false
	}
	limit := 0
	if dispatch && s.diskRefuses() {
		dispatch = false
	}
	if dispatch {
		free := s.cfg.MaxRunningTasks + s.cfg.Lookahead() - len(s.inflight)
		for _, u := range s.buf {
			if _, ok := s.ends(u); ok {
				free++
			}
		}
		limit = max(min(free, s.cfg.MaxTasksPerBatch), 0)
	}
	var starts []model.TaskWithWorkflow
	claimed := 0
	more := false
	s.hold(dispatch)
	if len(s.buf) > 0 || limit > 0 {
		now := time.Now()
		s.retries(now)
		ups := s.buf
		// The attempt is counted durably before the task starts (the claim
		// marks it dispatched): a crash after the start is then always
		// visible as an attempt.
		c := model.Claim{Scheduler: s.id, Limit: limit, Updates: ups, At: now}
		if limit > 0 {
			c.Last, c.Skip = s.behindOrder()
			c.SkipNodes = s.fullNodes()
		}
		// The tasks that the ends in this batch unblock are created in the
		// same batch (dispatched, or skipped): one durable write per hop.
		// While the queue has nothing to go first (queueDry), so are the
		// next tasks of every run: one round trip and one commit a loop.
		var sp *speculation
		var plan *taskPlan
		if dispatch && s.hopInBatch && len(s.order) > 0 {
			sp = s.predict()
			switch {
			case s.queueDry:
				plan = s.planTasks(limit, now, nil)
			case sp != nil:
				plan = s.planTasks(limit, now, sp.unblocked)
			}
			if plan != nil {
				c.Create = plan.tasks
				c.Limit = max(limit-len(plan.starts), 0)
			}
		}
		res, err := model.ClaimTasks(ctx, s.db, c)
		failed, err := s.written("record task status", err)
		if err != nil {
			sp.undo()
		}
		if errors.Is(err, model.ErrFenced) {
			s.member.fence(err)
			return false
		}
		if err != nil {
			s.writeFailed("record task status", err)
			return false
		}
		s.writeOK()
		dry := s.queueDry
		if c.Limit > 0 {
			dry = len(res.Tasks) < c.Limit
		}
		for _, u := range ups {
			if u.Status == model.TaskPending {
				dry = false // back in the queue
			}
		}
		s.queueDry = dry
		var lost map[string]bool
		if plan != nil {
			created := s.applyPlan(plan, failed)
			if sp != nil && !sp.landed(res.Changed, failed) {
				s.log.Error("an end this batch counted on was not recorded: the tasks created after it do not start, and their run waits (see `ork doctor`)")
				created = s.blocked(created, plan.tasks, sp.hop(s, created))
			}
			created, lost = s.skipped(created, plan.tasks, res.Skipped)
			for _, p := range created {
				s.fly(p)
			}
			starts = append(starts, created...)
			claimed += len(plan.starts)
			more = more || len(plan.tasks) > 0
		}
		for _, u := range ups {
			if _, ok := s.ends(u); ok {
				s.land(u.TaskID)
			}
			s.touched[u.RunID] = true
		}
		for id := range lost {
			s.lose(id)
		}
		s.buf = s.buf[:0]
		for _, t := range res.Changed {
			if !t.Status.Terminal() {
				continue
			}
			s.land(t.ID)
			if !sp.predicted(t) {
				s.observe(t)
			}
			delete(s.behind, t.ID)
			more = true // a node downstream may be ready now
			lvl := slog.LevelDebug
			if t.Status == model.TaskFailed {
				lvl = slog.LevelWarn
			}
			s.log.Log(ctx, lvl, "task finished", "run", t.RunID, "task", t.Label(), "status", t.Status, "attempt", t.Attempt, "exit_code", exitCode(t.ExitCode), "err", t.Error)
		}
		claimed += len(res.Tasks)
		fromQueue := s.withinMaxParallel(res.Tasks)
		for i := range fromQueue {
			fromQueue[i].Upstream = s.upstreamOf(fromQueue[i].Task)
			delete(s.behind, fromQueue[i].Task.ID)
			s.fly(fromQueue[i])
		}
		starts = append(starts, fromQueue...)
		more = more || (len(res.Tasks) > 0 && len(res.Tasks) == c.Limit)
	}
	if dispatch && len(s.order) > 0 {
		created, progressed := s.materialize(ctx, limit-claimed)
		for _, p := range created {
			s.fly(p)
		}
		starts = append(starts, created...)
		more = more || progressed
	}
	s.start(ctx, starts)
	return more || len(s.buf) > 0
}

// hold keeps back, in s.held, the running reports that may wait for a
// batch to ride with (the task's end, the next dispatch) rather than take a
// commit of their own while nothing else is to be written; they go back
// in front of the buffer when anything else is to be written, when their
// time is up (runningHold), or when dispatch is not set (a flush).
//
// Only on the file database (one scheduler, whose start-up finds an
// attempt begun from its log file even when its start was not recorded),
// and only reports of tasks whose executor can tell whether an attempt
// began (exec.StartProber): nothing a crash needs is lost by the wait —
// an attempt recorded dispatched whose process had begun is counted as
// one that ran (see docs/RELIABILITY.md).
func (s *Scheduler) hold(dispatch bool) {
	if dispatch && s.holdRunning {
		keep := s.buf[:0]
		for _, u := range s.buf {
			if f, ok := s.inflight[u.TaskID]; ok && f.probed && u.Status == model.TaskRunning {
				if len(s.held) == 0 {
					s.heldAt = time.Now()
				}
				s.held = append(s.held, u)
				continue
			}
			keep = append(keep, u)
		}
		clear(s.buf[len(keep):])
		s.buf = keep
	}
	if len(s.held) == 0 {
		return
	}
	if len(s.buf) > 0 || !dispatch || !time.Now().Before(s.heldAt.Add(runningHold)) {
		s.buf = append(s.held, s.buf...) // the held reports came first
		s.held = nil
		s.heldAt = time.Time{}
	}
}

// runningHold is the longest a task's running report waits for a batch
// to ride with.
const runningHold = 100 * time.Millisecond

func exitCode(c *int) any {
	if c == nil {
		return nil
	}
	return *c
}

// start hands dispatched tasks to the launcher, which starts each as soon
// as a running slot is free.
func (s *Scheduler) start(ctx context.Context, ps []model.TaskWithWorkflow) {
	for _, p := range ps {
		s.launch.ready <- p // never blocks: inflight tasks fit in ready
	}
}

// writesBack is logged when a write succeeds after one failed: from then
// on tasks start again.
const writesBack = "the disk accepts writes again; tasks start again"

func (s *Scheduler) writeFailed(what string, err error) {
	if s.backoff == 0 {
		s.backoff = 50 * time.Millisecond
	} else {
		s.backoff = min(2*s.backoff, s.cfg.PollInterval)
	}
	s.retryAt = time.Now().Add(s.backoff)
	s.writesFailing.Store(true)
	s.log.Error(what+" failed; will retry, nothing is lost", "err", err, "retry_in", s.backoff)
}

func (s *Scheduler) writeOK() {
	if s.writesFailing.Swap(false) {
		s.log.Info(writesBack)
	}
	s.backoff = 0
	s.retryAt = time.Time{}
}

// startRuns takes pending runs: the scheduler tracks each, and step creates
// its tasks. It returns the runs to mark running. Runs whose workflow is
// missing fail at once.
func (s *Scheduler) startRuns(ctx context.Context) ([]string, time.Time) {
	if len(s.buf) > 0 {
		return nil, time.Time{} // the disk refused a write: do not add more work
	}
	// Claim runs: a sole scheduler takes every pending run; one of
	// several claims a few at a time, only while it has free running
	// slots, so that it never holds work a peer could run, and only when
	// there may be runs to claim (claimMore).
	limit := 0
	if !s.sole {
		limit = min(s.cfg.MaxRunningTasks-len(s.inflight), claimRunsAtOnce)
	}
	if s.sole || (limit > 0 && s.claimMore) || len(s.rescue) > 0 {
		if n, err := s.claimRuns(ctx, max(limit, 0), false); errors.Is(err, model.ErrFenced) {
			s.member.fence(err)
			return nil, time.Time{}
		} else if err != nil {
			s.log.Error("claim runs", "err", err)
		} else if limit > 0 && n < limit {
			s.claimMore = false // none left to claim
		}
	}
	runs := s.waiting
	if len(runs) == 0 {
		return nil, time.Time{}
	}
	s.waiting = nil
	now := time.Now()
	var ids []string
	var bad []model.RunUpdate
	// max_active_runs: a sole scheduler sees every run; one of several is
	// leased no run beyond it (ClaimRuns counts the whole cluster's), and
	// the count here keeps it so among the runs it holds.
	active := map[string]int{} // runs of each workflow running now
	for _, rs := range s.order {
		active[rs.run.WorkflowName]++
	}
	var fresh []*model.Run // runs to track: their tasks are counted at once
	for i, r := range runs {
		if len(ids)+len(fresh) == s.cfg.MaxTasksPerBatch {
			s.waiting = append(s.waiting, runs[i:]...)
			break
		}
		if r.Workflow != nil && r.Workflow.MaxActiveRuns > 0 && s.runs[r.ID] == nil && active[r.WorkflowName] >= r.Workflow.MaxActiveRuns {
			s.waiting = append(s.waiting, r)
			continue // waits, pending, for a run of its workflow to end
		}
		if r.Workflow == nil {
			bad = append(bad, model.RunUpdate{RunID: r.ID, Status: model.RunFailed, At: now,
				Error: fmt.Sprintf("workflow %q not found: the run has no copy of it and no workflow file loads", r.WorkflowName)})
			continue
		}
		if s.runs[r.ID] != nil {
			ids = append(ids, r.ID)
			continue // marking it running failed last time
		}
		fresh = append(fresh, r)
		active[r.WorkflowName]++
	}
	// A scheduler that died while starting a run may have created some of
	// its tasks: count on those. The counts of runs claimed this loop were
	// read by claimRuns.
	var toCount []string
	for _, r := range fresh {
		if _, ok := s.counted[r.ID]; !ok {
			toCount = append(toCount, r.ID)
		}
	}
	all, err := model.RunTaskCounts(ctx, s.db, toCount)
	if err != nil {
		s.log.Error("count tasks", "runs", len(toCount)-len(all), "err", err)
	}
	for _, r := range fresh {
		counts, ok := s.counted[r.ID]
		if !ok {
			counts, ok = all[r.ID]
		}
		if !ok {
			s.waiting = append(s.waiting, r)
			continue
		}
		var existing []*model.Task
		if len(counts) > 0 {
			if existing, err = s.db.ListTasks(ctx, r.ID); err != nil {
				s.log.Error("list tasks", "run", r.ID, "err", err)
				s.waiting = append(s.waiting, r)
				continue
			}
		}
		ids = append(ids, r.ID)
		s.track(r, existing)
		s.log.Info("run started", "run", r.ID, "workflow", r.WorkflowName, "tasks", r.TaskCount())
	}
	clear(s.counted)
	if len(bad) > 0 {
		if _, err := s.written("fail runs without a workflow", s.db.UpdateRuns(ctx, bad)); err != nil {
			s.log.Error("fail runs without a workflow", "err", err)
		}
		for _, u := range bad {
			s.log.Error("run failed", "run", u.RunID, "err", u.Error)
			s.wake(u.RunID)
		}
	}
	return ids, now
}

// claimRunsAtOnce bounds the runs one of several schedulers claims in one
// loop.
const claimRunsAtOnce = 4

// markRunning marks started runs running in one batch. It runs after the
// first dispatch, to keep a write off the path from trigger to first task
// start; at is when the scheduler took them.
func (s *Scheduler) markRunning(ctx context.Context, ids []string, at time.Time) {
	if len(ids) == 0 {
		return
	}
	now := at
	us := make([]model.RunUpdate, 0, len(ids))
	for _, id := range ids {
		if s.gone[id] {
			continue // lost in the claim that followed its start (lose)
		}
		us = append(us, model.RunUpdate{RunID: id, Status: model.RunRunning, At: now})
		s.touched[id] = true
	}
	if len(us) == 0 {
		return
	}
	if _, err := s.written("mark runs running", s.db.UpdateRuns(ctx, us)); err != nil {
		s.log.Error("mark runs running", "err", err)
	}
}

func (s *Scheduler) execute(ctx context.Context, p model.TaskWithWorkflow) error {
	if p.Workflow == nil {
		return errors.New("the run has no workflow")
	}
	e, err := s.mgr.ForTask(p)
	if err != nil {
		return err
	}
	_, err = e.Execute(ctx, p)
	return err
}

// finishRuns ends every touched run whose tasks are all terminal.
func (s *Scheduler) finishRuns(ctx context.Context) {
	if len(s.touched) == 0 {
		return
	}
	var us []model.RunUpdate
	// Runs whose records could not be read stay touched: the next loop
	// looks at them again, so a failed read never leaves a run unfinished.
	var unread []string
	now := time.Now()
	ids := make([]string, 0, len(s.touched))
	for id := range s.touched {
		if s.gone[id] {
			continue // another scheduler's now (lose)
		}
		if rs := s.runs[id]; rs != nil && !rs.allCreated() {
			continue // not all its tasks exist yet
		}
		ids = append(ids, id)
	}
	all, err := model.RunTaskCounts(ctx, s.db, ids)
	if err != nil {
		s.log.Error("count tasks; will look again", "runs", len(ids)-len(all), "err", err)
	}
	for _, id := range ids {
		counts, ok := all[id]
		if !ok {
			unread = append(unread, id)
			continue
		}
		total, done := 0, 0
		for st, n := range counts {
			total += n
			if st.Terminal() {
				done += n
			}
		}
		if total == 0 || done < total {
			continue
		}
		r, err := s.db.GetRun(ctx, id)
		if err != nil {
			s.log.Error("read run; will look again", "run", id, "err", err)
			unread = append(unread, id)
			continue
		}
		if r.Status.Terminal() || total < r.TaskCount() {
			continue
		}
		u := model.RunUpdate{RunID: id, Status: model.RunSuccess, At: now, TaskCounts: counts}
		switch {
		case counts[model.TaskFailed] > 0:
			u.Status = model.RunFailed
			u.Error = s.failedTasks(ctx, id, counts[model.TaskFailed], total)
		case counts[model.TaskCancelled] > 0:
			u.Status = model.RunCancelled
		}
		us = append(us, u)
	}
	if len(us) > 0 {
		failed, err := s.written("finish runs", s.db.UpdateRuns(ctx, us))
		if err != nil {
			s.log.Error("finish runs; will retry", "err", err)
			return
		}
		for _, u := range us {
			if failed[u.RunID] {
				continue
			}
			lvl := slog.LevelInfo
			if u.Status != model.RunSuccess {
				lvl = slog.LevelWarn
			}
			s.log.Log(ctx, lvl, "run finished", "run", u.RunID, "status", u.Status, "err", u.Error)
			s.untrack(u.RunID)
			s.claimMore = true // its workflow may have room for another (max_active_runs)
			s.wake(u.RunID)
		}
	}
	clear(s.touched)
	for _, id := range unread {
		s.touched[id] = true
	}
}

// failedTasks describes the failed tasks of a run for its error.
func (s *Scheduler) failedTasks(ctx context.Context, runID string, failed, total int) string {
	ts, err := s.db.ListTasks(ctx, runID)
	if err != nil {
		return fmt.Sprintf("%d of %d tasks failed", failed, total)
	}
	var names []string
	for _, t := range ts {
		if t.Status != model.TaskFailed {
			continue
		}
		if len(names) == 10 {
			names = append(names, fmt.Sprintf("and %d more", failed-10))
			break
		}
		names = append(names, t.Label())
	}
	return fmt.Sprintf("%d of %d tasks failed: %s", failed, total, strings.Join(names, ", "))
}

// stopInflight stops the tasks still running when the grace period is over
// and puts them back in the queue, so the next scheduler runs them again as
// a new attempt. A task that ends on its own meanwhile keeps its result.
func (s *Scheduler) stopInflight(ctx context.Context) {
	stopped := make(map[string]int, len(s.inflight))
	for id, f := range s.inflight {
		stopped[id] = f.attempt
	}
	s.launch.halted() // tasks not started yet stay dispatched, and are requeued below
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.mgr.Shutdown(sctx); err != nil {
		s.log.Error("stop executors", "err", err)
	}
	s.launch.stopped()
	// Updates sent before the executors stopped still count; a failure
	// caused by the stop itself does not.
	s.drain(s.launch.out)
	stoppedBy := func(a int) string { return fmt.Sprintf("attempt %d stopped by scheduler shutdown", a) }
	for i, u := range s.buf {
		if a, ok := stopped[u.TaskID]; ok && a == u.Attempt && u.Status == model.TaskFailed {
			s.buf[i] = interrupted(&model.Task{ID: u.TaskID, RunID: u.RunID, Attempt: a, Scheduler: u.Scheduler}, stoppedBy(a))
		}
	}
	s.flush(ctx)
	if len(s.inflight) > 0 {
		active, err := s.db.ActiveTasks(ctx)
		if err != nil {
			s.log.Error("list stopped tasks; the next scheduler will recover them", "err", err)
		}
		for _, p := range active {
			if f, ok := s.inflight[p.Task.ID]; ok && f.attempt == p.Task.Attempt {
				s.buf = append(s.buf, interrupted(p.Task, stoppedBy(f.attempt)))
			}
		}
		s.flush(ctx)
	}
	s.log.Info("scheduler stopped", "stopped_tasks", len(stopped))
}

// interrupted is the update that puts a task whose attempt was cut short
// by its scheduler back in the queue: the attempt is recorded interrupted,
// and does not count against the task's retries.
func interrupted(t *model.Task, why string) model.TaskUpdate {
	return model.TaskUpdate{TaskID: t.ID, RunID: t.RunID, Attempt: t.Attempt, Status: model.TaskPending,
		AttemptStatus: string(model.AttemptInterrupted), Error: why, At: time.Now(), Scheduler: t.Scheduler}
}

// unstarted is the update that puts a dispatched task that never started
// back in the queue: its attempt is withdrawn (no record, the attempt number
// it had before).
func unstarted(t *model.Task, why string) model.TaskUpdate {
	return model.TaskUpdate{TaskID: t.ID, RunID: t.RunID, Attempt: t.Attempt, Status: model.TaskPending,
		Unstarted: true, Error: why, At: time.Now(), Scheduler: t.Scheduler}
}

// interruptionDelay is how long a task waits, back in the queue, after its
// k-th interruption by a dying scheduler. After the first it does not wait:
// a scheduler restarted after one crash resumes where it was. After more,
// it waits about 250ms, doubling with each further interruption, up to 4s,
// the exact time drawn at random between half and one and a half times
// that: a task that was running when its scheduler died again and again is
// not among the first to start after the next restart, where the next
// crash of a scheduler that keeps dying would find it again.
func interruptionDelay(k int) time.Duration {
	if k <= 1 {
		return 0
	}
	d := min(250*time.Millisecond<<min(k-2, 8), 4*time.Second)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// recover deals with what a previous scheduler left behind, before the loop
// starts, looking at unfinished work only:
//   - processes its tasks left running on this machine are killed (Sweep,
//     for the tasks recorded as unfinished only);
//   - an attempt the executor still runs is adopted; one that ended is
//     recorded;
//   - an attempt that never started (no start recorded, and the executor
//     says it never began) is withdrawn: the task goes back to pending with
//     the attempt number it had, and no attempt record;
//   - an attempt that started is recorded interrupted and the task goes
//     back to the queue, not counted against its retries — unless the
//     task's attempts were interrupted by a dying scheduler more than
//     MaxInterruptions times: then it fails;
//   - runs whose tasks had all ended are finished.
//
// It looks at the active tasks of the runs named in runs (all active tasks
// if runs is nil: a sole scheduler's start). The same code serves a
// scheduler's start and its takeover of the runs of a dead peer. Every
// update it writes names the attempt and the scheduler it read, so it
// never lands on a later attempt.
func (s *Scheduler) recover(ctx context.Context, runs map[string]bool) error {
	all, err := s.db.ActiveTasks(ctx)
	if err != nil {
		return err
	}
	var active []model.TaskWithWorkflow
	for _, p := range all {
		if runs != nil && !runs[p.Task.RunID] {
			continue
		}
		if f, ok := s.inflight[p.Task.ID]; ok && f.attempt == p.Task.Attempt {
			continue // adopted already (a takeover tried again)
		}
		active = append(active, p)
	}
	if len(active) == 0 {
		return nil
	}
	// First stop whatever the tasks of a dead scheduler left running on
	// this machine (children that outlived their script), so that a task
	// run again never runs twice at the same time.
	if n, err := s.mgr.Sweep(ctx, active); err != nil {
		s.log.Warn("sweeping processes left by the tasks of a dead scheduler", "err", err)
	} else if n > 0 {
		s.log.Warn("stopped processes that unfinished tasks of a dead scheduler left running", "processes", n)
	}
	type checked struct {
		known bool
		began bool
		u     exec.StatusUpdate
	}
	res := make([]checked, len(active))
	sem := make(chan struct{}, s.cfg.MaxConcurrentStatusChecks)
	var wg sync.WaitGroup
	for i, p := range active {
		res[i].began = true
		if p.Workflow == nil {
			continue
		}
		e, err := s.mgr.ForTask(p)
		if err != nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, known, err := e.Check(ctx, p)
			if err != nil {
				s.log.Warn("status check failed; treating the task as lost", "task", p.Task.Label(), "err", err)
				return
			}
			res[i].known, res[i].u = known, u
			t := p.Task
			if known || t.Status != model.TaskDispatched || t.StartedAt != nil || t.ExecutionName != "" {
				return
			}
			// Whether an attempt began is told by what it left on the
			// host that started it (its log): an attempt another host
			// dispatched may have begun there, so it counts. (A sole
			// scheduler's directory holds the logs whatever the host's
			// name: a machine renamed since asks them as before.)
			if pr, ok := e.(exec.StartProber); ok && (s.sole || dispatchedHere(t.Scheduler)) {
				began, err := pr.Began(ctx, p)
				if err != nil {
					s.log.Warn("cannot tell whether an attempt began; counting it", "task", t.Label(), "err", err)
					began = true
				}
				res[i].began = began
			}
		}()
	}
	wg.Wait()
	now := time.Now()
	limit := max(s.cfg.MaxInterruptions, 0)
	var us []model.TaskUpdate
	for i, p := range active {
		t := p.Task
		if res[i].known {
			s.fly(p) // adopted
			s.launch.occupy(attemptKey{t.ID, t.Attempt})
			if res[i].u.Status.Terminal() {
				s.buf = append(s.buf, res[i].u.TaskUpdate())
			}
			continue
		}
		if !res[i].began {
			u := unstarted(t, "")
			u.At = now
			us = append(us, u)
			s.log.Info("withdrew an attempt of a dead scheduler that never started", "run", t.RunID, "task", t.Label(), "attempt", t.Attempt)
			continue
		}
		k := t.Interruptions() + 1
		u := interrupted(t, fmt.Sprintf("%s while running attempt %d; running it again", model.SchedulerDied, t.Attempt))
		u.At = now
		if k > limit {
			u.Status, u.AttemptStatus = model.TaskFailed, ""
			u.Error = fmt.Sprintf("%s while running attempt %d: its attempts were interrupted %d times, more than max-interruptions (%d) allows; the task may be what kills its scheduler",
				model.SchedulerDied, t.Attempt, k, limit)
		} else {
			s.behind[t.ID] = behindTask{runID: t.RunID, k: k, end: now}
			if d := interruptionDelay(k); d > 0 {
				at := now.Add(d)
				u.RetryAt = &at
				s.retryTimes = append(s.retryTimes, at)
			}
		}
		s.log.Warn("recovered a task of a dead scheduler", "run", t.RunID, "task", t.Label(), "attempt", t.Attempt, "interruptions", k, "now", u.Status)
		us = append(us, u)
	}
	if len(us) > 0 {
		if _, err := s.db.UpdateTasks(ctx, us); err != nil {
			if _, err := s.written("recover tasks", err); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimRuns leases up to limit runs to this scheduler (0: as many as the
// cluster gives: a sole scheduler takes every pending run). A claimed run
// that was running — its scheduler died — is recovered (recover) and
// tracked at once; so is a pending one whose tasks a dead scheduler had
// begun to dispatch. The pending runs wait in s.waiting for startRuns.
// At start it is the recovery of what a dead predecessor left: an error is
// returned, and the runs whose tasks had all ended are finished before
// anything new is dispatched.
func (s *Scheduler) claimRuns(ctx context.Context, limit int, start bool) (int, error) {
	runs, err := s.cluster.ClaimRuns(ctx, s.id, limit)
	if err != nil {
		return 0, err
	}
	clear(s.counted)
	if s.sole {
		s.waiting = s.waiting[:0] // it sees every pending run again
	}
	var pending []*model.Run // claimed pending runs: their tasks are counted at once
	for _, r := range runs {
		if s.runs[r.ID] != nil && r.Status == model.RunRunning {
			continue
		}
		if r.Status == model.RunRunning {
			s.rescue = append(s.rescue, r)
			continue
		}
		s.waiting = append(s.waiting, r)
		if s.sole {
			continue // at start, recover looks at every active task
		}
		pending = append(pending, r)
	}
	if len(pending) > 0 {
		ids := make([]string, len(pending))
		for i, r := range pending {
			ids[i] = r.ID
		}
		all, err := model.RunTaskCounts(ctx, s.db, ids)
		if err != nil {
			s.log.Error("count tasks", "runs", len(ids)-len(all), "err", err)
		}
		for _, r := range pending {
			counts, ok := all[r.ID]
			if !ok || counts[model.TaskDispatched]+counts[model.TaskRunning] > 0 {
				s.rescue = append(s.rescue, r)
				continue
			}
			s.counted[r.ID] = counts // startRuns needs them too
		}
	}
	if len(s.rescue) == 0 && !(start && s.sole) {
		return len(runs), nil
	}
	var ids map[string]bool
	if !(start && s.sole) {
		ids = make(map[string]bool, len(s.rescue))
		for _, r := range s.rescue {
			ids[r.ID] = true
		}
	}
	if err := s.recover(ctx, ids); err != nil {
		if start {
			return 0, err
		}
		s.log.Error("recover the tasks of runs taken over; will try again", "runs", len(s.rescue), "err", err)
		return len(runs), nil
	}
	rescued := s.rescue
	s.rescue = nil
	for _, r := range rescued {
		if r.Status != model.RunRunning {
			continue // started by startRuns, which reads its tasks
		}
		existing, err := s.db.ListTasks(ctx, r.ID)
		if err != nil {
			if start {
				return 0, err
			}
			s.log.Error("list tasks of a run taken over; will try again", "run", r.ID, "err", err)
			s.rescue = append(s.rescue, r)
			continue
		}
		s.track(r, existing)
		// A run whose tasks had all ended is finished now. (Only it: the
		// others are finished by the loop when their last task ends.)
		s.touched[r.ID] = true
		if !start {
			s.log.Warn("took over a run whose scheduler died", "run", r.ID, "workflow", r.WorkflowName)
		}
	}
	if start {
		s.finishRuns(ctx)
	}
	return len(runs), nil
}

// wake tells WaitRun callers that a run ended.
func (s *Scheduler) wake(runID string) {
	s.mu.Lock()
	ws := s.waiters[runID]
	delete(s.waiters, runID)
	s.mu.Unlock()
	for _, c := range ws {
		close(c)
	}
}

// WaitRun blocks until the run has ended (on this scheduler or before) or
// ctx is done, and returns the run as recorded. A run that does not exist
// is an error at once; any other failure to read it is retried.
func (s *Scheduler) WaitRun(ctx context.Context, runID string) (*model.Run, error) {
	failures := 0
	for {
		c := make(chan struct{})
		s.mu.Lock()
		s.waiters[runID] = append(s.waiters[runID], c)
		s.mu.Unlock()
		wait := s.cfg.PollInterval
		r, err := s.db.GetRun(ctx, runID)
		switch {
		case err != nil && (errors.Is(err, model.ErrNotFound) || ctx.Err() != nil):
			s.unwait(runID, c)
			return nil, err
		case err != nil:
			// A database that failed once (a dropped connection, a
			// restart) is asked again, as the scheduler's own loop does:
			// the run goes on meanwhile, and waiting for it must too.
			failures++
			s.log.Warn("reading the run failed; trying again", "run", runID, "err", err)
			wait = min(wait, time.Duration(failures)*100*time.Millisecond, time.Second)
		case r.Status.Terminal():
			s.unwait(runID, c)
			return r, nil
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
			s.unwait(runID, c)
			return nil, ctx.Err()
		case <-c:
		case <-time.After(wait):
			s.unwait(runID, c)
		}
	}
}

// unwait takes back a WaitRun's channel that wake did not close, so that
// a long wait's looks do not pile up channels.
func (s *Scheduler) unwait(runID string, c chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := slices.DeleteFunc(s.waiters[runID], func(x chan struct{}) bool { return x == c })
	if len(ws) == 0 {
		delete(s.waiters, runID)
	} else {
		s.waiters[runID] = ws
	}
}
