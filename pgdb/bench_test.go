//go:build postgres

package pgdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// BenchmarkTaskLife drives batches of 100 tasks through the calls the
// scheduler makes for each: PendingTasks, UpdateTasks (dispatched), then
// one UpdateTasks (running and success), as with the no-op executor.
// It reports tasks/s.
func BenchmarkTaskLife(b *testing.B) {
	d := open(b, pgdbtest.URL(b))
	ctx := context.Background()
	const batch = 100
	w := &model.Workflow{Name: "bench", JobName: "j.sh", TaskCount: batch}
	if err := d.CreateWorkflow(ctx, w); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := model.NewRun(w, nil, "bench", time.Now())
		if err := d.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
		if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
			b.Fatal(err)
		}
		pend, err := d.PendingTasks(ctx, batch)
		if err != nil || len(pend) != batch {
			b.Fatalf("PendingTasks: %d, %v", len(pend), err)
		}
		us := make([]model.TaskUpdate, 0, 2*batch)
		for _, p := range pend {
			us = append(us, model.TaskUpdate{TaskID: p.Task.ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched})
		}
		if ch, err := d.UpdateTasks(ctx, us); err != nil || len(ch) != batch {
			b.Fatalf("dispatch: %d, %v", len(ch), err)
		}
		us = us[:0]
		for _, p := range pend {
			us = append(us, model.TaskUpdate{TaskID: p.Task.ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess})
		}
		if ch, err := d.UpdateTasks(ctx, us); err != nil || len(ch) != batch {
			b.Fatalf("end: %d, %v", len(ch), err)
		}
		if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkClaimLife drives tasks through their life as a scheduler with
// the no-op executor does on one database: each round creates a run of
// batch tasks (CreateRun, CreateTasks, running), claims them with one
// ClaimTasks that also carries the ends (success) of the previous round's
// tasks, and ends the previous run. held: the claimer is a scheduler of a
// cluster, which first leases the new run (ClaimRuns); otherwise the
// single-scheduler path (scheduler ""). It reports tasks/s over the whole
// round, and claim-tasks/s over the time spent in ClaimTasks alone.
func BenchmarkClaimLife(b *testing.B) {
	for _, held := range []bool{false, true} {
		for _, batch := range []int{16, 100, 1000} {
			name := fmt.Sprintf("single/batch=%d", batch)
			if held {
				name = fmt.Sprintf("held/batch=%d", batch)
			}
			b.Run(name, func(b *testing.B) { benchClaimLife(b, batch, held) })
		}
	}
}

func benchClaimLife(b *testing.B, batch int, held bool) {
	d := open(b, pgdbtest.URL(b))
	ctx := context.Background()
	w := &model.Workflow{Name: "bench", JobName: "j.sh", TaskCount: batch}
	if err := d.CreateWorkflow(ctx, w); err != nil {
		b.Fatal(err)
	}
	sched := ""
	if held {
		sched = "bench-scheduler"
		if err := d.Heartbeat(ctx, model.SchedulerInfo{ID: sched, Host: "bench", PID: 1}, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	var ends []model.TaskUpdate
	var prevRun string
	var inClaim time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := model.NewRun(w, nil, "bench", time.Now())
		if err := d.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
		if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
			b.Fatal(err)
		}
		if held {
			if rs, err := d.ClaimRuns(ctx, sched, 1); err != nil || len(rs) != 1 {
				b.Fatalf("ClaimRuns: %d, %v", len(rs), err)
			}
		}
		runs := []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}
		if prevRun != "" {
			runs = append(runs, model.RunUpdate{RunID: prevRun, Status: model.RunSuccess})
		}
		if err := d.UpdateRuns(ctx, runs); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		got, err := d.ClaimTasks(ctx, model.Claim{Scheduler: sched, Limit: batch, Updates: ends})
		inClaim += time.Since(t0)
		if err != nil || len(got.Tasks) != batch || len(got.Changed) != len(ends) {
			b.Fatalf("ClaimTasks: claimed %d, changed %d of %d, %v", len(got.Tasks), len(got.Changed), len(ends), err)
		}
		ends = ends[:0]
		for _, p := range got.Tasks {
			ends = append(ends, model.TaskUpdate{TaskID: p.Task.ID, RunID: p.Task.RunID, Attempt: p.Task.Attempt,
				Status: model.TaskSuccess, Scheduler: sched})
		}
		prevRun = r.ID
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(b.N*batch)/inClaim.Seconds(), "claim-tasks/s")
}
