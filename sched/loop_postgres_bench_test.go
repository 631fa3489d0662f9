//go:build postgres

package sched_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// countingDB is a PostgreSQL handle that counts the scheduler's calls by
// method. Each call is one round trip, or two for the writes that retry
// nothing (UpdateTasks, UpdateRuns, CreateTasks and ClaimTasks may take one
// more round per 1,000 rows).
type countingDB struct {
	*pgdb.DB
	mu sync.Mutex
	n  map[string]int
}

func (c *countingDB) count(m string) {
	c.mu.Lock()
	c.n[m]++
	c.mu.Unlock()
}

func (c *countingDB) ClaimRuns(ctx context.Context, id string, limit int) ([]*model.Run, error) {
	c.count("ClaimRuns")
	return c.DB.ClaimRuns(ctx, id, limit)
}

func (c *countingDB) ClaimTasks(ctx context.Context, cl model.Claim) (model.Claimed, error) {
	c.count("ClaimTasks")
	return c.DB.ClaimTasks(ctx, cl)
}

func (c *countingDB) CreateTasks(ctx context.Context, ts []*model.Task) error {
	c.count("CreateTasks")
	return c.DB.CreateTasks(ctx, ts)
}

func (c *countingDB) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	c.count("UpdateTasks")
	return c.DB.UpdateTasks(ctx, us)
}

func (c *countingDB) UpdateRuns(ctx context.Context, us []model.RunUpdate) error {
	c.count("UpdateRuns")
	return c.DB.UpdateRuns(ctx, us)
}

func (c *countingDB) TaskCounts(ctx context.Context, id string) (map[model.TaskStatus]int, error) {
	c.count("TaskCounts")
	return c.DB.TaskCounts(ctx, id)
}

func (c *countingDB) RunTaskCounts(ctx context.Context, ids []string) (map[string]map[model.TaskStatus]int, error) {
	c.count("RunTaskCounts")
	return c.DB.RunTaskCounts(ctx, ids)
}

func (c *countingDB) GetRun(ctx context.Context, id string) (*model.Run, error) {
	c.count("GetRun")
	return c.DB.GetRun(ctx, id)
}

func (c *countingDB) ListTasks(ctx context.Context, id string) ([]*model.Task, error) {
	c.count("ListTasks")
	return c.DB.ListTasks(ctx, id)
}

func (c *countingDB) CancelRequests(ctx context.Context) ([]string, error) {
	c.count("CancelRequests")
	return c.DB.CancelRequests(ctx)
}

func (c *countingDB) ActiveTasks(ctx context.Context) ([]model.TaskWithWorkflow, error) {
	c.count("ActiveTasks")
	return c.DB.ActiveTasks(ctx)
}

func (c *countingDB) PendingTasks(ctx context.Context, limit int) ([]model.TaskWithWorkflow, error) {
	c.count("PendingTasks")
	return c.DB.PendingTasks(ctx, limit)
}

func (c *countingDB) Heartbeat(ctx context.Context, s model.SchedulerInfo, lease time.Duration) error {
	c.count("Heartbeat")
	return c.DB.Heartbeat(ctx, s, lease)
}

func (c *countingDB) Lead(ctx context.Context, id string, term int64, lease time.Duration) (int64, error) {
	c.count("Lead")
	return c.DB.Lead(ctx, id, term, lease)
}

func (c *countingDB) Reap(ctx context.Context, id string, term int64) ([]string, error) {
	c.count("Reap")
	return c.DB.Reap(ctx, id, term)
}

// BenchmarkLoopCallsPostgres counts the database calls one scheduler on
// PostgreSQL makes to put tasks through (default settings, an executor
// that runs nothing): one op is 10 runs of 100 tasks triggered at once
// from another handle and waited for. It reports the calls of each method
// per 1,000 tasks, and the total.
//
//	ORK_TEST_DATABASE_URL=... go test -tags postgres -run '^$' -bench LoopCallsPostgres -benchtime 20x ./sched
func BenchmarkLoopCallsPostgres(b *testing.B) {
	url := pgdbtest.URL(b)
	open := func(migrate bool) *pgdb.DB { return openPostgres(b, url, migrate) }
	trigger := open(true)
	w := &model.Workflow{Name: "bulk", JobName: "noop.sh", TaskCount: 100}
	if err := trigger.CreateWorkflow(context.Background(), w); err != nil {
		b.Fatal(err)
	}
	db := &countingDB{DB: open(false), n: map[string]int{}}
	runScheduler(b, db, func(updates chan exec.StatusUpdate) exec.Executor { return &benchNoopExecutor{updates: updates} })
	for {
		if live, err := trigger.Schedulers(context.Background()); err == nil && len(live) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	db.mu.Lock()
	clear(db.n)
	db.mu.Unlock()
	b.ResetTimer()
	for range b.N {
		var runs []*model.Run
		for range 10 {
			r := model.NewRun(w, nil, "bench", time.Now())
			if err := trigger.CreateRun(context.Background(), r); err != nil {
				b.Fatal(err)
			}
			runs = append(runs, r)
		}
		// Polled through the other handle, not WaitRun, whose reads
		// would count.
		for _, r := range runs {
			for {
				got, err := trigger.GetRun(context.Background(), r.ID)
				if err != nil {
					b.Fatal(err)
				}
				if got.Status.Terminal() {
					if got.Status != model.RunSuccess {
						b.Fatalf("run %s: %s %s", r.ID, got.Status, got.Error)
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	b.StopTimer()
	db.mu.Lock()
	defer db.mu.Unlock()
	tasks := float64(b.N * 1000)
	total := 0
	var names []string
	for m, n := range db.n {
		names = append(names, m)
		total += n
	}
	slices.Sort(names)
	for _, m := range names {
		b.ReportMetric(float64(db.n[m])*1000/tasks, m+"/1k-tasks")
	}
	b.ReportMetric(float64(total)*1000/tasks, "calls/1k-tasks")
	b.ReportMetric(tasks/b.Elapsed().Seconds(), "tasks/s")
}
