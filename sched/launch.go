package sched

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// launcher starts dispatched tasks as running slots free up, apart from the
// loop. The loop marks tasks dispatched (their attempt durable) a little
// ahead of need and hands them over; the launcher starts the next one the
// moment a running task ends, without waiting for the loop's next write.
// That keeps slots busy while the loop waits for the disk, and never lets
// more than MaxRunningTasks run.
type launcher struct {
	s     *Scheduler
	slots chan struct{}               // a token per task started and not yet ended
	ready chan model.TaskWithWorkflow // dispatched, waiting for a slot
	out   chan model.TaskUpdate       // executor updates and start failures, for the loop
	halt  chan struct{}               // closed: start nothing more
	stop  chan struct{}               // closed: stop forwarding updates
	syncs chan chan struct{}          // see sync

	mu        sync.Mutex
	holding   map[attemptKey]bool // attempts that hold a slot
	deadlines map[attemptKey]deadline
	timedOut  map[attemptKey]time.Duration // stopped for their timeout, not ended yet
	cancelled map[attemptKey]bool          // attempts of cancelled runs: if still waiting, they do not start
	unstarted []model.TaskWithWorkflow
	haltOnce  sync.Once

	workers   sync.WaitGroup
	forwarder sync.WaitGroup
}

type deadline struct {
	p  model.TaskWithWorkflow
	at time.Time
}

type attemptKey struct {
	id      string
	attempt int
}

func newLauncher(s *Scheduler) *launcher {
	capacity := s.cfg.MaxRunningTasks + s.cfg.Lookahead()
	return &launcher{
		s:         s,
		slots:     make(chan struct{}, s.cfg.MaxRunningTasks),
		ready:     make(chan model.TaskWithWorkflow, capacity+s.cfg.MaxTasksPerBatch),
		out:       make(chan model.TaskUpdate, 4*capacity+64),
		halt:      make(chan struct{}),
		stop:      make(chan struct{}),
		syncs:     make(chan chan struct{}),
		holding:   make(map[attemptKey]bool),
		deadlines: make(map[attemptKey]deadline),
		timedOut:  make(map[attemptKey]time.Duration),
		cancelled: make(map[attemptKey]bool),
	}
}

// run starts the workers, which make at most MaxConcurrentDispatches
// executor calls at once, and the forwarder of executor updates.
func (l *launcher) run(ctx context.Context) {
	for range l.s.cfg.MaxConcurrentDispatches {
		l.workers.Add(1)
		go l.work(ctx)
	}
	l.forwarder.Add(1)
	go l.forward()
}

func (l *launcher) work(ctx context.Context) {
	defer l.workers.Done()
	for {
		var p model.TaskWithWorkflow
		select {
		case <-l.halt:
			return
		case p = <-l.ready:
		}
		select {
		case <-l.halt:
			l.keep(p)
			return
		case l.slots <- struct{}{}:
		}
		for !l.s.mayStart() {
			select {
			case <-l.halt:
				<-l.slots
				l.keep(p)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		k := attemptKey{p.Task.ID, p.Task.Attempt}
		// Hold the slot before the start: the task may end before Execute
		// returns, and its end must find the slot to free.
		l.mu.Lock()
		if l.cancelled[k] {
			delete(l.cancelled, k)
			l.mu.Unlock()
			<-l.slots
			continue
		}
		l.holding[k] = true
		l.mu.Unlock()
		err := l.s.execute(ctx, p)
		if limit := p.Node().Timeout; limit > 0 && err == nil {
			// The timeout counts from the start, once Execute has
			// returned: a slow fork on a loaded host does not eat into
			// the task's time. A task that already ended (released) has
			// no deadline to keep.
			l.mu.Lock()
			if l.holding[k] {
				l.deadlines[k] = deadline{p: p, at: time.Now().Add(limit)}
			}
			l.mu.Unlock()
		}
		if err != nil {
			l.release(k)
			t := p.Task
			if diskTrouble(err) {
				// Not the task's fault: it goes back to the queue, and
				// dispatching pauses until the disk takes writes again.
				l.s.log.Error("task could not start: the disk refuses writes; it goes back to the queue", "run", t.RunID, "task", t.Label(), "err", err)
				l.s.pauseUntil.Store(time.Now().Add(l.s.cfg.PollInterval).UnixNano())
				l.out <- unstarted(t, "not started: "+err.Error())
				continue
			}
			l.s.log.Warn("task did not start", "run", t.RunID, "task", t.Label(), "err", err)
			l.out <- model.TaskUpdate{TaskID: t.ID, RunID: t.RunID, Attempt: t.Attempt,
				Status: model.TaskFailed, Error: err.Error(), At: time.Now()}
		}
	}
}

// forward passes executor updates to the loop, freeing the slot of every
// attempt that ended.
func (l *launcher) forward() {
	defer l.forwarder.Done()
	updates := l.s.mgr.Updates()
	for {
		select {
		case <-l.stop:
			return
		case done := <-l.syncs:
			// Everything the executors have sent goes to the loop now.
			for more := true; more; {
				select {
				case u := <-updates:
					l.pass(u)
				default:
					more = false
				}
			}
			close(done)
		case u := <-updates:
			l.pass(u)
		}
	}
}

// sync returns once every update the executors had sent when it was
// called has been handed to add (the loop's), with those waiting in out.
func (l *launcher) sync(add func(model.TaskUpdate)) {
	done := make(chan struct{})
	req := l.syncs
	for {
		select {
		case req <- done:
			req = nil
		case <-done:
			for {
				select {
				case u := <-l.out:
					add(u)
				default:
					return
				}
			}
		case u := <-l.out: // the forwarder may wait for room in out
			add(u)
		case <-l.stop:
			return
		}
	}
}

// pass hands one executor update to the loop, freeing the slot of an
// attempt that ended.
func (l *launcher) pass(u exec.StatusUpdate) {
	if u.Status.Terminal() {
		k := attemptKey{u.TaskID, u.Attempt}
		l.mu.Lock()
		limit, timedOut := l.timedOut[k]
		delete(l.timedOut, k)
		l.mu.Unlock()
		if timedOut {
			// Stopped for its timeout: that is why it ended. It is
			// recorded only now that its process is gone, so a retry
			// never overlaps it.
			u.Status, u.Error = model.TaskFailed, fmt.Sprintf("timed out after %s", limit)
		}
		l.release(k)
	}
	l.out <- u.TaskUpdate()
}

// keep sets aside a task a worker took but will not start (halted).
func (l *launcher) keep(p model.TaskWithWorkflow) {
	l.mu.Lock()
	l.unstarted = append(l.unstarted, p)
	l.mu.Unlock()
}

func (l *launcher) release(k attemptKey) {
	l.mu.Lock()
	held := l.holding[k]
	delete(l.holding, k)
	delete(l.deadlines, k)
	delete(l.cancelled, k)
	l.mu.Unlock()
	if held {
		<-l.slots
	}
}

// occupy gives a slot to an attempt that runs already (found running at
// start-up by its executor).
func (l *launcher) occupy(k attemptKey) {
	select {
	case l.slots <- struct{}{}:
		l.mu.Lock()
		l.holding[k] = true
		l.mu.Unlock()
	default:
	}
}

// halted stops the workers and returns the dispatched tasks they will not
// start. Only the first call returns them.
func (l *launcher) halted() []model.TaskWithWorkflow {
	var out []model.TaskWithWorkflow
	l.haltOnce.Do(func() {
		close(l.halt)
		l.workers.Wait()
		out = l.unstarted
		for {
			select {
			case p := <-l.ready:
				out = append(out, p)
			default:
				return
			}
		}
	})
	return out
}

// stopped stops the forwarder, after the executors are shut down.
func (l *launcher) stopped() {
	close(l.stop)
	l.forwarder.Wait()
}

// diskTrouble reports whether err means the disk refuses writes (full,
// over quota, read-only): trouble of the machine, not of the task.
func diskTrouble(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// expired returns the started attempts whose timeout has passed, once each.
func (l *launcher) expired(now time.Time) []model.TaskWithWorkflow {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []model.TaskWithWorkflow
	for k, d := range l.deadlines {
		if !d.at.After(now) {
			out = append(out, d.p)
			delete(l.deadlines, k)
			l.timedOut[k] = d.p.Node().Timeout
		}
	}
	return out
}

// nextDeadline returns the earliest timeout to come, or zero.
func (l *launcher) nextDeadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var next time.Time
	for _, d := range l.deadlines {
		if next.IsZero() || d.at.Before(next) {
			next = d.at
		}
	}
	return next
}

// cancel keeps the given attempts, those a cancelled run had in flight,
// from starting if they are still waiting for a slot. It names attempts,
// not the run: a run retried after its cancel dispatches new attempts,
// and those start.
func (l *launcher) cancel(ks []attemptKey) {
	l.mu.Lock()
	for _, k := range ks {
		l.cancelled[k] = true
	}
	l.mu.Unlock()
}
