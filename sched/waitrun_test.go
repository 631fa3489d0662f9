package sched_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// flakyReads fails GetRun a number of times, as a database does while its
// connection is being re-established.
type flakyReads struct {
	model.Database
	fail atomic.Int32
}

func (f *flakyReads) GetRun(ctx context.Context, id string) (*model.Run, error) {
	if f.fail.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	return f.Database.GetRun(ctx, id)
}

func (f *flakyReads) Changes() <-chan struct{} { return f.Database.(model.Notifier).Changes() }

// WaitRun outlasts a database that fails a few reads: the run goes on, and
// the wait for it returns the run when it ends, not the passing error.
func TestWaitRunOutlastsFailedReads(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "sleep 0.2")
	w := e.workflow("ok", "ok.sh", 2)
	db := &flakyReads{Database: e.db}
	s, _ := e.start(db, sched.Config{})
	r := e.trigger(e.db, w)
	db.fail.Store(3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := s.WaitRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("WaitRun = %v, want the run once it ends", err)
	}
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success", got.Status, got.Error)
	}
	if n := db.fail.Load(); n >= 0 {
		t.Fatalf("%d failures left: the test did not exercise the failed reads", n+1)
	}

	// A run that does not exist is an error at once.
	if _, err := s.WaitRun(ctx, "no-such-run"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("WaitRun(no-such-run) = %v, want ErrNotFound", err)
	}
}
