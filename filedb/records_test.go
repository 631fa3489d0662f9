package filedb

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// startedRun makes a run with n tasks, all dispatched, through d.
func startedRun(t *testing.T, d *DB, name string, n int) (*model.Run, []*model.Task) {
	t.Helper()
	ctx := context.Background()
	r := mustCreateRun(t, d, testWorkflow(name, n))
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	var us []model.TaskUpdate
	for _, task := range ts {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: model.TaskDispatched})
	}
	if _, err := d.UpdateTasks(ctx, us); err != nil {
		t.Fatal(err)
	}
	return r, ts
}

// A batch in which one run's tasks directory is gone writes every other
// record, names the failed ones, and the failed run's tasks are not
// handed out again.
func TestRemovedTasksDirFailsOnlyItsRecords(t *testing.T) {
	ctx := context.Background()
	d, _ := openTest(t, initDir(t))
	r1, ts1 := startedRun(t, d, "one", 3)
	r2, ts2 := startedRun(t, d, "two", 3)
	if err := os.RemoveAll(d.taskDir(r1.ID)); err != nil {
		t.Fatal(err)
	}
	var us []model.TaskUpdate
	for _, task := range append(append([]*model.Task{}, ts1...), ts2...) {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: task.RunID, Attempt: 1, Status: model.TaskSuccess})
	}
	changed, err := d.UpdateTasks(ctx, us)
	var pe *model.PartialError
	if !errors.As(err, &pe) || len(pe.Records) != 3 {
		t.Fatalf("UpdateTasks with a removed tasks directory = %v; want a PartialError of its 3 tasks", err)
	}
	for _, rec := range pe.Records {
		if rec.RunID != r1.ID || !errors.Is(rec, model.ErrNotFound) {
			t.Errorf("failed record %+v; want a task of run %s, not found", rec, r1.ID)
		}
	}
	if len(changed) != 3 {
		t.Fatalf("%d tasks changed, want the 3 of the other run", len(changed))
	}
	for _, task := range ts2 {
		got, err := model.DecodeTask("t", mustRead(t, d.taskPath(task)))
		if err != nil || got.Status != model.TaskSuccess {
			t.Errorf("task of the other run on disk = %+v, %v; want success", got, err)
		}
	}
	if _, err := os.Stat(d.taskDir(r1.ID)); !os.IsNotExist(err) {
		t.Errorf("the removed tasks directory was made again: %v", err)
	}
	// The next batch is not held up by the bad records, and creating the
	// removed run's tasks again is refused: nothing is written there.
	if err := d.CreateTasks(ctx, model.NewTasks(r1, time.Now())); !errors.As(err, &pe) {
		t.Errorf("CreateTasks for the run whose tasks were removed = %v, want a PartialError", err)
	}
	if _, err := os.Stat(d.taskDir(r1.ID)); !os.IsNotExist(err) {
		t.Errorf("the removed tasks directory was made again: %v", err)
	}
	if pend, err := d.PendingTasks(ctx, 0); err != nil || len(pend) != 0 {
		t.Errorf("PendingTasks = %d tasks, %v; want none", len(pend), err)
	}
	r3, _ := startedRun(t, d, "three", 2)
	if got, err := d.GetRun(ctx, r3.ID); err != nil || got.Status != model.RunRunning {
		t.Errorf("a later run = %+v, %v; want it running", got, err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r2.ID, Status: model.RunSuccess}}); err != nil {
		t.Errorf("finishing the other run: %v", err)
	}
}

// A task file changed behind the DB's back so that it no longer parses is
// not written over, and the task is not handed out again.
func TestDamagedRecordIsNeverWrittenOver(t *testing.T) {
	ctx := context.Background()
	d, _ := openTest(t, initDir(t))
	r, ts := startedRun(t, d, "one", 2)
	p := d.taskPath(ts[0])
	if err := os.WriteFile(p, []byte(`{"id": "`), 0o644); err != nil {
		t.Fatal(err)
	}
	us := []model.TaskUpdate{
		{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskPending, Error: "again"},
		{TaskID: ts[1].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess},
	}
	changed, err := d.UpdateTasks(ctx, us)
	if !errors.Is(err, model.ErrDamaged) || len(changed) != 1 || changed[0].ID != ts[1].ID {
		t.Fatalf("UpdateTasks = %d changed, %v; want the good task changed and the damaged one refused", len(changed), err)
	}
	if got := string(mustRead(t, p)); got != `{"id": "` {
		t.Fatalf("damaged file written over: %q", got)
	}
	if pend, _ := d.PendingTasks(ctx, 0); len(pend) != 0 {
		t.Fatalf("the damaged task is pending work: %v", pend)
	}
	// An emptied run record is not written over either.
	rp := d.runPath(r.ID)
	if err := os.Truncate(rp, 0); err != nil {
		t.Fatal(err)
	}
	err = d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed}})
	if !errors.As(err, new(*model.PartialError)) || !errors.Is(err, model.ErrDamaged) {
		t.Fatalf("UpdateRuns over an emptied run file = %v, want it refused as damaged", err)
	}
	if st, _ := os.Stat(rp); st.Size() != 0 {
		t.Fatalf("emptied run file written over")
	}
}

// A record rewritten by hand (it still parses) is replaced as before: the
// check costs a read only when the size differs from the known version.
func TestEditedRecordThatParsesIsReplaced(t *testing.T) {
	ctx := context.Background()
	d, _ := openTest(t, initDir(t))
	r, ts := startedRun(t, d, "one", 1)
	p := d.taskPath(ts[0])
	data := mustRead(t, p)
	if err := os.WriteFile(p, append(data, '\n', '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess}}); err != nil {
		t.Fatal(err)
	}
	got, err := model.DecodeTask(p, mustRead(t, p))
	if err != nil || got.Status != model.TaskSuccess {
		t.Fatalf("record = %+v, %v", got, err)
	}
}

// failingRename makes the rename into target fail once, after the link of
// the old version into .spare/ succeeded.
func failingRename(d *DB, target string) *bool {
	failed := new(bool)
	d.ops.rename = func(oldpath, newpath string) error {
		if newpath == target && !*failed {
			*failed = true
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EXDEV}
		}
		return os.Rename(oldpath, newpath)
	}
	return failed
}

// A rename that fails after the old version was linked into .spare/ must
// not leave that link as a spare: spares are written into, and this one is
// the live record.
func TestSpareLinkedToLiveRecordIsNeverWrittenInto(t *testing.T) {
	ctx := context.Background()
	d, _ := openTest(t, initDir(t))
	r, ts := startedRun(t, d, "one", 6)
	p := d.taskPath(ts[0])
	failed := failingRename(d, p)
	var us []model.TaskUpdate
	for _, task := range ts {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning})
	}
	_, err := d.UpdateTasks(ctx, us)
	if !*failed || !errors.As(err, new(*model.PartialError)) {
		t.Fatalf("rename did not fail as arranged: %v", err)
	}
	before := mustRead(t, p)
	// Later writes take spares; none may be the live record's inode.
	for round := 0; round < 3; round++ {
		us = us[:0]
		for _, task := range ts[1:] {
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Attempt: 1 + round, Status: model.TaskPending, Error: strings.Repeat("x", 100*round)})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
		us = us[:0]
		for _, task := range ts[1:] {
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: model.TaskDispatched})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRead(t, p); string(got) != string(before) {
		t.Fatalf("the record whose rename failed was written into through a spare:\nbefore %s\nafter  %s", before, got)
	}
	if n := linkCount(p); n != 1 {
		t.Fatalf("the record has %d links, want 1 (no spare linked to it)", n)
	}
}

// writeSpare never writes into a spare that has another link, whoever
// left it in the list.
func TestWriteSpareChecksTheLinkCount(t *testing.T) {
	d, _ := openTest(t, initDir(t))
	live := filepath.Join(d.root, "workflows", "live.json")
	if err := os.WriteFile(live, []byte("live"), 0o644); err != nil {
		t.Fatal(err)
	}
	spare := d.trashName()
	if err := os.Link(live, spare); err != nil {
		t.Fatal(err)
	}
	d.spare = append(d.spare, spare)
	if p, err := d.writeSpare([]byte("new contents")); err == nil {
		t.Errorf("writeSpare wrote into %s, a spare linked to a live file", p)
	}
	if got := string(mustRead(t, live)); got != "live" {
		t.Fatalf("live file written through its spare link: %q", got)
	}
}

// ---- prune and retry from two handles (as from two processes) ----

// finishedRun makes a failed run with two failed tasks, finished long ago.
func finishedRun(t *testing.T, d *DB) (*model.Run, []*model.Task) {
	t.Helper()
	ctx := context.Background()
	r, ts := startedRun(t, d, "old", 2)
	var us []model.TaskUpdate
	for _, task := range ts {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Attempt: 1, Status: model.TaskFailed, At: time.Now().Add(-48 * time.Hour)})
	}
	if _, err := d.UpdateTasks(ctx, us); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: time.Now().Add(-48 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	return r, ts
}

func ids(ts []*model.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// A retry that reopens a run after a prune chose it, before the prune
// deleted it: the prune re-checks under the lock and leaves it alone.
func TestPruneNeverDeletesARunRetryReopened(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	pruner, _ := openTest(t, dir)
	retrier, _ := openTest(t, dir)
	r, ts := finishedRun(t, pruner)
	var retryErr error
	pruner.hooks.afterPruneList = func() {
		retryErr = retrier.ReopenRun(ctx, r.ID, ids(ts), nil)
	}
	pruned, err := pruner.Prune(ctx, time.Now().Add(-time.Hour), 0)
	if err != nil || retryErr != nil {
		t.Fatalf("prune: %v; retry: %v", err, retryErr)
	}
	if len(pruned) != 0 {
		t.Fatalf("prune deleted %v, a run that a retry had reopened", pruned)
	}
	got, err := retrier.GetRun(ctx, r.ID)
	if err != nil || got.Status != model.RunPending {
		t.Fatalf("reopened run = %+v, %v; want pending", got, err)
	}
	left, err := retrier.ListTasks(ctx, r.ID)
	if err != nil || len(left) != 2 {
		t.Fatalf("tasks of the reopened run: %d, %v; want 2", len(left), err)
	}
	for _, task := range left {
		if task.Status != model.TaskPending {
			t.Errorf("task %s = %s, want pending", task.Label(), task.Status)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, RunsDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prunePrefix) {
			t.Errorf("prune marker left: %s", e.Name())
		}
	}
}

// Two retries of one run: the second waits for the first and then finds
// the run reopened; only one reopens it.
func TestTwoRetriesOfOneRunExcludeEachOther(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	a, _ := openTest(t, dir)
	b, _ := openTest(t, dir)
	r, ts := finishedRun(t, a)
	var bErr error
	bDone := make(chan struct{})
	bWaits := make(chan struct{})
	var once sync.Once
	b.hooks.lockWait = func() { once.Do(func() { close(bWaits) }) }
	a.hooks.reopenChecked = func() {
		// a found the run finished and holds the lock: b starts now, and
		// either waits for the lock or (without one) reopens it too.
		go func() {
			defer close(bDone)
			bErr = b.ReopenRun(ctx, r.ID, ids(ts), nil)
		}()
		select {
		case <-bWaits:
		case <-bDone:
		}
	}
	aErr := a.ReopenRun(ctx, r.ID, ids(ts), nil)
	<-bDone
	if aErr != nil {
		t.Fatalf("first retry: %v", aErr)
	}
	if bErr == nil || !strings.Contains(bErr.Error(), "only a finished run can be retried") {
		t.Fatalf("second retry of the same run = %v; want it refused (the run is pending now)", bErr)
	}
}

// A prune marker that holds an unfinished run is never taken for an old
// run: it is put back, not deleted.
func TestPruneMarkerOfUnfinishedRunIsPutBack(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r, _ := startedRun(t, d, "live", 1)
	if err := os.Rename(d.runPath(r.ID), filepath.Join(dir, RunsDir, prunePrefix+r.ID+".json")); err != nil {
		t.Fatal(err)
	}
	pruned, err := d.Prune(ctx, time.Now(), 0)
	if err != nil || len(pruned) != 0 {
		t.Fatalf("Prune = %v, %v; want nothing pruned", pruned, err)
	}
	if _, err := os.Stat(d.runPath(r.ID)); err != nil {
		t.Fatalf("the unfinished run was not put back: %v", err)
	}
	if ts, _, _ := d.readTasks(r.ID); len(ts) != 1 {
		t.Fatalf("the unfinished run lost its tasks: %d left", len(ts))
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := osexec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// holdLock takes the scheduler lock of dir as another process would, its
// file naming pid as the holder; the returned function releases it.
func holdLock(t *testing.T, dir string, pid int) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if _, err := f.WriteString(fmt.Sprintf("pid %d on %s since 2026-01-01T00:00:00Z\n", pid, host)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}

// A lock whose holder (named in the file) is dead is held for an instant
// by what it left behind — the child of a fork that has not exec'd yet:
// LockScheduler waits for it rather than refusing a restart.
func TestLockWaitsForADeadHolder(t *testing.T) {
	dir := initDir(t)
	d, _ := openTest(t, dir)
	release := holdLock(t, dir, deadPid(t))
	go func() {
		time.Sleep(300 * time.Millisecond) // the orphaned child execs or dies
		release()
	}()
	start := time.Now()
	unlock, err := d.LockScheduler(context.Background())
	if err != nil {
		t.Fatalf("LockScheduler with a dead holder's lock about to be freed: %v", err)
	}
	defer unlock()
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("LockScheduler took the lock after %v, before it was freed", waited)
	}
	if h := LockHolder(dir); !strings.Contains(h, fmt.Sprintf("pid %d ", os.Getpid())) {
		t.Fatalf("lock file names %q, want this process", h)
	}
}

// A dead holder's lock that stays held is refused after the wait, naming
// the holder; a live holder's at once.
func TestLockOfHolderThatStaysIsRefused(t *testing.T) {
	dir := initDir(t)
	d, _ := openTest(t, dir)
	dead := deadPid(t)
	release := holdLock(t, dir, dead)
	start := time.Now()
	_, err := d.LockScheduler(context.Background())
	var le *model.LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d ", dead)) {
		t.Fatalf("LockScheduler = %v, want a LockedError naming pid %d", err, dead)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("refused after %v: the dead holder's lock was not waited for", waited)
	}
	release()
	holdLock(t, dir, os.Getpid())
	start = time.Now()
	if _, err := d.LockScheduler(context.Background()); !errors.As(err, &le) {
		t.Fatalf("LockScheduler with a live holder = %v, want LockedError", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("a live holder's lock was waited for (%v)", waited)
	}
}

// A run whose record was removed or damaged by hand fails alone in a batch
// of run updates, and an update of one of its tasks fails alone too.
func TestUpdatesOfARemovedOrDamagedRunFailAlone(t *testing.T) {
	ctx := context.Background()
	d, _ := openTest(t, initDir(t))
	gone, _ := startedRun(t, d, "gone", 1)
	damaged, dts := finishedRun(t, d)
	ok, _ := startedRun(t, d, "ok", 1)
	if err := os.Remove(d.runPath(gone.ID)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.runPath(damaged.ID), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := d.UpdateRuns(ctx, []model.RunUpdate{
		{RunID: gone.ID, Status: model.RunSuccess},
		{RunID: ok.ID, Status: model.RunSuccess},
	})
	var pe *model.PartialError
	if !errors.As(err, &pe) || len(pe.Records) != 1 || pe.Records[0].RunID != gone.ID {
		t.Fatalf("UpdateRuns with a removed run = %v; want it alone refused", err)
	}
	if got, err := d.GetRun(ctx, ok.ID); err != nil || got.Status != model.RunSuccess {
		t.Fatalf("the other run = %+v, %v; want success", got, err)
	}
	if _, err := os.Stat(d.runPath(gone.ID)); !os.IsNotExist(err) {
		t.Fatalf("the removed run file was written again: %v", err)
	}
	// A late update of a task of the finished run whose file is damaged.
	_, err = d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: dts[0].ID, RunID: damaged.ID, Attempt: 1, Status: model.TaskSuccess}})
	if !errors.As(err, &pe) || len(pe.Records) != 1 {
		t.Fatalf("UpdateTasks of a task whose run file is damaged = %v; want it alone refused", err)
	}
	if got := string(mustRead(t, d.runPath(damaged.ID))); got != "{" {
		t.Fatalf("the damaged run file was written over: %q", got)
	}
}
