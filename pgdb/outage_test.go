//go:build postgres

package pgdb_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/pgdb"
	"github.com/ork-run/ork/pgdb/pgdbtest"
	"github.com/ork-run/ork/sched"
	"github.com/ork-run/ork/schedtest"
)

func targetOf(t *testing.T, u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	host := pu.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	port := pu.Port()
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port)
}

// A batch of status changes whose acknowledgement is lost — the
// connection breaks after the statement reached the server — is recorded
// once and reported as changed, so the scheduler starts what it
// dispatched.
func TestUnacknowledgedBatchIsRecordedOnce(t *testing.T) {
	direct := pgdbtest.URL(t)
	px := pgdbtest.NewProxy(t, targetOf(t, direct))
	d := open(t, direct)
	ctx := context.Background()
	w := &model.Workflow{Name: "w", JobName: "j.sh", TaskCount: 2}
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	viaProxy := open(t, px.Through(t, direct))
	px.Arm("UPDATE tasks t SET")
	changed, err := viaProxy.UpdateTasks(ctx, []model.TaskUpdate{
		{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched},
		{TaskID: ts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched},
	})
	cuts := px.Cuts()
	if cuts != 1 {
		t.Fatalf("the proxy cut %d connections, want 1: the test did not lose the acknowledgement", cuts)
	}
	if err != nil {
		t.Fatalf("UpdateTasks: %v", err)
	}
	if len(changed) != 2 {
		t.Fatalf("UpdateTasks returned %d tasks, want the 2 it dispatched", len(changed))
	}
	got, _ := d.ListTasks(ctx, r.ID)
	for _, tk := range got {
		if tk.Status != model.TaskDispatched || tk.Attempt != 1 {
			t.Errorf("task %d = %s attempt %d, want dispatched in attempt 1", tk.TaskIndex, tk.Status, tk.Attempt)
		}
	}
}

// A running scheduler that loses the database — every connection dropped,
// new ones refused for two seconds, as when the server restarts — keeps
// going once it is back: it loses nothing, runs every task once, finishes
// the run, takes its lock again and hears triggers again.
func TestSchedulerSurvivesDatabaseOutage(t *testing.T) {
	direct := pgdbtest.URL(t)
	px := pgdbtest.NewProxy(t, targetOf(t, direct))
	viaProxy := px.Through(t, direct)
	pglogs := &schedtest.SyncBuffer{}
	var store dbtest.Store = func(t *testing.T) model.Database {
		d, err := pgdb.Open(context.Background(), viaProxy, pgdb.Options{Migrate: true, Logger: slog.New(slog.NewTextHandler(pglogs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	e := schedtest.NewEnv(t, store)
	marks := t.TempDir()
	e.Script("work.sh", fmt.Sprintf(`echo $ORK_ATTEMPT >> %s/$ORK_TASK_INDEX; sleep 0.2`, marks))
	const n = 12
	w := e.Workflow(&model.Workflow{Name: "work", JobName: "work.sh", TaskCount: n})
	s, _ := e.Start(e.DB, sched.Config{MaxRunningTasks: 3, PollInterval: time.Hour})
	r := e.Trigger(e.DB, w)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(marks)
		if len(ents) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task started:\n%s", e.Logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	px.Cut()
	time.Sleep(2 * time.Second)
	px.Restore()

	got := e.Wait(s, r, 60*time.Second)
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success\n%s", got.Status, got.Error, e.Logs)
	}
	for i := range n {
		b, err := os.ReadFile(filepath.Join(marks, strconv.Itoa(i)))
		if err != nil || string(b) != "1\n" {
			t.Errorf("task %d ran %q (%v), want once, in attempt 1", i, b, err)
		}
	}
	d := open(t, direct)
	ctx := context.Background()
	if ts, _ := d.ListTasks(ctx, r.ID); len(ts) != n {
		t.Errorf("%d tasks recorded, want %d", len(ts), n)
	} else {
		for _, tk := range ts {
			if tk.Status != model.TaskSuccess || tk.Attempt != 1 {
				t.Errorf("task %d = %s attempt %d, want success in attempt 1", tk.TaskIndex, tk.Status, tk.Attempt)
			}
		}
	}
	// The scheduler is still a live member (its heartbeat went on after
	// the outage, and nobody reaped it), and a trigger from elsewhere wakes
	// it (its listener is back) though its poll is an hour.
	if !liveMember(t, d, s.ID()) {
		t.Errorf("the scheduler is not a live member after the outage\n%s", e.Logs)
	}
	time.Sleep(500 * time.Millisecond) // let the listener reconnect
	r2 := e.Trigger(d, w)
	got2 := e.Wait(s, r2, 15*time.Second)
	if got2.Status != model.RunSuccess {
		t.Errorf("run after the outage = %s %q", got2.Status, got2.Error)
	}
	for _, want := range []string{"listening for changes again"} {
		if !strings.Contains(pglogs.String(), want) {
			t.Errorf("the database's log does not say %q:\n%s", want, pglogs)
		}
	}
	t.Logf("database log:\n%s\nscheduler log:\n%s", pglogs, e.Logs)
}

// A running scheduler whose every connection the server terminates
// (pg_terminate_backend, as an administrator or a failover does) keeps
// going: the run ends with every task run once, and it is still a live
// member.
// Only this test's own sessions are terminated (by application_name).
func TestSchedulerSurvivesTerminatedConnections(t *testing.T) {
	direct := pgdbtest.URL(t)
	app := "ork-terminate-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	pu, _ := url.Parse(direct)
	q := pu.Query()
	q.Set("application_name", app)
	pu.RawQuery = q.Encode()
	named := pu.String()
	var store dbtest.Store = func(t *testing.T) model.Database { return open(t, named) }
	e := schedtest.NewEnv(t, store)
	marks := t.TempDir()
	e.Script("work.sh", fmt.Sprintf(`echo $ORK_ATTEMPT >> %s/$ORK_TASK_INDEX; sleep 0.2`, marks))
	const n = 12
	w := e.Workflow(&model.Workflow{Name: "work", JobName: "work.sh", TaskCount: n})
	s, _ := e.Start(e.DB, sched.Config{MaxRunningTasks: 3, PollInterval: time.Hour})
	r := e.Trigger(e.DB, w)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ents, _ := os.ReadDir(marks); len(ents) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task started:\n%s", e.Logs)
		}
	}
	killed := queryInt(t, direct, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) k`, app)
	if killed < 2 {
		t.Fatalf("terminated %d sessions, want the scheduler's (pool, lock, listener)", killed)
	}
	got := e.Wait(s, r, 60*time.Second)
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success\n%s", got.Status, got.Error, e.Logs)
	}
	for i := range n {
		b, err := os.ReadFile(filepath.Join(marks, strconv.Itoa(i)))
		if err != nil || string(b) != "1\n" {
			t.Errorf("task %d ran %q (%v), want once, in attempt 1", i, b, err)
		}
	}
	if d := open(t, direct); !liveMember(t, d, s.ID()) {
		t.Errorf("the scheduler is not a live member after the terminations\n%s", e.Logs)
	}
}

// liveMember reports whether the scheduler id is among d's live
// schedulers, waiting up to 15s for it to be.
func liveMember(t *testing.T, d *pgdb.DB, id string) bool {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ss, err := d.Schedulers(context.Background())
		if err != nil {
			continue
		}
		for _, m := range ss {
			if m.ID == id {
				return true
			}
		}
	}
	return false
}

// A watch of one run whose connection is lost (the database away for a
// moment) says so once it is back — an end notified meanwhile was missed —
// and then still tells the run's end; Close stops it.
func TestWatchRunSurvivesDatabaseOutage(t *testing.T) {
	direct := pgdbtest.URL(t)
	px := pgdbtest.NewProxy(t, targetOf(t, direct))
	d := open(t, direct)
	watcher := open(t, px.Through(t, direct))
	ctx := context.Background()
	w := &model.Workflow{Name: "w", JobName: "j.sh", TaskCount: 1}
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	woke := make(chan struct{}, 10)
	if err := watcher.WatchRun(ctx, r.ID, func() { woke <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-woke:
		case <-time.After(10 * time.Second):
			t.Fatalf("WatchRun did not call fn: %s", what)
		}
	}
	px.Cut()
	time.Sleep(500 * time.Millisecond)
	select {
	case <-woke:
		t.Fatal("WatchRun called fn while the database was away")
	default:
	}
	px.Restore()
	expect("reconnected")
	for _, st := range []model.RunStatus{model.RunRunning, model.RunSuccess} {
		if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: st, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	expect("the run's end")
	watcher.Close() // returns once the watch stopped
}
