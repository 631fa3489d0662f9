//go:build linux

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// configLine waits until the scheduler has logged its settings and returns
// them (the config="..." of its "scheduler started" line) and its log
// settings.
func configLine(t *testing.T, s *bgScheduler) string {
	t.Helper()
	var cfg string
	waitFor(t, 10*time.Second, "ork run to log its settings", func() bool {
		out := s.output()
		i := strings.Index(out, `config="`)
		if i < 0 {
			return false
		}
		rest := out[i+len(`config="`):]
		cfg = rest[:strings.IndexByte(rest, '"')]
		return true
	})
	return cfg
}

// jsonTaskRecord is a task record as `ork tasks --json` prints it, with
// its attempts.
func taskRecords(t *testing.T, dir, id string) []crashTask {
	t.Helper()
	out, _ := mustRun(t, dir, "tasks", id, "--json")
	var ts []crashTask
	decodeJSON(t, "tasks --json", out, &ts)
	return ts
}

// TestRunDefaults runs `ork run` with no flag and no ORK_* variable: the
// settings it logs are the documented defaults, and they act: a SIGTERM
// waits for a task of 1.5s (the grace is 10s) rather than cutting it short,
// and a log of 11 MiB is cut to its last 10 MiB.
func TestRunDefaults(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	marks := t.TempDir()
	writeScript(t, dir, "slow.sh", fmt.Sprintf("#!/bin/sh\ntouch %s/started\nsleep 1.5\n", marks))
	writeScript(t, dir, "loud.sh", "#!/bin/sh\nhead -c 11534336 /dev/zero | tr '\\0' x\n")
	mustRun(t, dir, "create-workflow", "--name", "slow", "--job-name", "slow.sh")
	mustRun(t, dir, "create-workflow", "--name", "loud", "--job-name", "loud.sh")
	s := startSchedulerLocked(t, dir)
	want := fmt.Sprintf("poll-interval=1s max-tasks-per-batch=100 max-concurrent-dispatches=10 max-concurrent-status-checks=50 max-running-tasks=%d lease=15s shutdown-grace=10s max-interruptions=5",
		4*runtime.NumCPU())
	if got := configLine(t, s); got != want {
		t.Errorf("ork run with no flags logs\n  %s\nwant\n  %s", got, want)
	}
	if !strings.Contains(s.output(), "max-log-size=10MiB") {
		t.Errorf("ork run with no flags does not log max-log-size=10MiB:\n%s", s.output())
	}

	out, _ := mustRun(t, dir, "trigger", "loud")
	loud := runID(t, out)
	lcWaitRun(t, dir, loud, 30*time.Second, s)
	ts := taskRecords(t, dir, loud)
	if len(ts) != 1 || ts[0].Status != "success" {
		t.Fatalf("loud: tasks %+v, want one success", ts)
	}
	st, err := os.Stat(filepath.Join(dir, ".ork", "logs", loud, "loud.sh.0.1.log"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 10<<20-1024 || st.Size() > 10<<20+200 {
		t.Errorf("the log of 11 MiB is %d bytes, want its last 10 MiB and a line saying what was cut", st.Size())
	}

	out, _ = mustRun(t, dir, "trigger", "slow")
	slow := runID(t, out)
	waitFor(t, 10*time.Second, "the slow task to start", func() bool {
		_, err := os.Stat(filepath.Join(marks, "started"))
		return err == nil
	})
	stopped := time.Now()
	s.stop(t)
	if d := time.Since(stopped); d < 500*time.Millisecond {
		t.Errorf("ork run stopped %s after SIGTERM: it did not wait for the running task", d)
	}
	ts = taskRecords(t, dir, slow)
	if len(ts) != 1 || ts[0].Status != "success" || ts[0].Attempt != 1 || len(ts[0].Attempts) != 1 {
		t.Errorf("slow after a stop with the default grace: %+v, want success in attempt 1, nothing interrupted", ts)
	}
}

// TestRunZeroFlags checks that 0 means 0: --shutdown-grace 0 stops a
// running task at once (it goes back to the queue, its attempt recorded
// interrupted), and with --max-interruptions 0 the first interruption of a
// task by a dying scheduler fails it. (A graceful stop does not count.)
func TestRunZeroFlags(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	marks := t.TempDir()
	writeScript(t, dir, "long.sh", fmt.Sprintf("#!/bin/sh\ntouch %s/$ORK_ATTEMPT\nexec sleep 60\n", marks))
	mustRun(t, dir, "create-workflow", "--name", "long", "--job-name", "long.sh")
	started := func(attempt int) func() bool {
		return func() bool {
			_, err := os.Stat(filepath.Join(marks, fmt.Sprint(attempt)))
			return err == nil
		}
	}
	zero := []string{"--shutdown-grace", "0", "--max-interruptions", "0"}

	s := startSchedulerLocked(t, dir, zero...)
	if got := configLine(t, s); !strings.HasSuffix(got, "shutdown-grace=0s max-interruptions=0") {
		t.Errorf("ork run %s logs %q, want shutdown-grace=0s max-interruptions=0", strings.Join(zero, " "), got)
	}
	out, _ := mustRun(t, dir, "trigger", "long")
	id := runID(t, out)
	waitFor(t, 10*time.Second, "attempt 1 to start", started(1))
	stopped := time.Now()
	s.stopWith(t, syscall.SIGTERM, 5*time.Second)
	if d := time.Since(stopped); d > 3*time.Second {
		t.Errorf("ork run --shutdown-grace 0 took %s to stop", d)
	}
	ts := taskRecords(t, dir, id)
	if len(ts) != 1 || ts[0].Status != "pending" || len(ts[0].Attempts) != 1 || ts[0].Attempts[0].Status != "interrupted" ||
		!strings.Contains(ts[0].Attempts[0].Error, "stopped by scheduler shutdown") {
		t.Fatalf("after a stop with --shutdown-grace 0: %+v, want pending, attempt 1 interrupted by the stop", ts)
	}

	s = startSchedulerLocked(t, dir, zero...)
	waitFor(t, 10*time.Second, "attempt 2 to start", started(2))
	s.kill9(t)
	s = startAfterCrash(t, dir, zero...)
	r := lcWaitRun(t, dir, id, 20*time.Second, s)
	if r.Status != "failed" {
		t.Errorf("run %s after a kill with --max-interruptions 0: %q, want failed", id, r.Status)
	}
	ts = taskRecords(t, dir, id)
	if len(ts) != 1 || ts[0].Status != "failed" || ts[0].Attempt != 2 || !strings.Contains(ts[0].Error, "more than max-interruptions (0)") {
		t.Errorf("task after a kill with --max-interruptions 0: %+v, want failed in attempt 2: more than max-interruptions (0)", ts)
	}
	s.stop(t)
}

// TestRunFlagsRefused checks that a setting with no meaning is refused
// with a message naming it, before anything runs; and that the old
// --crash-retries still works, as --max-interruptions, with a warning.
func TestRunFlagsRefused(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	for _, tt := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--max-interruptions", "-1"}, nil, "--max-interruptions (ORK_MAX_INTERRUPTIONS) is -1: must be 0"},
		{nil, []string{"ORK_MAX_INTERRUPTIONS=-2"}, "--max-interruptions (ORK_MAX_INTERRUPTIONS) is -2: must be 0"},
		{[]string{"--shutdown-grace", "-1s"}, nil, "--shutdown-grace (ORK_SHUTDOWN_GRACE) is -1s: must be 0"},
		{[]string{"--max-running-tasks", "0"}, nil, "--max-running-tasks (ORK_MAX_RUNNING_TASKS) is 0: must be 1 or more"},
		{[]string{"--max-tasks-per-batch", "0"}, nil, "--max-tasks-per-batch (ORK_MAX_TASKS_PER_BATCH) is 0: must be 1 or more"},
		{[]string{"--poll-interval", "0s"}, nil, "--poll-interval (ORK_POLL_INTERVAL) is 0s: must be more than 0"},
		{[]string{"--crash-retries", "1", "--max-interruptions", "2"}, nil, "give only --max-interruptions"},
		{[]string{"--lease", "0s"}, nil, "--lease (ORK_LEASE) is 0s: must be 100ms or more"},
		{nil, []string{"ORK_LEASE=50ms"}, "--lease (ORK_LEASE) is 50ms: must be 100ms or more"},
	} {
		_, stderr, code := runEnvWithin(t, 20*time.Second, dir, tt.env, append([]string{"run"}, tt.args...)...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("ork run %v (env %v): exit %d, stderr %q; want a refusal saying %q", tt.args, tt.env, code, stderr, tt.want)
		}
	}
	s := startSchedulerLocked(t, dir, "--crash-retries", "2")
	if got := configLine(t, s); !strings.HasSuffix(got, "max-interruptions=2") || !strings.Contains(s.output(), "deprecated") {
		t.Errorf("ork run --crash-retries 2 logs %q (deprecation noted: %v), want max-interruptions=2 and a deprecation warning",
			got, strings.Contains(s.output(), "deprecated"))
	}
	s.stop(t)
}
