//go:build postgres

package sched_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// BenchmarkSchedulersPostgres puts tasks through 1, 2 and 3 schedulers on
// one PostgreSQL database (each on its own handle, in this process), with
// default settings and an executor that runs nothing: the schedulers' and
// the database's throughput together. One op is 10 runs of 100 tasks,
// triggered at once from another handle and waited for; it reports the
// total tasks/s.
//
//	ORK_TEST_DATABASE_URL=... go test -tags postgres -run '^$' -bench SchedulersPostgres -count 3 ./sched
func BenchmarkSchedulersPostgres(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("schedulers=%d", n), func(b *testing.B) {
			url := pgdbtest.URL(b)
			open := func(migrate bool) *pgdb.DB { return openPostgres(b, url, migrate) }
			trigger := open(true)
			w := &model.Workflow{Name: "bulk", JobName: "noop.sh", TaskCount: 100}
			if err := trigger.CreateWorkflow(context.Background(), w); err != nil {
				b.Fatal(err)
			}
			runSchedulers(b, n, trigger, open, func(updates chan exec.StatusUpdate) exec.Executor {
				return &benchNoopExecutor{updates: updates}
			})
			b.ResetTimer()
			for range b.N {
				var ids []string
				for range 10 {
					r := model.NewRun(w, nil, "bench", time.Now())
					if err := trigger.CreateRun(context.Background(), r); err != nil {
						b.Fatal(err)
					}
					ids = append(ids, r.ID)
				}
				// Polled, not WaitRun: a run ended by another scheduler does
				// not wake this one's waiters.
				for _, id := range ids {
					for {
						r, err := trigger.GetRun(context.Background(), id)
						if err != nil {
							b.Fatal(err)
						}
						if r.Status.Terminal() {
							if r.Status != model.RunSuccess {
								b.Fatalf("run %s: %s %s", id, r.Status, r.Error)
							}
							break
						}
						time.Sleep(2 * time.Millisecond)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// startSpy is benchNoopExecutor that also says when each attempt starts.
type startSpy struct {
	benchNoopExecutor
	started chan<- time.Time
}

func (e *startSpy) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	e.started <- time.Now()
	return e.benchNoopExecutor.Execute(ctx, t)
}

// BenchmarkTriggerToStartPostgres triggers one-task runs one at a time
// from another handle (as `ork trigger` in another process) while 1, 2 or
// 3 schedulers serve the database, and measures the time from the run's
// creation to its task's Execute in whichever scheduler claimed it: the
// notification, the run's claim, the task's creation, dispatched, in its
// first attempt. It reports the median and the 90th percentile.
//
//	ORK_TEST_DATABASE_URL=... go test -tags postgres -run '^$' -bench TriggerToStartPostgres -benchtime 200x ./sched
func BenchmarkTriggerToStartPostgres(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("schedulers=%d", n), func(b *testing.B) {
			url := pgdbtest.URL(b)
			open := func(migrate bool) *pgdb.DB { return openPostgres(b, url, migrate) }
			trigger := open(true)
			w := &model.Workflow{Name: "one", JobName: "noop.sh", TaskCount: 1}
			if err := trigger.CreateWorkflow(context.Background(), w); err != nil {
				b.Fatal(err)
			}
			started := make(chan time.Time, 16)
			runSchedulers(b, n, trigger, open, func(updates chan exec.StatusUpdate) exec.Executor {
				return &startSpy{benchNoopExecutor{updates: updates}, started}
			})
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				r := model.NewRun(w, nil, "bench", t0)
				if err := trigger.CreateRun(context.Background(), r); err != nil {
					b.Fatal(err)
				}
				select {
				case at := <-started:
					lat = append(lat, at.Sub(t0))
				case <-time.After(30 * time.Second):
					b.Fatal("the task did not start within 30s")
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
}

// runSchedulers starts n schedulers, each on a handle of its own (open)
// with the executor that executor makes, stops them when b ends, and
// returns once db lists all n as live.
func runSchedulers(b *testing.B, n int, db *pgdb.DB, open func(migrate bool) *pgdb.DB, executor func(chan exec.StatusUpdate) exec.Executor) {
	for range n {
		runScheduler(b, open(false), executor)
	}
	for {
		if live, err := db.Schedulers(context.Background()); err == nil && len(live) == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
