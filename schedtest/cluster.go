package schedtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// The tests of several schedulers on one database (a model.Cluster): they
// are skipped on a backend that is not one.

// cluster skips the test unless the store is a model.Cluster, and returns
// the scheduler's handle as one.
func (e *Env) cluster(t *testing.T) model.Cluster {
	c, ok := e.DB.(model.Cluster)
	if !ok {
		t.Skip("the backend is not a model.Cluster: one scheduler serves it")
	}
	return c
}

// waitMembers waits until n schedulers are live.
func waitMembers(t *testing.T, c model.Cluster, n int) {
	t.Helper()
	waitUntil(t, 20*time.Second, fmt.Sprintf("%d schedulers are live", n), func() bool {
		ss, err := c.Schedulers(context.Background())
		return err == nil && len(ss) == n
	})
}

// Three schedulers on three handles share 2,000 tasks in 20 runs: each
// task runs exactly once (one attempt), and each scheduler runs some.
func testSeveralSchedulers(t *testing.T, e *Env) {
	c := e.cluster(t)
	e.Script("ok.sh", "exit 0")
	w := e.Workflow(&model.Workflow{Name: "many", JobName: "ok.sh", TaskCount: 100})
	var ss []*sched.Scheduler
	var stops []func() error
	for i := range 3 {
		db := e.DB
		if i > 0 {
			db = e.Open(t)
		}
		s, stop := e.Start(db, sched.Config{NoSchedules: true})
		ss, stops = append(ss, s), append(stops, stop)
	}
	waitMembers(t, c, 3)
	var runs []*model.Run
	for range 20 {
		runs = append(runs, e.Trigger(e.DB, w))
	}
	for _, r := range runs {
		if got := e.Wait(ss[0], r, 5*time.Minute); got.Status != model.RunSuccess {
			t.Fatalf("run %s: %s %q", r.ID, got.Status, got.Error)
		}
	}
	did := map[string]int{}
	for _, r := range runs {
		ts := e.Tasks(r)
		if len(ts) != 100 {
			t.Fatalf("run %s has %d tasks, want 100", r.ID, len(ts))
		}
		// A run at a time: the scheduler that holds a run runs all its
		// tasks.
		if i := slices.IndexFunc(ts, func(x *model.Task) bool { return x.Scheduler != ts[0].Scheduler }); i >= 0 {
			t.Errorf("run %s: task %s ran under %s, task %s under %s; want one scheduler a run", r.ID, ts[0].Label(), ts[0].Scheduler, ts[i].Label(), ts[i].Scheduler)
		}
		for _, task := range ts {
			if task.Status != model.TaskSuccess || task.Attempt != 1 || len(task.Attempts) != 1 {
				t.Errorf("task %s of run %s: %s in attempt %d, %d attempts on record; want success in its one attempt",
					task.Label(), r.ID, task.Status, task.Attempt, len(task.Attempts))
			}
			did[task.Scheduler]++
		}
	}
	for _, s := range ss {
		if did[s.ID()] == 0 {
			t.Errorf("scheduler %s ran no task (tasks by scheduler: %v)", s.ID(), did)
		}
	}
	t.Logf("tasks by scheduler: %v", did)
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}
	// A clean stop leaves.
	if left, err := c.Schedulers(context.Background()); err != nil || len(left) != 0 {
		t.Errorf("after three clean stops, schedulers %v (%v), want none", left, err)
	}
}

// Three schedulers share the runs of a workflow with max_active_runs 1:
// however many schedulers, its runs are active one at a time — each
// starts after the one before it finished.
func testMaxActiveRunsAcrossSchedulers(t *testing.T, e *Env) {
	c := e.cluster(t)
	e.Script("nap.sh", "sleep 0.1")
	w := e.Workflow(&model.Workflow{Name: "one", JobName: "nap.sh", TaskCount: 1, MaxActiveRuns: 1})
	var ss []*sched.Scheduler
	for i := range 3 {
		db := e.DB
		if i > 0 {
			db = e.Open(t)
		}
		s, _ := e.Start(db, sched.Config{NoSchedules: true})
		ss = append(ss, s)
	}
	waitMembers(t, c, 3)
	var runs []*model.Run
	for range 9 {
		runs = append(runs, e.Trigger(e.DB, w))
	}
	var ends []*model.Run
	for _, r := range runs {
		got := e.Wait(ss[0], r, 2*time.Minute)
		if got.Status != model.RunSuccess {
			t.Fatalf("run %s: %s %q", r.ID, got.Status, got.Error)
		}
		ends = append(ends, got)
	}
	slices.SortFunc(ends, func(a, b *model.Run) int { return a.StartedAt.Compare(*b.StartedAt) })
	for i := 1; i < len(ends); i++ {
		if ends[i].StartedAt.Before(*ends[i-1].FinishedAt) {
			t.Errorf("run %s (scheduler %s) started at %s, before run %s (scheduler %s) finished at %s: two runs of a workflow with max_active_runs 1 were active",
				ends[i].ID, ends[i].Scheduler, ends[i].StartedAt.Format(time.StampMicro), ends[i-1].ID, ends[i-1].Scheduler, ends[i-1].FinishedAt.Format(time.StampMicro))
		}
	}
}

// partition is a database handle that the test can cut off: while cut,
// every call fails, as when a scheduler's host loses the network (or the
// scheduler is paused): its heartbeat stops, and it writes nothing.
type partition struct {
	model.Database
	cut atomic.Bool
}

var errCut = errors.New("schedtest: cut off from the database")

func (p *partition) err() error {
	if p.cut.Load() {
		return errCut
	}
	return nil
}

func (p *partition) cl() model.Cluster { return p.Database.(model.Cluster) }

func (p *partition) Changes() <-chan struct{} {
	if n, ok := p.Database.(model.Notifier); ok {
		return n.Changes()
	}
	return nil
}

func (p *partition) GetRun(ctx context.Context, id string) (*model.Run, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.GetRun(ctx, id)
}

func (p *partition) ListRuns(ctx context.Context, f model.RunFilter) ([]*model.Run, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.ListRuns(ctx, f)
}

func (p *partition) PendingRuns(ctx context.Context, limit int) ([]*model.Run, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.PendingRuns(ctx, limit)
}

func (p *partition) UpdateRuns(ctx context.Context, us []model.RunUpdate) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.Database.UpdateRuns(ctx, us)
}

func (p *partition) CreateTasks(ctx context.Context, ts []*model.Task) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.Database.CreateTasks(ctx, ts)
}

func (p *partition) PendingTasks(ctx context.Context, limit int) ([]model.TaskWithWorkflow, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.PendingTasks(ctx, limit)
}

func (p *partition) ActiveTasks(ctx context.Context) ([]model.TaskWithWorkflow, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.ActiveTasks(ctx)
}

func (p *partition) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.UpdateTasks(ctx, us)
}

func (p *partition) ListTasks(ctx context.Context, runID string) ([]*model.Task, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.ListTasks(ctx, runID)
}

func (p *partition) TaskCounts(ctx context.Context, runID string) (map[model.TaskStatus]int, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.TaskCounts(ctx, runID)
}

func (p *partition) CancelRequests(ctx context.Context) ([]string, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Database.CancelRequests(ctx)
}

func (p *partition) ClaimTasks(ctx context.Context, c model.Claim) (model.Claimed, error) {
	if err := p.err(); err != nil {
		return model.Claimed{}, err
	}
	return model.ClaimTasks(ctx, p.Database, c)
}

func (p *partition) Heartbeat(ctx context.Context, s model.SchedulerInfo, lease time.Duration) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.cl().Heartbeat(ctx, s, lease)
}

func (p *partition) Leave(ctx context.Context, id string) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.cl().Leave(ctx, id)
}

func (p *partition) Schedulers(ctx context.Context) ([]model.SchedulerInfo, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.cl().Schedulers(ctx)
}

func (p *partition) Lead(ctx context.Context, id string, term int64, lease time.Duration) (int64, error) {
	if err := p.err(); err != nil {
		return 0, err
	}
	return p.cl().Lead(ctx, id, term, lease)
}

func (p *partition) Reap(ctx context.Context, id string, term int64) ([]string, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.cl().Reap(ctx, id, term)
}

func (p *partition) ClaimRuns(ctx context.Context, id string, limit int) ([]*model.Run, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.cl().ClaimRuns(ctx, id, limit)
}

// One of three schedulers is cut off from the database while its tasks
// run (its host lost, or the process paused): with the default lease, the
// other two take over its runs within the bound `ork run` prints, recover
// its tasks (its processes on this host are stopped, its attempts recorded
// interrupted and run again) and finish every run. When it comes back, its
// late reports of the attempts it lost are ignored — no task fails, none
// runs twice at once — and it stops with ErrFenced.
func testTakeover(t *testing.T, e *Env) {
	c := e.cluster(t)
	e.Script("nap.sh", "sleep 0.3")
	w := e.Workflow(&model.Workflow{Name: "naps", JobName: "nap.sh", TaskCount: 40})
	cfg := sched.Config{NoSchedules: true}
	victimDB := &partition{Database: e.Open(t)}
	victim := e.New(victimDB, cfg)
	vctx, stopVictim := context.WithCancel(context.Background())
	defer stopVictim()
	victimDone := make(chan error, 1)
	go func() { victimDone <- victim.Run(vctx) }()
	waitMembers(t, c, 1)
	a, _ := e.Start(e.DB, cfg)
	e.Start(e.Open(t), cfg)
	waitMembers(t, c, 3)
	var runs []*model.Run
	for range 9 {
		runs = append(runs, e.Trigger(e.DB, w))
	}
	// Cut the victim off once it runs tasks.
	ctx := context.Background()
	var held []string
	waitUntil(t, 60*time.Second, "the victim runs tasks", func() bool {
		held = held[:0]
		running := 0
		for _, r := range runs {
			got, err := e.DB.GetRun(ctx, r.ID)
			if err != nil || got.Scheduler != victim.ID() {
				continue
			}
			held = append(held, r.ID)
			for _, task := range e.Tasks(r) {
				if task.Status == model.TaskRunning && task.Scheduler == victim.ID() {
					running++
				}
			}
		}
		return running > 0
	})
	victimDB.cut.Store(true)
	cutAt := time.Now()
	t.Logf("victim %s cut off holding runs %v", victim.ID(), held)

	// Its runs are taken over within the bound.
	bound := victim.Config().TakeoverBound()
	waitUntil(t, bound+10*time.Second, "the victim's runs are taken over", func() bool {
		for _, id := range held {
			got, err := e.DB.GetRun(ctx, id)
			if err != nil || got.Scheduler == victim.ID() || (got.Scheduler == "" && !got.Status.Terminal()) {
				return false
			}
		}
		return true
	})
	took := time.Since(cutAt)
	t.Logf("taken over %s after the cut (bound %s)", took.Round(time.Millisecond), bound)
	if took > bound+5*time.Second {
		t.Errorf("the victim's runs were taken over %s after it was cut off; ork run promises about %s", took, bound)
	}
	// It comes back: its late reports are ignored, and it stops.
	victimDB.cut.Store(false)
	select {
	case err := <-victimDone:
		if !errors.Is(err, model.ErrFenced) {
			t.Errorf("the victim's Run returned %v, want ErrFenced", err)
		}
	case <-time.After(bound):
		t.Errorf("the victim did not stop within %s of coming back", bound)
	}
	for _, r := range runs {
		if got := e.Wait(a, r, 3*time.Minute); got.Status != model.RunSuccess {
			t.Fatalf("run %s: %s %q", r.ID, got.Status, got.Error)
		}
	}
	interrupted := 0
	for _, r := range runs {
		for _, task := range e.Tasks(r) {
			if task.Status != model.TaskSuccess {
				t.Errorf("task %s of run %s: %s %q", task.Label(), r.ID, task.Status, task.Error)
			}
			for _, at := range task.Attempts {
				switch at.Status {
				case model.AttemptInterrupted:
					interrupted++
				case model.TaskSuccess:
				default:
					t.Errorf("task %s of run %s: attempt %d %s (%q): a late report of the victim landed", task.Label(), r.ID, at.Attempt, at.Status, at.Error)
				}
			}
		}
	}
	for _, l := range strings.Split(e.Logs.String(), "\n") {
		for _, what := range []string{"reaped", "took over", "recovered a task", "withdrew", "stopped processes"} {
			if strings.Contains(l, what) {
				t.Log(l)
				break
			}
		}
	}
	if interrupted == 0 {
		t.Error("no attempt was recorded interrupted: the victim's running tasks were not recovered")
	}
	ss, err := c.Schedulers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.ID == victim.ID() {
			t.Errorf("the victim is still a member: %+v", s)
		}
	}
}

// runBg runs a scheduler over db until the test ends; done receives what
// Run returned.
func (e *Env) runBg(db model.Database, cfg sched.Config) (*sched.Scheduler, <-chan error) {
	s := e.New(db, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.T.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	})
	return s, done
}

// The database goes away for longer than the lease (a slow restart of
// PostgreSQL, a network cut between every scheduler and it), with the
// default lease: when it is back, no scheduler is reaped for its absence —
// every one's heartbeat failed alike — so none stops, no task runs twice,
// and the runs end as if nothing happened.
func testOutageLongerThanLease(t *testing.T, e *Env) {
	c := e.cluster(t)
	e.Script("nap.sh", "sleep 0.3")
	w := e.Workflow(&model.Workflow{Name: "naps", JobName: "nap.sh", TaskCount: 30})
	cfg := sched.Config{NoSchedules: true}
	pa, pb := &partition{Database: e.Open(t)}, &partition{Database: e.Open(t)}
	a, doneA := e.runBg(pa, cfg)
	// Their heartbeats out of step, as those of separate processes are:
	// when the database is back, one of them hears it first.
	time.Sleep(a.Config().Lease / 6)
	_, doneB := e.runBg(pb, cfg)
	waitMembers(t, c, 2)
	var runs []*model.Run
	for range 2 {
		runs = append(runs, e.Trigger(e.DB, w))
	}
	waitUntil(t, 30*time.Second, "tasks run", func() bool {
		for _, r := range runs {
			for _, task := range e.Tasks(r) {
				if task.Status == model.TaskRunning {
					return true
				}
			}
		}
		return false
	})
	pa.cut.Store(true)
	pb.cut.Store(true)
	time.Sleep(a.Config().TakeoverBound() + time.Second)
	pa.cut.Store(false)
	pb.cut.Store(false)
	for _, r := range runs {
		if got := e.Wait(a, r, 2*time.Minute); got.Status != model.RunSuccess {
			t.Fatalf("run %s: %s %q", r.ID, got.Status, got.Error)
		}
	}
	for name, done := range map[string]<-chan error{"a": doneA, "b": doneB} {
		select {
		case err := <-done:
			t.Errorf("scheduler %s stopped after the outage: %v", name, err)
		default:
		}
	}
	if ss, err := c.Schedulers(context.Background()); err != nil || len(ss) != 2 {
		t.Errorf("after the outage, schedulers %+v (%v), want both", ss, err)
	}
	for _, r := range runs {
		for _, task := range e.Tasks(r) {
			if task.Status != model.TaskSuccess || task.Attempt != 1 || len(task.Attempts) != 1 {
				t.Errorf("task %s of run %s: %s in attempt %d, attempts %+v; want success in its one attempt", task.Label(), r.ID, task.Status, task.Attempt, task.Attempts)
			}
		}
	}
}

// A scheduler that dies leaving an attempt dispatched whose start was not
// recorded: if it was of another host, the attempt may have begun there
// (its log is on that host), so whoever takes its run over counts it
// (interrupted, then run again); if it was of this host, its log tells
// that it never began, and it is withdrawn.
func testAttemptOfAnotherHost(t *testing.T, e *Env) {
	c := e.cluster(t)
	ctx := context.Background()
	e.Script("ok.sh", "exit 0")
	w := e.Workflow(&model.Workflow{Name: "one", JobName: "ok.sh", TaskCount: 1})
	host, _ := os.Hostname()
	dead := map[string]string{"elsewhere.invalid:42:beef": "[1:interrupted 2:success]", host + ":43:cafe": "[1:success]"}
	runs := map[string]*model.Run{}
	for id := range dead {
		r := e.Trigger(e.DB, w)
		runs[id] = r
		if err := c.Heartbeat(ctx, model.SchedulerInfo{ID: id, Host: strings.Split(id, ":")[0], PID: 1, StartedAt: time.Now()}, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// The dead one took the run and dispatched its task, and died
		// before its start was recorded.
		waitUntil(t, 10*time.Second, "the run claimed", func() bool {
			got, err := c.ClaimRuns(ctx, id, 1)
			return err == nil && len(got) == 1 && got[0].ID == r.ID
		})
		if _, err := model.ClaimTasks(ctx, e.DB, model.Claim{Scheduler: id, Limit: 1, Create: model.NewTasks(r, time.Now())}); err != nil {
			t.Fatal(err)
		}
		if ts := e.Tasks(r); len(ts) != 1 || ts[0].Status != model.TaskDispatched || ts[0].Scheduler != id {
			t.Fatalf("the dead scheduler's task: %+v", ts)
		}
	}
	s, _ := e.Start(e.DB, sched.Config{NoSchedules: true, Lease: time.Second})
	for id, want := range dead {
		r := e.Wait(s, runs[id], 30*time.Second)
		if r.Status != model.RunSuccess {
			t.Fatalf("run of %s = %s %q", id, r.Status, r.Error)
		}
		var as []string
		for _, a := range e.Tasks(r)[0].Attempts {
			as = append(as, fmt.Sprintf("%d:%s", a.Attempt, a.Status))
		}
		if got := fmt.Sprint(as); got != want {
			t.Errorf("the task dispatched by %s: attempts %s, want %s", id, got, want)
		}
	}
}
