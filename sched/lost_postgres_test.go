//go:build postgres

package sched_test

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
	"github.com/ork-run/ork/sched"
)

// A run taken away from the scheduler between its plan and its claim
// (every create of the claim skipped) is forgotten; when it is freed again
// and the same scheduler claims it back, that scheduler runs its tasks and
// records its end.
func TestRunLostThenHeldAgainIsFinishedPostgres(t *testing.T) {
	url := pgdbtest.URL(t)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(migrate bool) *pgdb.DB {
		db, err := pgdb.Open(ctx, url, pgdb.Options{Logger: quiet, Migrate: migrate})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
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
	updates := make(chan exec.StatusUpdate, 4096)
	mgr := exec.NewManager(updates)
	rec := &startRecorder{benchNoopExecutor: benchNoopExecutor{updates: updates}, started: map[string]bool{}}
	mgr.Register(model.ExecutorProcess, rec)
	s := sched.New(db, mgr, sched.Config{Logger: quiet, NoSchedules: true})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler: %v", err)
		}
	}()

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
			t.Logf("run %s %s", got.Status, got.Scheduler)
			return
		}
		if time.Now().After(deadline) {
			counts, _ := other.TaskCounts(ctx, r.ID)
			t.Fatalf("the run lost then freed is still %s (held by %q) 15s later, its tasks %v", got.Status, got.Scheduler, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
