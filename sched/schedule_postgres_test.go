//go:build postgres

package sched

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// The tick logic runs on PostgreSQL too: every test of schedule_test.go
// gets a schema of its own, and a second handle on it as a restarted
// scheduler would open it.
func init() {
	scheduleBackends["postgres"] = func(t *testing.T) func() model.Database {
		url := pgdbtest.URL(t)
		first := true
		return func() model.Database {
			db, err := pgdb.Open(context.Background(), url, pgdb.Options{Logger: slog.New(slog.DiscardHandler), Migrate: first})
			if err != nil {
				t.Fatal(err)
			}
			first = false
			t.Cleanup(func() { db.Close() })
			return db
		}
	}
}
