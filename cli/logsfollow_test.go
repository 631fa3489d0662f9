//go:build linux

package cli

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// followFixture is a file database with a run of the workflow fan (n tasks
// of fan.sh), running, and the scheduler's handle on it: the tests play
// the scheduler and the task, and follow with a handle of their own, as
// `ork logs --follow` does.
type followFixture struct {
	dir   string
	db    *filedb.DB
	r     *model.Run
	tasks []*model.Task
}

func newFollowFixture(t *testing.T, n int, createTasks bool) *followFixture {
	t.Helper()
	return newFollowFixtureOf(t, "fan.sh", n, createTasks)
}

// newFollowFixtureOf is newFollowFixture with tasks of job.
func newFollowFixtureOf(t *testing.T, job string, n int, createTasks bool) *followFixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &model.Workflow{Name: "fan", JobName: job, TaskCount: n}
	w.Normalize()
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	tasks := model.NewTasks(r, time.Now())
	if createTasks {
		if err := db.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	return &followFixture{dir: dir, db: db, r: r, tasks: tasks}
}

func (fx *followFixture) logDir() string { return filepath.Join(fx.dir, filedb.LogsDir) }

// update applies task updates as the scheduler would.
func (fx *followFixture) update(t *testing.T, us ...model.TaskUpdate) {
	t.Helper()
	for i := range us {
		us[i].RunID, us[i].At = fx.r.ID, time.Now()
	}
	if _, err := fx.db.UpdateTasks(context.Background(), us); err != nil {
		t.Fatal(err)
	}
}

// start dispatches and starts attempt n of task i.
func (fx *followFixture) start(t *testing.T, i, n int) {
	t.Helper()
	id := fx.tasks[i].ID
	fx.update(t,
		model.TaskUpdate{TaskID: id, Attempt: n, Status: model.TaskDispatched, ExecutionName: "x"},
		model.TaskUpdate{TaskID: id, Attempt: n, Status: model.TaskRunning})
}

// write appends text to the log of attempt n of task i, as the task would.
func (fx *followFixture) write(t *testing.T, i, n int, text string) {
	t.Helper()
	p, err := exec.LogPath(fx.logDir(), fx.r.ID, fx.tasks[i].Name, i, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// follow runs followLog of task i on db until ctx ends or the task does.
func (fx *followFixture) follow(ctx context.Context, db model.Database, i, only int) (*syncBuffer, <-chan error) {
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- followLog(ctx, out, db, fx.logDir(), fx.r, fx.tasks[i], only) }()
	return out, done
}

// reader opens a handle of its own on the fixture's directory.
func (fx *followFixture) reader(t *testing.T) *filedb.DB {
	t.Helper()
	db, err := filedb.Open(fx.dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitOutput waits until out is want, and fails the test if it is not
// within a deadline far beyond any wake-up.
func waitOutput(t *testing.T, out *syncBuffer, done <-chan error, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for out.String() != want {
		select {
		case err := <-done:
			t.Fatalf("follow returned (%v) with %q, want %q and on", err, out.String(), want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("follow shows %q, want %q: what the task wrote did not wake it", out.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEnd waits for follow to return, and fails the test if it does not
// within a deadline far beyond any wake-up.
func waitEnd(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("follow did not return: the end of its task did not wake it")
	}
}

// noTicks sets the safety net and the poll of followLog to an hour for the
// test: what it shows within the test was woken by a watch.
func noTicks(t *testing.T) {
	oldTick, oldPoll := followTick, followPoll
	followTick, followPoll = time.Hour, time.Hour
	t.Cleanup(func() { followTick, followPoll = oldTick, oldPoll })
}

// TestFollowWakesOnTheLogAndTheTask: `ork logs --follow` shows each line
// the task writes, and ends when the task ends, woken by the watches of
// the log's directory and of the run alone: its tick is an hour. It goes
// on to a retried attempt after the separator, and loses nothing written
// just before the end. The log's directory is made after it began.
func TestFollowWakesOnTheLogAndTheTask(t *testing.T) {
	noTicks(t)
	// A task name with a '/' puts the logs in a directory of their own,
	// made with the first of them.
	for _, job := range []string{"fan.sh", "sub/dir/fan.sh"} {
		t.Run(strings.ReplaceAll(job, "/", "_"), func(t *testing.T) { testFollowWakes(t, job) })
	}
}

func testFollowWakes(t *testing.T, job string) {
	fx := newFollowFixtureOf(t, job, 3, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := fx.follow(ctx, fx.reader(t), 1, 0)

	fx.start(t, 1, 1)
	fx.write(t, 1, 1, "one\n")
	waitOutput(t, out, done, "one\n")
	fx.write(t, 1, 1, "two\n")
	waitOutput(t, out, done, "one\ntwo\n")

	// Retried: attempt 2, with a log of its own.
	retry := time.Now()
	fx.update(t, model.TaskUpdate{TaskID: fx.tasks[1].ID, Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed", Error: "exit status 1", RetryAt: &retry})
	fx.start(t, 1, 2)
	fx.write(t, 1, 2, "three\n")
	waitOutput(t, out, done, "one\ntwo\n--- attempt 2 ---\nthree\n")

	fx.write(t, 1, 2, "four\n")
	fx.update(t, model.TaskUpdate{TaskID: fx.tasks[1].ID, Attempt: 2, Status: model.TaskSuccess, ExitCode: new(int)})
	waitEnd(t, done)
	if got, want := out.String(), "one\ntwo\n--- attempt 2 ---\nthree\nfour\n"; got != want {
		t.Errorf("follow showed %q, want %q", got, want)
	}
}

// countingDB is a file database handle that counts the listings of a
// run's tasks and the reads of one task.
type countingDB struct {
	*filedb.DB
	lists, gets atomic.Int64
}

func (c *countingDB) ListTasks(ctx context.Context, runID string) ([]*model.Task, error) {
	c.lists.Add(1)
	return c.DB.ListTasks(ctx, runID)
}

func (c *countingDB) GetTask(ctx context.Context, runID, name string, index int) (*model.Task, error) {
	c.gets.Add(1)
	return c.DB.GetTask(ctx, runID, name, index)
}

// TestFollowReadsOnlyItsTask: following one task of a fan-out never lists
// the run's tasks (on the file database, one read per task), though the
// other tasks change all the while and wake it.
func TestFollowReadsOnlyItsTask(t *testing.T) {
	fx := newFollowFixture(t, 50, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := &countingDB{DB: fx.reader(t)}
	out, done := fx.follow(ctx, db, 7, 0)
	for i := range 10 {
		if i == 7 {
			continue
		}
		fx.start(t, i, 1)
		fx.update(t, model.TaskUpdate{TaskID: fx.tasks[i].ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: new(int)})
	}
	fx.start(t, 7, 1)
	fx.write(t, 7, 1, "seven\n")
	waitOutput(t, out, done, "seven\n")
	fx.update(t, model.TaskUpdate{TaskID: fx.tasks[7].ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: new(int)})
	waitEnd(t, done)
	if n := db.lists.Load(); n != 0 {
		t.Errorf("follow listed the run's tasks %d times; want it to read its task alone", n)
	}
	if n := db.gets.Load(); n < 2 {
		t.Errorf("follow read its task %d times; want at least at its start and its end", n)
	}
}

// TestFollowWithoutWatches: on a database that can neither read one task
// nor watch (only model.Database), follow lists the run's tasks at its
// poll, as before; a task never created in a run that ended is cancelled,
// and ends the follow.
func TestFollowWithoutWatches(t *testing.T) {
	oldPoll := followPoll
	followPoll = 20 * time.Millisecond
	t.Cleanup(func() { followPoll = oldPoll })
	for _, c := range []struct {
		name string
		db   func(*filedb.DB) model.Database
	}{
		{"Plain", func(d *filedb.DB) model.Database { return struct{ model.Database }{d} }},
		{"FileDB", func(d *filedb.DB) model.Database { return d }},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFollowFixture(t, 3, true)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out, done := fx.follow(ctx, c.db(fx.reader(t)), 2, 0)
			fx.start(t, 2, 1)
			fx.write(t, 2, 1, "two\n")
			waitOutput(t, out, done, "two\n")
			fx.write(t, 2, 1, "done\n")
			fx.update(t, model.TaskUpdate{TaskID: fx.tasks[2].ID, Attempt: 1, Status: model.TaskFailed, Error: "exit status 1"})
			waitEnd(t, done)
			if got := out.String(); got != "two\ndone\n" {
				t.Errorf("follow showed %q, want %q", got, "two\ndone\n")
			}

			// A run that ends before its tasks are made.
			fx = newFollowFixture(t, 3, false)
			out, done = fx.follow(ctx, c.db(fx.reader(t)), 1, 0)
			if err := fx.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: fx.r.ID, Status: model.RunCancelled, At: time.Now()}}); err != nil {
				t.Fatal(err)
			}
			waitEnd(t, done)
			if got := out.String(); got != "" {
				t.Errorf("follow of a task never made showed %q", got)
			}
		})
	}
}

// TestFollowStopsWithItsContext: an interrupt ends follow at once, its
// watches with it: no goroutine is left behind.
func TestFollowStopsWithItsContext(t *testing.T) {
	noTicks(t)
	fx := newFollowFixture(t, 3, true)
	fx.start(t, 0, 1)
	before := runtime.NumGoroutine()
	reader, err := filedb.Open(fx.dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out, done := fx.follow(ctx, reader, 0, 0)
	fx.write(t, 0, 1, "zero\n")
	waitOutput(t, out, done, "zero\n")
	cancel()
	waitEnd(t, done)
	reader.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after follow ended, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
