package dbtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Claims and several schedulers (model.ClaimTasks, model.Cluster) ----
//
// The claim tests of one handle (claimOrder, claimWithUpdates) run on every
// backend through model.ClaimTasks: its own claim for a model.TaskClaimer,
// the read-then-write fallback otherwise. The tests of racing claimers need
// a claim in one statement (model.TaskClaimer) and several handles; the
// tests of leases, heartbeats and leader terms need a model.Cluster.

// claimed returns the ids of what a claim took, in order.
func claimedIDs(c model.Claimed) []string {
	ids := make([]string, len(c.Tasks))
	for i, p := range c.Tasks {
		ids[i] = p.Task.ID
	}
	return ids
}

// dispatchOf is the update a claim of tk by sched at at amounts to.
func dispatchOf(tk *model.Task, sched string, at time.Time) model.TaskUpdate {
	return model.TaskUpdate{TaskID: tk.ID, RunID: tk.RunID, Attempt: tk.Attempt + 1, Status: model.TaskDispatched, Scheduler: sched, At: at}
}

// testClaimOrder: a claim takes the oldest run's tasks first, by index;
// the tasks of Last after every other, in the order given; never those of
// Skip or SkipNodes, nor one whose retry time is to come; and marks them
// dispatched with their next attempt, the claim's time, and the claimer.
func (s *suite) testClaimOrder(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 5)
	mustCreateWorkflow(ctx, t, db, w)
	wb := newWorkflow("other", 3)
	mustCreateWorkflow(ctx, t, db, wb)
	// Run B is older than run A, though created second.
	rA, tA := startRun(ctx, t, db, w, at(10))
	rB, tB := startRun(ctx, t, db, wb, at(5))
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	rC := newRun(w, at(20))
	mustCreateRun(ctx, t, db, rC)
	tC := model.NewTasks(rC, at(21))
	tC[0].RetryAt = &later // waits for its retry time
	mustCreateTasks(ctx, t, db, tC)
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: rC.ID, Status: model.RunRunning, At: at(22)}})
	o := newOracle(tA, tB, tC)
	wfs := map[string]*model.Workflow{rA.ID: w, rB.ID: wb, rC.ID: w}

	claim := func(c model.Claim, want []*model.Task) {
		t.Helper()
		var us []model.TaskUpdate
		for _, tk := range want {
			us = append(us, dispatchOf(o.get(tk.ID), c.Scheduler, c.At))
		}
		wantTasks := o.apply(t, us)
		got, err := model.ClaimTasks(ctx, db, c)
		if err != nil {
			t.Fatalf("ClaimTasks: %v", err)
		}
		what := fmt.Sprintf("ClaimTasks(limit %d, last %v, skip %v, skip nodes %v) claimed", c.Limit, c.Last, c.Skip, c.SkipNodes)
		var wantIDs []string
		for _, tk := range want {
			wantIDs = append(wantIDs, tk.ID)
		}
		if ids := claimedIDs(got); !slices.Equal(ids, wantIDs) {
			t.Fatalf("%s %v, want %v", what, ids, wantIDs)
		}
		byID := map[string]*model.Task{}
		for _, tk := range wantTasks {
			byID[tk.ID] = tk
		}
		var ordered []*model.Task
		for _, id := range wantIDs {
			ordered = append(ordered, byID[id])
		}
		checkTaskList(t, what, tasksOf(t, what, got.Tasks), ordered)
		checkWorkflows(t, what, got.Tasks, wfs)
		if len(got.Changed) != 0 {
			t.Errorf("%s: Changed = %d tasks, want none (no updates)", what, len(got.Changed))
		}
	}
	// Oldest run first, by index.
	claim(model.Claim{Limit: 2, At: at(30)}, []*model.Task{tB[0], tB[1]})
	// Skip and SkipNodes are passed over; Last comes after the others in
	// the order given; the limit counts what is claimed.
	claim(model.Claim{Limit: 4, At: at(31), Skip: []string{tB[2].ID, tA[1].ID}, Last: []string{tA[2].ID, tA[0].ID},
		SkipNodes: []model.NodeRef{{RunID: rC.ID, Name: tC[1].Name}}},
		[]*model.Task{tA[3], tA[4], tA[2], tA[0]})
	// What is left: tB[2], tA[1], and run C's tasks but the one that waits.
	claim(model.Claim{Limit: 10, At: at(32)}, []*model.Task{tB[2], tA[1], tC[1], tC[2], tC[3], tC[4]})
	claim(model.Claim{Limit: 10, At: at(33)}, nil)
	for _, r := range []*model.Run{rA, rB, rC} {
		checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	}
	checkPendingTasks(ctx, t, db, 10, nil, wfs)
}

// testClaimWithUpdates: the updates of a claim and its claim land in one
// batch: an end that frees a slot and a failure put back in the queue for
// later, with the claim of the next task; updates alone (limit 0).
func (s *suite) testClaimWithUpdates(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 4)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	o := newOracle(tasks)
	got, err := model.ClaimTasks(ctx, db, model.Claim{Limit: 2, At: at(2)})
	if err != nil || !slices.Equal(claimedIDs(got), []string{tasks[0].ID, tasks[1].ID}) {
		t.Fatalf("first claim = %v, %v; want tasks 0 and 1", claimedIDs(got), err)
	}
	o.apply(t, []model.TaskUpdate{dispatchOf(tasks[0], "", at(2)), dispatchOf(tasks[1], "", at(2))})

	later := time.Now().Add(time.Hour).Truncate(time.Second)
	ups := []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, At: at(3), Output: []byte(`{"n":1}`)},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed", Error: "boom", RetryAt: &later, At: at(3)},
	}
	wantChanged := o.apply(t, ups)
	got, err = model.ClaimTasks(ctx, db, model.Claim{Limit: 1, At: at(4), Updates: ups})
	if err != nil || !slices.Equal(claimedIDs(got), []string{tasks[2].ID}) {
		t.Fatalf("claim with updates = %v, %v; want task 2", claimedIDs(got), err)
	}
	o.apply(t, []model.TaskUpdate{dispatchOf(tasks[2], "", at(4))})
	checkTaskList(t, "claimed with updates", tasksOf(t, "claimed", got.Tasks), []*model.Task{o.get(tasks[2].ID)})
	checkTaskSet(t, "Changed by the claim's updates", got.Changed, wantChanged)

	// An end that frees a slot, and the next task claimed, in one call;
	// the task waiting for its retry time is not claimed.
	ups = []model.TaskUpdate{{TaskID: tasks[2].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, At: at(5)}}
	wantChanged = o.apply(t, ups)
	got, err = model.ClaimTasks(ctx, db, model.Claim{Limit: 2, At: at(6), Updates: ups})
	if err != nil || !slices.Equal(claimedIDs(got), []string{tasks[3].ID}) {
		t.Fatalf("end and claim = %v, %v; want task 3 claimed", claimedIDs(got), err)
	}
	o.apply(t, []model.TaskUpdate{dispatchOf(tasks[3], "", at(6))})
	checkTaskSet(t, "Changed by the end", got.Changed, wantChanged)
	// Updates alone (limit 0) claim nothing.
	ups = []model.TaskUpdate{{TaskID: tasks[3].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, At: at(7)}}
	wantChanged = o.apply(t, ups)
	got, err = model.ClaimTasks(ctx, db, model.Claim{Updates: ups})
	if err != nil || len(got.Tasks) != 0 {
		t.Fatalf("updates with limit 0 claimed %v, %v; want nothing", claimedIDs(got), err)
	}
	checkTaskSet(t, "Changed by updates alone", got.Changed, wantChanged)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkCounts(ctx, t, db, r.ID, o.counts(r.ID))
}

// testFencedReports: a report that names another scheduler than the one
// that dispatched the task's attempt is ignored, one that names none or
// the same applies — the rule of model.ApplyTaskUpdate, in every backend.
func (s *suite) testFencedReports(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))
	o := newOracle(tasks)
	up := func(i, attempt int, st model.TaskStatus, sched string, n int) model.TaskUpdate {
		return model.TaskUpdate{TaskID: tasks[i].ID, RunID: r.ID, Attempt: attempt, Status: st, Scheduler: sched, At: at(n)}
	}
	mustUpdateTasks(ctx, t, db, o, []model.TaskUpdate{
		up(0, 1, model.TaskDispatched, "a", 2), up(1, 1, model.TaskDispatched, "a", 2), up(2, 1, model.TaskDispatched, "", 2)})
	for _, batch := range [][]model.TaskUpdate{
		{up(0, 1, model.TaskRunning, "b", 3), up(1, 1, model.TaskRunning, "a", 3), up(2, 1, model.TaskRunning, "b", 3)},
		{up(0, 1, model.TaskSuccess, "b", 4), up(1, 1, model.TaskPending, "b", 4)},
		{up(1, 1, model.TaskPending, "", 5)},
		{up(1, 2, model.TaskDispatched, "b", 6)},
		{up(1, 2, model.TaskFailed, "a", 7), up(0, 1, model.TaskSuccess, "a", 7)},
		{up(1, 2, model.TaskFailed, "b", 8), up(2, 1, model.TaskCancelled, "", 8)},
	} {
		mustUpdateTasks(ctx, t, db, o, batch)
	}
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkCounts(ctx, t, db, r.ID, map[model.TaskStatus]int{model.TaskSuccess: 1, model.TaskFailed: 1, model.TaskCancelled: 1})
}

// ---- Racing claimers (model.TaskClaimer, several handles) ----

// claimerSetup makes a store with handles handles, skipping the test unless
// the backend claims in one statement.
func (s *stores) claimerSetup(t *testing.T, handles int) (context.Context, []model.Database) {
	t.Helper()
	open := s.newStore(t)
	dbs := make([]model.Database, handles)
	for i := range dbs {
		dbs[i] = open(t)
	}
	if _, ok := dbs[0].(model.TaskClaimer); !ok {
		t.Skip("the backend does not claim in one statement (model.TaskClaimer): one scheduler only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, dbs
}

// testClaimEachOnce: 8 claimers on 4 handles drain 2,000 tasks of 4 runs,
// each reporting the ends of its previous claim with its next one: every
// task is claimed exactly once, with attempt 1, and ends a success.
func (s *stores) testClaimEachOnce(t *testing.T) {
	ctx, dbs := s.claimerSetup(t, 4)
	const claimers, runs, perRun, batch = 8, 4, 500, 25
	w := newWorkflow("many", perRun)
	mustCreateWorkflow(ctx, t, dbs[0], w)
	var all []*model.Task
	var runIDs []string
	for i := range runs {
		r, ts := startRun(ctx, t, dbs[i%len(dbs)], w, at(i))
		all = append(all, ts...)
		runIDs = append(runIDs, r.ID)
	}
	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for c := range claimers {
		db := dbs[c%len(dbs)]
		wg.Go(func() {
			var ends []model.TaskUpdate
			for idle := 0; idle < 3; {
				got, err := model.ClaimTasks(ctx, db, model.Claim{Limit: batch, Updates: ends})
				if err != nil {
					t.Errorf("claimer %d: %v", c, err)
					return
				}
				ends = ends[:0]
				mu.Lock()
				for _, p := range got.Tasks {
					claims[p.Task.ID]++
					if p.Task.Attempt != 1 || p.Task.Status != model.TaskDispatched {
						t.Errorf("claimer %d claimed %s %s attempt %d, want dispatched attempt 1", c, p.Task.ID, p.Task.Status, p.Task.Attempt)
					}
					ends = append(ends, model.TaskUpdate{TaskID: p.Task.ID, RunID: p.Task.RunID, Attempt: 1, Status: model.TaskSuccess})
				}
				mu.Unlock()
				if len(got.Tasks) == 0 {
					// Nothing now: others may still hold locks on the
					// last tasks; look again before stopping.
					idle++
					time.Sleep(10 * time.Millisecond)
				} else {
					idle = 0
				}
			}
			if len(ends) > 0 {
				if _, err := model.ClaimTasks(ctx, db, model.Claim{Updates: ends}); err != nil {
					t.Errorf("claimer %d: last ends: %v", c, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, tk := range all {
		if n := claims[tk.ID]; n != 1 {
			t.Errorf("task %s claimed %d times, want exactly once", tk.ID, n)
		}
	}
	for _, id := range runIDs {
		checkCounts(ctx, t, dbs[0], id, map[model.TaskStatus]int{model.TaskSuccess: perRun})
	}
}

// testOneDispatchWins: two handles dispatch the same task at the same
// moment, by UpdateTasks and by ClaimTasks: exactly one wins each time.
func (s *stores) testOneDispatchWins(t *testing.T) {
	ctx, dbs := s.claimerSetup(t, 2)
	const rounds = 20
	w := newWorkflow("one", 1)
	mustCreateWorkflow(ctx, t, dbs[0], w)
	for i := range rounds {
		r, ts := startRun(ctx, t, dbs[0], w, at(i))
		var wins [2]int
		var wg sync.WaitGroup
		start := make(chan struct{})
		for h, db := range dbs {
			wg.Go(func() {
				<-start
				var n int
				if i%2 == 0 {
					ch, err := db.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched, ExecutionName: fmt.Sprint("h", h)}})
					if err != nil {
						t.Errorf("UpdateTasks: %v", err)
					}
					n = len(ch)
				} else {
					got, err := model.ClaimTasks(ctx, db, model.Claim{Limit: 1})
					if err != nil {
						t.Errorf("ClaimTasks: %v", err)
					}
					n = len(got.Tasks)
				}
				wins[h] = n
			})
		}
		close(start)
		wg.Wait()
		if wins[0]+wins[1] != 1 {
			t.Fatalf("round %d: the dispatches won %v times, want exactly one win", i, wins)
		}
		ch, err := dbs[0].UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess}})
		if err != nil || len(ch) != 1 {
			t.Fatalf("round %d: end: %d changed, %v", i, len(ch), err)
		}
		mustUpdateRuns(ctx, t, dbs[0], []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}})
	}
}

// ---- Leases, heartbeats, leader terms (model.Cluster) ----

func (s *stores) clusterSetup(t *testing.T, handles int) (context.Context, []model.Database, []model.Cluster) {
	t.Helper()
	open := s.newStore(t)
	dbs := make([]model.Database, handles)
	cs := make([]model.Cluster, handles)
	for i := range dbs {
		dbs[i] = open(t)
		c, ok := dbs[i].(model.Cluster)
		if !ok {
			t.Skip("the backend does not implement model.Cluster: one scheduler only")
		}
		cs[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, dbs, cs
}

func schedInfo(id string) model.SchedulerInfo {
	return model.SchedulerInfo{ID: id, Host: "host-" + id, PID: len(id), StartedAt: time.Now()}
}

func mustJoin(ctx context.Context, t *testing.T, c model.Cluster, id string, lease time.Duration) {
	t.Helper()
	if err := c.Heartbeat(ctx, schedInfo(id), lease); err != nil {
		t.Fatalf("Heartbeat(%s), joining: %v", id, err)
	}
}

func runIDs(rs []*model.Run) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

// testClaimRuns: free runs are leased running ones first (their scheduler
// is gone), then pending ones oldest first, each to one scheduler however
// many claim at once; a held run is nobody else's.
func (s *stores) testClaimRuns(t *testing.T) {
	ctx, dbs, cs := s.clusterSetup(t, 2)
	mustJoin(ctx, t, cs[0], "a", time.Minute)
	mustJoin(ctx, t, cs[1], "b", time.Minute)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, dbs[0], w)
	old := newRun(w, at(1))
	mustCreateRun(ctx, t, dbs[0], old)
	running, _ := startRun(ctx, t, dbs[0], w, at(2)) // running, held by none
	newer := newRun(w, at(3))
	mustCreateRun(ctx, t, dbs[0], newer)

	got, err := cs[0].ClaimRuns(ctx, "a", 2)
	if err != nil || !slices.Equal(runIDs(got), []string{running.ID, old.ID}) {
		t.Fatalf("ClaimRuns(a, 2) = %v, %v; want the running run, then the oldest pending", runIDs(got), err)
	}
	for _, r := range got {
		if r.Scheduler != "a" {
			t.Errorf("claimed run %s names scheduler %q, want a", r.ID, r.Scheduler)
		}
	}
	if r, err := dbs[1].GetRun(ctx, old.ID); err != nil || r.Scheduler != "a" {
		t.Errorf("GetRun(%s) through another handle: scheduler %q, %v; want a", old.ID, r.Scheduler, err)
	}
	got, err = cs[1].ClaimRuns(ctx, "b", 10)
	if err != nil || !slices.Equal(runIDs(got), []string{newer.ID}) {
		t.Fatalf("ClaimRuns(b) = %v, %v; want only the run a does not hold", runIDs(got), err)
	}

	// Racing: two schedulers claim each new run at the same moment.
	for i := range 20 {
		r := newRun(w, at(10+i))
		mustCreateRun(ctx, t, dbs[0], r)
		var got [2][]*model.Run
		var wg sync.WaitGroup
		start := make(chan struct{})
		for h, id := range []string{"a", "b"} {
			wg.Go(func() {
				<-start
				var err error
				if got[h], err = cs[h].ClaimRuns(ctx, id, 1); err != nil {
					t.Errorf("ClaimRuns(%s): %v", id, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(got[0])+len(got[1]) != 1 {
			t.Fatalf("race %d: a claimed %v, b claimed %v; want the run claimed exactly once", i, runIDs(got[0]), runIDs(got[1]))
		}
	}
	infos, err := cs[1].Schedulers(ctx)
	if err != nil || len(infos) != 2 || infos[0].ID != "a" || infos[1].ID != "b" {
		t.Fatalf("Schedulers = %+v, %v; want a then b", infos, err)
	}
	if infos[0].Runs+infos[1].Runs != 23 || infos[0].Runs < 2 || infos[1].Runs < 1 {
		t.Errorf("Schedulers hold %d and %d runs, want 23 in all", infos[0].Runs, infos[1].Runs)
	}
	if infos[0].Host != "host-a" || infos[0].PID != 1 || infos[0].Expires.Before(infos[0].Heartbeat) {
		t.Errorf("Schedulers[0] = %+v, want host-a, pid 1, expiring after its heartbeat", infos[0])
	}
}

// testManySchedulers: 4 schedulers on 4 handles share 16 runs of 100
// tasks: each leases runs (ClaimRuns) and claims tasks only of the runs it
// holds (ClaimTasks), reporting the ends of its previous claim with its
// next one. Every task is claimed exactly once, by the scheduler that holds
// its run, and every run is held by one scheduler.
func (s *stores) testManySchedulers(t *testing.T) {
	ctx, dbs, cs := s.clusterSetup(t, 4)
	const runs, perRun = 16, 100
	w := newWorkflow("many", perRun)
	mustCreateWorkflow(ctx, t, dbs[0], w)
	var all []*model.Task
	for i := range runs {
		_, ts := startRun(ctx, t, dbs[i%len(dbs)], w, at(i))
		all = append(all, ts...)
	}
	ids := []string{"s0", "s1", "s2", "s3"}
	for i, id := range ids {
		mustJoin(ctx, t, cs[i], id, time.Minute)
	}
	var mu sync.Mutex
	claimedBy := map[string][]string{} // task -> claimers
	heldBy := map[string][]string{}    // run -> schedulers
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			var ends []model.TaskUpdate
			for idle := 0; idle < 3; {
				rs, err := cs[i].ClaimRuns(ctx, id, 2)
				if err != nil {
					t.Errorf("ClaimRuns(%s): %v", id, err)
					return
				}
				got, err := model.ClaimTasks(ctx, dbs[i], model.Claim{Scheduler: id, Limit: 30, Updates: ends})
				if err != nil {
					t.Errorf("ClaimTasks(%s): %v", id, err)
					return
				}
				ends = ends[:0]
				mu.Lock()
				for _, r := range rs {
					heldBy[r.ID] = append(heldBy[r.ID], id)
				}
				for _, p := range got.Tasks {
					claimedBy[p.Task.ID] = append(claimedBy[p.Task.ID], id)
					if p.Task.Scheduler != id {
						t.Errorf("%s claimed %s named for %q", id, p.Task.ID, p.Task.Scheduler)
					}
					ends = append(ends, model.TaskUpdate{TaskID: p.Task.ID, RunID: p.Task.RunID, Attempt: p.Task.Attempt, Status: model.TaskSuccess, Scheduler: id})
				}
				mu.Unlock()
				if len(rs) == 0 && len(got.Tasks) == 0 {
					idle++
					time.Sleep(10 * time.Millisecond)
				} else {
					idle = 0
				}
			}
			if len(ends) > 0 {
				if _, err := model.ClaimTasks(ctx, dbs[i], model.Claim{Scheduler: id, Updates: ends}); err != nil {
					t.Errorf("%s: last ends: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(heldBy) != runs {
		t.Errorf("%d runs were leased, want %d", len(heldBy), runs)
	}
	for run, hs := range heldBy {
		if len(hs) != 1 {
			t.Errorf("run %s leased to %v, want one scheduler", run, hs)
		}
	}
	for _, tk := range all {
		by := claimedBy[tk.ID]
		if len(by) != 1 {
			t.Errorf("task %s claimed by %v, want exactly once", tk.ID, by)
			continue
		}
		if h := heldBy[tk.RunID]; len(h) == 1 && h[0] != by[0] {
			t.Errorf("task %s claimed by %s, but its run is %s's", tk.ID, by[0], h[0])
		}
	}
	for r := range heldBy {
		checkCounts(ctx, t, dbs[0], r, map[model.TaskStatus]int{model.TaskSuccess: perRun})
	}
}

// testReapAndFence: a scheduler whose heartbeat stops is reaped by the
// leader; its run is claimed by another, which rescues its task and
// dispatches it again; the old scheduler's late reports (its attempt, its
// id) are ignored, and its Heartbeat, ClaimRuns and ClaimTasks are fenced.
func (s *stores) testReapAndFence(t *testing.T) {
	ctx, dbs, cs := s.clusterSetup(t, 2)
	dbA, dbB := dbs[0], dbs[1]
	a, b := cs[0], cs[1]
	const lease = 300 * time.Millisecond
	mustJoin(ctx, t, a, "a", lease)
	mustJoin(ctx, t, b, "b", time.Minute)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, dbA, w)
	r, tasks := startRun(ctx, t, dbA, w, at(1))
	if got, err := a.ClaimRuns(ctx, "a", 1); err != nil || len(got) != 1 {
		t.Fatalf("ClaimRuns(a) = %v, %v", runIDs(got), err)
	}
	// b holds no run: it claims no task.
	if got, err := model.ClaimTasks(ctx, dbB, model.Claim{Scheduler: "b", Limit: 10}); err != nil || len(got.Tasks) != 0 {
		t.Fatalf("ClaimTasks(b) of a run a holds = %v, %v; want nothing", claimedIDs(got), err)
	}
	got, err := model.ClaimTasks(ctx, dbA, model.Claim{Scheduler: "a", Limit: 1, At: at(2)})
	if err != nil || !slices.Equal(claimedIDs(got), []string{tasks[0].ID}) {
		t.Fatalf("ClaimTasks(a) = %v, %v; want task 0", claimedIDs(got), err)
	}
	if tk := got.Tasks[0].Task; tk.Scheduler != "a" || tk.Attempt != 1 {
		t.Fatalf("claimed task names scheduler %q attempt %d, want a, 1", tk.Scheduler, tk.Attempt)
	}
	if ch, err := dbA.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning, Scheduler: "a", At: at(3)}}); err != nil || len(ch) != 1 {
		t.Fatalf("a's running report: %d changed, %v", len(ch), err)
	}
	if infos, err := b.Schedulers(ctx); err != nil || len(infos) != 2 || infos[0].Runs != 1 || infos[0].Tasks != 1 {
		t.Fatalf("Schedulers = %+v, %v; want a holding 1 run and 1 task", infos, err)
	}

	// a stops its heartbeat; b leads and reaps it once its lease is over.
	term, err := b.Lead(ctx, "b", 0, time.Minute)
	if err != nil || term <= 0 {
		t.Fatalf("Lead(b) = %d, %v; want a term", term, err)
	}
	time.Sleep(2 * lease)
	reaped, err := b.Reap(ctx, "b", term)
	if err != nil || !slices.Equal(reaped, []string{"a"}) {
		t.Fatalf("Reap after a's lease ended = %v, %v; want [a] (not b, whose lease runs)", reaped, err)
	}
	claimedRuns, err := b.ClaimRuns(ctx, "b", 10)
	if err != nil || !slices.Equal(runIDs(claimedRuns), []string{r.ID}) {
		t.Fatalf("ClaimRuns(b) after the reap = %v, %v; want a's run", runIDs(claimedRuns), err)
	}
	// b rescues the task (a report naming a's attempt) and dispatches it
	// again.
	if ch, err := dbB.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, Scheduler: "a", Error: "scheduler a was lost", At: at(4)}}); err != nil || len(ch) != 1 {
		t.Fatalf("rescue: %d changed, %v", len(ch), err)
	}
	got, err = model.ClaimTasks(ctx, dbB, model.Claim{Scheduler: "b", Limit: 1, At: at(5)})
	if err != nil || !slices.Equal(claimedIDs(got), []string{tasks[0].ID}) || got.Tasks[0].Task.Attempt != 2 || got.Tasks[0].Task.Scheduler != "b" {
		t.Fatalf("ClaimTasks(b) = %v, %v; want task 0 again, attempt 2, scheduler b", claimedIDs(got), err)
	}
	// a's late reports land nowhere: not on its attempt, nor on b's.
	for _, attempt := range []int{1, 2} {
		late := model.TaskUpdate{TaskID: tasks[0].ID, RunID: r.ID, Attempt: attempt, Status: model.TaskSuccess, Scheduler: "a", At: at(6)}
		if ch, err := dbA.UpdateTasks(ctx, []model.TaskUpdate{late}); err != nil || len(ch) != 0 {
			t.Fatalf("a's late report of attempt %d: %d changed, %v; want it ignored", attempt, len(ch), err)
		}
	}
	// a is fenced everywhere.
	if err := a.Heartbeat(ctx, schedInfo("a"), time.Minute); !errors.Is(err, model.ErrFenced) {
		t.Fatalf("Heartbeat of the reaped a = %v, want ErrFenced", err)
	}
	if got, err := a.ClaimRuns(ctx, "a", 10); !errors.Is(err, model.ErrFenced) || len(got) != 0 {
		t.Fatalf("ClaimRuns of the reaped a = %v, %v; want nothing and ErrFenced", runIDs(got), err)
	}
	if got, err := model.ClaimTasks(ctx, dbA, model.Claim{Scheduler: "a", Limit: 10}); !errors.Is(err, model.ErrFenced) || len(got.Tasks) != 0 {
		t.Fatalf("ClaimTasks of the reaped a = %v, %v; want nothing and ErrFenced", claimedIDs(got), err)
	}
	// b's report of its attempt lands.
	if ch, err := dbB.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 2, Status: model.TaskSuccess, Scheduler: "b", At: at(7)}}); err != nil || len(ch) != 1 {
		t.Fatalf("b's report: %d changed, %v", len(ch), err)
	}
	ts, err := dbB.ListTasks(ctx, r.ID)
	if err != nil || ts[0].Status != model.TaskSuccess || ts[0].Attempt != 2 || ts[0].Scheduler != "b" || len(ts[0].Attempts) != 2 {
		t.Fatalf("task 0 = %+v, %v; want b's attempt 2 a success after a's interrupted attempt 1", ts[0], err)
	}
	infos, err := b.Schedulers(ctx)
	if err != nil || len(infos) != 1 || infos[0].ID != "b" || !infos[0].Leader || infos[0].Term != term || infos[0].Runs != 1 || infos[0].Tasks != 0 {
		t.Fatalf("Schedulers = %+v, %v; want b alone, leading on term %d, holding the run", infos, err, term)
	}
}

// testLeaderTerms: of two contenders one leads; a term renews while it
// runs; an expired term is never renewed, and the next term is higher;
// Reap on a stale term is fenced; Leave ends the leaver's term at once and
// frees its runs.
func (s *stores) testLeaderTerms(t *testing.T) {
	ctx, dbs, cs := s.clusterSetup(t, 2)
	// Two contenders at once: exactly one leads.
	var terms [2]int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for h, id := range []string{"a", "b"} {
		wg.Go(func() {
			<-start
			var err error
			if terms[h], err = cs[h].Lead(ctx, id, 0, time.Minute); err != nil {
				t.Errorf("Lead(%s): %v", id, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if (terms[0] > 0) == (terms[1] > 0) {
		t.Fatalf("two contenders got terms %v, want exactly one leader", terms)
	}
	lead, other, leadID, otherID := 0, 1, "a", "b"
	if terms[1] > 0 {
		lead, other, leadID, otherID = 1, 0, "b", "a"
	}
	term := terms[lead]
	if got, err := cs[lead].Lead(ctx, leadID, term, time.Minute); err != nil || got != term {
		t.Fatalf("renewal of term %d = %d, %v; want the same term", term, got, err)
	}
	if got, err := cs[other].Lead(ctx, otherID, 0, time.Minute); err != nil || got != 0 {
		t.Fatalf("Lead(%s) while %s's term runs = %d, %v; want 0", otherID, leadID, got, err)
	}
	if _, err := cs[other].Reap(ctx, otherID, term); !errors.Is(err, model.ErrFenced) {
		t.Fatalf("Reap by a non-leader = %v, want ErrFenced", err)
	}

	// Leave ends the term at once and frees the leaver's runs.
	mustJoin(ctx, t, cs[lead], leadID, time.Minute)
	mustJoin(ctx, t, cs[other], otherID, time.Minute)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, dbs[0], w)
	r, _ := startRun(ctx, t, dbs[0], w, at(1))
	if got, err := cs[lead].ClaimRuns(ctx, leadID, 1); err != nil || len(got) != 1 {
		t.Fatalf("ClaimRuns(%s) = %v, %v", leadID, runIDs(got), err)
	}
	if err := cs[lead].Leave(ctx, leadID); err != nil {
		t.Fatalf("Leave(%s): %v", leadID, err)
	}
	if got, err := cs[other].ClaimRuns(ctx, otherID, 1); err != nil || !slices.Equal(runIDs(got), []string{r.ID}) {
		t.Fatalf("ClaimRuns(%s) right after %s left = %v, %v; want its run", otherID, leadID, runIDs(got), err)
	}
	next, err := cs[other].Lead(ctx, otherID, 0, time.Minute)
	if err != nil || next <= term {
		t.Fatalf("Lead(%s) after the leader left = %d, %v; want a term above %d", otherID, next, err, term)
	}
	if err := cs[lead].Heartbeat(ctx, schedInfo(leadID), time.Minute); !errors.Is(err, model.ErrFenced) {
		t.Fatalf("Heartbeat after Leave = %v, want ErrFenced (no silent re-join)", err)
	}
	if _, err := cs[lead].Reap(ctx, leadID, term); !errors.Is(err, model.ErrFenced) {
		t.Fatalf("Reap on the ended term %d = %v, want ErrFenced", term, err)
	}

	// An expired term is never renewed: its holder gets a new one, higher.
	const short = 200 * time.Millisecond
	t1, err := cs[other].Lead(ctx, otherID, next, short)
	if err != nil || t1 != next {
		t.Fatalf("renewal of term %d with a short lease = %d, %v", next, t1, err)
	}
	time.Sleep(2 * short)
	if _, err := cs[other].Reap(ctx, otherID, t1); !errors.Is(err, model.ErrFenced) {
		t.Fatalf("Reap on the expired term %d = %v, want ErrFenced", t1, err)
	}
	t2, err := cs[other].Lead(ctx, otherID, t1, time.Minute)
	if err != nil || t2 <= t1 {
		t.Fatalf("Lead on the expired term %d = %d, %v; want a new, higher term", t1, t2, err)
	}
	// And one that another took is lost for good.
	if _, err := cs[other].Lead(ctx, otherID, t2, short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * short)
	joiner := "c"
	t3, err := cs[lead].Lead(ctx, joiner, 0, time.Minute)
	if err != nil || t3 <= t2 {
		t.Fatalf("Lead(c) after the term %d expired = %d, %v; want a higher term", t2, t3, err)
	}
	if got, err := cs[other].Lead(ctx, otherID, t2, time.Minute); err != nil || got != 0 {
		t.Fatalf("Lead(%s) on its lost term %d = %d, %v; want 0 while c's runs", otherID, t2, got, err)
	}
	if _, err := cs[lead].Reap(ctx, joiner, t3); err != nil {
		t.Fatalf("Reap(c) on its term: %v", err)
	}
}

// testClaimRunsMaxActive: a pending run is not claimed while its workflow
// has max_active_runs runs active — running, or pending and held by a
// scheduler — whoever holds them; the runs of other workflows behind them
// are claimed all the same.
func (s *stores) testClaimRunsMaxActive(t *testing.T) {
	ctx, dbs, cs := s.clusterSetup(t, 2)
	mustJoin(ctx, t, cs[0], "a", time.Minute)
	mustJoin(ctx, t, cs[1], "b", time.Minute)
	two := newWorkflow("two", 1)
	two.MaxActiveRuns = 2
	free := newWorkflow("free", 1)
	mustCreateWorkflow(ctx, t, dbs[0], two)
	mustCreateWorkflow(ctx, t, dbs[0], free)
	var capped []*model.Run
	for i := range 4 {
		r := newRun(two, at(i))
		mustCreateRun(ctx, t, dbs[0], r)
		capped = append(capped, r)
	}
	other := newRun(free, at(10))
	mustCreateRun(ctx, t, dbs[0], other)

	got, err := cs[0].ClaimRuns(ctx, "a", 1)
	if err != nil || !slices.Equal(runIDs(got), []string{capped[0].ID}) {
		t.Fatalf("ClaimRuns(a, 1) = %v, %v; want the oldest run", runIDs(got), err)
	}
	// Held, still pending, it counts: one more of "two" may be claimed.
	got, err = cs[1].ClaimRuns(ctx, "b", 10)
	if err != nil || !slices.Equal(runIDs(got), []string{capped[1].ID, other.ID}) {
		t.Fatalf("ClaimRuns(b, 10) = %v, %v; want one more run of two (max_active_runs 2), then the run of free", runIDs(got), err)
	}
	mustUpdateRuns(ctx, t, dbs[0], []model.RunUpdate{{RunID: capped[0].ID, Status: model.RunRunning, At: at(20)}})
	if got, err = cs[0].ClaimRuns(ctx, "a", 10); err != nil || len(got) != 0 {
		t.Fatalf("ClaimRuns(a) with two runs of two active = %v, %v; want none", runIDs(got), err)
	}
	mustUpdateRuns(ctx, t, dbs[1], []model.RunUpdate{{RunID: capped[0].ID, Status: model.RunSuccess, At: at(21)}})
	got, err = cs[0].ClaimRuns(ctx, "a", 10)
	if err != nil || !slices.Equal(runIDs(got), []string{capped[2].ID}) {
		t.Fatalf("ClaimRuns(a) after a run of two ended = %v, %v; want the next run of two only", runIDs(got), err)
	}
}

// testClaimRunsMaxActiveRacing: claimers on several handles claim, all at
// the same moment, the runs of a workflow with max_active_runs 1: each
// round exactly one run is claimed, and the next round comes once it
// ended.
func (s *stores) testClaimRunsMaxActiveRacing(t *testing.T) {
	ctx, dbs, cs := s.clusterSetup(t, 3)
	w := newWorkflow("one", 1)
	w.MaxActiveRuns = 1
	mustCreateWorkflow(ctx, t, dbs[0], w)
	const runs = 10
	for i := range runs {
		mustCreateRun(ctx, t, dbs[0], newRun(w, at(i)))
	}
	ids := []string{"a", "b", "c"}
	for i, id := range ids {
		mustJoin(ctx, t, cs[i], id, time.Minute)
	}
	claimed := map[string]bool{}
	for round := range runs {
		var got [3][]*model.Run
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, id := range ids {
			wg.Go(func() {
				<-start
				var err error
				if got[i], err = cs[i].ClaimRuns(ctx, id, 4); err != nil {
					t.Errorf("ClaimRuns(%s): %v", id, err)
				}
			})
		}
		close(start)
		wg.Wait()
		all := slices.Concat(got[:]...)
		if len(all) != 1 {
			t.Fatalf("round %d: claimed %v, %v, %v; want exactly one run (max_active_runs 1)", round, runIDs(got[0]), runIDs(got[1]), runIDs(got[2]))
		}
		r := all[0]
		if claimed[r.ID] {
			t.Fatalf("round %d: run %s claimed again", round, r.ID)
		}
		claimed[r.ID] = true
		mustUpdateRuns(ctx, t, dbs[1], []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: at(100 + round)}})
		mustUpdateRuns(ctx, t, dbs[2], []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess, At: at(100 + round)}})
	}
}

// testClaimCreates: tasks created in a claim (model.Claim.Create) land
// with the claim's updates and its claim: the end of a task, the next task
// created dispatched in its first attempt, another created skipped, and a
// pending task claimed, in one call; a task that exists is left as it is.
// On a cluster, only a claimer that holds the run creates its tasks.
func (s *suite) testClaimCreates(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	all := model.NewTasks(r, at(2))
	mustCreateTasks(ctx, t, db, all[:2])
	o := newOracle(all[:2])
	got, err := model.ClaimTasks(ctx, db, model.Claim{Limit: 1, At: at(3)})
	if err != nil || !slices.Equal(claimedIDs(got), []string{all[0].ID}) {
		t.Fatalf("first claim = %v, %v; want task 0", claimedIDs(got), err)
	}
	o.apply(t, []model.TaskUpdate{dispatchOf(all[0], "", at(3))})

	ups := []model.TaskUpdate{{TaskID: all[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, At: at(4)}}
	wantChanged := o.apply(t, ups)
	next := cloneTask(all[2])
	d := at(4).UTC()
	next.Status, next.Attempt, next.DispatchedAt = model.TaskDispatched, 1, &d
	skipped := cloneTask(all[2])
	skipped.ID, skipped.TaskIndex = model.TaskID(r.ID, skipped.Name, 3), 3
	skipped.Status, skipped.Error, skipped.FinishedAt = model.TaskSkipped, "condition `x` is false", &d
	again := cloneTask(all[1]) // exists: left as it is
	again.Status = model.TaskFailed
	got, err = model.ClaimTasks(ctx, db, model.Claim{Limit: 2, At: at(4), Updates: ups,
		Create: []*model.Task{next, skipped, again}})
	if err != nil || !slices.Equal(claimedIDs(got), []string{all[1].ID}) {
		t.Fatalf("claim with creates = %v, %v; want task 1 claimed, the created tasks not", claimedIDs(got), err)
	}
	checkTaskSet(t, "Changed by the claim's updates", got.Changed, wantChanged)
	if len(got.Skipped) != 0 {
		t.Errorf("claim with creates: Skipped = %v; want none (the run exists; a task that exists is not skipped)", got.Skipped)
	}
	o.apply(t, []model.TaskUpdate{dispatchOf(all[1], "", at(4))})
	o.add(next)
	o.add(skipped)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
	checkCounts(ctx, t, db, r.ID, o.counts(r.ID))

	// Creates alone, with nothing to update or claim.
	last := cloneTask(all[2])
	last.ID, last.TaskIndex = model.TaskID(r.ID, last.Name, 4), 4
	if got, err = model.ClaimTasks(ctx, db, model.Claim{Create: []*model.Task{last}}); err != nil || len(got.Tasks)+len(got.Changed)+len(got.Skipped) != 0 {
		t.Fatalf("creates alone = %+v, %v; want nothing claimed or changed", got, err)
	}
	o.add(last)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))

	// On a cluster, a claimer creates tasks only in the runs it holds.
	cl, ok := db.(model.Cluster)
	if !ok {
		return
	}
	for _, id := range []string{"a", "b"} {
		if err := cl.Heartbeat(ctx, model.SchedulerInfo{ID: id, Host: "h", PID: 1, StartedAt: at(1)}, time.Hour); err != nil {
			t.Fatalf("Heartbeat(%s): %v", id, err)
		}
	}
	if runs, err := cl.ClaimRuns(ctx, "a", 10); err != nil || len(runs) != 1 || runs[0].ID != r.ID {
		t.Fatalf("ClaimRuns(a) = %d runs, %v; want run %s", len(runs), err, r.ID)
	}
	held := cloneTask(all[2])
	held.ID, held.TaskIndex = model.TaskID(r.ID, held.Name, 5), 5
	if got, err := model.ClaimTasks(ctx, db, model.Claim{Scheduler: "b", Create: []*model.Task{held}}); err != nil {
		t.Fatalf("claim of b with creates: %v", err)
	} else if !slices.Equal(got.Skipped, []string{held.ID}) {
		t.Errorf("claim of b with creates: Skipped = %v; want [%s] (b does not hold the run)", got.Skipped, held.ID)
	}
	checkTasks(ctx, t, db, r.ID, o.list(r.ID)) // b does not hold the run: nothing created
	if got, err := model.ClaimTasks(ctx, db, model.Claim{Scheduler: "a", Create: []*model.Task{held}}); err != nil {
		t.Fatalf("claim of a with creates: %v", err)
	} else if len(got.Skipped) != 0 {
		t.Errorf("claim of a with creates: Skipped = %v; want none", got.Skipped)
	}
	o.add(held)
	checkTasks(ctx, t, db, r.ID, o.list(r.ID))
}
