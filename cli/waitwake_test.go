//go:build linux

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// triggerWaitInProcess runs `ork trigger NAME --wait` in this process, with
// the tick of waitRun set to an hour: it returns only if something tells
// the wait that the run ended. It fails the test if that takes longer than
// within.
func triggerWaitInProcess(t *testing.T, dir, name string, within time.Duration, flags ...string) string {
	t.Helper()
	oldTick, oldPoll := waitTick, localPoll
	waitTick, localPoll = time.Hour, time.Hour
	defer func() { waitTick, localPoll = oldTick, oldPoll }()
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		app := newApp(&out, &errb)
		args := append(append([]string{"ork", "--dir", filepath.Join(dir, ".ork")}, flags...), "trigger", name, "--wait")
		done <- app.RunContext(ctx, interspersed(app, args))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ork trigger %s --wait: %v\n%s", name, err, errb.String())
		}
	case <-time.After(within):
		cancel()
		<-done
		t.Fatalf("ork trigger %s --wait did not return within %v of its start, though its run had ended: it waited for its tick\nstdout: %s\nstderr: %s", name, within, out.String(), errb.String())
	}
	return strings.TrimSpace(out.String())
}

// TestTriggerWaitWakesWhenItsSchedulerEndsTheRun: with no `ork run`, the
// scheduler that `ork trigger --wait` runs in its process tells the wait
// the moment the run ends; the wait does not look again at its next tick.
func TestTriggerWaitWakesWhenItsSchedulerEndsTheRun(t *testing.T) {
	dir := newProject(t)
	writeScript(t, dir, "quick.sh", "#!/bin/sh\nexit 0\n")
	mustRun(t, dir, "create-workflow", "--name", "quick", "--job-name", "quick.sh", "--task-count", "2")
	id := triggerWaitInProcess(t, dir, "quick", 30*time.Second)
	data, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", id+".json"))
	if err != nil || !strings.Contains(string(data), `"status": "success"`) {
		t.Fatalf("run %s is not recorded a success (%v):\n%s", id, err, data)
	}
}

// TestTriggerWaitWakesWhenAnotherSchedulerEndsTheRun: under a running `ork
// run` (another process), `ork trigger --wait` learns that its run ended
// from the run's record being written, not from its next tick.
func TestTriggerWaitWakesWhenAnotherSchedulerEndsTheRun(t *testing.T) {
	dir := newProject(t)
	writeScript(t, dir, "quick.sh", "#!/bin/sh\nexit 0\n")
	mustRun(t, dir, "create-workflow", "--name", "quick", "--job-name", "quick.sh", "--task-count", "2")
	sched := startSchedulerLocked(t, dir)
	defer sched.stop(t)
	for range 3 {
		id := triggerWaitInProcess(t, dir, "quick", 30*time.Second)
		data, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", id+".json"))
		if err != nil || !strings.Contains(string(data), `"status": "success"`) {
			t.Fatalf("run %s is not recorded a success (%v):\n%s", id, err, data)
		}
	}
}

// TestTriggerWaitUnderRunReadsNoOtherRun: waiting on another process's
// scheduler, `ork trigger --wait` watches its own run's record; it reads
// none of the other runs (a watch of every run read them all, and
// reported a damaged one on the waiting command's terminal).
func TestTriggerWaitUnderRunReadsNoOtherRun(t *testing.T) {
	dir := newProject(t)
	writeScript(t, dir, "quick.sh", "#!/bin/sh\nexit 0\n")
	mustRun(t, dir, "create-workflow", "--name", "quick", "--job-name", "quick.sh")
	damaged := "0badf11e-0000-4000-8000-000000000000"
	writeFile(t, filepath.Join(dir, ".ork", "runs", damaged+".json"), "{\"id\": \""+damaged+"\", \"status\": \"runn", 0o644)
	sched := startSchedulerLocked(t, dir)
	defer sched.stop(t)
	stdout, stderr, code := run(t, dir, "trigger", "quick", "--wait")
	if code != 0 {
		t.Fatalf("ork trigger --wait exited %d:\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, damaged) {
		t.Errorf("ork trigger --wait read another run's file, and reported it:\n%s", stderr)
	}
}

// TestCancelWakesWhenTheSchedulerAppliesIt: `ork cancel` under a running
// `ork run` learns that the run was cancelled from the watch of the run's
// record, not from its next look (an hour here).
func TestCancelWakesWhenTheSchedulerAppliesIt(t *testing.T) {
	dir := newProject(t)
	writeScript(t, dir, "long.sh", "#!/bin/sh\nsleep 30\n")
	mustRun(t, dir, "create-workflow", "--name", "long", "--job-name", "long.sh")
	sched := startSchedulerLocked(t, dir)
	defer sched.stop(t)
	trig, _ := mustRun(t, dir, "trigger", "long")
	id := strings.TrimSpace(trig)
	waitFor(t, 20*time.Second, "the task runs", func() bool {
		out, _ := mustRun(t, dir, "tasks", id)
		return strings.Contains(out, "running")
	})
	old := cancelPoll
	cancelPoll = time.Hour
	defer func() { cancelPoll = old }()
	var out, errb bytes.Buffer
	start := time.Now()
	app := newApp(&out, &errb)
	if err := app.Run(interspersed(app, []string{"ork", "--dir", filepath.Join(dir, ".ork"), "cancel", id})); err != nil {
		t.Fatalf("ork cancel: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "run "+id+" cancelled") {
		t.Errorf("ork cancel took %v and printed %q; want the run cancelled, told by the watch of its record", time.Since(start).Round(time.Millisecond), out.String())
	}
}

// A scheduler killed after `ork cancel` asked it, before it applied the
// request (here it was stopped, SIGSTOP, then killed): the command does
// not wait out its 30s for a scheduler that is gone, nor name an empty
// one — it cancels the run itself, as with no scheduler running.
func TestCancelWhenTheSchedulerDiesBeforeApplyingIt(t *testing.T) {
	dir := newProject(t)
	pids := t.TempDir()
	writeScript(t, dir, "long.sh", "#!/bin/sh\necho $$ > "+pids+"/pid\nexec sleep 30\n")
	mustRun(t, dir, "create-workflow", "--name", "long", "--job-name", "long.sh")
	s := startSchedulerLocked(t, dir)
	trig, _ := mustRun(t, dir, "trigger", "long")
	id := strings.TrimSpace(trig)
	waitFor(t, 20*time.Second, "the task runs", func() bool {
		out, _ := mustRun(t, dir, "tasks", id)
		return strings.Contains(out, "running")
	})
	t.Cleanup(func() { // the task's process, which the killed scheduler left
		if b, err := os.ReadFile(filepath.Join(pids, "pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if err := syscall.Kill(s.pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() {
		app := newApp(&out, &errb)
		done <- app.Run(interspersed(app, []string{"ork", "--dir", filepath.Join(dir, ".ork"), "cancel", id}))
	}()
	waitFor(t, 10*time.Second, "the cancel is requested", func() bool {
		_, err := os.Stat(filepath.Join(dir, ".ork", "runs", id+".cancel"))
		return err == nil
	})
	s.kill9(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ork cancel: %v\n%s", err, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("ork cancel still waits 20s after its scheduler was killed")
	}
	if !strings.Contains(out.String(), "run "+id+" cancelled") {
		t.Errorf("ork cancel printed %q; want the run cancelled", out.String())
	}
	if got, _ := mustRun(t, dir, "status", id); !strings.Contains(got, "cancelled") {
		t.Errorf("ork status after the cancel:\n%s", got)
	}
}
