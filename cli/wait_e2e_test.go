//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bgWait is an `ork trigger NAME --wait` in the background of a test.
type bgWait struct {
	cmd    *osexec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

func startWait(t *testing.T, dir, name string) *bgWait {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w := &bgWait{out: &syncBuffer{}, exited: make(chan struct{})}
	w.cmd = orkCmd(ctx, dir, "trigger", name, "--wait")
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); cancel(); close(w.exited) }()
	t.Cleanup(func() { w.cmd.Process.Kill(); <-w.exited })
	return w
}

// wait waits for the command to end and fails the test unless it exits 0.
func (w *bgWait) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-w.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: still waiting after 60s:\n%s", what, w.out.String())
	}
	if w.err != nil {
		t.Errorf("%s: %v\n%s", what, w.err, w.out.String())
	}
}

// starts counts the "start" lines of attempt file p.
func starts(p string) int {
	data, _ := os.ReadFile(p)
	return strings.Count(string(data), "start")
}

// TestTwoTriggerWaits runs two `ork trigger --wait` on one directory with
// no `ork run`: the first runs a scheduler in its process, and the second
// waits on it. The first run ends while the second's task still runs: the
// first process must not stop that task (it would run again under the
// next scheduler): it waits for it to end, then exits.
func TestTwoTriggerWaits(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	marks := t.TempDir()
	attempts := filepath.Join(marks, "long-attempts")
	// short ends once long has started; long takes 1.5s.
	writeScript(t, dir, "short.sh", fmt.Sprintf("#!/bin/sh\nwhile [ ! -s %s ]; do sleep 0.01; done\n", attempts))
	writeScript(t, dir, "long.sh", fmt.Sprintf("#!/bin/sh\necho \"start $ORK_ATTEMPT\" >> %[1]s\nsleep 1.5\necho \"end $ORK_ATTEMPT\" >> %[1]s\n", attempts))
	mustRun(t, dir, "create-workflow", "--name", "short", "--job-name", "short.sh")
	mustRun(t, dir, "create-workflow", "--name", "long", "--job-name", "long.sh")

	first := startWait(t, dir, "short")
	waitFor(t, 10*time.Second, "the first --wait to run a scheduler", func() bool {
		b, _ := os.ReadFile(schedulerLockPath(dir))
		return strings.HasPrefix(string(b), fmt.Sprintf("pid %d ", first.cmd.Process.Pid))
	})
	second := startWait(t, dir, "long")
	first.wait(t, "trigger short --wait")
	if !strings.Contains(first.out.String(), "waiting for tasks of other runs") {
		t.Errorf("trigger short --wait ended without waiting for the task of the other run:\n%s", first.out.String())
	}
	second.wait(t, "trigger long --wait")
	if n := starts(attempts); n != 1 {
		t.Errorf("the long task started %d times, want once:\n%s", n, readFile(t, attempts))
	}
	for _, name := range []string{"short", "long"} {
		out, _ := mustRun(t, dir, "status", "--workflow", name, "--json")
		var runs []jsonRun
		decodeJSON(t, "status --json", out, &runs)
		if len(runs) != 1 || runs[0].Status != "success" {
			t.Errorf("runs of %s: %+v, want one, success", name, runs)
			continue
		}
		ts := taskRecords(t, dir, runs[0].ID)
		if len(ts) != 1 || ts[0].Status != "success" || ts[0].Attempt != 1 || len(ts[0].Attempts) != 1 {
			t.Errorf("tasks of %s: %+v, want one, success in its only attempt", name, ts)
		}
	}
}

// TestTriggerWaitTakesOverFromKilledRun kills `ork run` (SIGKILL) while an
// `ork trigger --wait` waits on it: the --wait process takes over with a
// scheduler of its own, which recovers the interrupted task, and the run
// succeeds.
func TestTriggerWaitTakesOverFromKilledRun(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	marks := t.TempDir()
	attempts := filepath.Join(marks, "attempts")
	writeScript(t, dir, "step.sh", fmt.Sprintf("#!/bin/sh\necho \"start $ORK_TASK_INDEX $ORK_ATTEMPT\" >> %[1]s\nsleep 0.5\necho \"end $ORK_TASK_INDEX $ORK_ATTEMPT\" >> %[1]s\n", attempts))
	mustRun(t, dir, "create-workflow", "--name", "steps", "--job-name", "step.sh", "--task-count", "2")
	s := startSchedulerLocked(t, dir, "--max-running-tasks", "1")
	w := startWait(t, dir, "steps")
	waitFor(t, 10*time.Second, "a task to start under ork run", func() bool { return starts(attempts) > 0 })
	s.kill9(t)
	w.wait(t, "trigger steps --wait after ork run was killed")
	id := runID(t, strings.Split(w.out.String(), "\n")[0]+"\n")
	if r := runStatus(t, dir, id); r.Status != "success" {
		t.Fatalf("run %s: %q (%q), want success", id, r.Status, r.Error)
	}
	ts := taskRecords(t, dir, id)
	interrupted := 0
	for _, tk := range ts {
		if tk.Status != "success" {
			t.Errorf("task %d: %+v, want success", tk.TaskIndex, tk)
		}
		for _, a := range tk.Attempts[:len(tk.Attempts)-1] {
			if a.Status != "interrupted" || !strings.HasPrefix(a.Error, "scheduler died") {
				t.Errorf("task %d: attempt %+v, want interrupted by the dead scheduler", tk.TaskIndex, a)
			}
			interrupted++
		}
	}
	if interrupted != 1 {
		t.Errorf("%d attempts interrupted, want 1 (the task running when ork run was killed):\n%s", interrupted, readFile(t, attempts))
	}
	var ee *osexec.ExitError
	if errors.As(w.err, &ee) {
		t.Errorf("trigger --wait: %v", w.err)
	}
}

// TestTaskProcessesEndWithTask checks the rule of README's "What a task
// sees": what a task's script started — in its process group (sleep &) or
// in a session of its own (setsid) — ends when the task ends, here with
// success; and a later scheduler has nothing left to sweep.
func TestTaskProcessesEndWithTask(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	pids := t.TempDir()
	writeScript(t, dir, "daemons.sh", fmt.Sprintf(`#!/bin/sh
sleep 120 &
echo $! > %[1]s/group.pid
setsid sh -c 'echo $$ > %[1]s/setsid.tmp; mv %[1]s/setsid.tmp %[1]s/setsid.pid; exec sleep 120' &
while [ ! -f %[1]s/setsid.pid ]; do sleep 0.01; done
`, pids))
	mustRun(t, dir, "create-workflow", "--name", "daemons", "--job-name", "daemons.sh")
	s := startSchedulerLocked(t, dir)
	out, _ := mustRun(t, dir, "trigger", "daemons")
	id := runID(t, out)
	if r := lcWaitRun(t, dir, id, 20*time.Second, s); r.Status != "success" {
		t.Fatalf("run %s: %q, want success", id, r.Status)
	}
	for _, name := range []string{"group.pid", "setsid.pid"} {
		pid := crashReadPid(filepath.Join(pids, name))
		if pid == 0 {
			t.Fatalf("no pid in %s", name)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		waitFor(t, 3*time.Second, "the "+name+" process of the ended task to end", func() bool { return crashProcGone(pid) })
	}
	s.stop(t)
	next := startSchedulerLocked(t, dir)
	next.stop(t)
	if strings.Contains(next.output(), "stopped processes") {
		t.Errorf("a scheduler started after the task ended swept processes:\n%s", next.output())
	}
}

// TestTriggerWaitInterrupted interrupts (SIGINT) an `ork trigger --wait`
// that runs the scheduler: it stops the running task, puts it back in the
// queue (its attempt recorded interrupted) and exits 130.
func TestTriggerWaitInterrupted(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	marks := t.TempDir()
	writeScript(t, dir, "long.sh", fmt.Sprintf("#!/bin/sh\necho $$ > %s/pid.tmp; mv %[1]s/pid.tmp %[1]s/pid\nexec sleep 60\n", marks))
	mustRun(t, dir, "create-workflow", "--name", "long", "--job-name", "long.sh")
	w := startWait(t, dir, "long")
	var pid int
	waitFor(t, 10*time.Second, "the task to start", func() bool {
		pid = crashReadPid(filepath.Join(marks, "pid"))
		return pid != 0
	})
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("trigger --wait still running 15s after SIGINT:\n%s", w.out.String())
	}
	var ee *osexec.ExitError
	if !errors.As(w.err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("trigger --wait after SIGINT: %v, want exit 130\n%s", w.err, w.out.String())
	}
	if !crashProcGone(pid) {
		t.Errorf("the task's process %d still runs after the interrupted --wait exited", pid)
	}
	id := runID(t, strings.Split(w.out.String(), "\n")[0]+"\n")
	ts := taskRecords(t, dir, id)
	if len(ts) != 1 || ts[0].Status != "pending" || len(ts[0].Attempts) != 1 || ts[0].Attempts[0].Status != "interrupted" {
		t.Errorf("task after the interrupt: %+v, want pending, its attempt 1 interrupted", ts)
	}
}
