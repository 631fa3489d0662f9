package filedb_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/schedtest"
)

// The real scheduler on the file database passes the scheduler suite every
// backend passes.
func TestSchedulerConformance(t *testing.T) {
	schedtest.Run(t, func(t *testing.T) dbtest.Store {
		dir := filepath.Join(t.TempDir(), ".ork")
		if err := filedb.Init(dir); err != nil {
			t.Fatal(err)
		}
		return func(t *testing.T) model.Database {
			d, err := filedb.Open(dir, filedb.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		}
	})
}
