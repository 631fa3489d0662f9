//go:build cloudrun

package cloudrun_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/exec/cloudrun"
	"github.com/ork-run/ork/exec/cloudrun/cloudruntest"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// childEnv, when set, makes the test binary a scheduler over the ork
// directory it names (see TestMain), for the tests that kill one.
const childEnv = "ORK_CLOUDRUN_TEST_SCHEDULER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childScheduler(dir))
	}
	os.Exit(m.Run())
}

// childScheduler runs a scheduler with the Cloud Run executor over dir
// until it is killed. Its endpoint and credentials come from the
// environment, as in ork itself.
func childScheduler(dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := filedb.Open(dir, filedb.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	updates := make(chan exec.StatusUpdate, 1024)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorCloudRun, cloudrun.New(cloudrun.Config{Updates: updates, PollInterval: 50 * time.Millisecond, Logger: log}))
	if err := sched.New(db, mgr, sched.Config{PollInterval: 50 * time.Millisecond, Logger: log}).Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// project is an ork directory on the file database with a scheduler
// running the Cloud Run executor.
type orkProject struct {
	t   testing.TB
	dir string
	db  *filedb.DB
	log *syncLog
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newProject(t testing.TB) *orkProject {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	p := &orkProject{t: t, dir: dir, log: &syncLog{}}
	db, err := filedb.Open(dir, filedb.Options{Logger: p.logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p.db = db
	return p
}

func (p *orkProject) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a scheduler with the default configuration and a Cloud Run
// executor polling every 20ms, until the test ends.
func (p *orkProject) start() (*sched.Scheduler, *cloudrun.Executor) {
	return p.startWith(sched.Config{Logger: p.logger()}, cloudrun.Config{PollInterval: 20 * time.Millisecond, Logger: p.logger()})
}

// startWith runs a scheduler configured by scfg with a Cloud Run executor
// configured by ccfg, until the test ends.
func (p *orkProject) startWith(scfg sched.Config, ccfg cloudrun.Config) (*sched.Scheduler, *cloudrun.Executor) {
	p.t.Helper()
	updates := make(chan exec.StatusUpdate, 4096)
	mgr := exec.NewManager(updates)
	ccfg.Updates = updates
	e := cloudrun.New(ccfg)
	mgr.Register(model.ExecutorCloudRun, e)
	s := sched.New(p.db, mgr, scfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	p.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				p.t.Errorf("scheduler: %v", err)
			}
		case <-time.After(30 * time.Second):
			p.t.Error("scheduler did not stop within 30s")
		}
	})
	return s, e
}

func (p *orkProject) workflow(w *model.Workflow) *model.Workflow {
	p.t.Helper()
	w.Normalize()
	if err := w.Validate(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.db.CreateWorkflow(context.Background(), w); err != nil {
		p.t.Fatal(err)
	}
	return w
}

func (p *orkProject) trigger(w *model.Workflow, params map[string]any) *model.Run {
	p.t.Helper()
	r := model.NewRun(w, params, "test", time.Now())
	if err := p.db.CreateRun(context.Background(), r); err != nil {
		p.t.Fatal(err)
	}
	return r
}

func (p *orkProject) wait(s *sched.Scheduler, r *model.Run) *model.Run {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := s.WaitRun(ctx, r.ID)
	if err != nil {
		p.t.Fatalf("waiting for run %s: %v\nlog:\n%s", r.ID, err, p.log)
	}
	return got
}

func (p *orkProject) tasks(r *model.Run) []*model.Task {
	p.t.Helper()
	ts, err := p.db.ListTasks(context.Background(), r.ID)
	if err != nil {
		p.t.Fatal(err)
	}
	return ts
}

// TestSchedulerRunsCloudRunWorkflow runs a DAG of Cloud Run jobs with the
// real scheduler on the file database: each task is one execution, whose
// name is recorded, with its index and its node's task count; the run
// succeeds.
func TestSchedulerRunsCloudRunWorkflow(t *testing.T) {
	fk := fake(t)
	fk.AddJob(project, region, "extract", cloudruntest.Job{Pending: 10 * time.Millisecond, Duration: 100 * time.Millisecond})
	fk.AddJob(project, region, "load", cloudruntest.Job{Duration: 50 * time.Millisecond})
	p := newProject(t)
	w := p.workflow(&model.Workflow{Name: "pipeline", ExecutorType: model.ExecutorCloudRun, Project: project, Region: region,
		Tasks: map[string]*model.TaskSpec{
			"extract": {JobName: "extract", TaskCount: 3},
			"load":    {JobName: "load", DependsOn: []string{"extract"}},
		}})
	s, e := p.start()
	r := p.wait(s, p.trigger(w, map[string]any{"day": "2026-11-27"}))
	if r.Status != model.RunSuccess {
		t.Fatalf("run %+v, want success\nlog:\n%s", r, p.log)
	}
	execs := map[string]cloudruntest.Execution{}
	for _, x := range fk.Executions() {
		execs[x.Name] = x
	}
	ts := p.tasks(r)
	if len(ts) != 4 || len(execs) != 4 {
		t.Fatalf("%d tasks and %d executions, want 4 and 4", len(ts), len(execs))
	}
	for _, task := range ts {
		x, ok := execs[task.ExecutionName]
		if task.Status != model.TaskSuccess || task.Attempt != 1 || !ok {
			t.Errorf("task %s: %+v, want success on attempt 1 with the name of its execution", task.Label(), task)
			continue
		}
		if x.Env["ORK_TASK_ID"] != task.ID || x.Env["ORK_TASK_INDEX"] != fmt.Sprint(task.TaskIndex) || x.Env["day"] != "2026-11-27" ||
			!strings.HasSuffix(x.Job, "/jobs/"+task.Name) {
			t.Errorf("task %s ran as %s with %v", task.Label(), x.Job, x.Env)
		}
	}
	// load ran after extract: its upstream outputs name extract (null
	// outputs: Cloud Run tasks report none).
	for _, x := range execs {
		if strings.HasSuffix(x.Job, "/load") && x.Env["ORK_UPSTREAM"] != `{"extract":[null,null,null]}` {
			t.Errorf("load's ORK_UPSTREAM = %q", x.Env["ORK_UPSTREAM"])
		}
	}
	if st := e.Stats(); st.StatusChecks == 0 {
		t.Error("no status checks counted")
	}
}

// TestSchedulerTimeoutCancelsExecution: a task that outlives its timeout is
// stopped through :cancel and recorded failed, timed out.
func TestSchedulerTimeoutCancelsExecution(t *testing.T) {
	fk := fake(t)
	fk.AddJob(project, region, "slow", cloudruntest.Job{Hold: true})
	p := newProject(t)
	w := p.workflow(&model.Workflow{Name: "slow", JobName: "slow", ExecutorType: model.ExecutorCloudRun,
		Project: project, Region: region, Timeout: model.Duration(300 * time.Millisecond)})
	s, _ := p.start()
	r := p.wait(s, p.trigger(w, nil))
	ts := p.tasks(r)
	if r.Status != model.RunFailed || len(ts) != 1 || ts[0].Status != model.TaskFailed || !strings.Contains(ts[0].Error, "timed out after 300ms") {
		t.Fatalf("run %s, tasks %+v: want failed, timed out after 300ms", r.Status, ts)
	}
	xs := fk.Executions()
	if c := fk.Counts(); c.Cancels != 1 || len(xs) != 1 || !xs[0].Cancelled || xs[0].Timeout != "0.3s" {
		t.Errorf("counts %+v, executions %+v: want the one execution cancelled, with the timeout 0.3s", c, xs)
	}
}

// TestSchedulerRestartAdoptsRunningExecutions kills a scheduler (a process,
// SIGKILL) while its Cloud Run executions run; a new scheduler on the same
// directory adopts them through Check and records how they end, without a
// second :run.
func TestSchedulerRestartAdoptsRunningExecutions(t *testing.T) {
	fk := fake(t)
	fk.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	p := newProject(t)
	w := p.workflow(&model.Workflow{Name: "export", JobName: "export", ExecutorType: model.ExecutorCloudRun,
		Project: project, Region: region, TaskCount: 2})
	r := p.trigger(w, nil)

	child := osexec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+p.dir)
	var childErr syncLog
	child.Stderr = &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			child.Process.Kill()
			child.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts := p.tasks(r)
		n := 0
		for _, task := range ts {
			if task.Status == model.TaskRunning && task.ExecutionName != "" {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first scheduler did not record 2 running executions in 30s: %+v\nits stderr:\n%s", ts, &childErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := child.Wait()
	killed = true
	var ee *osexec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("killed scheduler: %v", err)
	}
	before := map[string]string{}
	for _, task := range p.tasks(r) {
		before[task.ID] = task.ExecutionName
	}
	if c := fk.Counts(); c.Runs != 2 || c.Cancels != 0 {
		t.Fatalf("after the kill: counts %+v, want 2 executions started, none cancelled", c)
	}

	s, e := p.start()
	// Let the new scheduler find them running, then end them.
	for start := time.Now(); e.Stats().StatusChecks < 4; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the new scheduler did not look at the executions\nlog:\n%s", p.log)
		}
	}
	if c := fk.Counts(); c.Runs != 2 {
		t.Fatalf("%d :run calls after the restart, want the 2 of the first scheduler", c.Runs)
	}
	xs := fk.Executions()
	fk.Complete(xs[0].Name, "")
	fk.Complete(xs[1].Name, "")
	r = p.wait(s, r)
	if r.Status != model.RunSuccess {
		t.Fatalf("run %+v, want success\nlog:\n%s", r, p.log)
	}
	for _, task := range p.tasks(r) {
		if task.Status != model.TaskSuccess || task.Attempt != 1 || task.ExecutionName != before[task.ID] {
			t.Errorf("task %s: %+v, want success on attempt 1 as %s", task.Label(), task, before[task.ID])
		}
	}
	if c := fk.Counts(); c.Runs != 2 {
		t.Errorf("%d :run calls, want the 2 of the first scheduler: the second started executions again", c.Runs)
	}
	if !strings.Contains(p.log.String(), "adopted a running execution") {
		t.Errorf("the new scheduler did not adopt the executions\nlog:\n%s", p.log)
	}
}

// TestSchedulerCancelledRunCancelsExecutions: cancelling a run (ork cancel)
// cancels its running executions.
func TestSchedulerCancelledRunCancelsExecutions(t *testing.T) {
	fk := fake(t)
	fk.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	p := newProject(t)
	w := p.workflow(&model.Workflow{Name: "export", JobName: "export", ExecutorType: model.ExecutorCloudRun,
		Project: project, Region: region, TaskCount: 2})
	s, _ := p.start()
	r := p.trigger(w, nil)
	for start := time.Now(); fk.Counts().Runs < 2; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("2 executions not started in 30s\nlog:\n%s", p.log)
		}
	}
	if err := p.db.RequestCancel(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if r = p.wait(s, r); r.Status != model.RunCancelled {
		t.Fatalf("run %+v, want cancelled", r)
	}
	for start := time.Now(); fk.Counts().Cancels < 2; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("counts %+v: the executions of the cancelled run were not cancelled", fk.Counts())
		}
	}
	for _, x := range fk.Executions() {
		if !x.Cancelled {
			t.Errorf("execution %s not cancelled", x.Name)
		}
	}
}

// TestSchedulerStopCancelsExecutions: a scheduler that stops (ork run on
// SIGTERM, once its grace period is over) cancels the executions still
// running, since it puts their tasks back in the queue.
func TestSchedulerStopCancelsExecutions(t *testing.T) {
	fk := fake(t)
	fk.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	p := newProject(t)
	w := p.workflow(&model.Workflow{Name: "export", JobName: "export", ExecutorType: model.ExecutorCloudRun,
		Project: project, Region: region, TaskCount: 2})
	updates := make(chan exec.StatusUpdate, 64)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorCloudRun, cloudrun.New(cloudrun.Config{Updates: updates, PollInterval: 20 * time.Millisecond, Logger: p.logger()}))
	s := sched.New(p.db, mgr, sched.Config{Logger: p.logger(), ShutdownGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r := p.trigger(w, nil)
	for start := time.Now(); fk.Counts().Runs < 2; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("2 executions not started in 30s\nlog:\n%s", p.log)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scheduler did not stop in 30s")
	}
	if c := fk.Counts(); c.Cancels != 2 {
		t.Errorf("counts %+v: want both executions cancelled", c)
	}
	for _, task := range p.tasks(r) {
		if task.Status != model.TaskPending {
			t.Errorf("task %s is %s after the scheduler stopped, want pending (back in the queue)", task.Label(), task.Status)
		}
	}
}
