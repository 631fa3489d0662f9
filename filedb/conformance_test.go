package filedb

import (
	"log/slog"
	"testing"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/model"
)

// The file database passes the conformance suite every backend passes,
// with several handles (as several processes) on one directory.
func TestConformance(t *testing.T) {
	dbtest.RunStores(t, func(t *testing.T) dbtest.Store {
		dir := initDir(t)
		return func(t *testing.T) model.Database {
			d, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		}
	})
}
