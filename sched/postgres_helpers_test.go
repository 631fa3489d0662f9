//go:build postgres

package sched_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ork-run/ork/pgdb"
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
