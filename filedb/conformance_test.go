package filedb

import (
	"log/slog"
	"testing"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/model"
)

// The file database passes the conformance suite every backend passes.
func TestConformance(t *testing.T) {
	dbtest.Run(t, func(t *testing.T) model.Database {
		d, err := Open(initDir(t), Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}
