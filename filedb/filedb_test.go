package filedb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func openTest(t *testing.T, dir string) (*DB, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	d, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, lb
}

func testWorkflow(name string, n int) *model.Workflow {
	return &model.Workflow{Name: name, JobName: name + ".sh", TaskCount: n, Params: map[string]any{"k": "v"}}
}

func mustCreateRun(t *testing.T, d *DB, w *model.Workflow) *model.Run {
	t.Helper()
	w.Normalize()
	r := model.NewRun(w, nil, "test", time.Now())
	if err := d.CreateRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenWithoutInit(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope"), Options{})
	if err == nil || !strings.Contains(err.Error(), "ork init") {
		t.Fatalf("Open of a missing directory: err = %v, want a hint to run `ork init`", err)
	}
}

func TestLayoutIsPlainJSON(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	w := testWorkflow("hello", 2)
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := mustCreateRun(t, d, w)
	if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(dir, "workflows", "hello.json"),
		filepath.Join(dir, "runs", r.ID+".json"),
		filepath.Join(dir, "tasks", r.ID, "hello.sh.0.json"),
		filepath.Join(dir, "tasks", r.ID, "hello.sh.1.json"),
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("expected file: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s is not JSON: %v", p, err)
		}
		if !bytes.Contains(data, []byte("\n  \"")) {
			t.Errorf("%s is not indented for people to read:\n%s", p, data)
		}
	}
	// Nothing temporary is left next to the records.
	for _, sub := range []string{"workflows", "runs", filepath.Join("tasks", r.ID)} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if isTemp(e.Name()) {
				t.Errorf("temporary file left: %s/%s", sub, e.Name())
			}
		}
	}
}

func TestReopenSeesEverything(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	w := testWorkflow("hello", 3)
	r := mustCreateRun(t, d, w)
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess}}); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d2, _ := openTest(t, dir)
	pend, err := d2.PendingTasks(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 2 || pend[0].Task.TaskIndex != 1 || pend[1].Task.TaskIndex != 2 {
		t.Fatalf("pending after reopen = %v, want tasks 1 and 2", pend)
	}
	if pend[0].Workflow == nil || pend[0].Workflow.JobName != "hello.sh" {
		t.Fatalf("pending task lacks its workflow: %+v", pend[0].Workflow)
	}
	counts, _ := d2.TaskCounts(ctx, r.ID)
	if counts[model.TaskSuccess] != 1 || counts[model.TaskPending] != 2 {
		t.Fatalf("counts after reopen = %v", counts)
	}
	got, _ := d2.GetRun(ctx, r.ID)
	if got.Status != model.RunRunning || got.StartedAt == nil {
		t.Fatalf("run after reopen = %+v", got)
	}
}

// A run written by another process (another DB on the same directory, as
// `ork trigger` does) reaches the scheduler's index through fsnotify.
func TestOtherProcessRunIsNoticed(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	sched, _ := openTest(t, dir)
	if _, err := sched.PendingRuns(ctx, 0); err != nil { // builds the index, starts watching
		t.Fatal(err)
	}
	cli, _ := openTest(t, dir)
	r := mustCreateRun(t, cli, testWorkflow("hello", 1))

	select {
	case <-sched.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled for a run written by another DB")
	}
	runs, err := sched.PendingRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != r.ID {
		t.Fatalf("pending runs = %v, want the new run %s", runs, r.ID)
	}
}

// A run file dropped in by hand (no fsnotify-visible rename from ork) is
// still found: by its write event, or at the latest by the rescan.
func TestHandWrittenRunIsFound(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, err := Open(dir, Options{RescanInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logBuffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.PendingRuns(ctx, 0); err != nil {
		t.Fatal(err)
	}
	w := testWorkflow("hello", 1)
	if err := d.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	// No snapshot of the workflow: the scheduler uses the workflow file.
	data := `{"id": "handmade", "workflow_name": "hello", "status": "pending", "created_at": "2026-01-01T00:00:00Z"}`
	if err := os.WriteFile(filepath.Join(dir, "runs", "handmade.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runs, err := d.PendingRuns(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 {
			if runs[0].ID != "handmade" || runs[0].Workflow == nil || runs[0].Workflow.JobName != "hello.sh" {
				t.Fatalf("hand-written run = %+v", runs[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("hand-written run never found")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDamagedRunIsReportedAndLeftAlone(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	good := func() *model.Run {
		d, _ := openTest(t, dir)
		return mustCreateRun(t, d, testWorkflow("good", 1))
	}()
	bad := filepath.Join(dir, "runs", "broken.json")
	content := []byte("{\n  \"id\": \"broken\",\n  \"status\": \"pending\",,\n}\n")
	if err := os.WriteFile(bad, content, 0o644); err != nil {
		t.Fatal(err)
	}
	d, logs := openTest(t, dir)
	runs, err := d.PendingRuns(ctx, 0)
	if err != nil {
		t.Fatalf("a damaged file must not stop the scheduler: %v", err)
	}
	if len(runs) != 1 || runs[0].ID != good.ID {
		t.Fatalf("pending runs = %v, want only the good one", runs)
	}
	if !strings.Contains(logs.String(), "broken.json: line 3, column 23") {
		t.Fatalf("damaged file not reported with line and column; log:\n%s", logs)
	}
	// ListRuns (ork status) also goes on.
	all, err := d.ListRuns(ctx, model.RunFilter{})
	if err != nil || len(all) != 1 {
		t.Fatalf("ListRuns = %v, %v; want the good run", all, err)
	}
	// The scheduler finishing work never touches the damaged file.
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: good.ID, Status: model.RunSuccess}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(bad); !bytes.Equal(got, content) {
		t.Fatalf("damaged file was changed:\n%s", got)
	}
	// An update aimed at the damaged run fails clearly instead of writing.
	err = d.UpdateRuns(ctx, []model.RunUpdate{{RunID: "broken", Status: model.RunFailed}})
	var fe *model.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("update of a damaged run: err = %v, want a *model.FileError", err)
	}
	if got, _ := os.ReadFile(bad); !bytes.Equal(got, content) {
		t.Fatalf("damaged file was changed:\n%s", got)
	}
}

func TestDamagedTaskFileSkipsOnlyThatTask(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	var r *model.Run
	func() {
		d, _ := openTest(t, dir)
		r = mustCreateRun(t, d, testWorkflow("hello", 3))
		if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
			t.Fatal(err)
		}
	}()
	p := filepath.Join(dir, "tasks", r.ID, "hello.sh.1.json")
	data, _ := os.ReadFile(p)
	cut := data[:len(data)/2] // torn by hand
	os.WriteFile(p, cut, 0o644)

	d, logs := openTest(t, dir)
	pend, err := d.PendingTasks(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 2 {
		t.Fatalf("pending = %d tasks, want the 2 intact ones", len(pend))
	}
	if !strings.Contains(logs.String(), "hello.sh.1.json: line") {
		t.Fatalf("torn task file not reported with its position; log:\n%s", logs)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, cut) {
		t.Fatal("torn task file was rewritten")
	}
}

func TestWorkflowFiles(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	hand := []byte("{\n  \"job_name\": \"x.sh\",\n  \"task_count\": 2\n}\n")
	p := filepath.Join(dir, "workflows", "hand.json")
	os.WriteFile(p, hand, 0o644)
	w1, err := d.GetWorkflow(ctx, "hand")
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := d.GetWorkflow(ctx, "hand")
	if w1.ID == "" || w1.ID != w2.ID || w1.ID != model.WorkflowID("hand") {
		t.Fatalf("hand-written workflow ids = %q, %q; want the stable id of the name", w1.ID, w2.ID)
	}
	if w1.Name != "hand" || w1.ExecutorType != "process" || w1.TaskCount != 2 {
		t.Fatalf("hand-written workflow = %+v", w1)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, hand) {
		t.Fatal("reading a hand-written workflow wrote to it")
	}

	os.WriteFile(filepath.Join(dir, "workflows", "other.json"), []byte(`{"name": "mismatch", "job_name": "x.sh"}`), 0o644)
	if _, err := d.GetWorkflow(ctx, "other"); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("name mismatch: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "workflows", "typo.json"), []byte("{\n\"job_name\": \"x.sh\",\n\"task_cont\": 2}"), 0o644)
	ws, err := d.ListWorkflows(ctx)
	if len(ws) != 1 || ws[0].Name != "hand" {
		t.Fatalf("ListWorkflows = %v, want the loadable one", ws)
	}
	if err == nil || !strings.Contains(err.Error(), "typo.json: line 3") || !strings.Contains(err.Error(), "task_cont") {
		t.Fatalf("ListWorkflows error = %v, want the typo named with its line", err)
	}

	if err := d.CreateWorkflow(ctx, testWorkflow("hand", 1)); !errors.Is(err, model.ErrExists) {
		t.Fatalf("create over a hand-written file: err = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, hand) {
		t.Fatal("CreateWorkflow replaced an existing file")
	}
}

func TestSchedulerLock(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	a, _ := openTest(t, dir)
	b, _ := openTest(t, dir)
	release, err := a.LockScheduler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.LockScheduler(ctx)
	var le *model.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: err = %v, want *model.LockedError", err)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("lock error %q does not name the holder (%s)", err, want)
	}
	if h := LockHolder(dir); !strings.Contains(h, "pid") {
		t.Fatalf("LockHolder = %q while held", h)
	}
	release()
	if h := LockHolder(dir); h != "" {
		t.Fatalf("LockHolder = %q after release", h)
	}
	release2, err := b.LockScheduler(ctx)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release2()
}

func TestDeadWritersTempFilesAreRemoved(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	var r *model.Run
	func() {
		d, _ := openTest(t, dir)
		r = mustCreateRun(t, d, testWorkflow("hello", 1))
		if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
			t.Fatal(err)
		}
	}()
	// pid 0x7ffffffe is not a live process; our own pid is.
	dead := []string{
		filepath.Join(dir, "runs", ".tmp-2147483646-1"),
		filepath.Join(dir, "tasks", r.ID, ".tmp-2147483646-2"),
		filepath.Join(dir, "workflows", ".tmp-2147483646-3"),
	}
	live := filepath.Join(dir, "runs", fmt.Sprintf(".tmp-%d-999999", os.Getppid()))
	for _, p := range append(dead, live) {
		if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := openTest(t, dir)
	if _, err := d.PendingRuns(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range dead {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("leftover of a dead writer not removed: %s", p)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("temp file of a live writer was removed: %v", err)
	}
}

// Recycled inodes must never leak old contents into a new version.
func TestRecycledFilesHoldExactlyTheNewContents(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r := mustCreateRun(t, d, testWorkflow("hello", 20))
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 3000)
	for round := 0; round < 3; round++ {
		var us []model.TaskUpdate
		for _, task := range ts {
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: model.TaskDispatched})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
		us = us[:0]
		for i, task := range ts {
			msg := "short"
			if (i+round)%2 == 0 {
				msg = long
			}
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: model.TaskPending, Error: msg})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
		for i, task := range ts {
			got, err := model.DecodeTask("t", mustRead(t, d.taskPath(task)))
			if err != nil {
				t.Fatalf("round %d task %d: %v", round, i, err)
			}
			want := "short"
			if (i+round)%2 == 0 {
				want = long
			}
			if got.Error != want || got.Status != model.TaskPending || got.Attempt != round+1 {
				t.Fatalf("round %d task %d: status %s attempt %d error len %d", round, i, got.Status, got.Attempt, len(got.Error))
			}
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Spare inodes a dead scheduler left are reused by later writes; one that a
// crash left linked to a live record is removed, and the record is intact.
func TestSparesOfDeadSchedulerAreAdopted(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	var r *model.Run
	var ts []*model.Task
	func() {
		d, _ := openTest(t, dir)
		r = mustCreateRun(t, d, testWorkflow("hello", 2))
		ts = model.NewTasks(r, time.Now())
		if err := d.CreateTasks(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}()
	spare := filepath.Join(dir, ".spare", "2147483646-1")
	if err := os.WriteFile(spare, []byte("old version"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(spare)
	spareIno := st.Sys().(*syscall.Stat_t).Ino
	live := filepath.Join(dir, "tasks", r.ID, "hello.sh.1.json")
	linked := filepath.Join(dir, ".spare", "2147483646-2")
	if err := os.Link(live, linked); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, live)

	d, _ := openTest(t, dir)
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	p0 := filepath.Join(dir, "tasks", r.ID, "hello.sh.0.json")
	st0, _ := os.Stat(p0)
	if st0.Sys().(*syscall.Stat_t).Ino != spareIno {
		t.Errorf("the write did not reuse the dead scheduler's spare inode")
	}
	got, err := model.DecodeTask(p0, mustRead(t, p0))
	if err != nil || got.Status != model.TaskDispatched {
		t.Fatalf("record written into a reused inode: %v %+v", err, got)
	}
	d.Close()
	if _, err := os.Stat(linked); !os.IsNotExist(err) {
		t.Errorf("spare linked to a live record was kept: %v", err)
	}
	if !bytes.Equal(mustRead(t, live), before) {
		t.Errorf("live record changed")
	}
}

// Creating the tasks of a run again (as a restarted scheduler does) never
// writes over a task file that is damaged, and says so: the damaged task
// fails alone, so that the caller does not start it.
func TestCreateTasksSkipsDamagedFiles(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	var r *model.Run
	func() {
		d, _ := openTest(t, dir)
		r = mustCreateRun(t, d, testWorkflow("hello", 2))
		if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
			t.Fatal(err)
		}
	}()
	p := filepath.Join(dir, "tasks", r.ID, "hello.sh.1.json")
	os.WriteFile(p, []byte("{\"id\": "), 0o644)
	d, _ := openTest(t, dir)
	ts := model.NewTasks(r, time.Now())
	err := d.CreateTasks(ctx, ts)
	var pe *model.PartialError
	if !errors.As(err, &pe) || len(pe.Records) != 1 || pe.Records[0].TaskID != ts[1].ID || !errors.Is(err, model.ErrDamaged) {
		t.Fatalf("CreateTasks over a damaged file = %v; want a PartialError naming task 1 as damaged", err)
	}
	if got := string(mustRead(t, p)); got != "{\"id\": " {
		t.Fatalf("damaged task file was written over: %q", got)
	}
}

// A run created through the scheduler's own handle, which the watcher
// brought in and the scheduler finished before CreateRun indexed it, is
// not put back in the queue (it would run twice).
func TestCreatedRunFinishedMeanwhileStaysFinished(t *testing.T) {
	ctx := context.Background()
	d, _ := openTest(t, initDir(t))
	if _, err := d.PendingRuns(ctx, 0); err != nil { // the scheduler's index
		t.Fatal(err)
	}
	w := testWorkflow("hello", 1)
	w.Normalize()
	r := model.NewRun(w, nil, "test", time.Now())
	data, _ := encode(r)
	if err := d.createExclusive(d.runPath(r.ID), data); err != nil { // CreateRun's write
		t.Fatal(err)
	}
	// Meanwhile the watcher's event: the scheduler takes the run and ends it.
	d.mu.Lock()
	d.loadRun(r.ID)
	d.mu.Unlock()
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
		t.Fatal(err)
	}
	d.indexCreated(r, int64(len(data))) // the rest of CreateRun
	if runs, _ := d.PendingRuns(ctx, 0); len(runs) != 0 {
		t.Fatalf("the finished run is pending again: %v", runs)
	}
}

// The counts of a finished run come from its record: `ork status RUN` on a
// run of 100,000 tasks reads one file.
func TestFinishedRunCountsFromItsRecord(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r := mustCreateRun(t, d, testWorkflow("hello", 3))
	if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
		t.Fatal(err)
	}
	counts := map[model.TaskStatus]int{model.TaskSuccess: 2, model.TaskFailed: 1}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, TaskCounts: counts}}); err != nil {
		t.Fatal(err)
	}
	// Proof that the task files are not read: they are gone.
	os.RemoveAll(filepath.Join(dir, "tasks", r.ID))
	fresh, _ := openTest(t, dir)
	got, err := fresh.TaskCounts(ctx, r.ID)
	if err != nil || got[model.TaskSuccess] != 2 || got[model.TaskFailed] != 1 || len(got) != 2 {
		t.Fatalf("TaskCounts of a finished run = %v, %v; want its recorded counts", got, err)
	}
}

// A large run's record keeps its task counts current while it runs, written
// with each batch of its task updates: `ork status RUN` in another process
// reads one file, not one per task, and gets exactly the counts of the
// task records.
func TestRunningLargeRunCountsFromItsRecord(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r := mustCreateRun(t, d, testWorkflow("big", countedRunTasks))
	ts := model.NewTasks(r, time.Now())
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	update := func(from, to int, st model.TaskStatus) {
		var us []model.TaskUpdate
		for _, task := range ts[from:to] {
			us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: st})
		}
		if _, err := d.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
	}
	update(0, 400, model.TaskDispatched)
	update(0, 300, model.TaskSuccess)
	update(300, 350, model.TaskFailed)
	// A batch that changes a task twice counts it once.
	update(350, 360, model.TaskRunning)
	update(350, 360, model.TaskSuccess)
	want := map[model.TaskStatus]int{model.TaskSuccess: 310, model.TaskFailed: 50, model.TaskDispatched: 40, model.TaskPending: 600}

	fresh, _ := openTest(t, dir)
	counted, err := fresh.TaskCounts(ctx, r.ID)
	if err != nil || !maps.Equal(counted, want) {
		t.Fatalf("TaskCounts of the running run = %v, %v; want %v", counted, err, want)
	}
	got, err := fresh.GetRun(ctx, r.ID)
	if err != nil || !maps.Equal(got.TaskCounts, want) || got.Status != model.RunRunning {
		t.Fatalf("the running run's record = %+v, %v; want task_counts %v", got, err, want)
	}
	// Proof that the task files are not read: they are gone.
	os.RemoveAll(filepath.Join(dir, "tasks", r.ID))
	other, _ := openTest(t, dir)
	if counted, err := other.TaskCounts(ctx, r.ID); err != nil || !maps.Equal(counted, want) {
		t.Fatalf("TaskCounts without the task files = %v, %v; want %v from the run's record", counted, err, want)
	}

	// A small run's record is not rewritten with each batch.
	small := mustCreateRun(t, d, testWorkflow("small", 3))
	sts := model.NewTasks(small, time.Now())
	if err := d.CreateTasks(ctx, sts); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: sts[0].ID, RunID: small.ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	if got, err := fresh.GetRun(ctx, small.ID); err != nil || got.TaskCounts != nil {
		t.Fatalf("the small run's record = %+v, %v; want no task_counts", got, err)
	}
}

// A directory Init did not make is not opened, and nothing is written in
// it: a --dir that names the project instead of its .ork is an error.
func TestOpenRefusesWhatIsNotAnOrkDirectory(t *testing.T) {
	project := t.TempDir()
	if err := os.MkdirAll(filepath.Join(project, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Open(project, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not an ork directory") || !strings.Contains(err.Error(), "ork init") {
		t.Fatalf("Open(a plain directory) = %v, want an error saying it is not an ork directory", err)
	}
	if _, err := Doctor(project); err == nil {
		t.Fatal("Doctor(a plain directory) succeeded, want the same error")
	}
	ents, _ := os.ReadDir(project)
	if len(ents) != 1 || ents[0].Name() != "src" {
		t.Fatalf("the directory holds %v after Open, want only src: nothing written", ents)
	}

	// With a .ork inside it, the error names that one.
	if err := Init(filepath.Join(project, ".ork")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(project, Options{}); err == nil || !strings.Contains(err.Error(), filepath.Join(project, ".ork")) {
		t.Fatalf("Open(a project with .ork) = %v, want an error naming its .ork", err)
	}
	db, err := Open(filepath.Join(project, ".ork"), Options{})
	if err != nil {
		t.Fatalf("Open(.ork) = %v", err)
	}
	db.Close()
}

// The index keeps a finished task by its id only; the scheduler's handle
// still lists and streams its whole record (from its file), leaves it as
// it is when it is created again, and never changes it.
func TestFinishedTasksLeaveTheIndex(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r, ts := startedRun(t, d, "w", 5)
	exit := 0
	var us []model.TaskUpdate
	for i, task := range ts[:3] {
		us = append(us, model.TaskUpdate{TaskID: task.ID, RunID: r.ID, Status: model.TaskSuccess, ExitCode: &exit,
			Output: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	if _, err := d.UpdateTasks(ctx, us); err != nil {
		t.Fatal(err)
	}

	d.mu.Lock()
	e := d.idx.runs[r.ID]
	nTasks, nDone, nSizes := len(e.tasks), len(e.done), len(e.sizes)
	inTaskRun := 0
	for _, task := range ts {
		if d.idx.taskRun[task.ID] != nil {
			inTaskRun++
		}
	}
	d.mu.Unlock()
	if nTasks != 2 || nDone != 3 || nSizes != 2 || inTaskRun != 2 {
		t.Fatalf("index holds %d tasks, %d finished ids, %d sizes, %d in taskRun; want 2, 3, 2, 2", nTasks, nDone, nSizes, inTaskRun)
	}

	check := func(how string, got []*model.Task) {
		t.Helper()
		if len(got) != 5 {
			t.Fatalf("%s: %d tasks, want 5", how, len(got))
		}
		for i, task := range got {
			if task.ID != ts[i].ID {
				t.Fatalf("%s: task %d is %s, want %s", how, i, task.ID, ts[i].ID)
			}
			if i < 3 {
				if task.Status != model.TaskSuccess || task.FinishedAt == nil || task.ExitCode == nil ||
					compactJSON(task.Output) != fmt.Sprintf(`{"i":%d}`, i) || task.Attempt != 1 {
					t.Fatalf("%s: finished task %d = %+v, want its whole record", how, i, task)
				}
			} else if task.Status != model.TaskDispatched {
				t.Fatalf("%s: task %d is %s, want dispatched", how, i, task.Status)
			}
		}
	}
	listed, err := d.ListTasks(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("ListTasks", listed)
	var streamed []*model.Task
	if err := d.StreamTasks(ctx, r.ID, func(task *model.Task) error {
		streamed = append(streamed, task)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("StreamTasks", streamed)

	// Created again: left as it is. Updated again: unchanged.
	path := d.taskPath(ts[0])
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	changed, err := d.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Status: model.TaskFailed}})
	if err != nil || len(changed) != 0 {
		t.Fatalf("update of a finished task changed %v, %v; want nothing", changed, err)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the finished task's file changed:\n%s\nto\n%s (%v)", before, after, err)
	}
	want := map[model.TaskStatus]int{model.TaskSuccess: 3, model.TaskDispatched: 2}
	if counts, err := d.TaskCounts(ctx, r.ID); err != nil || !maps.Equal(counts, want) {
		t.Fatalf("TaskCounts = %v, %v; want %v", counts, err, want)
	}
	if active, err := d.ActiveTasks(ctx); err != nil || len(active) != 2 {
		t.Fatalf("ActiveTasks = %d tasks, %v; want 2", len(active), err)
	}
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
