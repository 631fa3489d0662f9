package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// orphanScript starts a child in the background, writes its pid and waits
// for it: killed alone, the script leaves the child behind.
const orphanScript = "sleep 300 &\necho $! > \"$PIDFILE\"\nwait"

// startOrphaner runs orphanScript as task id under e, and returns the pids
// of the script and of its child. The child is killed when the test ends,
// whatever happens.
func startOrphaner(t *testing.T, e *ProcessExecutor, pidFile, id string) (script, child int) {
	t.Helper()
	tw := newTask("orphaner.sh", id, 0)
	tw.Task.Params = map[string]any{"PIDFILE": pidFile}
	name, err := e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	script = pidOf(t, name)
	child = readPid(t, pidFile)
	t.Cleanup(func() {
		syscall.Kill(child, syscall.SIGKILL)
		syscall.Kill(-script, syscall.SIGKILL)
	})
	return script, child
}

// leftover starts `sleep 300` as a process a dead scheduler's task left
// behind: with the task's environment, outside any process group of ours.
// It is killed when the test ends, whatever happens.
func leftover(t *testing.T, logKey, taskID string) int {
	t.Helper()
	cmd := osexec.Command("sleep", "300")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "ORK_LOG_DIR=" + logKey, "ORK_TASK_ID=" + taskID, "ORK_ATTEMPT=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestSweepKillsOrphans is the crash Sweep is for: a scheduler died, the
// parent-death signal killed its script, and the script's child lives on.
// A new executor over the same log directory (named another way, through a
// symbolic link) finds the child of the task recorded as unfinished and
// kills it; a leftover of a task not recorded as unfinished is not its
// business.
func TestSweepKillsOrphans(t *testing.T) {
	root := t.TempDir()
	scripts := filepath.Join(root, "scripts")
	if err := os.MkdirAll(filepath.Join(root, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	logKey := resolveDir(filepath.Join(root, "logs"))
	child := leftover(t, logKey, "orphaned-task")
	child2 := leftover(t, logKey, "ended-task")

	e := NewProcessExecutor(ProcessConfig{ScriptDir: scripts, LogDir: filepath.Join(root, "link", "logs"), Updates: make(chan StatusUpdate, 1)})
	unfinished := []model.TaskWithWorkflow{newTask("orphaner.sh", "orphaned-task", 0)}
	start := time.Now()
	n, err := e.Sweep(context.Background(), unfinished)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != 1 {
		t.Errorf("Sweep = %d, want 1 (the orphaned child %d)", n, child)
	}
	if !gone(child) {
		t.Errorf("the orphaned child %d still runs after Sweep returned", child)
	}
	if gone(child2) {
		t.Errorf("the child %d of a task not recorded as unfinished was killed", child2)
	}
	t.Logf("Sweep killed %d process(es) in %v", n, time.Since(start))

	// A second sweep finds nothing.
	if n, err := e.Sweep(context.Background(), unfinished); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v; want 0, nil", n, err)
	}
}

// TestSweepSparesOthers checks that Sweep kills nothing but leftovers of
// its own log directory: not processes of another project, not a near
// miss of the entry, and not the processes its own executor runs (the
// scripts and their children).
func TestSweepSparesOthers(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) { c.KillGrace = -1 })
	f.script(t, "orphaner.sh", orphanScript)
	if err := os.MkdirAll(f.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	ours := "ORK_LOG_DIR=" + f.e.logKey

	var pids []int
	for _, env := range []string{
		"ORK_LOG_DIR=" + t.TempDir(), // another project
		ours + "/sub",
		ours + "/",
		"X" + ours,
		"ORK_LOG_DIR=",
	} {
		cmd := osexec.Command("sleep", "300")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), env, "ORK_TASK_ID=own-task", "ORK_ATTEMPT=1"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	// The executor's own task: the script and its child carry our entry.
	script, child := startOrphaner(t, f.e, filepath.Join(t.TempDir(), "child.pid"), "own-task")
	pids = append(pids, script, child)

	n, err := f.e.Sweep(context.Background(), []model.TaskWithWorkflow{newTask("orphaner.sh", "own-task", 0)})
	if n != 0 || err != nil {
		t.Errorf("Sweep = %d, %v; want 0, nil", n, err)
	}
	for _, pid := range pids {
		if gone(pid) {
			t.Errorf("process %d was killed by Sweep", pid)
		}
	}
}

// TestSweepNothingToDo checks a sweep that finds nothing, and one of an
// executor without a log directory.
func TestSweepNothingToDo(t *testing.T) {
	f := newFixture(t, nil)
	unfinished := []model.TaskWithWorkflow{newTask("ok.sh", "some-task", 0)}
	if n, err := f.e.Sweep(context.Background(), unfinished); n != 0 || err != nil {
		t.Errorf("Sweep = %d, %v; want 0, nil", n, err)
	}
	e := NewProcessExecutor(ProcessConfig{ScriptDir: f.scripts, Updates: make(chan StatusUpdate, 1)})
	if n, err := e.Sweep(context.Background(), unfinished); n != 0 || err != nil {
		t.Errorf("Sweep without a log directory = %d, %v; want 0, nil", n, err)
	}
}

// TestSweepAfterRunsEnded checks that Sweep is not confused by tasks this
// executor ran and that have ended.
func TestSweepAfterRunsEnded(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "ok.sh", "exit 0")
	_, _, final := f.run(t, newTask("ok.sh", "done-task", 0))
	if final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	if n, err := f.e.Sweep(context.Background(), []model.TaskWithWorkflow{newTask("ok.sh", "done-task", 0)}); n != 0 || err != nil {
		t.Errorf("Sweep = %d, %v; want 0, nil", n, err)
	}
}
