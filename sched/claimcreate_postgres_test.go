//go:build postgres

package sched_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// takingDB is a PostgreSQL handle whose first claim that creates tasks is
// preceded by the run of those tasks being taken away: leased to another
// scheduler, between the scheduler's plan and its claim.
type takingDB struct {
	*pgdb.DB
	url string

	mu      sync.Mutex
	taken   string   // the run taken away
	created []string // the ids of the tasks planned in that claim
	skipped []string // what the claim said it skipped
}

func (d *takingDB) ClaimTasks(ctx context.Context, c model.Claim) (model.Claimed, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	take := d.taken == "" && slices.ContainsFunc(c.Create, func(t *model.Task) bool { return t.Status == model.TaskDispatched })
	if take {
		run := c.Create[0].RunID
		conn, err := pgx.Connect(ctx, d.url)
		if err != nil {
			return model.Claimed{}, err
		}
		_, err = conn.Exec(ctx, `UPDATE runs SET scheduler = 'thief' WHERE id = $1`, run)
		conn.Close(ctx)
		if err != nil {
			return model.Claimed{}, err
		}
		d.taken = run
		for _, t := range c.Create {
			d.created = append(d.created, t.ID)
		}
	}
	res, err := d.DB.ClaimTasks(ctx, c)
	if take {
		d.skipped = res.Skipped
	}
	return res, err
}

// startRecorder reports every attempt successful at once and remembers
// which tasks it started.
type startRecorder struct {
	benchNoopExecutor
	mu      sync.Mutex
	started map[string]bool
}

func (e *startRecorder) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	e.mu.Lock()
	e.started[t.Task.ID] = true
	e.mu.Unlock()
	return e.benchNoopExecutor.Execute(ctx, t)
}

// On PostgreSQL a loop's new task records ride in its claim, which creates
// them only in runs the claimer holds. A run taken away between the
// scheduler's plan and its claim: the claim skips its creates and says so,
// and the scheduler starts none of them — every task it starts has a
// record — forgets the run without writing its end, and goes on serving
// its other runs. When the run is freed again and the same scheduler claims
// it back, that scheduler runs its tasks and records its end.
func TestRunTakenBeforeClaimPostgres(t *testing.T) {
	url := pgdbtest.URL(t)
	ctx := context.Background()
	open := func(migrate bool) *pgdb.DB { return openPostgres(t, url, migrate) }
	other := open(true)
	// The scheduler the run is leased to, live for the test's length.
	if err := other.Heartbeat(ctx, model.SchedulerInfo{ID: "thief", Host: "h", PID: 1, StartedAt: time.Now()}, time.Hour); err != nil {
		t.Fatal(err)
	}
	w := &model.Workflow{Name: "many", JobName: "noop.sh", TaskCount: 60}
	if err := other.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	db := &takingDB{DB: open(false), url: url}
	var rec *startRecorder
	runScheduler(t, db, func(updates chan exec.StatusUpdate) exec.Executor {
		rec = &startRecorder{benchNoopExecutor: benchNoopExecutor{updates: updates}, started: map[string]bool{}}
		return rec
	})

	r := model.NewRun(w, nil, "test", time.Now())
	if err := other.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the run taken away in a claim that creates its tasks", func() bool {
		db.mu.Lock()
		defer db.mu.Unlock()
		return db.taken != ""
	})
	db.mu.Lock()
	created, skipped := db.created, db.skipped
	db.mu.Unlock()
	if !slices.Equal(skipped, created) {
		t.Fatalf("the claim skipped %d of its %d creates; want all (the run is another's)", len(skipped), len(created))
	}

	// The scheduler goes on: another run, its own, ends.
	r2 := model.NewRun(w, nil, "test", time.Now())
	if err := other.CreateRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second run to end", func() bool {
		got, err := other.GetRun(ctx, r2.ID)
		return err == nil && got.Status.Terminal()
	})
	if got, _ := other.GetRun(ctx, r2.ID); got.Status != model.RunSuccess {
		t.Fatalf("second run %s %q; want success", got.Status, got.Error)
	}

	records := map[string]bool{}
	for _, id := range []string{r.ID, r2.ID} {
		ts, err := other.ListTasks(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range ts {
			records[task.ID] = true
		}
	}
	rec.mu.Lock()
	for id := range rec.started {
		if !records[id] {
			t.Errorf("task %s started without a record", id)
		}
	}
	for _, id := range skipped {
		if rec.started[id] {
			t.Errorf("task %s started, whose create the claim skipped", id)
		}
	}
	rec.mu.Unlock()
	got, err := other.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Terminal() || got.Scheduler != "thief" {
		t.Errorf("the run taken away is %s, held by %q; want it unfinished, held by thief", got.Status, got.Scheduler)
	}

	// The thief leaves: its runs are freed (and the schedulers notified), as
	// any clean stop or reaping frees them. The scheduler that lost the run
	// claims it again and runs its tasks; it must also end it.
	if err := other.Leave(ctx, "thief"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := other.GetRun(ctx, r.ID)
		if err == nil && got.Status.Terminal() {
			return
		}
		if time.Now().After(deadline) {
			counts, _ := other.TaskCounts(ctx, r.ID)
			t.Fatalf("the run lost then freed is still %s (held by %q) 15s later, its tasks %v", got.Status, got.Scheduler, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// On PostgreSQL the records a loop creates ride in its claim: the tasks a
// DAG hop unblocks, and a flat run's next tasks once the queue was found
// empty — no CreateTasks of their own. (Only the first tasks of the
// scheduler's first run are created after its claim: the queue is not yet
// known to be empty.)
func TestNewRecordsRideInTheClaimPostgres(t *testing.T) {
	url := pgdbtest.URL(t)
	ctx := context.Background()
	open := func(migrate bool) *pgdb.DB { return openPostgres(t, url, migrate) }
	other := open(true)
	chain := &model.Workflow{Name: "chain", Tasks: map[string]*model.TaskSpec{
		"a": {JobName: "noop.sh"},
		"b": {JobName: "noop.sh", DependsOn: []string{"a"}},
		"c": {JobName: "noop.sh", DependsOn: []string{"b"}},
	}}
	flat := &model.Workflow{Name: "flat", JobName: "noop.sh", TaskCount: 100}
	for _, w := range []*model.Workflow{chain, flat} {
		if err := other.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	db := &countingDB{DB: open(false), n: map[string]int{}}
	runScheduler(t, db, func(updates chan exec.StatusUpdate) exec.Executor { return &benchNoopExecutor{updates: updates} })
	run := func(w *model.Workflow) {
		t.Helper()
		r := model.NewRun(w, nil, "test", time.Now())
		if err := other.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "run "+w.Name+" to end", func() bool {
			got, err := other.GetRun(ctx, r.ID)
			return err == nil && got.Status.Terminal()
		})
		if got, _ := other.GetRun(ctx, r.ID); got.Status != model.RunSuccess {
			t.Fatalf("run %s: %s %q", w.Name, got.Status, got.Error)
		}
	}
	calls := func() int {
		db.mu.Lock()
		defer db.mu.Unlock()
		return db.n["CreateTasks"]
	}
	run(flat) // the first: its first tasks may be created after the claim
	before := calls()
	run(chain)
	run(flat)
	if n := calls() - before; n != 0 {
		t.Errorf("%d CreateTasks calls for a chain of 3 and a run of 100 tasks; want none (every record created in a claim)", n)
	}
}
