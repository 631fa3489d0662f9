package sched_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// Every attempt names the scheduler that dispatched it: in its record
// (Task.Scheduler) and in its process's environment (ORK_SCHEDULER). The
// id is host:pid:random unless Config.ID names it.
func TestTasksNameTheirScheduler(t *testing.T) {
	e := newEnv(t)
	e.script("who.sh", `printf '{"scheduler":"%s"}' "$ORK_SCHEDULER" > "$ORK_OUTPUT"`)
	w := e.workflow("who", "who.sh", 3)
	s, stop := e.start(e.db, sched.Config{})
	host, _ := os.Hostname()
	if parts := strings.Split(s.ID(), ":"); len(parts) != 3 || parts[0] != host || parts[1] != strconv.Itoa(os.Getpid()) || len(parts[2]) != 8 {
		t.Errorf("scheduler id %q, want %s:%d:<8 hex digits>", s.ID(), host, os.Getpid())
	}
	r := e.trigger(e.db, w)
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run %s %q", got.Status, got.Error)
	}
	for _, task := range e.tasks(r) {
		var out struct{ Scheduler string }
		json.Unmarshal(task.Output, &out)
		if task.Scheduler != s.ID() || out.Scheduler != s.ID() {
			t.Errorf("task %s: recorded scheduler %q, ORK_SCHEDULER %q; want %q", task.Label(), task.Scheduler, out.Scheduler, s.ID())
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Another scheduler on the same directory has another id, unless told.
	s2, _ := e.start(e.db, sched.Config{ID: "named-one"})
	if s2.ID() != "named-one" {
		t.Errorf("Config.ID named-one: ID() = %q", s2.ID())
	}
	r2 := e.trigger(e.db, w)
	e.wait(s2, r2)
	for _, task := range e.tasks(r2) {
		if task.Scheduler != "named-one" {
			t.Errorf("task %s: recorded scheduler %q, want named-one", task.Label(), task.Scheduler)
		}
	}
}

// fencedDB is the file database seen as a model.Cluster whose membership
// the test ends at will: the scheduler is the only member (it leads and
// holds every run) until fence is called; from then on its heartbeat
// answers ErrFenced, as a database answers a scheduler that was reaped
// while it was paused longer than its lease.
type fencedDB struct {
	model.Database
	mu      sync.Mutex
	fenced  bool
	away    bool // heartbeats fail, as with the database out of reach
	claimed map[string]bool
	beats   int
	left    bool
}

func (f *fencedDB) Changes() <-chan struct{} { return f.Database.(model.Notifier).Changes() }

func (f *fencedDB) fence() {
	f.mu.Lock()
	f.fenced = true
	f.mu.Unlock()
}

func (f *fencedDB) Heartbeat(context.Context, model.SchedulerInfo, time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats++
	if f.fenced {
		return model.ErrFenced
	}
	if f.away {
		return errors.New("connection refused")
	}
	return nil
}

func (f *fencedDB) Leave(context.Context, string) error {
	f.mu.Lock()
	f.left = true
	f.mu.Unlock()
	return nil
}

func (f *fencedDB) Schedulers(context.Context) ([]model.SchedulerInfo, error) { return nil, nil }

func (f *fencedDB) Lead(context.Context, string, int64, time.Duration) (int64, error) {
	return 1, nil
}

func (f *fencedDB) Reap(context.Context, string, int64) ([]string, error) { return nil, nil }

func (f *fencedDB) ClaimRuns(ctx context.Context, id string, limit int) ([]*model.Run, error) {
	rs, err := f.PendingRuns(ctx, 0)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*model.Run
	for _, r := range rs {
		if !f.claimed[r.ID] && (limit <= 0 || len(out) < limit) {
			f.claimed[r.ID] = true
			r.Scheduler = id
			out = append(out, r)
		}
	}
	return out, nil
}

// A scheduler that finds it was reaped (its heartbeat answers ErrFenced)
// stops at once: Run returns the error, its running task's process is
// stopped (the run's new holder runs it again, and it must not run twice
// at once), nothing is written about its runs (the task stays recorded
// running, for the new holder to recover), and it does not leave (it is
// no member any more).
func TestReapedSchedulerStops(t *testing.T) {
	e := newEnv(t)
	pids := t.TempDir()
	e.script("long.sh", "echo $$ > "+pids+"/$ORK_TASK_INDEX.pid\nsleep 60")
	w := e.workflow("long", "long.sh", 1)
	db := &fencedDB{Database: e.db, claimed: map[string]bool{}}
	_, stop := e.start(db, sched.Config{Lease: 300 * time.Millisecond})
	r := e.trigger(e.db, w)
	pidFile := filepath.Join(pids, "0.pid")
	var pid int
	waitUntil(t, 10*time.Second, "the task runs", func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		ts := e.tasks(r)
		return err == nil && pid > 0 && len(ts) == 1 && ts[0].Status == model.TaskRunning
	})
	db.fence()
	waitUntil(t, 10*time.Second, "the task's process is stopped", func() bool { return syscallKill0(pid) != nil })
	if err := stop(); !errors.Is(err, model.ErrFenced) {
		t.Fatalf("Run returned %v, want ErrFenced", err)
	}
	ts := e.tasks(r)
	if len(ts) != 1 || ts[0].Status != model.TaskRunning || ts[0].Attempt != 1 || len(ts[0].Attempts) != 0 {
		t.Errorf("task after the fence: %+v; want running in attempt 1, nothing more written", ts[0])
	}
	got, err := e.db.GetRun(context.Background(), r.ID)
	if err != nil || got.Status != model.RunRunning {
		t.Errorf("run after the fence: %v %v, want running", got.Status, err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.left {
		t.Error("a reaped scheduler left the cluster: it is no member any more")
	}
	if !strings.Contains(e.logs.String(), "this scheduler was reaped") {
		t.Errorf("no error logged about the fence:\n%s", e.logs)
	}
}

// A scheduler stopped cleanly leaves after its last write, so that its
// unfinished runs are taken at once; it heartbeats while it runs.
func TestCleanStopLeaves(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.workflow("ok", "ok.sh", 2)
	db := &fencedDB{Database: e.db, claimed: map[string]bool{}}
	s, stop := e.start(db, sched.Config{Lease: 150 * time.Millisecond})
	r := e.trigger(e.db, w)
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run %s %q", got.Status, got.Error)
	}
	waitUntil(t, 10*time.Second, "a few heartbeats", func() bool {
		db.mu.Lock()
		defer db.mu.Unlock()
		return db.beats >= 3
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if !db.left {
		t.Error("a scheduler stopped cleanly did not leave")
	}
}

// A scheduler that cannot renew its lease (cut off from the database, or
// paused) for longer than the lease starts nothing more — its dispatched
// tasks may be another's to run by now — until a heartbeat renews the
// lease; then it goes on, and every task runs once. With the default lease.
func TestLapsedLeaseStartsNothing(t *testing.T) {
	e := newEnv(t)
	starts := startLog(filepath.Join(t.TempDir(), "starts"))
	// Work for longer than the lease: 160 tasks of 1s, 8 at a time.
	e.script("nap.sh", "echo $ORK_TASK_INDEX >> "+string(starts)+"\nsleep 1")
	w := e.workflow("naps", "nap.sh", 160)
	db := &fencedDB{Database: e.db, claimed: map[string]bool{}}
	s, _ := e.start(db, sched.Config{NoSchedules: true})
	r := e.trigger(e.db, w)
	waitUntil(t, 10*time.Second, "some tasks succeed", func() bool {
		c, _ := e.db.TaskCounts(context.Background(), r.ID)
		return c[model.TaskSuccess] >= 1
	})
	db.mu.Lock()
	db.away = true
	db.mu.Unlock()
	time.Sleep(s.Config().Lease + 500*time.Millisecond) // the lease lapses
	before := starts.count()
	time.Sleep(time.Second)
	if n := starts.count() - before; n > 0 {
		t.Errorf("%d tasks started after the lease lapsed, want none", n)
	}
	db.mu.Lock()
	db.away = false
	db.mu.Unlock()
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run after the lease was renewed = %s %q", got.Status, got.Error)
	}
	if n := starts.count(); n != 160 {
		t.Errorf("%d task starts, want 160: each task once", n)
	}
}
