//go:build postgres

package pgdb_test

import (
	"context"
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
