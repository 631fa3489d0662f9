package sched_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

func intp(n int) *int { return &n }

func durp(d time.Duration) *model.Duration { v := model.Duration(d); return &v }

// A failing task is retried as new attempts after a growing backoff; every
// attempt is on record.
func TestRetriesWithBackoff(t *testing.T) {
	e := newEnv(t)
	// Fails in attempts 1 and 2, succeeds in 3.
	e.script("flaky.sh", `[ "$ORK_ATTEMPT" -ge 3 ] && exit 0; echo "attempt $ORK_ATTEMPT fails"; exit 2`)
	e.script("never.sh", `exit 5`)
	w := e.dagWorkflow("retry", map[string]*model.TaskSpec{
		"flaky": {JobName: "flaky.sh", Retries: intp(2), RetryBackoff: durp(100 * time.Millisecond)},
		"never": {JobName: "never.sh", Retries: intp(1), RetryBackoff: durp(10 * time.Millisecond)},
	})
	s, _ := e.start(e.db, sched.Config{})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunFailed || !strings.Contains(r.Error, "never[0]") || strings.Contains(r.Error, "flaky") {
		t.Fatalf("run = %s %q, want failed because of never only", r.Status, r.Error)
	}
	tasks := byName(e.tasks(r))
	flaky := tasks["flaky"][0]
	if flaky.Status != model.TaskSuccess || flaky.Attempt != 3 || len(flaky.Attempts) != 3 {
		t.Fatalf("flaky = %s attempt %d with %d attempts on record, want success in attempt 3 with 3", flaky.Status, flaky.Attempt, len(flaky.Attempts))
	}
	for i, a := range flaky.Attempts {
		want := model.TaskFailed
		if i == 2 {
			want = model.TaskSuccess
		}
		if a.Attempt != i+1 || a.Status != want || a.Log == "" {
			t.Errorf("attempt record %d = %+v, want attempt %d %s with its log", i, a, i+1, want)
		}
		if i < 2 && (a.ExitCode == nil || *a.ExitCode != 2) {
			t.Errorf("attempt %d exit code = %v, want 2", i+1, a.ExitCode)
		}
	}
	// The backoff doubles: >= 80ms before attempt 2 and >= 160ms before 3
	// (the base, with up to 20% jitter off).
	for i, min := range []time.Duration{80 * time.Millisecond, 160 * time.Millisecond} {
		gap := flaky.Attempts[i+1].StartedAt.Sub(*flaky.Attempts[i].FinishedAt)
		if gap < min {
			t.Errorf("retry %d came %s after the failure, want at least %s", i+1, gap, min)
		}
	}
	if log, err := os.ReadFile(flaky.Attempts[0].Log); err != nil || !strings.Contains(string(log), "attempt 1 fails") {
		t.Errorf("log of attempt 1 = %q, %v", log, err)
	}
	never := tasks["never"][0]
	if never.Status != model.TaskFailed || never.Attempt != 2 || len(never.Attempts) != 2 {
		t.Fatalf("never = %s attempt %d, %d on record; want failed after 2 attempts", never.Status, never.Attempt, len(never.Attempts))
	}
}

// A task over its timeout has its whole process group stopped and fails
// "timed out"; nothing of it is left running.
func TestTimeoutStopsTheProcessGroup(t *testing.T) {
	e := newEnv(t)
	pids := t.TempDir()
	e.script("hang.sh", fmt.Sprintf(`sleep 300 & echo $! > %[1]s/child; echo $$ > %[1]s/script; wait`, pids))
	w := e.dagWorkflow("slow", map[string]*model.TaskSpec{
		"hang": {JobName: "hang.sh", Timeout: durp(300 * time.Millisecond)},
	})
	s, _ := e.start(e.db, sched.Config{})
	start := time.Now()
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunFailed {
		t.Fatalf("run = %s", r.Status)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the timeout took %s to act", d)
	}
	task := e.tasks(r)[0]
	if task.Status != model.TaskFailed || task.Error != "timed out after 300ms" {
		t.Fatalf("task = %s %q, want failed: timed out after 300ms", task.Status, task.Error)
	}
	for _, f := range []string{"script", "child"} {
		b, _ := os.ReadFile(filepath.Join(pids, f))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 {
			t.Fatalf("no pid for the %s", f)
		}
		waitUntil(t, 10*time.Second, "the "+f+" is gone", func() bool { return gone(pid) })
	}
}

// gone reports whether a process has exited (a zombie counts as gone).
func gone(pid int) bool {
	if syscallKill0(pid) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// A scheduler that is stopping — waiting, in its shutdown grace, for its
// running tasks — still applies a cancel another process requests: the
// tasks stop at once rather than at the end of the grace, and the run ends
// cancelled, with no request left behind to cancel a later retry.
func TestStoppingSchedulerAppliesCancel(t *testing.T) {
	e := newEnv(t)
	pids := t.TempDir()
	e.script("long.sh", fmt.Sprintf(`echo $$ > %s/$ORK_TASK_INDEX; exec sleep 300`, pids))
	w := e.workflow("long", "long.sh", 2)
	s, stop := e.start(e.db, sched.Config{})
	r := e.trigger(e.db, w)
	waitUntil(t, 10*time.Second, "two tasks run", func() bool {
		ents, _ := os.ReadDir(pids)
		return len(ents) == 2
	})
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitUntil(t, 10*time.Second, "the scheduler waits for its tasks", func() bool {
		return strings.Contains(e.logs.String(), "stopping: waiting for running tasks")
	})
	other := e.open()
	if err := other.RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	got := e.wait(s, r)
	if got.Status != model.RunCancelled {
		t.Fatalf("run = %s %q, want cancelled by the stopping scheduler", got.Status, got.Error)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if ids, err := other.CancelRequests(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("cancel requests left = %v, %v; want none", ids, err)
	}
}

// A cancel requested by another process stops the run's running tasks,
// cancels the rest, and ends the run cancelled.
func TestCancelFromAnotherProcess(t *testing.T) {
	e := newEnv(t)
	pids := t.TempDir()
	e.script("long.sh", fmt.Sprintf(`echo $$ > %s/$ORK_TASK_INDEX; exec sleep 300`, pids))
	w := e.workflow("long", "long.sh", 6)
	s, _ := e.start(e.db, sched.Config{MaxRunningTasks: 2})
	r := e.trigger(e.db, w)
	waitUntil(t, 10*time.Second, "two tasks run", func() bool {
		ents, _ := os.ReadDir(pids)
		return len(ents) == 2
	})
	if err := e.open().RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	got := e.wait(s, r)
	if got.Status != model.RunCancelled {
		t.Fatalf("run = %s %q, want cancelled", got.Status, got.Error)
	}
	ents, _ := os.ReadDir(pids)
	for _, ent := range ents {
		b, _ := os.ReadFile(filepath.Join(pids, ent.Name()))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		waitUntil(t, 10*time.Second, "task "+ent.Name()+" is stopped", func() bool { return gone(pid) })
	}
	if len(ents) != 2 {
		t.Errorf("%d tasks started, want only the 2 that ran before the cancel", len(ents))
	}
	for _, task := range e.tasks(r) {
		if task.Status != model.TaskCancelled {
			t.Errorf("task %d = %s after the cancel", task.TaskIndex, task.Status)
		}
	}
	// A cancel of a run that ended is a no-op.
	if err := e.db.RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
}

// max_parallel bounds a fan-out's tasks running at once, whatever the
// global limit.
func TestMaxParallel(t *testing.T) {
	e := newEnv(t)
	spy := e.concurrencySpy("busy.sh")
	w := e.dagWorkflow("fan", map[string]*model.TaskSpec{
		"busy": {JobName: "busy.sh", TaskCount: 6, MaxParallel: 2},
	})
	s, _ := e.start(e.db, sched.Config{MaxRunningTasks: 8})
	if r := e.wait(s, e.trigger(e.db, w)); r.Status != model.RunSuccess {
		t.Fatalf("run = %s", r.Status)
	}
	if n, most := spy(); n != 6 || most > 2 {
		t.Fatalf("spy saw %d task starts, at most %d at once; want 6, at most 2 (max_parallel 2)", n, most)
	}
}

// max_active_runs keeps extra runs of a workflow waiting, pending.
func TestMaxActiveRuns(t *testing.T) {
	e := newEnv(t)
	e.script("nap.sh", "sleep 0.2")
	w := &model.Workflow{Name: "one", JobName: "nap.sh", MaxActiveRuns: 1}
	if err := e.db.CreateWorkflow(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	s, _ := e.start(e.db, sched.Config{})
	var runs []*model.Run
	for range 3 {
		runs = append(runs, e.trigger(e.db, w))
	}
	var ends []*model.Run
	for _, r := range runs {
		got := e.wait(s, r)
		if got.Status != model.RunSuccess {
			t.Fatalf("run = %s", got.Status)
		}
		ends = append(ends, got)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].StartedAt.Before(*ends[j].StartedAt) })
	for i := 1; i < len(ends); i++ {
		if ends[i].StartedAt.Before(*ends[i-1].FinishedAt) {
			t.Fatalf("run %d started at %s, before run %d finished at %s: two runs were active", i, ends[i].StartedAt, i-1, ends[i-1].FinishedAt)
		}
	}
}

// raceDB holds back the cancel requests it reports until a task's exit
// has been sent by its executor: the loop then learns of the cancel with
// the task's exit already reported.
type raceDB struct {
	model.Database
	exitSent <-chan struct{}
}

func (r *raceDB) CancelRequests(ctx context.Context) ([]string, error) {
	ids, err := r.Database.CancelRequests(ctx)
	if len(ids) > 0 {
		select {
		case <-r.exitSent:
		case <-time.After(10 * time.Second):
		}
	}
	return ids, err
}

func (r *raceDB) Changes() <-chan struct{} { return r.Database.(model.Notifier).Changes() }

// A cancel that races a task's end: the task's script completed, and its
// executor reported it, before the scheduler applied the cancel; so the
// task is recorded as it ended (success), not cancelled. The other task,
// running then, is cancelled.
func TestCancelAfterExitKeepsTheExit(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.script("done.sh", fmt.Sprintf(`[ "$ORK_TASK_INDEX" = 0 ] || exec sleep 30
touch %[1]s/started
while [ ! -f %[1]s/go ]; do sleep 0.01; done`, dir))
	w := e.workflow("race", "done.sh", 2)

	// The executor reports through a relay that tells when task 0's end
	// has been passed on to the scheduler's channel.
	fromExec := make(chan exec.StatusUpdate, 16)
	toSched := make(chan exec.StatusUpdate, 16)
	exitSent := make(chan struct{})
	go func() {
		for u := range fromExec {
			toSched <- u
			if u.Status.Terminal() && strings.HasSuffix(u.Log, "done.sh.0.1.log") {
				close(exitSent)
			}
		}
	}()
	mgr := exec.NewManager(toSched)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: e.scripts, LogDir: e.taskLogDir(), Updates: fromExec, KillGrace: 500 * time.Millisecond,
	}))
	s := sched.New(&raceDB{Database: e.db, exitSent: exitSent}, mgr, sched.Config{MaxRunningTasks: 2, Logger: e.logger()})
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	t.Cleanup(func() { stop(); <-ran })

	r := e.trigger(e.db, w)
	waitUntil(t, 10*time.Second, "task 0 to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, "started"))
		return err == nil
	})
	if err := e.open().RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := e.wait(s, r)
	if got.Status != model.RunCancelled {
		t.Errorf("run = %s, want cancelled (task 1 was cancelled)", got.Status)
	}
	ts := e.tasks(r)
	if len(ts) != 2 {
		t.Fatalf("%d tasks, want 2", len(ts))
	}
	if ts[0].Status != model.TaskSuccess || ts[0].ExitCode == nil || *ts[0].ExitCode != 0 {
		t.Errorf("task 0, whose script completed before the cancel was applied = %s %q, want success", ts[0].Status, ts[0].Error)
	}
	if ts[1].Status != model.TaskCancelled {
		t.Errorf("task 1 = %s, want cancelled", ts[1].Status)
	}
}

// A WaitRun that ends before its run does takes its wake-up channels
// back: a long wait, or many short ones, leave none behind.
func TestWaitRunLeavesNoWaiter(t *testing.T) {
	e := newEnv(t)
	e.script("long.sh", "exec sleep 300")
	s, _ := e.start(e.db, sched.Config{})
	r := e.trigger(e.db, e.workflow("long", "long.sh", 1))
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if _, err := s.WaitRun(ctx, r.ID); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitRun of a run that goes on = %v, want the deadline", err)
		}
		cancel()
	}
	if n := s.Waiters(r.ID); n != 0 {
		t.Fatalf("%d wake-up channels left for run %s after its waits ended, want none", n, r.ID)
	}
	if err := e.db.RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	e.wait(s, r)
}
