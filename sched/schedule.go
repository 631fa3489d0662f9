package sched

// Schedules: the scheduler makes the runs of workflows that carry a
// "schedule", one per tick, in a goroutine of its own beside the loop.
//
//  1. It reads the workflows (at start, then after a change the database
//     signals — at most once a second — and every reloadMax as a safety net)
//     and keeps, per scheduled workflow, the parsed ticks and the next time
//     it must look at it.
//  2. It sleeps on one timer set to the earliest of those times: a tick
//     fires when it comes, not at the next poll.
//  3. For a workflow whose time has come it reads the schedule's state
//     (model.ScheduleStore) and takes the ticks due: those after Through
//     up to now — the latest one, or with catchup up to model.MaxCatchup of
//     them. Paused, or (overlap "skip") with the schedule's last run
//     unfinished, the ticks pass without runs (AdvanceSchedule). Otherwise
//     each is claimed with ClaimTick, which creates its run atomically
//     unless the tick is claimed already; the database's change signal
//     then wakes the loop, which starts the run like any other.
//
// A schedule seen for the first time starts at that moment: its first run
// is at its first tick after it. So does one whose cron expression or time
// zone is edited — seen by a running scheduler, or by one that starts and
// finds the state recorded for another expression (ScheduleState.Spec):
// the ticks of the old expression are not caught up under the new one. A
// workflow that no longer loads stops firing until it does again.

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/ork-run/ork/model"
)

// Clock tells the schedules the time and wakes them. The default is the
// system clock; tests inject one they move by hand.
type Clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

const (
	// reloadMin: workflows are read again at most this often when the
	// database signals changes.
	reloadMin = time.Second
	// reloadMax: and at least this often, in case a signal was lost (or
	// the database gives none).
	reloadMax = 10 * time.Second
	// retryAfter: a schedule whose state could not be read or written is
	// looked at again after this long.
	retryAfter = time.Second
)

// schedules fires the schedules of the workflows in db. Make one with
// newSchedules; run runs it.
type schedules struct {
	db    model.Database
	store model.ScheduleStore
	clock Clock
	log   *slog.Logger
	wake  chan struct{} // buffer of one: the workflows may have changed

	// Owned by the goroutine that calls load and pass.
	entries  map[string]*scheduleEntry // by workflow name
	loaded   bool
	lastLoad time.Time
}

// scheduleEntry is one scheduled workflow, as last read.
type scheduleEntry struct {
	sched   model.Schedule
	ticks   *model.Ticks
	created time.Time // the workflow's created_at
	// due is when to look at the schedule next; zero: at once.
	due time.Time
	// quiet: a paused tick was logged; the next ones are not, until the
	// schedule fires again.
	quiet bool
	// stateErr: the error reading the schedule's state last logged, so
	// that a damaged state file is reported once, not every second.
	stateErr string
}

// newSchedules returns the schedules of db, or nil when db keeps no
// schedule state.
func newSchedules(db model.Database, clock Clock, log *slog.Logger) *schedules {
	store, ok := db.(model.ScheduleStore)
	if !ok {
		return nil
	}
	if clock == nil {
		clock = systemClock{}
	}
	return &schedules{
		db:      db,
		store:   store,
		clock:   clock,
		log:     log,
		wake:    make(chan struct{}, 1),
		entries: make(map[string]*scheduleEntry),
	}
}

// poke says the workflows may have changed. Safe on nil and from any
// goroutine.
func (s *schedules) poke() {
	if s == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// start runs the schedules in a goroutine until ctx ends or the returned
// function is called, which waits for the goroutine to return.
func (s *schedules) start(ctx context.Context) (stop func()) {
	if s == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.run(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// run fires ticks until ctx ends.
func (s *schedules) run(ctx context.Context) {
	dirty := true
	for {
		now := s.clock.Now()
		if !s.loaded || dirty && now.Sub(s.lastLoad) >= reloadMin || now.Sub(s.lastLoad) >= reloadMax {
			s.load(ctx, now)
			dirty = false
		}
		next := s.pass(ctx, now)
		wakeAt := s.lastLoad.Add(reloadMax)
		if dirty {
			wakeAt = s.lastLoad.Add(reloadMin)
		}
		if !next.IsZero() && next.Before(wakeAt) {
			wakeAt = next
		}
		c, stop := s.clock.Timer(max(wakeAt.Sub(now), 0))
		select {
		case <-ctx.Done():
			stop()
			return
		case <-c:
		case <-s.wake:
			stop()
			dirty = true
		}
	}
}

// load reads the workflows and brings the entries up to date.
func (s *schedules) load(ctx context.Context, now time.Time) {
	s.lastLoad = now
	ws, err := s.db.ListWorkflows(ctx)
	var fe *model.FileError
	if err != nil && ws == nil && !errors.As(err, &fe) {
		// Not a damaged file (the database reports those, and the others
		// are listed): keep the schedules as they are and try again at
		// the next reload.
		s.log.Error("schedules: cannot list the workflows", "err", err.Error())
		return
	}
	first := !s.loaded
	s.loaded = true
	seen := make(map[string]bool, len(ws))
	for _, w := range ws {
		if w.Schedule == nil {
			continue
		}
		ticks, err := w.Schedule.Parse()
		if err != nil {
			// The database validated it; a backend that did not is told.
			s.log.Error("schedules: workflow has a bad schedule; it does not fire", "workflow", w.Name, "err", err.Error())
			continue
		}
		seen[w.Name] = true
		e := s.entries[w.Name]
		switch {
		case e == nil:
			e = &scheduleEntry{sched: *w.Schedule, ticks: ticks, created: w.CreatedAt}
			s.entries[w.Name] = e
			if !first {
				// A schedule added while the scheduler runs starts now.
				s.restart(ctx, w.Name, now)
			}
			s.log.Info("schedule", "workflow", w.Name, "cron", w.Schedule.Cron, "timezone", w.Schedule.Location(), "next", e.ticks.Next(now).Format(time.RFC3339))
		case e.sched.Spec() != w.Schedule.Spec():
			e.sched, e.ticks, e.due = *w.Schedule, ticks, time.Time{}
			s.restart(ctx, w.Name, now)
			s.log.Info("schedule changed", "workflow", w.Name, "cron", w.Schedule.Cron, "timezone", w.Schedule.Location(), "next", e.ticks.Next(now).Format(time.RFC3339))
		default:
			e.sched = *w.Schedule // catchup and overlap take effect at the next tick
			e.created = w.CreatedAt
		}
	}
	for name := range maps.Keys(s.entries) {
		if !seen[name] {
			delete(s.entries, name)
		}
	}
}

// restart makes a schedule start afresh at now: the ticks before now pass.
func (s *schedules) restart(ctx context.Context, name string, now time.Time) {
	spec := ""
	if e := s.entries[name]; e != nil {
		spec = e.sched.Spec()
	}
	if err := s.store.AdvanceSchedule(ctx, name, now.Truncate(time.Second), spec); err != nil {
		s.log.Error("schedules: cannot record the start of a schedule", "workflow", name, "err", err.Error())
	}
	if e := s.entries[name]; e != nil {
		e.due = time.Time{}
	}
}

// pass deals with every schedule whose time has come and returns when the
// next one's comes (zero: no schedules).
func (s *schedules) pass(ctx context.Context, now time.Time) time.Time {
	var next time.Time
	for name, e := range s.entries {
		if e.due.IsZero() || !e.due.After(now) {
			e.due = s.fire(ctx, name, e, now)
			if e.due.IsZero() {
				// No tick in the next five years: look again later.
				e.due = now.Add(time.Hour)
			}
		}
		if next.IsZero() || !e.due.IsZero() && e.due.Before(next) {
			next = e.due
		}
	}
	return next
}

// fire takes the ticks of one schedule due at now and returns when to look
// at it again.
func (s *schedules) fire(ctx context.Context, name string, e *scheduleEntry, now time.Time) time.Time {
	log := s.log.With("workflow", name)
	st, err := s.store.ScheduleState(ctx, name)
	if err != nil {
		if err.Error() != e.stateErr {
			e.stateErr = err.Error()
			log.Error("schedules: cannot read the schedule's state; it does not fire until it can", "err", err.Error())
		}
		return now.Add(retryAfter)
	}
	e.stateErr = ""
	spec := e.sched.Spec()
	edited := st.Spec != "" && st.Spec != spec
	if edited {
		// The state is of another expression. Either this entry is behind
		// the file (load again), or the expression was edited while no
		// scheduler ran: then it starts afresh, as after an edit seen live.
		w, err := s.db.GetWorkflow(ctx, name)
		if err != nil || w.Schedule == nil || w.Schedule.Spec() != spec {
			s.poke()
			return now.Add(reloadMin)
		}
		log.Info("schedule changed since its last tick", "was", st.Spec, "now", spec)
	}
	if st.Through.IsZero() || edited || e.created.Truncate(time.Second).After(st.Through) && !e.created.After(now) {
		// Never started, edited, or the state is of a workflow of the same
		// name that was deleted: it starts now.
		anchor := now.Truncate(time.Second)
		if err := s.store.AdvanceSchedule(ctx, name, anchor, spec); err != nil {
			log.Error("schedules: cannot record the start of a schedule", "err", err.Error())
			return now.Add(retryAfter)
		}
		return e.ticks.Next(anchor)
	}
	if st.Spec == "" {
		// Recorded without its spec: record it, moving nothing.
		if err := s.store.AdvanceSchedule(ctx, name, st.Through, spec); err != nil {
			log.Error("schedules: cannot record a schedule's spec", "err", err.Error())
		}
	}
	limit := 1
	if e.sched.Catchup {
		limit = model.MaxCatchup
	}
	due, more := e.ticks.Due(st.Through, now, limit)
	if len(due) == 0 {
		return e.ticks.Next(st.Through)
	}
	latest := due[len(due)-1]
	after := e.ticks.Next(latest)
	if more {
		log.Warn("schedule: missed ticks pass without runs", "since", st.Through.Format(time.RFC3339), "catchup", e.sched.Catchup,
			"firing", len(due), "from", due[0].Format(time.RFC3339))
	}
	pass := func(why string) time.Time {
		if err := s.store.AdvanceSchedule(ctx, name, latest, ""); err != nil {
			log.Error("schedules: cannot record a tick", "tick", latest.Format(time.RFC3339), "err", err.Error())
			return now.Add(retryAfter)
		}
		log.Info("schedule: tick passes without a run: "+why, "tick", latest.Format(time.RFC3339), "ticks", len(due))
		return after
	}
	if st.Paused {
		if e.quiet {
			if err := s.store.AdvanceSchedule(ctx, name, latest, ""); err != nil {
				log.Error("schedules: cannot record a tick", "tick", latest.Format(time.RFC3339), "err", err.Error())
				return now.Add(retryAfter)
			}
			return after
		}
		e.quiet = true
		return pass("the schedule is paused (logged once until it fires again)")
	}
	e.quiet = false
	if e.sched.OverlapPolicy() == model.OverlapSkip && st.LastRunID != "" {
		r, err := s.db.GetRun(ctx, st.LastRunID)
		switch {
		case err == nil && !r.Status.Terminal():
			return pass("overlap is skip and the previous scheduled run " + r.ID + " is " + string(r.Status))
		case err != nil && !errors.Is(err, model.ErrNotFound):
			log.Error("schedules: cannot read the previous scheduled run", "run", st.LastRunID, "err", err.Error())
			return now.Add(retryAfter)
		}
	}
	// The run's snapshot is the workflow as it is now.
	w, err := s.db.GetWorkflow(ctx, name)
	if err != nil {
		log.Error("schedules: cannot read the workflow; its tick waits", "err", err.Error())
		s.poke()
		return now.Add(retryAfter)
	}
	if w.Schedule == nil || w.Schedule.Spec() != spec {
		// Edited since the last load: load again before firing.
		s.poke()
		return now.Add(reloadMin)
	}
	for i, tick := range due {
		// A catch-up's runs are created a microsecond apart, so that every
		// backend starts them oldest first.
		r := model.NewScheduledRun(w, tick, now.Add(time.Duration(i)*time.Microsecond))
		claimed, err := s.store.ClaimTick(ctx, r)
		if err != nil {
			log.Error("schedules: cannot claim a tick", "tick", tick.Format(time.RFC3339), "err", err.Error())
			return now.Add(retryAfter)
		}
		if claimed {
			log.Info("scheduled run", "run", r.ID, "tick", tick.Format(time.RFC3339), "late", now.Sub(tick).Round(time.Millisecond).String())
		} else {
			log.Info("schedule: tick claimed already", "tick", tick.Format(time.RFC3339), "run", r.ID)
		}
	}
	return after
}
