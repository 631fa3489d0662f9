package sched

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ork-run/ork/model"
)

// Several schedulers may serve one database (a model.Cluster, PostgreSQL).
// The scheduler has one code path for both kinds of database: on one that
// is not a Cluster, soleCluster stands in — this scheduler is the only one
// (the database's SchedulerLocker makes sure), it leads always and holds
// every run.
//
// The rules (run-granular leases):
//   - A run is advanced — its tasks created and dispatched, its end
//     recorded — only by the scheduler that holds its lease. Runs are
//     claimed (ClaimRuns) a few at a time, and only while the scheduler has
//     free running slots: a scheduler does not hoard work a peer could run.
//     The claim keeps a workflow's max_active_runs across the cluster.
//   - Leases last as long as the scheduler's heartbeat, sent every Lease/3
//     by a goroutine of its own (member.beat).
//   - One scheduler is the leader, on a term that expires; it reaps the
//     schedulers whose heartbeat stopped, which frees their runs.
//   - A freed run that was running is recovered by whoever claims it as a
//     restarted scheduler recovers its own (recover): this host's leftover
//     processes of those tasks are swept, then the executor's Check adopts
//     an attempt that runs, records one that ended, withdraws one that
//     never started, and records the rest interrupted and requeues them.
//     Every rescue update is fenced by the attempt and the scheduler it
//     read, so it never lands on a later attempt.
//   - A scheduler that finds it was reaped (model.ErrFenced: it was paused
//     longer than its lease) stops its tasks, forgets its runs without
//     writing anything about them, and Run returns the error: their new
//     holder recovers them. A supervisor (or the user) starts it again as a
//     new member.
//   - A clean stop leaves (Cluster.Leave) after its last write, so its
//     unfinished runs are taken at once.

// hostname is this host's name as scheduler ids carry it.
func hostname() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host
}

// dispatchedHere reports whether the scheduler id (of the scheduler that
// dispatched an attempt) is of this host: "" (a database with one
// scheduler, or a record written before schedulers had ids), or an id
// host:pid:random whose host is this one.
func dispatchedHere(id string) bool {
	if id == "" {
		return true
	}
	host, _, ok := strings.Cut(id, ":")
	return ok && host == hostname()
}

// newID makes a scheduler id: host:pid:random.
func newID() string {
	host := hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// soleCluster is the model.Cluster of a database that one scheduler
// serves: the scheduler leads always and holds every run. ClaimRuns
// returns the pending runs, and on its first call also every running run
// (what a dead predecessor left: today's recovery at start).
type soleCluster struct {
	db model.Database

	mu      sync.Mutex
	info    model.SchedulerInfo
	joined  bool
	started bool
}

func (c *soleCluster) Heartbeat(_ context.Context, s model.SchedulerInfo, lease time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	s.Heartbeat, s.Expires, s.Leader, s.Term = now, now.Add(lease), true, 1
	c.info, c.joined = s, true
	return nil
}

func (c *soleCluster) Leave(context.Context, string) error {
	c.mu.Lock()
	c.joined = false
	c.mu.Unlock()
	return nil
}

func (c *soleCluster) Schedulers(context.Context) ([]model.SchedulerInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.joined {
		return nil, nil
	}
	return []model.SchedulerInfo{c.info}, nil
}

func (c *soleCluster) Lead(_ context.Context, _ string, _ int64, _ time.Duration) (int64, error) {
	return 1, nil
}

func (c *soleCluster) Reap(context.Context, string, int64) ([]string, error) { return nil, nil }

func (c *soleCluster) ClaimRuns(ctx context.Context, _ string, limit int) ([]*model.Run, error) {
	c.mu.Lock()
	first := !c.started
	c.mu.Unlock()
	// Pending runs first: on the file database that builds its index of
	// unfinished runs, from which the running ones are then listed,
	// rather than from a second read of every run file.
	pending, err := c.db.PendingRuns(ctx, limit)
	if err != nil {
		return nil, err
	}
	var out []*model.Run
	if first {
		running, err := c.db.ListRuns(ctx, model.RunFilter{Status: model.RunRunning})
		if err != nil {
			return nil, err
		}
		out = running
	}
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	return append(out, pending...), nil
}

// member is this scheduler's membership of its cluster: the heartbeat and
// the leader's duty, in a goroutine apart from the loop, so a slow loop
// never lets the lease lapse.
type member struct {
	c      model.Cluster
	info   model.SchedulerInfo
	lease  time.Duration
	log    *slog.Logger
	fenced chan struct{} // closed when the scheduler finds it was reaped
	reaped chan struct{} // a send (never blocking) when the leader freed runs
	err    error         // why fenced; read after fenced is closed
	once   sync.Once

	mu    sync.Mutex
	until time.Time // the lease surely holds until then (monotonic clock)
}

// heartbeat renews the lease. The database counts the lease from when it
// takes the heartbeat, so counting it from before the call errs on the
// safe side.
func (m *member) heartbeat(ctx context.Context) error {
	sent := time.Now()
	err := m.c.Heartbeat(ctx, m.info, m.lease)
	if err == nil {
		m.mu.Lock()
		m.until = sent.Add(m.lease)
		m.mu.Unlock()
	}
	return err
}

// holds reports whether the lease surely still holds. Once it may have run
// out — the scheduler was paused, or cut off from the database, for longer
// than the lease — the leader may have reaped it and another scheduler may
// run its tasks: it must start nothing until a heartbeat renews the lease
// (or finds it reaped).
func (m *member) holds() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.until)
}

// join sends the first heartbeat: until it returns, the scheduler holds
// nothing and claims nothing.
func (m *member) join(ctx context.Context) error {
	return m.heartbeat(ctx)
}

// fence records that the scheduler was reaped.
func (m *member) fence(err error) {
	m.once.Do(func() {
		m.err = err
		close(m.fenced)
	})
}

// beat heartbeats every lease/3 until ctx ends, and while this scheduler
// leads, reaps the schedulers whose lease expired.
//
// A leader reaps only once the database has answered it without a break
// for a whole lease (reachable): after an outage of the database, or of
// this host's link to it, every peer's heartbeats failed as its own did,
// and they must have had time to land again before anyone is judged dead
// — else a restart of PostgreSQL longer than the lease would have the
// leader reap every scheduler, itself first.
func (m *member) beat(ctx context.Context) {
	every := max(m.lease/3, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var term int64
	reachable := time.Now() // it just joined
	for {
		if err := m.lead(ctx, &term, &reachable); errors.Is(err, model.ErrFenced) {
			term = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, every)
		err := m.heartbeat(hctx)
		cancel()
		switch {
		case errors.Is(err, model.ErrFenced):
			m.fence(err)
			return
		case err != nil:
			reachable = time.Time{}
			if ctx.Err() == nil {
				m.log.Warn("heartbeat failed; will try again", "scheduler", m.info.ID, "err", err)
			}
		case reachable.IsZero():
			reachable = time.Now()
		}
	}
}

// lead takes or keeps the leader's term and, on it, reaps the dead (see
// beat for when).
func (m *member) lead(ctx context.Context, term *int64, reachable *time.Time) error {
	lctx, cancel := context.WithTimeout(ctx, max(m.lease/3, time.Millisecond))
	defer cancel()
	t, err := m.c.Lead(lctx, m.info.ID, *term, m.lease)
	if err != nil {
		*reachable = time.Time{}
		if ctx.Err() == nil {
			m.log.Warn("leader election failed; will try again", "scheduler", m.info.ID, "err", err)
		}
		return err
	}
	if t != *term && t > 0 {
		m.log.Info("this scheduler leads", "scheduler", m.info.ID, "term", t)
	}
	*term = t
	if t == 0 || reachable.IsZero() || time.Since(*reachable) < m.lease {
		return nil
	}
	ids, err := m.c.Reap(lctx, m.info.ID, t)
	if err != nil {
		if !errors.Is(err, model.ErrFenced) {
			*reachable = time.Time{}
		}
		if ctx.Err() == nil {
			m.log.Warn("reaping dead schedulers failed; will try again", "scheduler", m.info.ID, "err", err)
		}
		return err
	}
	if len(ids) > 0 {
		m.log.Warn("reaped schedulers whose heartbeat stopped; their runs are free to take", "schedulers", ids)
		select {
		case m.reaped <- struct{}{}:
		default:
		}
	}
	return nil
}

// fenced stops a scheduler that was reaped (its heartbeat stopped longer
// than its lease: it was paused, or cut off from the database). Its runs
// may be another's already, and that one recovers their tasks: so it
// starts nothing more, stops the tasks it runs (the new holder runs them
// again; they must not run twice at once), writes nothing about its runs
// and forgets them, and returns the error for Run to return.
func (s *Scheduler) fenced(ctx context.Context) error {
	err := s.member.err
	s.log.Error("this scheduler was reaped: its lease ended before it could renew it; it stops its tasks and gives up its runs without writing their state", "scheduler", s.id, "lease", s.cfg.Lease, "tasks", len(s.inflight), "runs", len(s.order), "err", err)
	s.launch.halted()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.mgr.Shutdown(sctx); err != nil {
		s.log.Error("stop executors", "err", err)
	}
	s.launch.stopped()
	for _, rs := range s.order {
		s.wake(rs.run.ID) // WaitRun callers read the run again
	}
	clear(s.inflight)
	clear(s.runs)
	clear(s.touched)
	clear(s.behind)
	clear(s.counted)
	s.order, s.waiting, s.rescue, s.buf = nil, nil, nil, nil
	return fmt.Errorf("scheduler %s was reaped (no heartbeat for longer than the lease, %s); another scheduler takes over its runs: %w", s.id, s.cfg.Lease, model.ErrFenced)
}
