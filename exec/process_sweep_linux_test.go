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

// TestSweepKillsOrphans is the crash Sweep is for: a scheduler died, the
// parent-death signal killed its script, and the script's child lives on.
// A new executor over the same log directory (named another way, through a
// symbolic link) finds the child and kills it.
func TestSweepKillsOrphans(t *testing.T) {
	root := t.TempDir()
	scripts := filepath.Join(root, "scripts")
	writeFile(t, filepath.Join(scripts, "orphaner.sh"), "#!/bin/sh\n"+orphanScript+"\n", 0o755)
	if err := os.Symlink(root, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}

	// The dead scheduler's executor.
	updates := make(chan StatusUpdate, 16)
	dead := NewProcessExecutor(ProcessConfig{ScriptDir: scripts, LogDir: filepath.Join(root, "logs"), Updates: updates, KillGrace: -1})
	t.Cleanup(func() { dead.Shutdown(context.Background()) })
	script, child := startOrphaner(t, dead, filepath.Join(root, "child.pid"), "orphaned-task")

	// The parent-death signal, as it would be: the script alone dies.
	if err := syscall.Kill(script, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, script, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	if gone(child) {
		t.Fatalf("the child %d died with its script: nothing is left to sweep", child)
	}

	e := NewProcessExecutor(ProcessConfig{ScriptDir: scripts, LogDir: filepath.Join(root, "link", "logs"), Updates: make(chan StatusUpdate, 1)})
	start := time.Now()
	n, err := e.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n < 1 {
		t.Errorf("Sweep = %d, want at least 1 (the orphaned child %d)", n, child)
	}
	if !gone(child) {
		t.Errorf("the orphaned child %d still runs after Sweep returned", child)
	}
	t.Logf("Sweep killed %d process(es) in %v", n, time.Since(start))

	// A second sweep finds nothing.
	if n, err := e.Sweep(context.Background()); n != 0 || err != nil {
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
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), env}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	// The executor's own task: the script and its child carry our entry.
	script, child := startOrphaner(t, f.e, filepath.Join(t.TempDir(), "child.pid"), "own-task")
	pids = append(pids, script, child)

	n, err := f.e.Sweep(context.Background())
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
	if n, err := f.e.Sweep(context.Background()); n != 0 || err != nil {
		t.Errorf("Sweep = %d, %v; want 0, nil", n, err)
	}
	e := NewProcessExecutor(ProcessConfig{ScriptDir: f.scripts, Updates: make(chan StatusUpdate, 1)})
	if n, err := e.Sweep(context.Background()); n != 0 || err != nil {
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
	if n, err := f.e.Sweep(context.Background()); n != 0 || err != nil {
		t.Errorf("Sweep = %d, %v; want 0, nil", n, err)
	}
}
