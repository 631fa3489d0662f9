//go:build postgres

package sched_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/sched"
)

// openPostgres opens a handle on the database at url for a test or a
// benchmark, logging nothing, closed when it ends; migrate applies the
// migrations (the first handle on a new schema).
func openPostgres(tb testing.TB, url string, migrate bool) *pgdb.DB {
	tb.Helper()
	db, err := pgdb.Open(context.Background(), url, pgdb.Options{Logger: slog.New(slog.DiscardHandler), Migrate: migrate})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// runScheduler runs a scheduler over db, logging nothing, whose tasks the
// executor that executor makes runs, until tb ends; an error of Run fails
// tb.
func runScheduler(tb testing.TB, db model.Database, executor func(chan exec.StatusUpdate) exec.Executor) *sched.Scheduler {
	updates := make(chan exec.StatusUpdate, 4096)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, executor(updates))
	s := sched.New(db, mgr, sched.Config{Logger: slog.New(slog.DiscardHandler), NoSchedules: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("scheduler: %v", err)
		}
	})
	return s
}
