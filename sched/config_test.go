package sched_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// TestConfigDefaults pins the documented defaults: what a zero Config
// means (and what `ork run` with no flag uses).
func TestConfigDefaults(t *testing.T) {
	c := sched.Config{}.WithDefaults()
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"PollInterval", c.PollInterval, time.Second},
		{"MaxTasksPerBatch", c.MaxTasksPerBatch, 100},
		{"MaxConcurrentDispatches", c.MaxConcurrentDispatches, 10},
		{"MaxConcurrentStatusChecks", c.MaxConcurrentStatusChecks, 50},
		{"MaxRunningTasks", c.MaxRunningTasks, 4 * runtime.NumCPU()},
		{"ShutdownGrace", c.ShutdownGrace, 10 * time.Second},
		{"MaxInterruptions", c.MaxInterruptions, 5},
		{"Lookahead", c.Lookahead(), 4 * runtime.NumCPU()},
		{"exec.DefaultMaxLogBytes", int64(exec.DefaultMaxLogBytes), int64(10 << 20)},
	} {
		if tt.got != tt.want {
			t.Errorf("default %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if c.Logger == nil {
		t.Error("default Logger is nil")
	}
	// Negative means none, and stays so.
	n := sched.Config{ShutdownGrace: -1, MaxInterruptions: -1}.WithDefaults()
	if n.ShutdownGrace != -1 || n.MaxInterruptions != -1 {
		t.Errorf("negative ShutdownGrace, MaxInterruptions became %s, %d", n.ShutdownGrace, n.MaxInterruptions)
	}
}

// The scheduler claims only what can start soon: at no moment are more
// tasks dispatched or running than MaxRunningTasks plus the lookahead (as
// many again), however many are pending.
func TestDispatchLookahead(t *testing.T) {
	e := newEnv(t)
	e.script("nap.sh", "sleep 0.2")
	w := e.workflow("naps", "nap.sh", 20)
	s, _ := e.start(e.db, sched.Config{MaxRunningTasks: 2})
	if got := s.Config().Lookahead(); got != 2 {
		t.Fatalf("Lookahead with MaxRunningTasks 2 = %d, want 2", got)
	}
	r := e.trigger(e.db, w)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ended := make(chan struct{})
	go func() { s.WaitRun(ctx, r.ID); close(ended) }()
	most, samples := 0, 0
	for done := false; !done; {
		select {
		case <-ended:
			done = true
		case <-time.After(5 * time.Millisecond):
		}
		counts, err := e.db.TaskCounts(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, counts[model.TaskDispatched]+counts[model.TaskRunning])
		samples++
	}
	if most > 4 {
		t.Errorf("up to %d tasks dispatched or running at once, want at most 4 (2 running, 2 ahead)", most)
	}
	if most < 3 {
		t.Errorf("at most %d tasks dispatched or running at once in %d samples: no task was dispatched ahead", most, samples)
	}
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
}
