//go:build postgres

package pgdb_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
	"github.com/ork-run/ork/schedtest"
)

var quiet = slog.New(slog.DiscardHandler)

// open opens the database at url, migrating it, and closes it when the
// test ends.
func open(t testing.TB, url string) *pgdb.DB {
	t.Helper()
	d, err := pgdb.Open(context.Background(), url, pgdb.Options{Migrate: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// The postgres backend passes the conformance suite every backend passes,
// each test on a schema of its own, with several handles (as several
// processes) on one schema.
func TestConformance(t *testing.T) {
	dbtest.RunStores(t, func(t *testing.T) dbtest.Store {
		url := pgdbtest.URL(t)
		return func(t *testing.T) model.Database { return open(t, url) }
	})
}

// The real scheduler on PostgreSQL passes the scheduler suite every backend
// passes.
func TestSchedulerConformance(t *testing.T) {
	schedtest.Run(t, func(t *testing.T) dbtest.Store {
		url := pgdbtest.URL(t)
		return func(t *testing.T) model.Database { return open(t, url) }
	})
}
