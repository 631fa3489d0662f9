package sched_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// env is a project directory with a file database, a script directory and
// a scheduler wired to a real process executor.
type env struct {
	t       *testing.T
	dir     string
	scripts string
	logDir  string // task logs; default .ork/logs
	db      *filedb.DB
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, scripts: filepath.Join(root, "scripts"), logs: &syncBuffer{}}
	os.MkdirAll(e.scripts, 0o755)
	e.db = e.open()
	return e
}

func (e *env) taskLogDir() string {
	if e.logDir != "" {
		return e.logDir
	}
	return filepath.Join(e.dir, "logs")
}

func (e *env) open() *filedb.DB {
	db, err := filedb.Open(e.dir, filedb.Options{Logger: e.logger()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (e *env) script(name, body string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.scripts, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) workflow(name, job string, n int) *model.Workflow {
	e.t.Helper()
	w := &model.Workflow{Name: name, JobName: job, TaskCount: n}
	if err := e.db.CreateWorkflow(context.Background(), w); err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) trigger(db model.Database, w *model.Workflow) *model.Run {
	e.t.Helper()
	r := model.NewRun(w, nil, "test", time.Now())
	if err := db.CreateRun(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// start runs a scheduler over db until the test ends; it returns the
// scheduler and a function that stops it and returns Run's error.
func (e *env) start(db model.Database, cfg sched.Config) (*sched.Scheduler, func() error) {
	e.t.Helper()
	updates := make(chan exec.StatusUpdate, 1024)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: e.scripts, LogDir: e.taskLogDir(), Updates: updates, KillGrace: 500 * time.Millisecond,
	}))
	if cfg.Logger == nil {
		cfg.Logger = e.logger()
	}
	s := sched.New(db, mgr, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("scheduler did not stop within 20s")
			}
		})
		return err
	}
	e.t.Cleanup(func() { stop() })
	return s, stop
}

func (e *env) wait(s *sched.Scheduler, r *model.Run) *model.Run {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := s.WaitRun(ctx, r.ID)
	if err != nil {
		e.t.Fatalf("waiting for run %s: %v\nscheduler log:\n%s", r.ID, err, e.logs)
	}
	return got
}

func (e *env) tasks(r *model.Run) []*model.Task {
	e.t.Helper()
	ts, err := e.db.ListTasks(context.Background(), r.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return ts
}

func TestRunSucceeds(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", `echo "index $ORK_TASK_INDEX"`)
	w := e.workflow("ok", "ok.sh", 5)
	s, _ := e.start(e.db, sched.Config{})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunSuccess || r.Error != "" || r.StartedAt == nil || r.FinishedAt == nil {
		t.Fatalf("run = %+v, want success with start and end times", r)
	}
	if r.TaskCounts[model.TaskSuccess] != 5 || len(r.TaskCounts) != 1 {
		t.Fatalf("run task_counts = %v, want 5 success", r.TaskCounts)
	}
	ts := e.tasks(r)
	if len(ts) != 5 {
		t.Fatalf("%d tasks, want 5", len(ts))
	}
	for i, task := range ts {
		if task.Status != model.TaskSuccess || task.Attempt != 1 || task.ExitCode == nil || *task.ExitCode != 0 ||
			task.DispatchedAt == nil || task.StartedAt == nil || task.FinishedAt == nil {
			t.Errorf("task %d = %+v", i, task)
		}
		log, err := os.ReadFile(filepath.Join(e.dir, "logs", r.ID, fmt.Sprintf("ok.sh.%d.1.log", i)))
		if err != nil || strings.TrimSpace(string(log)) != "index "+strconv.Itoa(i) {
			t.Errorf("log of task %d = %q, %v", i, log, err)
		}
	}
}

func TestFailedTaskFailsRunAndIsNamed(t *testing.T) {
	e := newEnv(t)
	e.script("flaky.sh", `[ "$ORK_TASK_INDEX" = 2 ] && exit 3; exit 0`)
	w := e.workflow("flaky", "flaky.sh", 4)
	s, _ := e.start(e.db, sched.Config{})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunFailed {
		t.Fatalf("run status = %s, want failed", r.Status)
	}
	if !strings.Contains(r.Error, "1 of 4 tasks failed") || !strings.Contains(r.Error, "flaky.sh[2]") {
		t.Fatalf("run error = %q, want it to name flaky.sh[2]", r.Error)
	}
	for _, task := range e.tasks(r) {
		want := model.TaskSuccess
		if task.TaskIndex == 2 {
			want = model.TaskFailed
			if task.ExitCode == nil || *task.ExitCode != 3 {
				t.Errorf("failed task exit code = %v, want 3", task.ExitCode)
			}
		}
		if task.Status != want {
			t.Errorf("task %d status = %s, want %s", task.TaskIndex, task.Status, want)
		}
	}
}

// A run whose script is missing fails with a clear error, and the
// scheduler goes on serving other runs.
func TestBadWorkflowDoesNotStopOthers(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	bad := e.workflow("bad", "missing.sh", 2)
	good := e.workflow("good", "ok.sh", 2)
	s, _ := e.start(e.db, sched.Config{})
	rb := e.trigger(e.db, bad)
	rg := e.trigger(e.db, good)
	if got := e.wait(s, rb); got.Status != model.RunFailed {
		t.Fatalf("bad run = %s, want failed", got.Status)
	}
	for _, task := range e.tasks(rb) {
		if task.Status != model.TaskFailed || !strings.Contains(task.Error, "not found") {
			t.Errorf("task of missing script: status %s error %q", task.Status, task.Error)
		}
	}
	if got := e.wait(s, rg); got.Status != model.RunSuccess {
		t.Fatalf("good run = %s, want success", got.Status)
	}
}

// No more than MaxRunningTasks tasks ever run at once.
func TestMaxRunningTasks(t *testing.T) {
	e := newEnv(t)
	spy := e.concurrencySpy("busy.sh")
	w := e.workflow("busy", "busy.sh", 8)
	s, _ := e.start(e.db, sched.Config{MaxRunningTasks: 2})
	if r := e.wait(s, e.trigger(e.db, w)); r.Status != model.RunSuccess {
		t.Fatalf("run = %s (%s)", r.Status, r.Error)
	}
	if n, most := spy(); n != 8 || most > 2 {
		t.Fatalf("spy saw %d task starts, at most %d at once; want 8, at most 2 (MaxRunningTasks 2)", n, most)
	}
}

// concurrencySpy writes a script whose tasks mark themselves running for a
// moment, and returns a function that reports how many tasks started and
// the most that ran at once.
func (e *env) concurrencySpy(name string) func() (starts, most int) {
	dir := e.t.TempDir()
	e.script(name, fmt.Sprintf(`touch %[1]s/$ORK_TASK_INDEX.run
ls %[1]s | grep -c '\.run$' >> %[1]s/counts
sleep 0.1
rm %[1]s/$ORK_TASK_INDEX.run`, dir))
	return func() (int, int) {
		data, _ := os.ReadFile(filepath.Join(dir, "counts"))
		lines := strings.Fields(string(data))
		most := 0
		for _, l := range lines {
			n, _ := strconv.Atoi(l)
			most = max(most, n)
		}
		return len(lines), most
	}
}

// A run written by another process starts without waiting for the poll:
// with an hour-long poll interval, only the change notification can start
// it.
func TestTriggerFromAnotherProcessWakesScheduler(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.workflow("ok", "ok.sh", 1)
	s, _ := e.start(e.db, sched.Config{PollInterval: time.Hour})
	// A first run served: the scheduler then waits for the next event.
	if got := e.wait(s, e.trigger(e.db, w)); got.Status != model.RunSuccess {
		t.Fatalf("first run = %s", got.Status)
	}
	other := e.open()
	r := e.trigger(other, w)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.WaitRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("run from another process not served without a poll: %v", err)
	}
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s", got.Status)
	}
}

func TestOneSchedulerPerDatabase(t *testing.T) {
	e := newEnv(t)
	_, _ = e.start(e.db, sched.Config{})
	waitUntil(t, 10*time.Second, "the first scheduler to hold the lock", func() bool {
		return strings.HasPrefix(filedb.LockHolder(e.dir), fmt.Sprintf("pid %d ", os.Getpid()))
	})
	_, stop2 := e.start(e.open(), sched.Config{})
	err := stop2()
	var le *model.LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second scheduler: err = %v, want a LockedError naming pid %d", err, os.Getpid())
	}
}

// crashed makes run r look as a scheduler that died leaves it: running,
// with its tasks created pending. It returns the tasks.
func (e *env) crashed(r *model.Run) []*model.Task {
	e.t.Helper()
	ctx := context.Background()
	ts := model.NewTasks(r, time.Now())
	if err := e.db.CreateTasks(ctx, ts); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		e.t.Fatal(err)
	}
	return ts
}

// up applies task updates, one batch per argument.
func (e *env) up(batches ...[]model.TaskUpdate) {
	e.t.Helper()
	for _, us := range batches {
		if _, err := e.db.UpdateTasks(context.Background(), us); err != nil {
			e.t.Fatal(err)
		}
	}
}

// interruptedBefore gives task t n attempts interrupted by a dying
// scheduler, as earlier recoveries record them.
func (e *env) interruptedBefore(t *model.Task, n int) {
	e.t.Helper()
	for a := 1; a <= n; a++ {
		e.up([]model.TaskUpdate{{TaskID: t.ID, RunID: t.RunID, Status: model.TaskDispatched, Attempt: a}},
			[]model.TaskUpdate{{TaskID: t.ID, RunID: t.RunID, Status: model.TaskRunning, Attempt: a}},
			[]model.TaskUpdate{{TaskID: t.ID, RunID: t.RunID, Status: model.TaskPending, Attempt: a,
				AttemptStatus: string(model.AttemptInterrupted), Error: model.SchedulerDied + " while running attempt " + strconv.Itoa(a)}})
	}
}

// Recovery with the default settings: tasks a dead scheduler left running
// are run again at once (not after a timeout), their attempt recorded
// interrupted; a task dispatched that never started is not charged an
// attempt; a task interrupted more than MaxInterruptions (default 5) times
// fails; a task interrupted again and again waits, longer each time.
func TestRecoveryAfterCrash(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.workflow("ok", "ok.sh", 5)
	r := e.trigger(e.db, w)
	ts := e.crashed(r)
	// As a crashed scheduler leaves them:
	//   0: running in attempt 1;
	//   1: dispatched in attempt 1, never started (no log: dispatched ahead);
	//   2: dispatched in attempt 1, its log created (its start under way);
	//   3: running in attempt 6 after 5 interruptions: one too many;
	//   4: running in attempt 5 after 4 interruptions: the last allowed.
	e.interruptedBefore(ts[3], 5)
	e.interruptedBefore(ts[4], 4)
	id := func(i, a int) model.TaskUpdate { return model.TaskUpdate{TaskID: ts[i].ID, RunID: r.ID, Attempt: a} }
	disp := func(i, a int) model.TaskUpdate { u := id(i, a); u.Status = model.TaskDispatched; return u }
	run := func(i, a int) model.TaskUpdate { u := id(i, a); u.Status = model.TaskRunning; return u }
	e.up([]model.TaskUpdate{disp(0, 1), disp(1, 1), disp(2, 1), disp(3, 6), disp(4, 5)},
		[]model.TaskUpdate{run(0, 1), run(3, 6), run(4, 5)})
	logOf2, err := exec.LogPath(e.taskLogDir(), r.ID, "ok.sh", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(logOf2), 0o755)
	if err := os.WriteFile(logOf2, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.db.Close()

	e.db = e.open()
	start := time.Now()
	s, _ := e.start(e.db, sched.Config{PollInterval: time.Hour})
	got := e.wait(s, r)
	if got.Status != model.RunFailed || !strings.Contains(got.Error, "1 of 5 tasks failed: ok.sh[3]") {
		t.Fatalf("run = %s %q, want failed because of ok.sh[3] only", got.Status, got.Error)
	}
	byIndex := e.tasks(r)
	statuses := func(task *model.Task) []string {
		var out []string
		for _, a := range task.Attempts {
			out = append(out, fmt.Sprintf("%d:%s", a.Attempt, a.Status))
		}
		return out
	}
	want := map[int]string{
		0: "[1:interrupted 2:success]",
		1: "[1:success]",
		2: "[1:interrupted 2:success]",
		3: "[1:interrupted 2:interrupted 3:interrupted 4:interrupted 5:interrupted 6:failed]",
		4: "[1:interrupted 2:interrupted 3:interrupted 4:interrupted 5:interrupted 6:success]",
	}
	for i, task := range byIndex {
		if got := fmt.Sprint(statuses(task)); got != want[i] {
			t.Errorf("task %d (%s, attempt %d, %q): attempts %s, want %s", i, task.Status, task.Attempt, task.Error, got, want[i])
		}
	}
	if a := byIndex[0].Attempts[0]; !strings.HasPrefix(a.Error, model.SchedulerDied) || a.StartedAt == nil || a.FinishedAt == nil {
		t.Errorf("interrupted attempt of task 0 = %+v, want the scheduler's death with start and end", a)
	}
	if task := byIndex[3]; task.Status != model.TaskFailed || !strings.Contains(task.Error, "more than max-interruptions (5)") {
		t.Errorf("task 3 = %s %q, want failed: more than max-interruptions (5)", task.Status, task.Error)
	}
	if i := byIndex[4].Interruptions(); i != 5 {
		t.Errorf("task 4: %d interruptions recorded, want 5", i)
	}
	// Tasks 0 and 1 (interrupted once, never started) started again at
	// once; task 4, interrupted for the fifth time, waited (2s, ±50%).
	for _, i := range []int{0, 1} {
		if d := byIndex[i].StartedAt.Sub(start); d > 3*time.Second {
			t.Errorf("task %d started %s after the scheduler: recovery must not wait", i, d)
		}
	}
	if d := byIndex[4].StartedAt.Sub(start); d < time.Second {
		t.Errorf("task 4 started again %s after the scheduler, want 1s or more (the delay after a fifth interruption)", d)
	}
}

// A run whose tasks had all ended when its scheduler died is finished at
// recovery: before the new scheduler dispatches anything.
func TestRecoveryFinishesEndedRuns(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	done := e.trigger(e.db, e.workflow("done", "ok.sh", 2))
	ts := e.crashed(done)
	for _, st := range []model.TaskStatus{model.TaskDispatched, model.TaskRunning, model.TaskSuccess} {
		e.up([]model.TaskUpdate{{TaskID: ts[0].ID, RunID: done.ID, Status: st}, {TaskID: ts[1].ID, RunID: done.ID, Status: st}})
	}
	next := e.trigger(e.db, e.workflow("next", "ok.sh", 1))
	e.db.Close()

	e.db = e.open()
	s, _ := e.start(e.db, sched.Config{PollInterval: time.Hour})
	got := e.wait(s, done)
	if got.Status != model.RunSuccess || got.TaskCounts[model.TaskSuccess] != 2 {
		t.Fatalf("run = %s %v, want success with 2 tasks", got.Status, got.TaskCounts)
	}
	if n := e.wait(s, next); n.Status != model.RunSuccess {
		t.Fatalf("next run = %s %q", n.Status, n.Error)
	}
	first := e.tasks(next)[0]
	if !got.FinishedAt.Before(*first.DispatchedAt) {
		t.Errorf("the run whose tasks had ended was finished at %s, after the next run's task was dispatched (%s): not at recovery",
			got.FinishedAt.Format(time.RFC3339Nano), first.DispatchedAt.Format(time.RFC3339Nano))
	}
}

// Stopping the scheduler waits for running tasks up to the grace period,
// then stops them and puts them back in the queue; a new scheduler runs
// them to the end.
func TestShutdownRequeuesRunningTasks(t *testing.T) {
	e := newEnv(t)
	pidDir := t.TempDir()
	e.script("slow.sh", fmt.Sprintf(`echo $$ > %s/$ORK_TASK_INDEX.$ORK_ATTEMPT.pid
[ "$ORK_ATTEMPT" = 1 ] && exec sleep 60
exit 0`, pidDir))
	w := e.workflow("slow", "slow.sh", 2)
	_, stop := e.start(e.db, sched.Config{ShutdownGrace: 200 * time.Millisecond})
	r := e.trigger(e.db, w)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(pidDir)
		if len(ents) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tasks never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("shutdown took %s with a 200ms grace", d)
	}
	for i := 0; i < 2; i++ {
		b, _ := os.ReadFile(filepath.Join(pidDir, fmt.Sprintf("%d.1.pid", i)))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 {
			t.Fatalf("no pid for task %d", i)
		}
		if err := syscallKill0(pid); err == nil {
			t.Errorf("task %d (pid %d) still alive after shutdown", i, pid)
		}
	}
	for _, task := range e.tasks(r) {
		if task.Status != model.TaskPending || task.Attempt != 1 {
			t.Errorf("after shutdown task %d = %s attempt %d, want pending (requeued) after attempt 1", task.TaskIndex, task.Status, task.Attempt)
		}
		if len(task.Attempts) != 1 || task.Attempts[0].Status != model.AttemptInterrupted || task.Interruptions() != 0 {
			t.Errorf("after shutdown task %d attempts = %+v, want attempt 1 interrupted by the stop (not counted as a scheduler's death)", task.TaskIndex, task.Attempts)
		}
	}
	s2, _ := e.start(e.db, sched.Config{})
	if got := e.wait(s2, r); got.Status != model.RunSuccess {
		t.Fatalf("run after restart = %s %q", got.Status, got.Error)
	}
}

// flakyDB fails the first writes of task updates, as a full disk would.
type flakyDB struct {
	model.Database
	failures atomic.Int32
}

func (f *flakyDB) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("write .ork/tasks/x: no space left on device")
	}
	return f.Database.UpdateTasks(ctx, us)
}

func (f *flakyDB) Changes() <-chan struct{} { return f.Database.(model.Notifier).Changes() }

func TestFailedWritesLoseNothing(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.workflow("ok", "ok.sh", 6)
	f := &flakyDB{Database: e.db}
	f.failures.Store(5)
	s, _ := e.start(f, sched.Config{PollInterval: 100 * time.Millisecond})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success once the disk accepts writes", r.Status, r.Error)
	}
	if !strings.Contains(e.logs.String(), "no space left on device") {
		t.Errorf("write failures were not reported; log:\n%s", e.logs)
	}
	for _, task := range e.tasks(r) {
		if task.Status != model.TaskSuccess || task.Attempt != 1 {
			t.Errorf("task %d = %s attempt %d", task.TaskIndex, task.Status, task.Attempt)
		}
	}
}

// A task a dying scheduler interrupted goes to the back of its run's queue:
// the next scheduler starts the tasks still to come first, then the
// interrupted ones, the least interrupted first — so that a scheduler that
// keeps crashing does not find the same task running each time.
func TestInterruptedTaskGoesToTheBack(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.workflow("ok", "ok.sh", 4)
	r := e.trigger(e.db, w)
	// Only tasks 0 and 1 exist: task 0 pending after two attempts cut
	// short by dying schedulers, task 1 running when the last one died.
	ts := model.NewNodeTasks(r, r.Workflow.Nodes()[0], 0, 2, time.Now())
	if err := e.db.CreateTasks(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	if err := e.db.UpdateRuns(context.Background(), []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	e.interruptedBefore(ts[0], 2)
	e.up([]model.TaskUpdate{{TaskID: ts[1].ID, RunID: r.ID, Status: model.TaskDispatched}},
		[]model.TaskUpdate{{TaskID: ts[1].ID, RunID: r.ID, Status: model.TaskRunning}})
	e.db.Close()

	e.db = e.open()
	// One at a time, started in the order dispatched.
	s, _ := e.start(e.db, sched.Config{MaxRunningTasks: 1, MaxConcurrentDispatches: 1})
	if got := e.wait(s, r); got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
	got := e.tasks(r)
	order := []int{2, 3, 1, 0} // fresh tasks, then by interruptions
	for i := 1; i < len(order); i++ {
		a, b := got[order[i-1]], got[order[i]]
		if !a.StartedAt.Before(*b.StartedAt) {
			t.Errorf("task %d started at %s, not before task %d (%s): want the order %v",
				a.TaskIndex, a.StartedAt.Format(time.RFC3339Nano), b.TaskIndex, b.StartedAt.Format(time.RFC3339Nano), order)
		}
	}
	if got[1].Attempt != 2 || len(got[1].Attempts) != 2 || got[1].Attempts[0].Status != model.AttemptInterrupted {
		t.Errorf("task 1 = attempt %d, %+v; want success in attempt 2 after attempt 1 interrupted", got[1].Attempt, got[1].Attempts)
	}
	if got[0].Attempt != 3 || got[0].Interruptions() != 2 {
		t.Errorf("task 0 = attempt %d with %d interruptions; want success in attempt 3 after 2", got[0].Attempt, got[0].Interruptions())
	}
}
