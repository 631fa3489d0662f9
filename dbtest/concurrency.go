package dbtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Concurrency and size ----

// testConcurrent has 8 writers drive disjoint tasks through their life at
// the same time, while readers read. Run it with -race.
func (s *suite) testConcurrent(t *testing.T) {
	ctx, db := s.setup(t)
	const (
		writers        = 8
		tasksPerWriter = 8 // per run
	)
	w := newWorkflow("hello", writers*tasksPerWriter)
	mustCreateWorkflow(ctx, t, db, w)
	rA, tasksA := startRun(ctx, t, db, w, at(1))
	rB, tasksB := startRun(ctx, t, db, w, at(2))
	total := len(tasksA)

	// Writer i owns tasks i, i+writers, ... of both runs.
	owned := make([][]*model.Task, writers)
	for i, tk := range tasksA {
		owned[i%writers] = append(owned[i%writers], tk, tasksB[i])
	}

	var writersDone sync.WaitGroup
	done := make(chan struct{})
	for wi := range writers {
		writersDone.Go(func() {
			o := newOracle(owned[wi])
			update := func(us []model.TaskUpdate) bool {
				want := o.apply(t, us)
				got, err := db.UpdateTasks(ctx, us)
				if err != nil {
					t.Errorf("writer %d: UpdateTasks: %v", wi, err)
					return false
				}
				checkTaskSet(t, fmt.Sprintf("writer %d: UpdateTasks returned", wi), got, want)
				return true
			}
			var us []model.TaskUpdate
			for _, tk := range owned[wi] {
				us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("writer-", wi), At: at(10)})
			}
			if !update(us) {
				return
			}
			for _, tk := range owned[wi] {
				if !update([]model.TaskUpdate{{TaskID: tk.ID, RunID: tk.RunID, Attempt: 1, Status: model.TaskRunning, At: at(11)}}) {
					return
				}
			}
			for i := 0; i < len(owned[wi]); i += 2 {
				us := []model.TaskUpdate{
					{TaskID: owned[wi][i].ID, RunID: owned[wi][i].RunID, Attempt: 1, Status: endStatus(owned[wi][i]), At: at(12)},
					{TaskID: owned[wi][i+1].ID, RunID: owned[wi][i+1].RunID, Attempt: 1, Status: endStatus(owned[wi][i+1]), At: at(12)},
				}
				if !update(us) {
					return
				}
			}
		})
	}

	var readersDone sync.WaitGroup
	for ri := range 2 {
		readersDone.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
				if !readOnce(ctx, t, db, ri, rA.ID, rB.ID, total) {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	writersDone.Wait()
	close(done)
	readersDone.Wait()
	if t.Failed() {
		return
	}

	o := newOracle(tasksA, tasksB)
	for wi := range writers {
		var us []model.TaskUpdate
		for _, tk := range owned[wi] {
			us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("writer-", wi), At: at(10)})
		}
		for _, tk := range owned[wi] {
			us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Attempt: 1, Status: model.TaskRunning, At: at(11)})
		}
		for _, tk := range owned[wi] {
			us = append(us, model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Attempt: 1, Status: endStatus(tk), At: at(12)})
		}
		o.apply(t, us)
	}
	checkTasks(ctx, t, db, rA.ID, o.list(rA.ID))
	checkTasks(ctx, t, db, rB.ID, o.list(rB.ID))
	half := total / 2
	checkCounts(ctx, t, db, rA.ID, map[model.TaskStatus]int{model.TaskSuccess: half, model.TaskFailed: total - half})
	checkCounts(ctx, t, db, rB.ID, map[model.TaskStatus]int{model.TaskSuccess: half, model.TaskFailed: total - half})
	checkActiveTasks(ctx, t, db, nil, nil)
	checkPendingTasks(ctx, t, db, 10, nil, nil)
}

// endStatus is how a task of the concurrency test ends: even indexes
// succeed, odd ones fail.
func endStatus(tk *model.Task) model.TaskStatus {
	if tk.TaskIndex%2 == 0 {
		return model.TaskSuccess
	}
	return model.TaskFailed
}

// readOnce reads everything a scheduler and a web UI read, while writers
// write, and checks what must hold at every moment. It reports whether to
// go on.
func readOnce(ctx context.Context, t *testing.T, db model.Database, reader int, runA, runB string, total int) bool {
	fail := func(format string, args ...any) bool {
		t.Errorf("reader %d: "+format, append([]any{reader}, args...)...)
		return false
	}
	pending, err := db.PendingTasks(ctx, 1000)
	if err != nil {
		return fail("PendingTasks: %v", err)
	}
	for _, p := range pending {
		if p.Task == nil || p.Workflow == nil {
			return fail("PendingTasks returned a task or workflow that is nil")
		}
		if p.Task.Status != model.TaskPending {
			return fail("PendingTasks returned %s in status %s", p.Task.Label(), p.Task.Status)
		}
	}
	active, err := db.ActiveTasks(ctx)
	if err != nil {
		return fail("ActiveTasks: %v", err)
	}
	for _, a := range active {
		if a.Task == nil || !a.Task.Status.Active() {
			return fail("ActiveTasks returned a task that is not active")
		}
	}
	for _, runID := range []string{runA, runB} {
		tasks, err := db.ListTasks(ctx, runID)
		if err != nil {
			return fail("ListTasks: %v", err)
		}
		if len(tasks) != total {
			return fail("ListTasks returned %d tasks, want %d", len(tasks), total)
		}
		for i, tk := range tasks {
			if tk.TaskIndex != i {
				return fail("ListTasks entry %d has index %d", i, tk.TaskIndex)
			}
		}
		counts, err := db.TaskCounts(ctx, runID)
		if err != nil {
			return fail("TaskCounts: %v", err)
		}
		sum := 0
		for _, n := range counts {
			sum += n
		}
		if sum != total {
			return fail("TaskCounts %v add up to %d, want %d", counts, sum, total)
		}
		if _, err := db.GetRun(ctx, runID); err != nil {
			return fail("GetRun: %v", err)
		}
	}
	if _, err := db.ListRuns(ctx, model.RunFilter{Limit: 10}); err != nil {
		return fail("ListRuns: %v", err)
	}
	return true
}

func (s *suite) testLargeBatch(t *testing.T) {
	ctx, db := s.setup(t)
	const n = 500
	w := newWorkflow("big", n)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	tasks := model.NewTasks(r, at(2))
	o := newOracle(tasks)
	mustCreateTasks(ctx, t, db, tasks) // all 500 in one batch
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: at(3)}})
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskPending: n})
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkPendingTasks(ctx, t, db, n+1, o.list(r.ID), map[string]*model.Workflow{r.ID: r.Workflow})

	us := make([]model.TaskUpdate, n)
	for i, tk := range tasks {
		us[i] = model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("exec-", i), At: at(10)}
	}
	if got := mustUpdateTasks(ctx, t, db, o, us); len(got) != n {
		t.Fatalf("dispatching %d tasks in one batch changed %d", n, len(got))
	}
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskDispatched: n})
	checkPendingTasks(ctx, t, db, n, nil, nil)

	for i, tk := range tasks {
		us[i] = model.TaskUpdate{TaskID: tk.ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: intPtr(0), At: at(20)}
	}
	if got := mustUpdateTasks(ctx, t, db, o, us); len(got) != n {
		t.Fatalf("finishing %d tasks in one batch changed %d", n, len(got))
	}
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskSuccess: n})
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkActiveTasks(ctx, t, db, nil, nil)
}
