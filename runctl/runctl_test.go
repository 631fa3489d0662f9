package runctl_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/runctl"
)

func openDB(t *testing.T) *filedb.DB {
	t.Helper()
	dir := t.TempDir()
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &model.Workflow{Name: "fan", JobName: "job.sh", TaskCount: 3, Params: map[string]any{"a": 1.0, "b": "x"}}
	w.Normalize()
	if err := db.CreateWorkflow(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestTrigger(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	r, err := runctl.Trigger(ctx, db, "fan", map[string]any{"b": "y"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("the triggered run is not stored: %v", err)
	}
	if got.Status != model.RunPending || got.TriggeredBy != "test" || got.Params["b"] != "y" || got.TaskCount() != 3 {
		t.Errorf("stored run = %+v; want pending, triggered by test, params b=y, 3 tasks", got)
	}
	if _, err := runctl.Trigger(ctx, db, "nope", nil, "test"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("trigger of an unknown workflow: err = %v; want ErrNotFound", err)
	}
}

func TestCancelWithoutScheduler(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	r, err := runctl.Trigger(ctx, db, "fan", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := runctl.Cancel(ctx, db, r.ID)
	if err != nil || out != runctl.Cancelled {
		t.Fatalf("Cancel = %v, %v; want Cancelled", out, err)
	}
	got, _ := db.GetRun(ctx, r.ID)
	if got.Status != model.RunCancelled {
		t.Errorf("run status after cancel = %s; want cancelled", got.Status)
	}
	if _, out, err = runctl.Cancel(ctx, db, r.ID); err != nil || out != runctl.AlreadyEnded {
		t.Errorf("second Cancel = %v, %v; want AlreadyEnded", out, err)
	}
	if _, _, err := runctl.Cancel(ctx, db, "no-such-run"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("Cancel of an unknown run: err = %v; want ErrNotFound", err)
	}
}

func TestCancelWithSchedulerRequests(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	// Another handle holds the scheduler lock, as a running scheduler does.
	other, err := filedb.Open(db.Dir(), filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	release, err := other.LockScheduler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r, err := runctl.Trigger(ctx, db, "fan", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := runctl.Cancel(ctx, db, r.ID)
	if err != nil || out != runctl.Requested {
		t.Fatalf("Cancel = %v, %v; want Requested", out, err)
	}
	reqs, err := other.CancelRequests(ctx)
	if err != nil || !slices.Contains(reqs, r.ID) {
		t.Errorf("CancelRequests = %v, %v; want it to hold %s", reqs, err, r.ID)
	}
	got, _ := db.GetRun(ctx, r.ID)
	if got.Status != model.RunPending {
		t.Errorf("run status = %s; want pending until the scheduler applies the request", got.Status)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	r, err := runctl.Trigger(ctx, db, "fan", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	// A running run cannot be retried.
	if _, err := runctl.Retry(ctx, db, r.ID); !errors.Is(err, runctl.ErrConflict) {
		t.Fatalf("Retry of a pending run: err = %v; want ErrConflict", err)
	}
	// Task 0 succeeds, task 1 fails, task 2 is never created; the run fails.
	now := time.Now()
	ts := model.NewTasks(r, now)[:2]
	if err := db.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: now}}); err != nil {
		t.Fatal(err)
	}
	one := 1
	var us []model.TaskUpdate
	for i, st := range []model.TaskStatus{model.TaskSuccess, model.TaskFailed} {
		us = append(us, model.TaskUpdate{TaskID: ts[i].ID, RunID: r.ID, Status: model.TaskDispatched, Attempt: 1, At: now},
			model.TaskUpdate{TaskID: ts[i].ID, RunID: r.ID, Status: st, Attempt: 1, ExitCode: &one, At: now})
	}
	if _, err := db.UpdateTasks(ctx, us); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: now}}); err != nil {
		t.Fatal(err)
	}
	p, err := runctl.Retry(ctx, db, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Reset, []string{ts[1].ID}) || len(p.Remove) != 0 || p.NeverRan != 1 {
		t.Errorf("plan = reset %v, remove %v, never ran %d; want reset [%s], nothing removed, 1 never ran", p.Reset, p.Remove, p.NeverRan, ts[1].ID)
	}
	got, _ := db.GetRun(ctx, r.ID)
	if got.Status != model.RunPending {
		t.Errorf("run status after retry = %s; want pending", got.Status)
	}
	var ce *runctl.ConflictError
	if _, err := runctl.Retry(ctx, db, "no-such-run"); !errors.Is(err, model.ErrNotFound) || errors.As(err, &ce) {
		t.Errorf("Retry of an unknown run: err = %v; want ErrNotFound", err)
	}
}

func TestRetrySucceededRunConflicts(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	r, err := runctl.Trigger(ctx, db, "fan", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
		t.Fatal(err)
	}
	_, err = runctl.Retry(ctx, db, r.ID)
	var ce *runctl.ConflictError
	if !errors.As(err, &ce) || ce.Status != model.RunSuccess || !errors.Is(err, runctl.ErrConflict) {
		t.Errorf("Retry of a succeeded run: err = %v; want a ConflictError with status success", err)
	}
}

// A check refuses a workflow: no run is made, and the error says why.
func TestTriggerRefusedByCheck(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	refuse := func(w *model.Workflow) error { return errors.New("not built with " + w.Name) }
	_, err := runctl.Trigger(ctx, db, "fan", nil, "test", nil, refuse)
	var re *runctl.RefusedError
	if !errors.As(err, &re) || re.Workflow != "fan" || err.Error() != "not built with fan" {
		t.Fatalf("Trigger refused by a check: err = %v; want a RefusedError saying why", err)
	}
	if rs, _ := db.ListRuns(ctx, model.RunFilter{}); len(rs) != 0 {
		t.Errorf("a refused trigger stored %d run(s)", len(rs))
	}
	if _, err := runctl.Trigger(ctx, db, "fan", nil, "test", func(*model.Workflow) error { return nil }); err != nil {
		t.Errorf("Trigger with a passing check: %v", err)
	}
}

// listedDB is the file database seen as a model.Cluster that lists the
// schedulers ss (and does nothing else of a cluster).
type listedDB struct {
	*filedb.DB
	ss []model.SchedulerInfo
}

func (l *listedDB) Schedulers(context.Context) ([]model.SchedulerInfo, error) { return l.ss, nil }
func (l *listedDB) Heartbeat(context.Context, model.SchedulerInfo, time.Duration) error {
	return nil
}
func (l *listedDB) Leave(context.Context, string) error { return nil }
func (l *listedDB) Lead(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, nil
}
func (l *listedDB) Reap(context.Context, string, int64) ([]string, error)        { return nil, nil }
func (l *listedDB) ClaimRuns(context.Context, string, int) ([]*model.Run, error) { return nil, nil }

// Where several schedulers may serve the database, a cancel is asked of
// them while one is live; with only expired ones listed (killed, and none
// left to reap them) it is asked all the same — one past its lease may
// still run the run's tasks — and Cancel says that no scheduler is live
// to apply it; with none listed, the run is cancelled here.
func TestCancelOnACluster(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	live := model.SchedulerInfo{ID: "h:1:a", Expires: now.Add(time.Minute)}
	dead := model.SchedulerInfo{ID: "h:2:b", Expires: now.Add(-time.Minute)}
	for _, c := range []struct {
		what   string
		ss     []model.SchedulerInfo
		want   runctl.CancelOutcome
		status model.RunStatus
	}{
		{"a live scheduler", []model.SchedulerInfo{dead, live}, runctl.Requested, model.RunPending},
		{"only an expired scheduler", []model.SchedulerInfo{dead}, runctl.RequestedNoScheduler, model.RunPending},
		{"no scheduler", nil, runctl.Cancelled, model.RunCancelled},
	} {
		db := &listedDB{DB: openDB(t), ss: c.ss}
		r, err := runctl.Trigger(ctx, db, "fan", nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, out, err := runctl.Cancel(ctx, db, r.ID); err != nil || out != c.want {
			t.Errorf("%s: Cancel = %v, %v; want %v", c.what, out, err, c.want)
		}
		got, _ := db.GetRun(ctx, r.ID)
		reqs, _ := db.CancelRequests(ctx)
		if got.Status != c.status || (c.status == model.RunPending) != slices.Contains(reqs, r.ID) {
			t.Errorf("%s: run %s, cancel requests %v; want %s, requested while pending", c.what, got.Status, reqs, c.status)
		}
	}
}
