package sched_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// Benchmarks of the scheduler on the file database (durable writes, as
// shipped), with an executor that runs nothing, so what is measured is the
// scheduler and the database. Compare two versions with benchstat:
//
//	go test -run '^$' -bench Scheduler -count 6 ./sched > old.txt
//	(change)
//	go test -run '^$' -bench Scheduler -count 6 ./sched > new.txt
//	benchstat old.txt new.txt

// benchNoopExecutor reports every attempt running, then successful, at
// once, from a goroutine.
type benchNoopExecutor struct {
	updates chan<- exec.StatusUpdate
	wg      sync.WaitGroup
}

func (e *benchNoopExecutor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	u := exec.StatusUpdate{TaskID: t.Task.ID, RunID: t.Task.RunID, Attempt: t.Task.Attempt, ExecutionName: "noop"}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		running, done := u, u
		running.Status, running.At = model.TaskRunning, time.Now()
		e.updates <- running
		code := 0
		done.Status, done.ExitCode, done.At = model.TaskSuccess, &code, time.Now()
		e.updates <- done
	}()
	return "noop", nil
}

func (e *benchNoopExecutor) Check(ctx context.Context, t model.TaskWithWorkflow) (exec.StatusUpdate, bool, error) {
	return exec.StatusUpdate{}, false, nil
}

func (e *benchNoopExecutor) Shutdown(ctx context.Context) error {
	e.wg.Wait()
	return nil
}

// benchScheduler starts a scheduler with default settings on a fresh file
// database and returns it with its database.
func benchScheduler(b *testing.B) (*sched.Scheduler, *filedb.DB) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), ".ork")
	if err := filedb.Init(dir); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := filedb.Open(dir, filedb.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	updates := make(chan exec.StatusUpdate, 4096)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, &benchNoopExecutor{updates: updates})
	s := sched.New(db, mgr, sched.Config{Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
		db.Close()
	})
	return s, db
}

func benchWorkflow(b *testing.B, db *filedb.DB, name string, tasks int) *model.Workflow {
	b.Helper()
	w := &model.Workflow{Name: name, JobName: "noop.sh", TaskCount: tasks}
	if err := db.CreateWorkflow(context.Background(), w); err != nil {
		b.Fatal(err)
	}
	return w
}

func benchWait(b *testing.B, s *sched.Scheduler, id string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := s.WaitRun(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	if r.Status != model.RunSuccess {
		b.Fatalf("run %s: %s %s", id, r.Status, r.Error)
	}
}

// benchTrigger returns a second handle on the scheduler's directory, as
// `ork trigger` in another process has.
func benchTrigger(b *testing.B, db *filedb.DB) *filedb.DB {
	b.Helper()
	other, err := filedb.Open(db.Dir(), filedb.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { other.Close() })
	return other
}

// BenchmarkSchedulerNoop puts b.N tasks, as one run, through the real
// scheduler: each is created, dispatched, reported running and successful,
// each change written durably. It reports tasks/s.
func BenchmarkSchedulerNoop(b *testing.B) {
	s, db := benchScheduler(b)
	w := benchWorkflow(b, db, "bulk", b.N)
	other := benchTrigger(b, db)
	b.ResetTimer()
	r := model.NewRun(w, nil, "bench", time.Now())
	if err := other.CreateRun(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	benchWait(b, s, r.ID)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkSchedulerRunLatency triggers b.N one-task runs one at a time,
// each from a second database handle (as `ork trigger` from another
// process), and waits for each to end: trigger, pick-up through fsnotify,
// dispatch, start, and the durable record of the run's end.
func BenchmarkSchedulerRunLatency(b *testing.B) {
	s, db := benchScheduler(b)
	w := benchWorkflow(b, db, "one", 1)
	other := benchTrigger(b, db)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := model.NewRun(w, nil, "bench", time.Now())
		if err := other.CreateRun(context.Background(), r); err != nil {
			b.Fatal(err)
		}
		benchWait(b, s, r.ID)
	}
}
