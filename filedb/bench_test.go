package filedb

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// Benchmarks of the scheduler's hot paths on the file database, with
// durable writes as shipped. Compare two versions with benchstat:
//
//	go test -run '^$' -bench . -count 6 ./filedb > old.txt
//	(change)
//	go test -run '^$' -bench . -count 6 ./filedb > new.txt
//	benchstat old.txt new.txt

func benchDB(b *testing.B) *DB {
	b.Helper()
	d, err := Open(initDir(b), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// benchRun creates a pending run of a workflow of n tasks.
func benchRun(b *testing.B, d *DB, n int) *model.Run {
	b.Helper()
	w := &model.Workflow{Name: "bench", JobName: "bench.sh", TaskCount: n}
	w.Normalize()
	r := model.NewRun(w, nil, "bench", time.Now())
	if err := d.CreateRun(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	return r
}

// benchTasks creates the tasks from to to-1 of run r, in the given status,
// in batches of at most 1,000.
func benchTasks(b *testing.B, d *DB, r *model.Run, from, to int, st model.TaskStatus) []*model.Task {
	b.Helper()
	ts := model.NewNodeTasks(r, r.Workflow.Nodes()[0], from, to, time.Now())
	now := time.Now().UTC()
	for _, t := range ts {
		if st != model.TaskPending {
			t.Status, t.Attempt, t.DispatchedAt = st, 1, &now
		}
	}
	for i := 0; i < len(ts); i += 1000 {
		if err := d.CreateTasks(context.Background(), ts[i:min(i+1000, len(ts))]); err != nil {
			b.Fatal(err)
		}
	}
	return ts
}

// BenchmarkUpdateTasks is one scheduler write of n status changes, as
// executors report them: even iterations mark n dispatched tasks running,
// odd ones mark them successful. The tasks are created (untimed) before
// each pair of iterations, and a run is finished and a new one started
// every 100 batches, so every iteration costs the same.
func BenchmarkUpdateTasks(b *testing.B) {
	const batchesPerRun = 100
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			d := benchDB(b)
			ctx := context.Background()
			var r *model.Run
			var ts []*model.Task
			us := make([]model.TaskUpdate, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i / 2 % batchesPerRun
				if i%2 == 0 {
					b.StopTimer()
					if k == 0 {
						if r != nil {
							if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
								b.Fatal(err)
							}
						}
						r = benchRun(b, d, n*batchesPerRun)
					}
					ts = benchTasks(b, d, r, k*n, (k+1)*n, model.TaskDispatched)
					b.StartTimer()
				}
				st := model.TaskRunning
				if i%2 == 1 {
					st = model.TaskSuccess
				}
				now := time.Now()
				for j, t := range ts {
					us[j] = model.TaskUpdate{TaskID: t.ID, RunID: t.RunID, Attempt: 1, Status: st, At: now}
				}
				changed, err := d.UpdateTasks(ctx, us)
				if err != nil {
					b.Fatal(err)
				}
				if len(changed) != n {
					b.Fatalf("%d tasks changed, want %d", len(changed), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
		})
	}
}

// BenchmarkPendingTasks takes the next 100 tasks to dispatch out of 10,000
// pending ones, in one run or spread over 100.
func BenchmarkPendingTasks(b *testing.B) {
	const pending = 10000
	for _, runs := range []int{1, 100} {
		b.Run(fmt.Sprintf("runs=%d", runs), func(b *testing.B) {
			d := benchDB(b)
			for range runs {
				r := benchRun(b, d, pending/runs)
				benchTasks(b, d, r, 0, pending/runs, model.TaskPending)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ts, err := d.PendingTasks(ctx, 100)
				if err != nil {
					b.Fatal(err)
				}
				if len(ts) != 100 {
					b.Fatalf("%d pending tasks, want 100", len(ts))
				}
			}
		})
	}
}

// BenchmarkCreateTasks creates 100 task records per iteration, dispatched,
// as the scheduler creates the tasks of a run as slots free up. A new run
// is started every 100 iterations, so no directory grows without bound.
//
// inodes=new writes every record to a newly created file, as at start-up;
// inodes=recycled first (untimed) updates the previous 100 tasks, which
// leaves their old versions as spare inodes for the next creation, as in
// the scheduler's steady state.
func BenchmarkCreateTasks(b *testing.B) {
	const batch, perRun = 100, 100
	for _, recycled := range []bool{false, true} {
		name := "inodes=new"
		if recycled {
			name = "inodes=recycled"
		}
		b.Run(name, func(b *testing.B) {
			d := benchDB(b)
			ctx := context.Background()
			var r *model.Run
			var prev []*model.Task
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % perRun
				if k == 0 || (recycled && len(prev) > 0) {
					b.StopTimer()
					if recycled && len(prev) > 0 {
						us := make([]model.TaskUpdate, len(prev))
						for j, t := range prev {
							us[j] = model.TaskUpdate{TaskID: t.ID, RunID: t.RunID, Attempt: 1, Status: model.TaskRunning}
						}
						if _, err := d.UpdateTasks(ctx, us); err != nil {
							b.Fatal(err)
						}
					}
					if k == 0 {
						r = benchRun(b, d, batch*perRun)
					}
					b.StartTimer()
				}
				ts := model.NewNodeTasks(r, r.Workflow.Nodes()[0], k*batch, (k+1)*batch, time.Now())
				now := time.Now().UTC()
				for _, t := range ts {
					t.Status, t.Attempt, t.DispatchedAt = model.TaskDispatched, 1, &now
				}
				if err := d.CreateTasks(ctx, ts); err != nil {
					b.Fatal(err)
				}
				prev = ts
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/task")
		})
	}
}

// BenchmarkCreateRun is a trigger: one new pending run file, written
// durably, through a handle without the scheduler's index (as `ork
// trigger` in another process).
func BenchmarkCreateRun(b *testing.B) {
	d := benchDB(b)
	w := &model.Workflow{Name: "bench", JobName: "bench.sh", TaskCount: 1}
	w.Normalize()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.CreateRun(ctx, model.NewRun(w, nil, "bench", time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusOfFinishedRun is `ork status RUN` on a finished run of n
// tasks: a fresh handle, GetRun and TaskCounts.
func BenchmarkStatusOfFinishedRun(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			d := benchDB(b)
			r := benchRun(b, d, n)
			ts := benchTasks(b, d, r, 0, n, model.TaskDispatched)
			ctx := context.Background()
			for i := 0; i < len(ts); i += 1000 {
				var us []model.TaskUpdate
				for _, t := range ts[i:min(i+1000, len(ts))] {
					us = append(us, model.TaskUpdate{TaskID: t.ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess})
				}
				if _, err := d.UpdateTasks(ctx, us); err != nil {
					b.Fatal(err)
				}
			}
			if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fresh, err := Open(d.root, Options{Logger: d.log})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := fresh.GetRun(ctx, r.ID); err != nil {
					b.Fatal(err)
				}
				counts, err := fresh.TaskCounts(ctx, r.ID)
				if err != nil {
					b.Fatal(err)
				}
				if counts[model.TaskSuccess] != n {
					b.Fatalf("%d tasks succeeded, want %d", counts[model.TaskSuccess], n)
				}
				fresh.Close()
			}
		})
	}
}

// BenchmarkListTasksOfRunningRun is ListTasks on the scheduler's handle (as
// `ork serve` lists a watched run) on a running run of n tasks, half of
// them finished.
func BenchmarkListTasksOfRunningRun(b *testing.B) {
	for _, n := range []int{10000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			d := benchDB(b)
			r := benchRun(b, d, n)
			ctx := context.Background()
			if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
				b.Fatal(err)
			}
			ts := benchTasks(b, d, r, 0, n, model.TaskDispatched)
			for i := 0; i < n/2; i += 1000 {
				var us []model.TaskUpdate
				for _, t := range ts[i:min(i+1000, n/2)] {
					us = append(us, model.TaskUpdate{TaskID: t.ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess})
				}
				if _, err := d.UpdateTasks(ctx, us); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got, err := d.ListTasks(ctx, r.ID)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != n {
					b.Fatalf("%d tasks listed, want %d", len(got), n)
				}
			}
		})
	}
}
