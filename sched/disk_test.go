//go:build linux

package sched_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// smallDisk mounts a 2 MiB tmpfs for the test (with opts added to its
// mount options). Where the test may not mount (not root) it skips — but
// fails under CI (CI=true), which runs as root so that these tests run.
func smallDisk(t *testing.T, opts ...string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "disk")
	os.MkdirAll(mnt, 0o755)
	data := strings.Join(append([]string{"size=2m"}, opts...), ",")
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, data); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a small disk (%v): CI must run the tests as root, so that the full-disk tests run", err)
		}
		t.Skipf("cannot mount a small disk here (%v): run as root to test a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// logFiles counts the task logs under dir: the executor creates an
// attempt's log just before it starts the process, so a new log is a
// start under way.
func logFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".log") {
			n++
		}
		return nil
	})
	return n
}

// noStartsWhile checks that no task starts for d while the disk refuses
// writes: no attempt's log is created under logDir meanwhile. refusal is
// what the scheduler logs when the disk refuses. The window counts only
// when the disk refused from before it (by a moment, for a start under way
// when the refusal came) to its end: a full disk has room for a moment
// whenever a write that was under way frees an older copy of its file, and
// the scheduler may then rightly start a task, and says so (writesBack).
// Such a window is tried again.
func noStartsWhile(t *testing.T, e *env, logDir, refusal string, d time.Duration) {
	t.Helper()
	writesBack := sched.WritesBack
	for try := 0; try < 20; try++ {
		logs := e.logs.String()
		if strings.LastIndex(logs, refusal) < strings.LastIndex(logs, writesBack) {
			time.Sleep(50 * time.Millisecond) // the disk has room at the moment
			continue
		}
		mark := len(logs)
		time.Sleep(100 * time.Millisecond)
		before := logFiles(logDir)
		time.Sleep(d)
		n := logFiles(logDir) - before
		if strings.Contains(e.logs.String()[mark:], writesBack) {
			continue // room came back within the window
		}
		if n > 0 {
			t.Errorf("%d tasks started in %s while the disk refused writes, want none", n, d)
		}
		return
	}
	t.Fatalf("the disk never refused writes for %s on end:\n%s", d, e.logs)
}

// keepFull keeps the disk of the file p full until the returned stop is
// called: it appends to p whenever there is room, so that space a write of
// the scheduler's frees (the older copy of the file it replaced) is taken
// at once.
func keepFull(t *testing.T, p string) (stop func()) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := f.Write(buf); err != nil {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			<-stopped
		})
	}
	t.Cleanup(stop)
	return stop
}

// fill writes a file until the disk is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	// Smaller writes to use up the last partial blocks.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	return p
}

// diskRun is a run under way on a small disk of its own (see smallDisk).
type diskRun struct {
	mnt    string // the disk's mount point; the database is mnt/.ork
	e      *env
	s      *sched.Scheduler
	r      *model.Run
	starts startLog
}

// startDiskRun makes a database on a small disk (the scripts stay off it),
// starts a scheduler over it running at most 2 tasks at a time, triggers
// a workflow of n tasks of 0.4s each (long enough that the running ones
// end while a test watches that nothing starts), and returns once 4 of them have
// succeeded.
func startDiskRun(t *testing.T, n int, logDir string) *diskRun {
	t.Helper()
	mnt := smallDisk(t)
	dir := filepath.Join(mnt, ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, scripts: filepath.Join(t.TempDir(), "scripts"), logDir: logDir, logs: &syncBuffer{}}
	os.MkdirAll(e.scripts, 0o755)
	e.db = e.open()
	starts := startLog(filepath.Join(t.TempDir(), "starts"))
	e.script("step.sh", "echo $ORK_TASK_INDEX >> "+string(starts)+"\nsleep 0.4")
	w := e.workflow("steps", "step.sh", n)
	s, _ := e.start(e.db, sched.Config{MaxRunningTasks: 2})
	r := e.trigger(e.db, w)
	waitUntil(t, 10*time.Second, "some tasks succeed", func() bool {
		c, _ := e.db.TaskCounts(context.Background(), r.ID)
		return c[model.TaskSuccess] >= 4
	})
	return &diskRun{mnt: mnt, e: e, s: s, r: r, starts: starts}
}

// A full disk stops progress, loses nothing, and the scheduler carries on
// when space returns.
func TestFullDiskLosesNothing(t *testing.T) {
	// Let some tasks finish, then fill the disk.
	d := startDiskRun(t, 16, "")
	e, s, r := d.e, d.s, d.r
	filler := fill(t, d.mnt)
	stopFilling := keepFull(t, filler)
	before, _ := e.db.TaskCounts(context.Background(), r.ID)
	waitUntil(t, 10*time.Second, "the scheduler reports the full disk", func() bool {
		return strings.Contains(e.logs.String(), "no space left on device")
	})
	noStartsWhile(t, e, e.taskLogDir(), "no space left on device", 400*time.Millisecond)
	if got, _ := e.db.GetRun(context.Background(), r.ID); got.Status.Terminal() {
		t.Fatalf("run ended while the disk was full: %s %q", got.Status, got.Error)
	}
	// Nothing recorded before is lost: every task that had succeeded still has.
	other := e.open()
	ts, err := other.ListTasks(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, task := range ts {
		if task.Status == model.TaskSuccess {
			ok++
		}
	}
	if ok < before[model.TaskSuccess] {
		t.Fatalf("%d tasks recorded success on disk, fewer than the %d before the disk filled", ok, before[model.TaskSuccess])
	}

	stopFilling()
	os.Remove(filler)
	got := e.wait(s, r)
	if got.Status != model.RunSuccess {
		t.Fatalf("run after space returned = %s %q\nlog:\n%s", got.Status, got.Error, e.logs)
	}
	if !strings.Contains(e.logs.String(), sched.WritesBack) {
		t.Errorf("the scheduler did not say that the disk accepts writes again:\n%s", e.logs)
	}
	for _, task := range e.tasks(r) {
		if task.Status != model.TaskSuccess {
			t.Errorf("task %d = %s %q", task.TaskIndex, task.Status, task.Error)
		}
	}
	// Every record on disk parses.
	filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			var v map[string]any
			if err := json.Unmarshal(mustReadFile(t, p), &v); err != nil {
				t.Errorf("%s does not parse after the full disk: %v", p, err)
			}
		}
		return nil
	})
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A disk that turns read-only under the scheduler: the same guarantees.
func TestReadOnlyDiskLosesNothing(t *testing.T) {
	// The tasks' logs live elsewhere here: a file system cannot turn
	// read-only while a running task has its log open for writing.
	d := startDiskRun(t, 12, t.TempDir())
	e, s, r, mnt := d.e, d.s, d.r, d.mnt
	// The remount waits for a moment when no file is open for writing
	// (between two of the scheduler's batches).
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if err = syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	waitUntil(t, 10*time.Second, "the scheduler reports the read-only disk", func() bool {
		return strings.Contains(e.logs.String(), "read-only file system")
	})
	noStartsWhile(t, e, e.taskLogDir(), "read-only file system", 400*time.Millisecond)
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}
	got := e.wait(s, r)
	if got.Status != model.RunSuccess {
		t.Fatalf("run after the disk came back = %s %q", got.Status, got.Error)
	}
	for _, task := range e.tasks(r) {
		if task.Status != model.TaskSuccess {
			t.Errorf("task %d = %s %q", task.TaskIndex, task.Status, task.Error)
		}
	}
}

// A task whose log cannot be created (its disk has no inode left) does not
// start and is not failed: it goes back to the queue with no attempt
// counted, nothing starts while the disk refuses, and the run succeeds
// once the disk has room again.
func TestLogDiskFullRequeuesTasks(t *testing.T) {
	logs := smallDisk(t, "nr_inodes=64")
	// Use up the inodes: nothing can be created on the disk.
	var fillers []string
	for i := 0; ; i++ {
		p := filepath.Join(logs, "filler"+strconv.Itoa(i))
		f, err := os.Create(p)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the inodes: %v", err)
			}
			break
		}
		f.Close()
		fillers = append(fillers, p)
	}
	e := newEnv(t)
	e.logDir = logs
	starts := startLog(filepath.Join(t.TempDir(), "starts"))
	e.script("step.sh", "echo $ORK_TASK_INDEX >> "+string(starts))
	w := e.workflow("steps", "step.sh", 3)
	s, _ := e.start(e.db, sched.Config{})
	r := e.trigger(e.db, w)
	waitUntil(t, 10*time.Second, "a task refused for want of room for its log", func() bool {
		return strings.Contains(e.logs.String(), "task could not start: the disk refuses writes")
	})
	noStartsWhile(t, e, logs, "task could not start: the disk refuses writes", 300*time.Millisecond)
	if n := starts.count(); n > 0 {
		t.Errorf("%d tasks started while their logs could not be created", n)
	}
	if got, _ := e.db.GetRun(context.Background(), r.ID); got.Status.Terminal() {
		t.Fatalf("run ended while its logs could not be written: %s %q", got.Status, got.Error)
	}
	for _, task := range e.tasks(r) {
		if task.Status.Terminal() || len(task.Attempts) > 0 || (task.Status == model.TaskPending && task.Attempt != 0) {
			t.Errorf("task %d = %s attempt %d (%d on record) while its log could not be written, want pending with no attempt counted",
				task.TaskIndex, task.Status, task.Attempt, len(task.Attempts))
		}
	}
	for _, p := range fillers {
		os.Remove(p)
	}
	got := e.wait(s, r)
	if got.Status != model.RunSuccess {
		t.Fatalf("run after room returned = %s %q", got.Status, got.Error)
	}
	for _, task := range e.tasks(r) {
		if task.Status != model.TaskSuccess || task.Attempt != 1 || len(task.Attempts) != 1 {
			t.Errorf("task %d = %s in attempt %d with %d on record, want success in attempt 1, its only one", task.TaskIndex, task.Status, task.Attempt, len(task.Attempts))
		}
	}
	if n := starts.count(); n != 3 {
		t.Errorf("%d task starts, want 3", n)
	}
}
