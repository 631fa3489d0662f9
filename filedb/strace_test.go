//go:build linux

package filedb

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/internal/synctrace"
	"github.com/ork-run/ork/model"
)

// The system calls themselves, seen by strace(1): every record ork makes
// visible was written, then synced by a real fsync(2) or syncfs(2), then
// renamed or linked into place, then its directory synced — and every
// directory made is synced in its parent. This is what fails when a sync
// is made a no-op anywhere, below the seam of TestEveryWriteIsSyncedInOrder.
//
// The test runs itself again under strace, doing a scheduler's writes.
// strace must be installed (CI installs it).
func TestSyscallsMakeEveryWriteDurable(t *testing.T) {
	if dir := os.Getenv("ORK_STRACE_CHILD"); dir != "" {
		durableWorkload(t, dir)
		return
	}
	root := filepath.Join(t.TempDir(), ".ork")
	cmd := osexec.Command(os.Args[0], "-test.run", "^TestSyscallsMakeEveryWriteDurable$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ORK_STRACE_CHILD="+root)
	// The calls on the directory that holds root too: Init syncs it after
	// making root.
	calls, err := synctrace.Run(cmd, filepath.Dir(root))
	if err != nil {
		t.Fatal(err)
	}
	records, dirs, problems := synctrace.Check(calls, func(dst string) bool {
		// A version kept as a spare inode, or a run renamed out of sight by
		// a prune: no new data.
		return strings.Contains(dst, "/"+spareDir+"/") || strings.HasPrefix(filepath.Base(dst), prunePrefix)
	})
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d records made visible, %d directories made: each synced in order", records, dirs)
	// A workflow, a run, a cancel request, 6 tasks created and written
	// three times, the run written four times: far more than 20.
	if records < 20 || dirs < 2 {
		t.Fatalf("the trace shows %d records made visible and %d directories made; the workload makes more (trace unreadable?)", records, dirs)
	}
}

// durableWorkload is what the traced child does: the writes of a trigger
// and of a scheduler running a run, a retry and a prune.
func durableWorkload(t *testing.T, root string) {
	ctx := context.Background()
	if err := Init(root); err != nil {
		t.Fatal(err)
	}
	d, _ := openTest(t, root)
	w := testWorkflow("hello", 6)
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
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []model.TaskStatus{model.TaskDispatched, model.TaskRunning, model.TaskFailed} {
		var us []model.TaskUpdate
		for _, task := range ts {
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: st})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: time.Now().Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := d.ReopenRun(ctx, r.ID, ids(ts[:1]), ids(ts[1:])); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	if err := d.RequestCancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	release, err := d.LockScheduler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release()
}
