package sched_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// writeLog is a file database that records its task writes, and fails the
// first ones that record the end of a task, as a full disk would.
type writeLog struct {
	*filedb.DB
	mu       sync.Mutex
	writes   []taskWrite
	failures int
}

type taskWrite struct {
	create  []*model.Task
	updates []model.TaskUpdate
}

func (w *writeLog) record(create []*model.Task, us []model.TaskUpdate) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range us {
		if u.Status.Terminal() && w.failures > 0 {
			w.failures--
			return errors.New("write .ork/tasks/x: no space left on device")
		}
	}
	w.writes = append(w.writes, taskWrite{slices.Clone(create), slices.Clone(us)}) // the caller reuses them
	return nil
}

func (w *writeLog) WriteTasks(ctx context.Context, create []*model.Task, us []model.TaskUpdate) ([]*model.Task, error) {
	if err := w.record(create, us); err != nil {
		return nil, err
	}
	return w.DB.WriteTasks(ctx, create, us)
}

func (w *writeLog) CreateTasks(ctx context.Context, ts []*model.Task) error {
	if err := w.record(ts, nil); err != nil {
		return err
	}
	return w.DB.CreateTasks(ctx, ts)
}

func (w *writeLog) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	if err := w.record(nil, us); err != nil {
		return nil, err
	}
	return w.DB.UpdateTasks(ctx, us)
}

// One durable write per hop: on the file database, the end of a task and
// the creation of the task it unblocks (dispatched, in its first attempt)
// are in the same batch.
func TestDAGHopIsOneWrite(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.dagWorkflow("chain", map[string]*model.TaskSpec{
		"a": {JobName: "ok.sh"},
		"b": {JobName: "ok.sh", DependsOn: []string{"a"}},
		"c": {JobName: "ok.sh", DependsOn: []string{"b"}},
	})
	db := &writeLog{DB: e.db}
	s, _ := e.start(db, sched.Config{})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", r.Status, r.Error)
	}
	tasks := byName(e.tasks(r))
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, hop := range [][2]string{{"a", "b"}, {"b", "c"}} {
		up, down := tasks[hop[0]][0], tasks[hop[1]][0]
		found := false
		for _, wr := range db.writes {
			ended, created := false, false
			for _, u := range wr.updates {
				ended = ended || u.TaskID == up.ID && u.Status == model.TaskSuccess
			}
			for _, c := range wr.create {
				created = created || c.ID == down.ID && c.Status == model.TaskDispatched && c.Attempt == 1
			}
			if created && !ended {
				t.Errorf("%s was created dispatched in a write without the end of %s: %+v", hop[1], hop[0], wr)
			}
			found = found || created && ended
		}
		if !found {
			t.Errorf("no write has both the end of %s and the creation of %s", hop[0], hop[1])
		}
	}
}

// A batch that counted on ends to create the tasks they unblock, and was
// not written, counts on nothing: when it is written at last, each end is
// counted once, and the task downstream of a fan-out starts after every
// part has ended, with every part's output.
func TestDAGHopWriteFailureCountsEachEndOnce(t *testing.T) {
	e := newEnv(t)
	e.script("part.sh", `sleep 0.$((ORK_TASK_INDEX * 4)); printf '{"n": %s}' $((ORK_TASK_INDEX * 10)) > "$ORK_OUTPUT"`)
	e.script("sum.sh", `printf '{"upstream": %s}' "$ORK_UPSTREAM" > "$ORK_OUTPUT"`)
	w := e.dagWorkflow("fan", map[string]*model.TaskSpec{
		"part": {JobName: "part.sh", TaskCount: 3},
		"sum":  {JobName: "sum.sh", DependsOn: []string{"part"}},
	})
	db := &writeLog{DB: e.db, failures: 1}
	s, _ := e.start(db, sched.Config{})
	got := e.wait(s, e.trigger(e.db, w))
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
	if db.failures != 0 {
		t.Fatalf("%d write failures left: the test did not test", db.failures)
	}
	tasks := byName(e.tasks(got))
	var out struct {
		Upstream map[string][]struct{ N int } `json:"upstream"`
	}
	if err := json.Unmarshal(tasks["sum"][0].Output, &out); err != nil {
		t.Fatalf("sum output %s: %v", tasks["sum"][0].Output, err)
	}
	if ns := out.Upstream["part"]; len(ns) != 3 || ns[0].N != 0 || ns[1].N != 10 || ns[2].N != 20 {
		t.Fatalf("ORK_UPSTREAM seen by sum = %s", tasks["sum"][0].Output)
	}
	for _, p := range tasks["part"] {
		if p.FinishedAt.After(*tasks["sum"][0].StartedAt) {
			t.Errorf("sum started at %v, before part %d ended at %v", tasks["sum"][0].StartedAt, p.TaskIndex, p.FinishedAt)
		}
	}
}

// A running report waits for a batch to ride with — the end of a short
// task — rather than take a commit of its own; a long task's start is
// recorded while it runs, all the same.
func TestRunningReportRidesWithTheEnd(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	e.script("long.sh", "sleep 2")
	w := e.dagWorkflow("chain", map[string]*model.TaskSpec{
		"a": {JobName: "ok.sh"},
		"b": {JobName: "ok.sh", DependsOn: []string{"a"}},
		"c": {JobName: "ok.sh", DependsOn: []string{"b"}},
		"d": {JobName: "ok.sh", DependsOn: []string{"c"}},
		"e": {JobName: "long.sh", DependsOn: []string{"d"}},
	})
	db := &writeLog{DB: e.db}
	s, _ := e.start(db, sched.Config{})
	r := e.trigger(e.db, w)
	// e's start is recorded while it runs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts := byName(e.tasks(r))
		if es := ts["e"]; len(es) == 1 && es[0].StartedAt != nil {
			if es[0].Status != model.TaskRunning {
				t.Fatalf("e's start was recorded with its end (%s), not while it ran", es[0].Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("e's start not recorded; log:\n%s", e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	rode, alone := 0, 0
	for _, wr := range db.writes {
		running, ended := map[string]bool{}, map[string]bool{}
		for _, u := range wr.updates {
			switch {
			case u.Status == model.TaskRunning:
				running[u.TaskID] = true
			case u.Status.Terminal():
				ended[u.TaskID] = true
			}
		}
		for id := range running {
			if ended[id] {
				rode++
			}
		}
		if len(running) > 0 && len(running) == len(wr.updates) && len(wr.create) == 0 {
			alone++
		}
	}
	// The short tasks end well within the wait (a few milliseconds, against
	// 100): most of their reports ride with their end. e's is written alone.
	if rode < 2 {
		t.Errorf("%d of 4 short tasks had their running report written with their end; want most", rode)
	}
	if alone < 1 {
		t.Errorf("no running report was written on its own: the long task's start waited for its end")
	}
}
