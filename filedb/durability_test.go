package filedb

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// op is one durability-relevant system call, as the sysOps seam saw it.
type op struct{ kind, a, b string } // fsync PATH, fdatasync PATH, syncfs, rename OLD NEW, link OLD NEW

type opRecorder struct {
	mu  sync.Mutex
	ops []op
}

func (r *opRecorder) add(o op) {
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
}

// take returns the calls recorded since the last take.
func (r *opRecorder) take() []op {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ops
	r.ops = nil
	return out
}

func (r *opRecorder) sysOps() sysOps {
	return sysOps{
		syncFile: func(p string) error {
			err := realOps.syncFile(p)
			if err == nil {
				r.add(op{"fsync", filepath.Clean(p), ""})
			}
			return err
		},
		syncData: func(p string) error {
			err := realOps.syncData(p)
			if err == nil {
				r.add(op{"fdatasync", filepath.Clean(p), ""})
			}
			return err
		},
		syncFS: func(f *os.File) error {
			err := realOps.syncFS(f)
			if err == nil {
				r.add(op{"syncfs", f.Name(), ""})
			}
			return err
		},
		rename: func(a, b string) error {
			err := realOps.rename(a, b)
			if err == nil {
				r.add(op{"rename", filepath.Clean(a), filepath.Clean(b)})
			}
			return err
		},
		link: func(a, b string) error {
			err := realOps.link(a, b)
			if err == nil {
				r.add(op{"link", filepath.Clean(a), filepath.Clean(b)})
			}
			return err
		},
	}
}

// checkDurableOrder checks the calls of one operation: every record made
// visible (renamed or linked into place) had its data synced before, in the
// same operation, and its directory synced after; and every directory in
// wantDirs was synced. It returns how many records it checked.
func checkDurableOrder(t *testing.T, what string, ops []op, wantDirs ...string) int {
	t.Helper()
	synced := func(from, to int, path string) bool {
		for k := from; k < to; k++ {
			if ops[k].kind == "syncfs" || (ops[k].kind == "fsync" || ops[k].kind == "fdatasync") && ops[k].a == path {
				return true
			}
		}
		return false
	}
	n := 0
	for i, o := range ops {
		if (o.kind != "rename" && o.kind != "link") || strings.Contains(o.b, string(filepath.Separator)+spareDir+string(filepath.Separator)) {
			continue
		}
		n++
		// A prune renames a durable record out of sight: no new data.
		if !strings.HasPrefix(filepath.Base(o.b), prunePrefix) && !synced(0, i, o.a) {
			t.Errorf("%s: %s %s -> %s before its data was synced; calls: %v", what, o.kind, o.a, o.b, ops)
		}
		if !synced(i+1, len(ops), filepath.Dir(o.b)) {
			t.Errorf("%s: directory of %s not synced after the %s; calls: %v", what, o.b, o.kind, ops)
		}
	}
	for _, dir := range wantDirs {
		if !synced(0, len(ops), filepath.Clean(dir)) {
			t.Errorf("%s: directory %s never synced; calls: %v", what, dir, ops)
		}
	}
	if len(ops) == 0 {
		t.Errorf("%s: no sync at all", what)
	}
	return n
}

// Every durable write path syncs the data before it makes it visible, and
// the directory after: the commit of a batch (one file, many files, many
// directories, a new directory), the exclusive creates (workflow, run,
// cancel request), the reopen of a run, a prune, a removal, the state of a
// schedule, Init. Both ways a batch is synced are checked: each file and
// directory on its own (a batch of one file, every batch where there is no
// syncfs), and one syncfs (the default for larger batches on Linux).
func TestEveryWriteIsSyncedInOrder(t *testing.T) {
	t.Run("each file", func(t *testing.T) { everyWriteSyncedInOrder(t, false) })
	t.Run("syncfs", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("no syncfs here")
		}
		everyWriteSyncedInOrder(t, true)
	})
}

func everyWriteSyncedInOrder(t *testing.T, bulk bool) {
	ctx := context.Background()
	rec := &opRecorder{}
	root := filepath.Join(t.TempDir(), ".ork")
	if err := initWith(root, rec.sysOps()); err != nil {
		t.Fatal(err)
	}
	checkDurableOrder(t, "Init", rec.take(), filepath.Dir(root), root)

	d, _ := openTest(t, root)
	d.ops = rec.sysOps()
	if !bulk {
		d.syncFSMin = math.MaxInt
	}
	syncfsSeen := false
	defer func() {
		if bulk && !syncfsSeen {
			t.Errorf("no batch was synced with syncfs")
		}
	}()
	records := 0
	step := func(what string, f func() error, wantDirs ...string) {
		t.Helper()
		rec.take()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ops := rec.take()
		for _, o := range ops {
			if o.kind == "syncfs" {
				if !bulk {
					t.Errorf("%s: a syncfs, which waits for other programs' writes too; calls: %v", what, ops)
				}
				syncfsSeen = true
			}
		}
		records += checkDurableOrder(t, what, ops, wantDirs...)
	}
	w := testWorkflow("hello", 5)
	step("CreateWorkflow", func() error { return d.CreateWorkflow(ctx, w) })
	r := model.NewRun(w, nil, "test", time.Now())
	step("CreateRun", func() error { return d.CreateRun(ctx, r) })
	r2 := model.NewRun(w, nil, "test", time.Now())
	step("CreateRun", func() error { return d.CreateRun(ctx, r2) })
	if _, err := d.PendingRuns(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	step("CreateTasks (new directory)", func() error { return d.CreateTasks(ctx, ts) }, filepath.Join(root, TasksDir))
	step("UpdateRuns (running; makes the tasks directory)", func() error {
		return d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}, {RunID: r2.ID, Status: model.RunRunning}})
	}, filepath.Join(root, TasksDir))
	update := func(what string, us []model.TaskUpdate) {
		step(what, func() error { _, err := d.UpdateTasks(ctx, us); return err })
	}
	var us []model.TaskUpdate
	for _, task := range ts {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: model.TaskDispatched})
	}
	update("UpdateTasks (a batch)", us)
	update("UpdateTasks (one task)", []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning}})
	ts2 := model.NewTasks(r2, time.Now())
	step("CreateTasks (second run)", func() error { return d.CreateTasks(ctx, ts2) })
	us = us[:0]
	for _, task := range ts {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Attempt: 1, Status: model.TaskFailed})
	}
	for _, task := range ts2 {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r2.ID, Status: model.TaskCancelled})
	}
	update("UpdateTasks (two directories)", us)
	step("RequestCancel", func() error { return d.RequestCancel(ctx, r2.ID) })
	step("UpdateRuns (finish)", func() error {
		return d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: time.Now().Add(-time.Hour)}, {RunID: r2.ID, Status: model.RunCancelled}})
	})
	step("ReopenRun", func() error { return d.ReopenRun(ctx, r.ID, ids(ts[:2]), ids(ts[2:])) }, d.taskDir(r.ID))
	step("UpdateRuns (finish again)", func() error {
		return d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: time.Now().Add(-time.Hour)}})
	})
	rec.take()
	if got, err := d.Prune(ctx, time.Now(), 0); err != nil || len(got) != 2 {
		t.Fatalf("Prune = %v, %v; want both runs deleted", got, err)
	}
	ops := rec.take()
	records += checkDurableOrder(t, "Prune", ops, filepath.Join(root, RunsDir), filepath.Join(root, TasksDir), filepath.Join(root, LogsDir))
	// The renames out of sight are durable before the runs' tasks go.
	lastRename, runsSynced, tasksSynced := -1, -1, -1
	for i, o := range ops {
		switch {
		case o.kind == "rename":
			lastRename = i
		case o.kind == "fsync" && o.a == filepath.Join(root, RunsDir) && runsSynced < 0:
			runsSynced = i
		case o.kind == "fsync" && o.a == filepath.Join(root, TasksDir) && tasksSynced < 0:
			tasksSynced = i
		}
	}
	if !(lastRename < runsSynced && runsSynced < tasksSynced) {
		t.Errorf("Prune: want renames, then runs/ synced, then deletions synced; calls: %v", ops)
	}
	step("AdvanceSchedule (makes the schedules directory)", func() error {
		return d.AdvanceSchedule(ctx, "hello", time.Now(), "@every 1h")
	}, root)
	step("SetPaused", func() error { return d.SetPaused(ctx, "hello", true) })
	step("SetPaused (unpause: a removal)", func() error { return d.SetPaused(ctx, "hello", false) }, d.scheduleDir())
	step("DeleteWorkflow", func() error { return d.DeleteWorkflow(ctx, "hello") }, filepath.Join(root, WorkflowsDir))
	if records < 12 {
		t.Fatalf("only %d records were checked", records)
	}
}

// WriteTasks makes the tasks it creates and the updates it applies durable
// in one commit: every record's data is synced, then every record is put
// in place, then the directories are synced — not one commit after the
// other. The records are there after, as written.
func TestWriteTasksIsOneCommit(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		ctx := context.Background()
		root := filepath.Join(t.TempDir(), ".ork")
		if err := Init(root); err != nil {
			t.Fatal(err)
		}
		rec := &opRecorder{}
		d, _ := openTest(t, root)
		d.ops = rec.sysOps()
		if !bulk {
			d.syncFSMin = math.MaxInt
		}
		w := testWorkflow("hello", 4)
		if err := d.CreateWorkflow(ctx, w); err != nil {
			t.Fatal(err)
		}
		r := model.NewRun(w, nil, "test", time.Now())
		if err := d.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		all := model.NewTasks(r, time.Now())
		if err := d.CreateTasks(ctx, all[:2]); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		for _, tk := range all[2:] {
			tk.Status, tk.Attempt, tk.DispatchedAt = model.TaskDispatched, 1, &now
		}
		rec.take()
		changed, err := d.WriteTasks(ctx, all[2:], []model.TaskUpdate{
			{TaskID: all[0].ID, RunID: r.ID, Status: model.TaskDispatched},
			{TaskID: all[1].ID, RunID: r.ID, Status: model.TaskDispatched},
		})
		if err != nil || len(changed) != 2 {
			t.Fatalf("WriteTasks = %d changed, %v; want the 2 updated", len(changed), err)
		}
		ops := rec.take()
		if n := checkDurableOrder(t, "WriteTasks", ops); n != 4 {
			t.Errorf("WriteTasks put %d records in place; want 4; calls: %v", n, ops)
		}
		placed, done := false, false // records put in place; their directories synced
		for _, o := range ops {
			switch {
			case o.kind == "rename" || o.kind == "link":
				if strings.Contains(o.b, string(filepath.Separator)+spareDir+string(filepath.Separator)) {
					continue
				}
				if done {
					t.Errorf("bulk %v: a record put in place after the batch was synced: two commits, not one; calls: %v", bulk, ops)
				}
				placed = true
			case placed:
				done = true
			}
		}
		got, err := d.ListTasks(ctx, r.ID)
		if err != nil || len(got) != 4 {
			t.Fatalf("ListTasks = %d, %v; want 4", len(got), err)
		}
		for _, tk := range got {
			if tk.Status != model.TaskDispatched || tk.Attempt != 1 {
				t.Errorf("task %d: %s attempt %d; want dispatched, attempt 1", tk.TaskIndex, tk.Status, tk.Attempt)
			}
		}
	}
}

// A batch that ends a task and creates the task its end unblocks, cut
// short after its first rename (a kill -9, a rename that fails), leaves the
// end on disk rather than the new task: a downstream task is never
// recorded while the end it depends on is not, so it can never start
// before its upstream after a crash.
func TestWriteTasksRenamesTheEndsBeforeTheCreates(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), ".ork")
	if err := Init(root); err != nil {
		t.Fatal(err)
	}
	d, _ := openTest(t, root)
	w := testWorkflow("hop", 2)
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	up, down := ts[0], ts[1]
	if err := d.CreateTasks(ctx, []*model.Task{up}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: up.ID, RunID: r.ID, Status: model.TaskDispatched, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	// Every rename after the first fails, as if the process died there.
	var mu sync.Mutex
	renames := 0
	ops := realOps
	ops.rename = func(oldpath, newpath string) error {
		mu.Lock()
		defer mu.Unlock()
		renames++
		if renames > 1 {
			return errors.New("killed")
		}
		return realOps.rename(oldpath, newpath)
	}
	d.ops = ops
	now := time.Now().UTC()
	down.Status, down.Attempt, down.DispatchedAt = model.TaskDispatched, 1, &now
	d.WriteTasks(ctx, []*model.Task{down}, []model.TaskUpdate{{TaskID: up.ID, RunID: r.ID, Status: model.TaskSuccess, Attempt: 1}})
	d.Close()

	d2, _ := openTest(t, root)
	got, err := d2.ListTasks(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*model.Task{}
	for _, tk := range got {
		byID[tk.ID] = tk
	}
	if byID[down.ID] != nil && byID[up.ID].Status != model.TaskSuccess {
		t.Fatalf("after the cut, the downstream task is recorded (%s) while its upstream's end is not (%s)", byID[down.ID].Status, byID[up.ID].Status)
	}
	if byID[up.ID].Status != model.TaskSuccess {
		t.Errorf("the first rename was not the end's: upstream is %s", byID[up.ID].Status)
	}
}
