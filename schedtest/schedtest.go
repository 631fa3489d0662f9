// Package schedtest runs the real scheduler (package sched) with the real
// process executor on any model.Database: the scheduler-level half of the
// conformance suite, beside dbtest's storage-level half. A backend runs it
// from its own tests:
//
//	func TestScheduler(t *testing.T) {
//		schedtest.Run(t, func(t *testing.T) dbtest.Store { ... })
//	}
//
// Every test makes a new store, scripts in a temporary directory, and a
// scheduler over one handle; "another process" is another handle on the
// same store. The tests assert what a user sees: run and task statuses,
// attempts, outputs, logs, and how soon things happen.
//
// schedtest must never import a backend.
package schedtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// Run runs the scheduler suite on stores made by newStore, which must make
// a new, empty store each call.
func Run(t *testing.T, newStore func(t *testing.T) dbtest.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"RunSucceeds", testRunSucceeds},
		{"FailedTaskFailsRun", testFailedTaskFailsRun},
		{"ManyTasks", testManyTasks},
		{"DAGOutputsFlowDownstream", testDAGOutputs},
		{"RetriesWithBackoff", testRetries},
		{"TriggerFromAnotherHandleWakesScheduler", testTriggerWakes},
		{"CancelFromAnotherHandle", testCancel},
		{"RecoveryAfterCrash", testRecovery},
		{"ShutdownThenRestart", testShutdownRestart},
		{"OneScheduler", testOneScheduler},
		{"SeveralSchedulers", testSeveralSchedulers},
		{"MaxActiveRunsAcrossSchedulers", testMaxActiveRunsAcrossSchedulers},
		{"Takeover", testTakeover},
		{"AttemptOfAnotherHost", testAttemptOfAnotherHost},
		{"OutageLongerThanLease", testOutageLongerThanLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, NewEnv(t, newStore(t)))
		})
	}
}

// Env is one store, a script directory, a log directory and the
// scheduler's log, for one test.
type Env struct {
	T       *testing.T
	Open    dbtest.Store
	DB      model.Database // the scheduler's handle
	Scripts string
	LogDir  string
	Logs    *SyncBuffer
}

// NewEnv makes an Env on the store open opens.
func NewEnv(t *testing.T, open dbtest.Store) *Env {
	root := t.TempDir()
	e := &Env{T: t, Open: open, Scripts: filepath.Join(root, "scripts"), LogDir: filepath.Join(root, "logs"), Logs: &SyncBuffer{}}
	os.MkdirAll(e.Scripts, 0o755)
	os.MkdirAll(e.LogDir, 0o755)
	e.DB = open(t)
	return e
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger logs into e.Logs.
func (e *Env) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Script writes an executable shell script into the script directory.
func (e *Env) Script(name, body string) {
	e.T.Helper()
	if err := os.WriteFile(filepath.Join(e.Scripts, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		e.T.Fatal(err)
	}
}

// Workflow stores w through the scheduler's handle.
func (e *Env) Workflow(w *model.Workflow) *model.Workflow {
	e.T.Helper()
	if err := e.DB.CreateWorkflow(context.Background(), w); err != nil {
		e.T.Fatal(err)
	}
	return w
}

// Trigger creates a pending run of w through db.
func (e *Env) Trigger(db model.Database, w *model.Workflow) *model.Run {
	e.T.Helper()
	r := model.NewRun(w, nil, "schedtest", time.Now())
	if err := db.CreateRun(context.Background(), r); err != nil {
		e.T.Fatal(err)
	}
	return r
}

// Start runs a scheduler over db until the test ends; it returns the
// scheduler and a function that stops it and returns Run's error.
func (e *Env) Start(db model.Database, cfg sched.Config) (*sched.Scheduler, func() error) {
	e.T.Helper()
	s := e.New(db, cfg)
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
			case <-time.After(30 * time.Second):
				err = errors.New("scheduler did not stop within 30s")
			}
		})
		return err
	}
	e.T.Cleanup(func() { stop() })
	return s, stop
}

// New makes a scheduler over db with a process executor running the
// scripts of e.
func (e *Env) New(db model.Database, cfg sched.Config) *sched.Scheduler {
	updates := make(chan exec.StatusUpdate, 1024)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: e.Scripts, LogDir: e.LogDir, Updates: updates, KillGrace: 500 * time.Millisecond,
	}))
	if cfg.Logger == nil {
		cfg.Logger = e.Logger()
	}
	return sched.New(db, mgr, cfg)
}

// Wait waits up to timeout for run r to end and returns it.
func (e *Env) Wait(s *sched.Scheduler, r *model.Run, timeout time.Duration) *model.Run {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := s.WaitRun(ctx, r.ID)
	if err != nil {
		e.T.Fatalf("waiting for run %s: %v\nscheduler log:\n%s", r.ID, err, e.Logs)
	}
	return got
}

// Tasks lists the tasks of r through the scheduler's handle.
func (e *Env) Tasks(r *model.Run) []*model.Task {
	e.T.Helper()
	ts, err := e.DB.ListTasks(context.Background(), r.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	return ts
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func intp(n int) *int { return &n }

func durp(d time.Duration) *model.Duration { v := model.Duration(d); return &v }

func byName(ts []*model.Task) map[string][]*model.Task {
	m := map[string][]*model.Task{}
	for _, t := range ts {
		m[t.Name] = append(m[t.Name], t)
	}
	return m
}

// ---- the tests ----

// A run's tasks all run, each once, with their logs; the run succeeds
// with its task counts.
func testRunSucceeds(t *testing.T, e *Env) {
	e.Script("ok.sh", `echo "index $ORK_TASK_INDEX of $ORK_TASK_COUNT"`)
	w := e.Workflow(&model.Workflow{Name: "ok", JobName: "ok.sh", TaskCount: 5})
	s, _ := e.Start(e.DB, sched.Config{})
	r := e.Wait(s, e.Trigger(e.DB, w), 30*time.Second)
	if r.Status != model.RunSuccess || r.Error != "" || r.StartedAt == nil || r.FinishedAt == nil {
		t.Fatalf("run = %+v, want success with start and end times", r)
	}
	if r.TaskCounts[model.TaskSuccess] != 5 || len(r.TaskCounts) != 1 {
		t.Fatalf("run task_counts = %v, want 5 success", r.TaskCounts)
	}
	ts := e.Tasks(r)
	if len(ts) != 5 {
		t.Fatalf("%d tasks, want 5", len(ts))
	}
	for i, task := range ts {
		if task.Status != model.TaskSuccess || task.Attempt != 1 || task.ExitCode == nil || *task.ExitCode != 0 ||
			task.DispatchedAt == nil || task.StartedAt == nil || task.FinishedAt == nil || len(task.Attempts) != 1 {
			t.Errorf("task %d = %+v, want success in attempt 1 with its times", i, task)
			continue
		}
		log, err := os.ReadFile(task.Log)
		if err != nil || strings.TrimSpace(string(log)) != fmt.Sprintf("index %d of 5", i) {
			t.Errorf("log of task %d (%s) = %q, %v", i, task.Log, log, err)
		}
	}
	if got, err := e.DB.GetRun(context.Background(), r.ID); err != nil || got.Status != model.RunSuccess {
		t.Errorf("stored run = %+v, %v; want success", got, err)
	}
}

// A failed task fails the run, which names it; the other tasks still run.
func testFailedTaskFailsRun(t *testing.T, e *Env) {
	e.Script("flaky.sh", `[ "$ORK_TASK_INDEX" = 2 ] && exit 3; exit 0`)
	w := e.Workflow(&model.Workflow{Name: "flaky", JobName: "flaky.sh", TaskCount: 4})
	s, _ := e.Start(e.DB, sched.Config{})
	r := e.Wait(s, e.Trigger(e.DB, w), 30*time.Second)
	if r.Status != model.RunFailed || !strings.Contains(r.Error, "flaky.sh[2]") {
		t.Fatalf("run = %s %q, want failed naming flaky.sh[2]", r.Status, r.Error)
	}
	for _, task := range e.Tasks(r) {
		want, code := model.TaskSuccess, 0
		if task.TaskIndex == 2 {
			want, code = model.TaskFailed, 3
		}
		if task.Status != want || task.ExitCode == nil || *task.ExitCode != code {
			t.Errorf("task %d = %s exit %v, want %s exit %d", task.TaskIndex, task.Status, task.ExitCode, want, code)
		}
	}
}

// Many tasks, more than a batch and than the running limit, each run
// exactly once.
func testManyTasks(t *testing.T, e *Env) {
	const n = 300
	marks := filepath.Join(e.T.TempDir())
	e.Script("mark.sh", fmt.Sprintf(`echo $ORK_ATTEMPT >> %s/$ORK_TASK_INDEX`, marks))
	w := e.Workflow(&model.Workflow{Name: "many", JobName: "mark.sh", TaskCount: n})
	s, _ := e.Start(e.DB, sched.Config{MaxRunningTasks: 16, MaxTasksPerBatch: 50})
	r := e.Wait(s, e.Trigger(e.DB, w), 60*time.Second)
	if r.Status != model.RunSuccess || r.TaskCounts[model.TaskSuccess] != n {
		t.Fatalf("run = %s %q counts %v, want %d successes", r.Status, r.Error, r.TaskCounts, n)
	}
	for i := range n {
		b, err := os.ReadFile(filepath.Join(marks, strconv.Itoa(i)))
		if err != nil || string(b) != "1\n" {
			t.Fatalf("task %d ran %q (%v), want exactly once in attempt 1", i, b, err)
		}
	}
}

// A DAG's outputs flow downstream, a fan-out's as an array by index.
func testDAGOutputs(t *testing.T, e *Env) {
	e.Script("part.sh", `printf '{"n": %s}' $((ORK_TASK_INDEX * 10)) > "$ORK_OUTPUT"`)
	e.Script("sum.sh", `printf '{"upstream": %s}' "$ORK_UPSTREAM" > "$ORK_OUTPUT"`)
	w := e.Workflow(&model.Workflow{Name: "fan", Tasks: map[string]*model.TaskSpec{
		"part": {JobName: "part.sh", TaskCount: 3},
		"sum":  {JobName: "sum.sh", DependsOn: []string{"part"}},
	}})
	s, _ := e.Start(e.DB, sched.Config{})
	r := e.Wait(s, e.Trigger(e.DB, w), 30*time.Second)
	if r.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", r.Status, r.Error)
	}
	tasks := byName(e.Tasks(r))
	if len(tasks["part"]) != 3 || len(tasks["sum"]) != 1 {
		t.Fatalf("tasks = %d part, %d sum; want 3 and 1", len(tasks["part"]), len(tasks["sum"]))
	}
	var got struct {
		Upstream map[string][]struct{ N int } `json:"upstream"`
	}
	if err := json.Unmarshal(tasks["sum"][0].Output, &got); err != nil {
		t.Fatalf("sum output %s: %v", tasks["sum"][0].Output, err)
	}
	if ns := got.Upstream["part"]; len(ns) != 3 || ns[0].N != 0 || ns[1].N != 10 || ns[2].N != 20 {
		t.Fatalf("ORK_UPSTREAM seen by sum = %s", tasks["sum"][0].Output)
	}
}

// A failing task is retried after its backoff as new attempts, each on
// record.
func testRetries(t *testing.T, e *Env) {
	e.Script("flaky.sh", `[ "$ORK_ATTEMPT" -ge 3 ] && exit 0; exit 2`)
	w := e.Workflow(&model.Workflow{Name: "retry", Tasks: map[string]*model.TaskSpec{
		"flaky": {JobName: "flaky.sh", Retries: intp(2), RetryBackoff: durp(100 * time.Millisecond)},
	}})
	s, _ := e.Start(e.DB, sched.Config{})
	r := e.Wait(s, e.Trigger(e.DB, w), 30*time.Second)
	if r.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success", r.Status, r.Error)
	}
	flaky := e.Tasks(r)[0]
	if flaky.Status != model.TaskSuccess || flaky.Attempt != 3 || len(flaky.Attempts) != 3 {
		t.Fatalf("flaky = %s attempt %d with %d attempts on record, want success in attempt 3 with 3", flaky.Status, flaky.Attempt, len(flaky.Attempts))
	}
	for i, a := range flaky.Attempts {
		want := model.TaskFailed
		if i == 2 {
			want = model.TaskSuccess
		}
		if a.Attempt != i+1 || a.Status != want || a.Log == "" || a.StartedAt == nil || a.FinishedAt == nil {
			t.Errorf("attempt record %d = %+v, want attempt %d %s with its log and times", i, a, i+1, want)
		}
	}
	if gap := flaky.Attempts[1].StartedAt.Sub(*flaky.Attempts[0].FinishedAt); gap < 80*time.Millisecond {
		t.Errorf("retry came %s after the failure, want at least the backoff less its jitter (80ms)", gap)
	}
}

// A run created through another handle is served at once, long before the
// poll interval: the backend's change notifications wake the scheduler.
func testTriggerWakes(t *testing.T, e *Env) {
	if _, ok := e.DB.(model.Notifier); !ok {
		t.Skip("the backend does not implement model.Notifier")
	}
	e.Script("ok.sh", "exit 0")
	w := e.Workflow(&model.Workflow{Name: "ok", JobName: "ok.sh", TaskCount: 1})
	s, _ := e.Start(e.DB, sched.Config{PollInterval: time.Hour})
	time.Sleep(300 * time.Millisecond) // let the scheduler go to sleep
	other := e.Open(t)
	start := time.Now()
	r := e.Wait(s, e.Trigger(other, w), 10*time.Second)
	if r.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", r.Status, r.Error)
	}
	t.Logf("served in %s", time.Since(start))
}

// A cancel requested through another handle stops the running tasks and
// cancels the rest.
func testCancel(t *testing.T, e *Env) {
	pids := e.T.TempDir()
	e.Script("long.sh", fmt.Sprintf(`echo $$ > %s/$ORK_TASK_INDEX; exec sleep 300`, pids))
	w := e.Workflow(&model.Workflow{Name: "long", JobName: "long.sh", TaskCount: 4})
	s, _ := e.Start(e.DB, sched.Config{MaxRunningTasks: 2, PollInterval: time.Hour})
	r := e.Trigger(e.DB, w)
	waitUntil(t, 10*time.Second, "two tasks run", func() bool {
		ents, _ := os.ReadDir(pids)
		return len(ents) == 2
	})
	if err := e.Open(t).RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	got := e.Wait(s, r, 20*time.Second)
	if got.Status != model.RunCancelled {
		t.Fatalf("run = %s %q, want cancelled", got.Status, got.Error)
	}
	for _, task := range e.Tasks(r) {
		if task.Status != model.TaskCancelled {
			t.Errorf("task %d = %s after the cancel, want cancelled", task.TaskIndex, task.Status)
		}
	}
}

// Tasks a dead scheduler left running are run again at once by the next
// scheduler, on a new handle, as new attempts (the cut one recorded
// interrupted); a task it left dispatched but never started is not charged
// an attempt: it runs as its first.
func testRecovery(t *testing.T, e *Env) {
	e.Script("ok.sh", "exit 0")
	w := e.Workflow(&model.Workflow{Name: "ok", JobName: "ok.sh", TaskCount: 2})
	ctx := context.Background()
	r := e.Trigger(e.DB, w)
	ts := model.NewTasks(r, time.Now())
	if err := e.DB.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	// As a crashed scheduler leaves them: task 0 running, task 1 dispatched.
	for _, us := range [][]model.TaskUpdate{
		{{TaskID: ts[0].ID, RunID: r.ID, Status: model.TaskDispatched}, {TaskID: ts[1].ID, RunID: r.ID, Status: model.TaskDispatched}},
		{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskRunning}},
	} {
		if _, err := e.DB.UpdateTasks(ctx, us); err != nil {
			t.Fatal(err)
		}
	}
	e.DB.Close()
	e.DB = e.Open(t)
	start := time.Now()
	s, _ := e.Start(e.DB, sched.Config{PollInterval: time.Hour})
	got := e.Wait(s, r, 20*time.Second)
	if time.Since(start) > 10*time.Second {
		t.Fatalf("recovery took %s: it must not wait for a timeout", time.Since(start))
	}
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success", got.Status, got.Error)
	}
	for _, task := range e.Tasks(r) {
		switch task.TaskIndex {
		case 0:
			if task.Status != model.TaskSuccess || task.Attempt != 2 || len(task.Attempts) != 2 || task.Attempts[0].Status != model.AttemptInterrupted {
				t.Errorf("task 0 = %s attempt %d, attempts %+v; want success in attempt 2 after the interrupted one", task.Status, task.Attempt, task.Attempts)
			}
		case 1:
			if task.Status != model.TaskSuccess || task.Attempt != 1 || len(task.Attempts) != 1 {
				t.Errorf("task 1 = %s attempt %d, %d on record; want success in attempt 1: it never started before the crash", task.Status, task.Attempt, len(task.Attempts))
			}
		}
	}
}

// A scheduler stopped while tasks run puts them back in the queue; the
// next one, on a new handle, runs them to the end.
func testShutdownRestart(t *testing.T, e *Env) {
	started := e.T.TempDir()
	e.Script("slow.sh", fmt.Sprintf(`touch %s/$ORK_TASK_INDEX.$ORK_ATTEMPT; [ "$ORK_ATTEMPT" = 1 ] && exec sleep 300; exit 0`, started))
	w := e.Workflow(&model.Workflow{Name: "slow", JobName: "slow.sh", TaskCount: 2})
	_, stop := e.Start(e.DB, sched.Config{ShutdownGrace: -1})
	r := e.Trigger(e.DB, w)
	waitUntil(t, 10*time.Second, "both tasks start", func() bool {
		ents, _ := os.ReadDir(started)
		return len(ents) == 2
	})
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, task := range e.Tasks(r) {
		if task.Status != model.TaskPending {
			t.Fatalf("task %d = %s after shutdown, want pending (back in the queue)", task.TaskIndex, task.Status)
		}
	}
	s2, _ := e.Start(e.Open(t), sched.Config{})
	got := e.Wait(s2, r, 20*time.Second)
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q, want success", got.Status, got.Error)
	}
}

// A second scheduler on the same store, through another handle, is
// refused with a *model.LockedError while the first runs.
func testOneScheduler(t *testing.T, e *Env) {
	if _, ok := e.DB.(model.SchedulerLocker); !ok {
		t.Skip("the backend does not implement model.SchedulerLocker")
	}
	if _, ok := e.DB.(model.Cluster); ok {
		t.Skip("the backend is a model.Cluster: several schedulers may serve it (SeveralSchedulers)")
	}
	s, _ := e.Start(e.DB, sched.Config{})
	e.Script("ok.sh", "exit 0")
	w := e.Workflow(&model.Workflow{Name: "ok", JobName: "ok.sh", TaskCount: 1})
	e.Wait(s, e.Trigger(e.DB, w), 10*time.Second) // the first one is running
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.New(e.Open(t), sched.Config{}).Run(ctx)
	var le *model.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second scheduler: err = %v, want a LockedError", err)
	}
}
