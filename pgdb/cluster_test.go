//go:build postgres

package pgdb_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
)

// A database migrated by the ork before several schedulers (migrations
// 0001 and 0002), with a run under way, upgrades: 0003 and 0004 are applied,
// the run's records read as before with no scheduler named, the run is
// free for a scheduler of the cluster to claim, and a report naming that
// scheduler lands on a task dispatched before the upgrade.
func TestClusterMigrationUpgradesExistingDatabase(t *testing.T) {
	url := pgdbtest.URL(t)
	exec(t, url, `CREATE TABLE ork_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`)
	for i, name := range []string{"0001_init.sql", "0002_schedules.sql"} {
		sql, err := os.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, url, string(sql))
		exec(t, url, `INSERT INTO ork_migrations (version, name) VALUES ($1, $2)`, i+1, name)
	}
	exec(t, url, `INSERT INTO runs (id, workflow_name, status, created_at, started_at, workflow)
		VALUES ('r1', 'hello', 'running', now(), now(), '{"name":"hello","job_name":"j.sh","task_count":2}')`)
	exec(t, url, `INSERT INTO tasks (id, run_id, name, task_index, status, attempt, dispatched_at, created_at)
		VALUES ('t0', 'r1', 'j.sh', 0, 'dispatched', 1, now(), now()), ('t1', 'r1', 'j.sh', 1, 'pending', 0, NULL, now())`)

	d, err := pgdb.Open(context.Background(), url, pgdb.Options{Migrate: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Applied(); !slices.Equal(got, []string{"0003_cluster.sql", "0004_run_ended.sql"}) {
		t.Fatalf("Applied = %v, want [0003_cluster.sql 0004_run_ended.sql]", got)
	}
	ctx := context.Background()
	r, err := d.GetRun(ctx, "r1")
	if err != nil || r.Scheduler != "" || r.Status != model.RunRunning {
		t.Fatalf("GetRun = %+v, %v; want the running run, held by none", r, err)
	}
	ts, err := d.ListTasks(ctx, "r1")
	if err != nil || len(ts) != 2 || ts[0].Scheduler != "" {
		t.Fatalf("ListTasks = %v, %v; want both tasks, no scheduler named", ts, err)
	}
	if err := d.Heartbeat(ctx, model.SchedulerInfo{ID: "s1", Host: "h", PID: 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	rs, err := d.ClaimRuns(ctx, "s1", 10)
	if err != nil || len(rs) != 1 || rs[0].ID != "r1" || rs[0].Scheduler != "s1" {
		t.Fatalf("ClaimRuns = %v, %v; want r1 leased to s1", rs, err)
	}
	ch, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: "t0", RunID: "r1", Attempt: 1, Status: model.TaskPending, Scheduler: "s1"}})
	if err != nil || len(ch) != 1 {
		t.Fatalf("s1's rescue of the task dispatched before the upgrade: %d changed, %v", len(ch), err)
	}
	got, err := d.ClaimTasks(ctx, model.Claim{Scheduler: "s1", Limit: 10})
	if err != nil || len(got.Tasks) != 2 || got.Tasks[0].Task.ID != "t0" || got.Tasks[0].Task.Attempt != 2 ||
		got.Tasks[1].Task.ID != "t1" || got.Tasks[0].Workflow == nil || got.Tasks[0].Workflow.Name != "hello" {
		t.Fatalf("ClaimTasks(s1) = %+v, %v; want t0 (attempt 2) and t1, with the run's workflow", got.Tasks, err)
	}
}

// The claim sees the updates of its own batch: a task they put back in
// the queue is claimed at once by the same call, and returned once, in
// Tasks, as it is now (not in Changed).
func TestClaimSeesItsOwnUpdates(t *testing.T) {
	d := open(t, pgdbtest.URL(t))
	ctx := context.Background()
	w := &model.Workflow{Name: "hello", JobName: "j.sh", TaskCount: 2}
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	tasks := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	got, err := d.ClaimTasks(ctx, model.Claim{Limit: 2})
	if err != nil || len(got.Tasks) != 2 {
		t.Fatalf("first claim: %d tasks, %v", len(got.Tasks), err)
	}
	got, err = d.ClaimTasks(ctx, model.Claim{Limit: 1, Updates: []model.TaskUpdate{
		{TaskID: tasks[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess},
		{TaskID: tasks[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, Error: "interrupted"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tasks) != 1 || got.Tasks[0].Task.ID != tasks[1].ID || got.Tasks[0].Task.Attempt != 2 || len(got.Tasks[0].Task.Attempts) != 1 {
		t.Fatalf("claimed %+v; want task 1 again, attempt 2, after its interrupted attempt 1", got.Tasks)
	}
	if len(got.Changed) != 1 || got.Changed[0].ID != tasks[0].ID || got.Changed[0].Status != model.TaskSuccess {
		t.Fatalf("Changed = %+v; want only task 0's end", got.Changed)
	}
}

// A scheduler that leaves frees its runs and wakes the other schedulers
// (the schema's channel), which claim runs only when something may have
// changed: its runs are taken at once, not at the others' next poll.
func TestLeaveWakesTheOthers(t *testing.T) {
	url := pgdbtest.URL(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	w := &model.Workflow{Name: "hello", JobName: "j.sh", TaskCount: 1}
	if err := a.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := a.Heartbeat(ctx, model.SchedulerInfo{ID: id, Host: "h", PID: 1}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	changes := b.Changes()
	r := model.NewRun(w, nil, "test", time.Now())
	if err := a.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if rs, err := a.ClaimRuns(ctx, "a", 1); err != nil || len(rs) != 1 {
		t.Fatalf("ClaimRuns(a) = %v, %v; want the run", rs, err)
	}
	// Drain the listener's first signal and the new run's.
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case <-changes:
			continue
		case <-quiet:
		}
		break
	}
	if err := a.Leave(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled within 5s of a scheduler leaving with a run")
	}
	if rs, err := b.ClaimRuns(ctx, "b", 1); err != nil || len(rs) != 1 || rs[0].ID != r.ID {
		t.Fatalf("ClaimRuns(b) after a left = %v, %v; want its run", rs, err)
	}
}
