package main

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/ork-run/ork/model"
)

// taskSample is what one finished task tells: the times of its record
// (Unix nanoseconds) and when the scheduler's write of its end returned.
// It is kept small: perf-test shares its memory with the scheduler it
// measures.
type taskSample struct {
	task                                   uint64 // hash of the task id
	run, name                              string // shared with the scheduler's strings
	created, dispatched, started, finished int64
	recorded                               int64
	ok                                     bool
}

// firstEnds keeps the first recorded end of each task and counts the
// tasks whose end was recorded more than once: a task that ran again after
// it had finished.
func firstEnds(samples []taskSample) (out []taskSample, repeated int) {
	seen := make(map[uint64]bool, len(samples))
	out = samples[:0:0]
	for _, s := range samples {
		if seen[s.task] {
			repeated++
			continue
		}
		seen[s.task] = true
		out = append(out, s)
	}
	return out, repeated
}

// recordingDB wraps the scheduler's database and notes, for every task
// that UpdateTasks reports as having reached a terminal status, the task's
// record and the wall time at which the write returned. It forwards
// model.Notifier and model.SchedulerLocker, so the scheduler behaves as it
// does on the bare database.
// idSeed seeds the hashes of task ids.
var idSeed = maphash.MakeSeed()

type recordingDB struct {
	model.Database

	mu      sync.Mutex
	samples []taskSample
}

var (
	_ model.Database        = (*recordingDB)(nil)
	_ model.Notifier        = (*recordingDB)(nil)
	_ model.SchedulerLocker = (*recordingDB)(nil)
)

func newRecordingDB(db model.Database, expect int) *recordingDB {
	return &recordingDB{Database: db, samples: make([]taskSample, 0, expect)}
}

// scheduled is the database for the scheduler: r, and a
// model.TaskBatchWriter too when the inner database is one, so that the
// scheduler writes as it does on the bare database.
func (r *recordingDB) scheduled() model.Database {
	if _, ok := r.Database.(model.TaskBatchWriter); ok {
		return recordingBatchDB{r}
	}
	return r
}

// recordingBatchDB is a recordingDB over a model.TaskBatchWriter.
type recordingBatchDB struct{ *recordingDB }

// WriteTasks writes the batch and notes the tasks that ended.
func (r recordingBatchDB) WriteTasks(ctx context.Context, create []*model.Task, us []model.TaskUpdate) ([]*model.Task, error) {
	ts, err := r.Database.(model.TaskBatchWriter).WriteTasks(ctx, create, us)
	if err != nil {
		return ts, err
	}
	r.note(ts)
	return ts, nil
}

// UpdateTasks applies the updates and notes the tasks that ended.
func (r *recordingDB) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	ts, err := r.Database.UpdateTasks(ctx, us)
	if err != nil {
		return ts, err
	}
	r.note(ts)
	return ts, nil
}

// note notes the tasks of ts that ended, as written now.
func (r *recordingDB) note(ts []*model.Task) {
	now := time.Now().UnixNano()
	var add []taskSample
	for _, t := range ts {
		if !t.Status.Terminal() {
			continue
		}
		add = append(add, taskSample{
			task:       maphash.String(idSeed, t.ID),
			run:        t.RunID,
			name:       t.Name,
			created:    t.CreatedAt.UnixNano(),
			dispatched: unixNano(t.DispatchedAt),
			started:    unixNano(t.StartedAt),
			finished:   unixNano(t.FinishedAt),
			recorded:   now,
			ok:         t.Status == model.TaskSuccess,
		})
	}
	if len(add) > 0 {
		r.mu.Lock()
		r.samples = append(r.samples, add...)
		r.mu.Unlock()
	}
}

// take returns the samples noted so far and forgets them.
func (r *recordingDB) take() []taskSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.samples
	r.samples = nil
	return out
}

// count returns how many tasks have ended so far.
func (r *recordingDB) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// Changes forwards the inner database's change signal.
func (r *recordingDB) Changes() <-chan struct{} {
	if n, ok := r.Database.(model.Notifier); ok {
		return n.Changes()
	}
	return nil // never ready: the scheduler falls back to its poll
}

// LockScheduler forwards the inner database's scheduler lock.
func (r *recordingDB) LockScheduler(ctx context.Context) (func(), error) {
	if l, ok := r.Database.(model.SchedulerLocker); ok {
		return l.LockScheduler(ctx)
	}
	return func() {}, nil
}

func unixNano(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixNano()
}
