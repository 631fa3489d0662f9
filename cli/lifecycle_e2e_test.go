//go:build unix

// End-to-end tests of what a user needs the day a task misbehaves:
// retries, timeouts, cancel, `ork retry`, `ork logs`, the concurrency
// limits and `ork prune`, through the real binary and real processes.
//
// Scripts run in the script directory (scripts/ of the project), so they
// reach files of the project, such as pid files and spies, as ../NAME.

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lcAttempt is an attempt record of a task, as `ork tasks --json` shows it.
type lcAttempt struct {
	Attempt    int        `json:"attempt"`
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	ExitCode   *int       `json:"exit_code"`
	Error      string     `json:"error"`
	Log        string     `json:"log"`
}

// lcTask holds the fields of a task record the lifecycle tests look at.
type lcTask struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	TaskIndex  int             `json:"task_index"`
	Status     string          `json:"status"`
	Attempt    int             `json:"attempt"`
	ExitCode   *int            `json:"exit_code"`
	Error      string          `json:"error"`
	Output     json.RawMessage `json:"output"`
	Log        string          `json:"log"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	Attempts   []lcAttempt     `json:"attempts"`
}

func (tk lcTask) label() string { return fmt.Sprintf("%s[%d]", tk.Name, tk.TaskIndex) }

// lcRun holds the fields of a run record the lifecycle tests look at.
type lcRun struct {
	ID           string     `json:"id"`
	WorkflowName string     `json:"workflow_name"`
	Status       string     `json:"status"`
	Error        string     `json:"error"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
}

// lcTasks returns the tasks of run id as `ork tasks RUN --json` lists
// them, and the same tasks by label.
func lcTasks(t *testing.T, dir, id string) ([]lcTask, map[string]lcTask) {
	t.Helper()
	out, _ := mustRun(t, dir, "tasks", id, "--json")
	var ts []lcTask
	decodeJSON(t, "tasks "+id+" --json", out, &ts)
	by := make(map[string]lcTask, len(ts))
	for _, tk := range ts {
		by[tk.label()] = tk
	}
	return ts, by
}

func lcRunStatus(t *testing.T, dir, id string) lcRun {
	t.Helper()
	out, _ := mustRun(t, dir, "status", id, "--json")
	var r lcRun
	decodeJSON(t, "status "+id+" --json", out, &r)
	return r
}

// lcRuns returns every run, as `ork status --json --limit 0` lists them.
func lcRuns(t *testing.T, dir string) []lcRun {
	t.Helper()
	out, _ := mustRun(t, dir, "status", "--json", "--limit", "0")
	var rs []lcRun
	decodeJSON(t, "status --json", out, &rs)
	return rs
}

// lcWorkflow writes the workflow file .ork/workflows/NAME.json by hand.
func lcWorkflow(t *testing.T, dir, name, data string) {
	t.Helper()
	if !json.Valid([]byte(data)) {
		t.Fatalf("workflow %s: not JSON:\n%s", name, data)
	}
	writeFile(t, filepath.Join(dir, ".ork", "workflows", name+".json"), data, 0o644)
}

// lcTrigger triggers a workflow with --wait and returns the run id; it
// fails the test unless ork exits with wantExit.
func lcTrigger(t *testing.T, dir string, wantExit int, name string) string {
	t.Helper()
	stdout, stderr, code := run(t, dir, "trigger", name, "--wait")
	if code != wantExit {
		t.Fatalf("ork trigger %s --wait: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, code, wantExit, stdout, stderr)
	}
	return runID(t, stdout)
}

// lcGone reports whether process pid has ended. A zombie has ended: it
// runs nothing, only its parent's wait is missing.
func lcGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return false // no procfs: kill(2) says it is there
		}
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// lcPid reads the pid a script wrote to path, waiting a little for the
// write to be complete.
func lcPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, 5*time.Second, "a pid in "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// lcWaitGone waits until every process of pids has ended.
func lcWaitGone(t *testing.T, timeout time.Duration, what string, pids map[string]int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []string
		for name, pid := range pids {
			if !lcGone(pid) {
				alive = append(alive, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(alive)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL) // leave nothing behind
			}
			t.Fatalf("%s: still alive after %s: %v", what, timeout, alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lcWaitRun waits until run id has ended and returns it.
func lcWaitRun(t *testing.T, dir, id string, timeout time.Duration, s *bgScheduler) lcRun {
	t.Helper()
	var r lcRun
	waitFor(t, timeout, "run "+id+" to end", func() bool {
		if s != nil && s.done() {
			t.Fatalf("ork run exited (%v) before run %s ended:\n%s", s.err, id, s.output())
		}
		r = lcRunStatus(t, dir, id)
		return r.Status == "success" || r.Status == "failed" || r.Status == "cancelled"
	})
	return r
}

// lcMaxOverlap returns the largest number of the intervals [start, end)
// that hold at one instant.
func lcMaxOverlap(spans [][2]time.Time) int {
	most := 0
	for _, a := range spans {
		n := 0
		for _, b := range spans {
			if !b[0].After(a[0]) && b[1].After(a[0]) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// lcTaskSpans returns the running periods of the tasks.
func lcTaskSpans(t *testing.T, ts []lcTask) [][2]time.Time {
	t.Helper()
	var spans [][2]time.Time
	for _, tk := range ts {
		if tk.StartedAt == nil || tk.FinishedAt == nil {
			t.Fatalf("task %s (%s) has no start or end on record", tk.label(), tk.Status)
		}
		spans = append(spans, [2]time.Time{*tk.StartedAt, *tk.FinishedAt})
	}
	return spans
}

// ---- retries ----

// TestLifecycleRetries: a task failing twice then succeeding is retried
// after its backoff; every attempt is on record with its exit code and
// log, and `ork tasks` shows the attempts.
func TestLifecycleRetries(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "flaky.sh", `#!/bin/sh
echo "attempt $ORK_ATTEMPT"
[ "$ORK_ATTEMPT" -ge 3 ] && exit 0
exit 3
`)
	lcWorkflow(t, dir, "flaky", `{
  "job_name": "flaky.sh",
  "retries": 2,
  "retry_backoff": "100ms"
}`)
	id := lcTrigger(t, dir, 0, "flaky")
	if r := lcRunStatus(t, dir, id); r.Status != "success" {
		t.Fatalf("run: %+v, want success", r)
	}
	ts, _ := lcTasks(t, dir, id)
	if len(ts) != 1 {
		t.Fatalf("%d tasks, want 1", len(ts))
	}
	tk := ts[0]
	if tk.Status != "success" || tk.Attempt != 3 || tk.ExitCode == nil || *tk.ExitCode != 0 {
		t.Errorf("task: %s attempt %d exit %v, want success in attempt 3 with exit 0", tk.Status, tk.Attempt, tk.ExitCode)
	}
	if len(tk.Attempts) != 3 {
		t.Fatalf("task has %d attempt records, want 3: %+v", len(tk.Attempts), tk.Attempts)
	}
	for i, a := range tk.Attempts {
		status, exit := "failed", 3
		if i == 2 {
			status, exit = "success", 0
		}
		if a.Attempt != i+1 || a.Status != status || a.ExitCode == nil || *a.ExitCode != exit {
			t.Errorf("attempt record %d: %+v, want attempt %d %s with exit code %d", i, a, i+1, status, exit)
		}
		if a.StartedAt == nil || a.FinishedAt == nil || a.FinishedAt.Before(*a.StartedAt) {
			t.Errorf("attempt %d: start %v, end %v, want both, in order", i+1, a.StartedAt, a.FinishedAt)
		}
		if a.Log == "" {
			t.Errorf("attempt %d: no log path", i+1)
			continue
		}
		b, err := os.ReadFile(a.Log)
		if err != nil {
			t.Errorf("attempt %d: log %s: %v", i+1, a.Log, err)
		} else if want := fmt.Sprintf("attempt %d", i+1); strings.TrimSpace(string(b)) != want {
			t.Errorf("attempt %d: log %s holds %q, want %q", i+1, a.Log, b, want)
		}
	}
	if tk.Attempts[0].Log == tk.Attempts[1].Log || tk.Attempts[1].Log == tk.Attempts[2].Log {
		t.Errorf("attempts share a log file: %s, %s, %s", tk.Attempts[0].Log, tk.Attempts[1].Log, tk.Attempts[2].Log)
	}
	if tk.Log != tk.Attempts[2].Log {
		t.Errorf("task log %q, want the last attempt's %q", tk.Log, tk.Attempts[2].Log)
	}
	// The backoff: 100ms before the first retry (less up to 20% of jitter),
	// about twice that before the second.
	a := tk.Attempts
	if a[1].StartedAt != nil && a[0].FinishedAt != nil {
		if gap := a[1].StartedAt.Sub(*a[0].FinishedAt); gap < 80*time.Millisecond {
			t.Errorf("attempt 2 started %s after attempt 1 ended, want at least 80ms", gap)
		}
	}
	if a[2].StartedAt != nil && a[1].FinishedAt != nil {
		if gap := a[2].StartedAt.Sub(*a[1].FinishedAt); gap < 160*time.Millisecond {
			t.Errorf("attempt 3 started %s after attempt 2 ended, want at least 160ms (the backoff doubles)", gap)
		}
	}

	// The table: the task's row, then one row per attempt.
	out, _ := mustRun(t, dir, "tasks", id)
	lines := nonEmptyLines(out)
	if len(lines) != 5 {
		t.Fatalf("tasks %s: want a header, the task and 3 attempt rows, got:\n%s", id, out)
	}
	if f := strings.Fields(lines[1]); len(f) < 5 || f[0] != "flaky.sh" || f[2] != "success" || f[3] != "3" || f[4] != "0" {
		t.Errorf("tasks: task row %q, want flaky.sh, success, attempt 3, exit 0", lines[1])
	}
	for i, want := range [][]string{{"failed", "1", "3"}, {"failed", "2", "3"}, {"success", "3", "0"}} {
		f := strings.Fields(lines[2+i])
		if len(f) < 4 || f[0] != "└" || !slices.Equal(f[1:4], want) {
			t.Errorf("tasks: attempt row %d %q, want └ %s", i+1, lines[2+i], strings.Join(want, " "))
		}
	}
}

// TestLifecycleRetriesDAG: a task's own retries override the workflow's,
// both ways.
func TestLifecycleRetriesDAG(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "failonce.sh", "#!/bin/sh\necho \"attempt $ORK_ATTEMPT\"\n[ \"$ORK_ATTEMPT\" -ge 2 ] && exit 0\nexit 5\n")
	writeScript(t, dir, "fail.sh", "#!/bin/sh\necho \"attempt $ORK_ATTEMPT\"\nexit 6\n")
	lcWorkflow(t, dir, "more", `{
  "retries": 0,
  "tasks": {
    "once": {"job_name": "failonce.sh", "retries": 1}
  }
}`)
	lcWorkflow(t, dir, "fewer", `{
  "retries": 3,
  "retry_backoff": "10ms",
  "tasks": {
    "never":   {"job_name": "fail.sh", "retries": 0},
    "inherit": {"job_name": "failonce.sh"}
  }
}`)

	// retries 1 over the workflow's 0: a second attempt, which succeeds.
	id := lcTrigger(t, dir, 0, "more")
	_, by := lcTasks(t, dir, id)
	once := by["once[0]"]
	if once.Status != "success" || once.Attempt != 2 || len(once.Attempts) != 2 {
		t.Errorf("once[0]: %s in attempt %d with %d attempt records, want success in attempt 2 with 2", once.Status, once.Attempt, len(once.Attempts))
	} else if a := once.Attempts[0]; a.Status != "failed" || a.ExitCode == nil || *a.ExitCode != 5 {
		t.Errorf("once[0] attempt 1: %+v, want failed with exit code 5", a)
	}

	// retries 0 over the workflow's 3: one attempt, failed; the other task
	// keeps the workflow's 3.
	id = lcTrigger(t, dir, 1, "fewer")
	r := lcRunStatus(t, dir, id)
	if r.Status != "failed" || !strings.Contains(r.Error, "never[0]") || strings.Contains(r.Error, "inherit") {
		t.Errorf("run of fewer: %s %q, want failed because of never[0] only", r.Status, r.Error)
	}
	_, by = lcTasks(t, dir, id)
	never := by["never[0]"]
	if never.Status != "failed" || never.Attempt != 1 || len(never.Attempts) != 1 || never.ExitCode == nil || *never.ExitCode != 6 {
		t.Errorf("never[0]: %s in attempt %d, exit %v, %d attempt records; want failed after 1 attempt with exit 6", never.Status, never.Attempt, never.ExitCode, len(never.Attempts))
	}
	if strings.Contains(never.Error, "retrying") {
		t.Errorf("never[0]: error %q says it is retried", never.Error)
	}
	inherit := by["inherit[0]"]
	if inherit.Status != "success" || inherit.Attempt != 2 || len(inherit.Attempts) != 2 {
		t.Errorf("inherit[0]: %s in attempt %d with %d attempt records, want success in attempt 2 (the workflow's retries)", inherit.Status, inherit.Attempt, len(inherit.Attempts))
	}
}

// ---- timeouts ----

// lcHangScript backgrounds a sleep, then sleeps in the foreground in a
// process of its own, writing the three pids under ../pids, by attempt.
const lcHangScript = `#!/bin/sh
sleep 300 &
echo $! > ../pids/child.$ORK_ATTEMPT
echo $$ > ../pids/script.$ORK_ATTEMPT
sh -c 'echo $$ > ../pids/fg.'"$ORK_ATTEMPT"'; exec sleep 300'
`

// lcAttemptPids reads the pids lcHangScript wrote for attempt n.
func lcAttemptPids(t *testing.T, dir string, n int) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, p := range []string{"script", "child", "fg"} {
		path := filepath.Join(dir, "pids", fmt.Sprintf("%s.%d", p, n))
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("attempt %d wrote no %s pid: %v", n, p, err)
		}
		pids[fmt.Sprintf("%s of attempt %d", p, n)] = lcPid(t, path)
	}
	return pids
}

// TestLifecycleTimeout: a task over its timeout fails "timed out after
// 500ms", and nothing of its process group is left; with a retry, both
// attempts time out.
func TestLifecycleTimeout(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	if err := os.Mkdir(filepath.Join(dir, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, dir, "hang.sh", lcHangScript)
	lcWorkflow(t, dir, "hang", `{"tasks": {"hang": {"job_name": "hang.sh", "timeout": "500ms"}}}`)
	lcWorkflow(t, dir, "hang2", `{"tasks": {"hang": {"job_name": "hang.sh", "timeout": "500ms", "retries": 1}}}`)

	start := time.Now()
	id := lcTrigger(t, dir, 1, "hang")
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the timeout of 500ms took %s to end the run", d)
	}
	if r := lcRunStatus(t, dir, id); r.Status != "failed" || !strings.Contains(r.Error, "hang[0]") {
		t.Errorf("run: %s %q, want failed because of hang[0]", r.Status, r.Error)
	}
	_, by := lcTasks(t, dir, id)
	tk := by["hang[0]"]
	if tk.Status != "failed" || tk.Error != "timed out after 500ms" {
		t.Errorf("hang[0]: %s %q, want failed, \"timed out after 500ms\"", tk.Status, tk.Error)
	}
	if tk.StartedAt != nil && tk.FinishedAt != nil {
		if d := tk.FinishedAt.Sub(*tk.StartedAt); d < 450*time.Millisecond {
			t.Errorf("hang[0] ran %s, less than its timeout", d)
		}
	}
	lcWaitGone(t, 5*time.Second, "the processes of the timed-out task", lcAttemptPids(t, dir, 1))

	// With a retry: two attempts, both timed out, nothing left of either.
	if err := os.RemoveAll(filepath.Join(dir, "pids")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	id = lcTrigger(t, dir, 1, "hang2")
	_, by = lcTasks(t, dir, id)
	tk = by["hang[0]"]
	if tk.Status != "failed" || tk.Attempt != 2 || tk.Error != "timed out after 500ms" {
		t.Errorf("hang[0] with a retry: %s in attempt %d, %q; want failed in attempt 2, timed out after 500ms", tk.Status, tk.Attempt, tk.Error)
	}
	if len(tk.Attempts) != 2 {
		t.Errorf("hang[0] with a retry: %d attempt records, want 2: %+v", len(tk.Attempts), tk.Attempts)
	}
	for _, a := range tk.Attempts {
		if a.Status != "failed" || !strings.Contains(a.Error, "timed out after 500ms") {
			t.Errorf("attempt %d: %s %q, want failed, timed out after 500ms", a.Attempt, a.Status, a.Error)
		}
	}
	pids := lcAttemptPids(t, dir, 1)
	for k, v := range lcAttemptPids(t, dir, 2) {
		pids[k] = v
	}
	lcWaitGone(t, 5*time.Second, "the processes of the timed-out attempts", pids)
}

// TestLifecycleTimeoutStubbornChild: a process of the task that ignores
// SIGTERM gets SIGKILL after the grace period, even once the script
// itself has ended.
func TestLifecycleTimeoutStubbornChild(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	if err := os.Mkdir(filepath.Join(dir, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, dir, "stubborn.sh", `#!/bin/sh
sh -c 'trap "" TERM; echo $$ > ../pids/stubborn; exec sleep 300' &
echo $$ > ../pids/script
exec sleep 300
`)
	lcWorkflow(t, dir, "stubborn", `{"tasks": {"stubborn": {"job_name": "stubborn.sh", "timeout": "300ms"}}}`)
	s := startSchedulerLocked(t, dir)
	out, _ := mustRun(t, dir, "trigger", "stubborn")
	id := runID(t, out)
	pids := map[string]int{
		"script":                 lcPid(t, filepath.Join(dir, "pids", "script")),
		"child ignoring SIGTERM": lcPid(t, filepath.Join(dir, "pids", "stubborn")),
	}
	if r := lcWaitRun(t, dir, id, 15*time.Second, s); r.Status != "failed" {
		t.Errorf("run: %s, want failed", r.Status)
	}
	// The grace period is 5s.
	lcWaitGone(t, 10*time.Second, "the processes of the timed-out task", pids)
	s.stop(t)
}

// ---- cancel ----

// lcLongScript writes its pid to ../pids/INDEX and sleeps.
const lcLongScript = "#!/bin/sh\necho $$ > ../pids/$ORK_TASK_INDEX\nexec sleep 300\n"

// lcLongProject makes a project with an empty directory pids and the
// workflow long: 6 tasks of lcLongScript. It returns the project's
// directory and the pids directory.
func lcLongProject(t *testing.T) (dir, pidDir string) {
	t.Helper()
	dir = newProject(t)
	pidDir = filepath.Join(dir, "pids")
	if err := os.Mkdir(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, dir, "long.sh", lcLongScript)
	lcWorkflow(t, dir, "long", `{"job_name": "long.sh", "task_count": 6}`)
	return dir, pidDir
}

// TestLifecycleCancel: `ork cancel` from another process while `ork run`
// runs: the running tasks are stopped, the others never start, every task
// and the run end cancelled; a second cancel is a no-op.
func TestLifecycleCancel(t *testing.T) {
	t.Parallel()
	dir, pidDir := lcLongProject(t)
	s := startSchedulerLocked(t, dir, "--max-running-tasks", "2")

	out, _ := mustRun(t, dir, "trigger", "long")
	id := runID(t, out)
	waitFor(t, 15*time.Second, "two tasks to run", func() bool {
		ents, _ := os.ReadDir(pidDir)
		return len(ents) >= 2
	})
	pids := map[string]int{}
	ents, _ := os.ReadDir(pidDir)
	for _, e := range ents {
		pids["task "+e.Name()] = lcPid(t, filepath.Join(pidDir, e.Name()))
	}
	waitFor(t, 10*time.Second, "two tasks running on record", func() bool {
		ts, _ := lcTasks(t, dir, id)
		n := 0
		for _, tk := range ts {
			if tk.Status == "running" {
				n++
			}
		}
		return n == 2
	})

	stdout, stderr, code := runWithin(t, 40*time.Second, dir, "cancel", id)
	if code != 0 || !strings.Contains(stdout, "cancelled") {
		t.Fatalf("ork cancel %s: exit %d, stdout %q, stderr %q; want exit 0 saying cancelled", id, code, stdout, stderr)
	}
	if r := lcRunStatus(t, dir, id); r.Status != "cancelled" {
		t.Errorf("run after cancel: %+v, want cancelled", r)
	}
	lcWaitGone(t, 10*time.Second, "the tasks' processes after the cancel", pids)
	ts, _ := lcTasks(t, dir, id)
	if len(ts) != 6 {
		t.Errorf("%d tasks, want 6", len(ts))
	}
	for _, tk := range ts {
		if tk.Status != "cancelled" {
			t.Errorf("task %s: %s (%q), want cancelled", tk.label(), tk.Status, tk.Error)
		}
	}
	// Slots freed by the cancel start nothing of the run.
	time.Sleep(300 * time.Millisecond)
	if ents, _ := os.ReadDir(pidDir); len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("tasks %v started, want only the 2 that ran before the cancel", names)
	}
	if s.done() {
		t.Fatalf("ork run exited (%v) after the cancel:\n%s", s.err, s.output())
	}

	// A second cancel: the run ended already.
	stdout, stderr, code = run(t, dir, "cancel", id)
	if code != 0 || !strings.Contains(stdout, "already ended") {
		t.Errorf("second ork cancel %s: exit %d, stdout %q, stderr %q; want exit 0 saying it already ended", id, code, stdout, stderr)
	}
	if r := lcRunStatus(t, dir, id); r.Status != "cancelled" {
		t.Errorf("run after a second cancel: %+v, want cancelled", r)
	}

	// The scheduler goes on: another run succeeds.
	writeScript(t, dir, "ok.sh", "#!/bin/sh\necho ok\n")
	lcWorkflow(t, dir, "ok", `{"job_name": "ok.sh"}`)
	out, _ = mustRun(t, dir, "trigger", "ok")
	if r := lcWaitRun(t, dir, runID(t, out), 15*time.Second, s); r.Status != "success" {
		t.Errorf("run after the cancel: %s, want success", r.Status)
	}
	s.stop(t)
}

// TestLifecycleRetryCancelledRunUnderLiveScheduler: a run cancelled while
// its tasks run, then retried, runs again under the same `ork run`: its
// new attempts start, rather than waiting dispatched forever because the
// scheduler still took the run for cancelled.
func TestLifecycleRetryCancelledRunUnderLiveScheduler(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	// The first attempt waits to be cancelled; the second ends at once.
	writeScript(t, dir, "nap.sh", "#!/bin/sh\nif [ \"$ORK_ATTEMPT\" = 1 ]; then sleep 60; fi\necho \"attempt $ORK_ATTEMPT\"\n")
	lcWorkflow(t, dir, "naps", `{"job_name": "nap.sh", "task_count": 3}`)
	s := startSchedulerLocked(t, dir)

	out, _ := mustRun(t, dir, "trigger", "naps")
	id := runID(t, out)
	waitFor(t, 15*time.Second, "three tasks running on record", func() bool {
		ts, _ := lcTasks(t, dir, id)
		n := 0
		for _, tk := range ts {
			if tk.Status == "running" {
				n++
			}
		}
		return n == 3
	})
	if stdout, stderr, code := runWithin(t, 40*time.Second, dir, "cancel", id); code != 0 {
		t.Fatalf("ork cancel %s: exit %d, stdout %q, stderr %q", id, code, stdout, stderr)
	}
	stdout, stderr, code := run(t, dir, "retry", id)
	if code != 0 {
		t.Fatalf("ork retry %s: exit %d, stdout %q, stderr %q", id, code, stdout, stderr)
	}
	// The tasks were cancelled, not failed: the message says which.
	if want := "3 failed or cancelled task(s) again"; !strings.Contains(stderr, want) {
		t.Errorf("ork retry %s says %q, want %q", id, stderr, want)
	}
	if r := lcWaitRun(t, dir, id, 30*time.Second, s); r.Status != "success" {
		t.Fatalf("run after cancel and retry: %+v, want success", r)
	}
	ts, _ := lcTasks(t, dir, id)
	if len(ts) != 3 {
		t.Errorf("%d tasks, want 3", len(ts))
	}
	for _, tk := range ts {
		if tk.Status != "success" || tk.Attempt != 2 || len(tk.Attempts) != 2 || tk.Attempts[0].Status != "cancelled" {
			t.Errorf("task %s: %s in attempt %d, attempts %+v; want success in attempt 2 after a cancelled attempt 1", tk.label(), tk.Status, tk.Attempt, tk.Attempts)
		}
	}
	s.stop(t)
}

// TestLifecycleCancelWithoutScheduler: `ork cancel` of a pending run with
// no scheduler cancels it at once, and no later scheduler runs it.
func TestLifecycleCancelWithoutScheduler(t *testing.T) {
	t.Parallel()
	dir, pidDir := lcLongProject(t)

	out, _ := mustRun(t, dir, "trigger", "long")
	id := runID(t, out)
	if r := lcRunStatus(t, dir, id); r.Status != "pending" {
		t.Fatalf("run without a scheduler: %s, want pending", r.Status)
	}
	stdout, stderr, code := run(t, dir, "cancel", id)
	if code != 0 || !strings.Contains(stdout, "cancelled") {
		t.Fatalf("ork cancel %s: exit %d, stdout %q, stderr %q; want exit 0 saying cancelled", id, code, stdout, stderr)
	}
	if r := lcRunStatus(t, dir, id); r.Status != "cancelled" || r.FinishedAt == nil {
		t.Errorf("run after cancel: %+v, want cancelled, with an end", r)
	}
	// The scheduler had created no task records: those on record (none)
	// are cancelled, the others were never created and never run.
	ts, _ := lcTasks(t, dir, id)
	if len(ts) != 6 {
		t.Errorf("tasks: %d, want 6", len(ts))
	}
	for _, tk := range ts {
		switch {
		case tk.Status == "cancelled":
		case tk.Status == "pending" && tk.Attempt == 0 && len(tk.Attempts) == 0:
			// Never created; shown as `ork tasks` shows tasks to come.
		default:
			t.Errorf("task %s: %s attempt %d, want cancelled (or never created)", tk.label(), tk.Status, tk.Attempt)
		}
	}
	recs, _ := os.ReadDir(filepath.Join(dir, ".ork", "tasks", id))
	for _, e := range recs {
		var tk lcTask
		decodeJSON(t, e.Name(), string(readFile(t, filepath.Join(dir, ".ork", "tasks", id, e.Name()))), &tk)
		if tk.Status != "cancelled" {
			t.Errorf("task record %s: %s, want cancelled", e.Name(), tk.Status)
		}
	}
	stdout, _, code = run(t, dir, "cancel", id)
	if code != 0 || !strings.Contains(stdout, "already ended") {
		t.Errorf("second ork cancel: exit %d, stdout %q; want exit 0 saying it already ended", code, stdout)
	}

	// A scheduler started later (the one of trigger --wait) runs other
	// work, never the cancelled run.
	writeScript(t, dir, "ok.sh", "#!/bin/sh\necho ok\n")
	lcWorkflow(t, dir, "ok", `{"job_name": "ok.sh"}`)
	lcTrigger(t, dir, 0, "ok")
	if ents, _ := os.ReadDir(pidDir); len(ents) != 0 {
		t.Errorf("%d tasks of the cancelled run started", len(ents))
	}
	if r := lcRunStatus(t, dir, id); r.Status != "cancelled" {
		t.Errorf("cancelled run after another scheduler: %s", r.Status)
	}
}

// TestLifecycleCancelledRunShowsNoPending: the tasks of a cancelled run
// that the scheduler had not created yet never run; `ork tasks` and
// `ork status RUN` show them cancelled, not pending.
func TestLifecycleCancelledRunShowsNoPending(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "hello.sh", helloScript)
	lcWorkflow(t, dir, "hello", `{"job_name": "hello.sh", "task_count": 3}`)
	out, _ := mustRun(t, dir, "trigger", "hello")
	id := runID(t, out)
	mustRun(t, dir, "cancel", id)
	ts, _ := lcTasks(t, dir, id)
	for _, tk := range ts {
		if tk.Status != "cancelled" {
			t.Errorf("task %s of the cancelled run: %s, want cancelled", tk.label(), tk.Status)
		}
	}
	out, _ = mustRun(t, dir, "status", id)
	if !strings.Contains(out, "3 cancelled") {
		t.Errorf("ork status %s does not count 3 cancelled tasks:\n%s", id, out)
	}
}

// ---- ork retry ----

// TestLifecycleRetryRun: `ork retry` runs the failed and never-run tasks of
// a finished run again; the tasks that succeeded keep their attempt and
// output.
func TestLifecycleRetryRun(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "ok.sh", `#!/bin/sh
echo "$ORK_TASK_NAME attempt $ORK_ATTEMPT"
echo "{\"task\": \"$ORK_TASK_NAME\", \"attempt\": $ORK_ATTEMPT}" > "$ORK_OUTPUT"
`)
	// Fails the first time only: the marker beside the project remembers.
	writeScript(t, dir, "once.sh", `#!/bin/sh
if [ ! -e ../marker ]; then
  : > ../marker
  echo "b fails"
  exit 4
fi
echo "b succeeds"
`)
	lcWorkflow(t, dir, "chain", `{
  "tasks": {
    "a": {"job_name": "ok.sh"},
    "b": {"job_name": "once.sh", "depends_on": ["a"]},
    "c": {"job_name": "ok.sh", "depends_on": ["b"]},
    "d": {"job_name": "ok.sh"}
  }
}`)

	id := lcTrigger(t, dir, 1, "chain")
	_, before := lcTasks(t, dir, id)
	for label, want := range map[string]string{"a[0]": "success", "b[0]": "failed", "c[0]": "skipped", "d[0]": "success"} {
		if got := before[label].Status; got != want {
			t.Fatalf("after the first run, %s is %s, want %s", label, got, want)
		}
	}

	stdout, stderr, code := run(t, dir, "retry", id, "--wait")
	if code != 0 {
		t.Fatalf("ork retry %s --wait: exit %d\nstdout:\n%s\nstderr:\n%s", id, code, stdout, stderr)
	}
	if r := lcRunStatus(t, dir, id); r.Status != "success" || r.Error != "" {
		t.Errorf("run after retry: %+v, want success without error", r)
	}
	ts, after := lcTasks(t, dir, id)
	if len(ts) != 4 {
		t.Errorf("%d tasks after retry, want 4", len(ts))
	}
	for _, label := range []string{"a[0]", "d[0]"} {
		b, a := before[label], after[label]
		if a.Status != "success" || a.Attempt != 1 || len(a.Attempts) != 1 {
			t.Errorf("%s after retry: %s in attempt %d with %d attempt records, want success kept from attempt 1", label, a.Status, a.Attempt, len(a.Attempts))
		}
		sameJSON(t, label+" output", a.Output, fmt.Sprintf(`{"task": %q, "attempt": 1}`, a.Name))
		if a.StartedAt == nil || b.StartedAt == nil || !a.StartedAt.Equal(*b.StartedAt) {
			t.Errorf("%s was run again: started %v, before the retry %v", label, a.StartedAt, b.StartedAt)
		}
	}
	b := after["b[0]"]
	if b.Status != "success" || b.Attempt != 2 || len(b.Attempts) != 2 {
		t.Errorf("b[0] after retry: %s in attempt %d with %d attempt records, want success in attempt 2 with 2", b.Status, b.Attempt, len(b.Attempts))
	} else {
		if a := b.Attempts[0]; a.Status != "failed" || a.ExitCode == nil || *a.ExitCode != 4 {
			t.Errorf("b[0] attempt 1: %+v, want failed with exit 4", a)
		}
		if a := b.Attempts[1]; a.Status != "success" || a.Attempt != 2 {
			t.Errorf("b[0] attempt 2: %+v, want success", a)
		}
	}
	c := after["c[0]"]
	if c.Status != "success" || c.Attempt != 1 || c.Error != "" {
		t.Errorf("c[0] after retry: %s in attempt %d (%q), want success in attempt 1", c.Status, c.Attempt, c.Error)
	}
	sameJSON(t, "c[0] output", c.Output, `{"task": "c", "attempt": 1}`)

	// A run that succeeded: nothing to retry.
	stdout, stderr, code = run(t, dir, "retry", id)
	if code != 0 || !strings.Contains(stdout, "nothing to retry") {
		t.Errorf("ork retry of a succeeded run: exit %d, stdout %q, stderr %q; want exit 0 saying nothing to retry", code, stdout, stderr)
	}
	if _, again := lcTasks(t, dir, id); again["b[0]"].Attempt != 2 || again["a[0]"].Attempt != 1 {
		t.Errorf("ork retry of a succeeded run changed its tasks: %+v", again)
	}

	// A run still running: a clear refusal.
	writeScript(t, dir, "long.sh", "#!/bin/sh\nexec sleep 300\n")
	lcWorkflow(t, dir, "long", `{"job_name": "long.sh"}`)
	s := startSchedulerLocked(t, dir)
	out, _ := mustRun(t, dir, "trigger", "long")
	long := runID(t, out)
	waitFor(t, 10*time.Second, "run "+long+" to be running", func() bool {
		return lcRunStatus(t, dir, long).Status == "running"
	})
	_, stderr, code = run(t, dir, "retry", long)
	if code == 0 {
		t.Errorf("ork retry of a running run: exit 0, want a refusal")
	}
	if line := wantOneLineError(t, "ork retry of a running run", stderr); !strings.Contains(line, "running") || !strings.Contains(line, long) {
		t.Errorf("ork retry of a running run: %q, want it to say run %s is running", line, long)
	}
	mustRun(t, dir, "cancel", long)
	if r := lcWaitRun(t, dir, long, 15*time.Second, s); r.Status != "cancelled" {
		t.Errorf("long run after cancel: %s", r.Status)
	}
	s.stop(t)
}

// ---- ork logs ----

// TestLifecycleLogs: `ork logs` prints the captured output of a run's tasks,
// of one task, of one attempt, and says when a task never started.
func TestLifecycleLogs(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "part.sh", "#!/bin/sh\necho \"part $ORK_TASK_INDEX out\"\necho \"part $ORK_TASK_INDEX err\" >&2\n")
	writeScript(t, dir, "retried.sh", "#!/bin/sh\necho \"retried attempt $ORK_ATTEMPT\"\n[ \"$ORK_ATTEMPT\" -ge 2 ] && exit 0\nexit 1\n")
	writeScript(t, dir, "fail.sh", "#!/bin/sh\necho \"fail says bye\"\nexit 2\n")
	lcWorkflow(t, dir, "logs", `{
  "tasks": {
    "part":    {"job_name": "part.sh", "task_count": 2},
    "retried": {"job_name": "retried.sh", "retries": 1},
    "fail":    {"job_name": "fail.sh"},
    "after":   {"job_name": "part.sh", "depends_on": ["fail"]}
  }
}`)
	id := lcTrigger(t, dir, 1, "logs")

	// All tasks, each under a header.
	out, _ := mustRun(t, dir, "logs", id)
	header := regexp.MustCompile(`(?m)^==> (\S+) attempt (\d+) \((\w+)\) <==$`)
	var labels []string
	for _, m := range header.FindAllStringSubmatch(out, -1) {
		labels = append(labels, m[1])
	}
	if want := []string{"after[0]", "fail[0]", "part[0]", "part[1]", "retried[0]"}; !slices.Equal(slices.Sorted(slices.Values(labels)), want) {
		t.Errorf("ork logs %s: headers for %v, want one for each of %v:\n%s", id, labels, want, out)
	}
	for _, want := range []string{
		"==> part[0] attempt 1 (success) <==\npart 0 out\npart 0 err\n",
		"==> part[1] attempt 1 (success) <==\npart 1 out\npart 1 err\n",
		"==> retried[0] attempt 2 (success) <==\nretried attempt 2\n",
		"==> fail[0] attempt 1 (failed) <==\nfail says bye\n",
		"==> after[0] attempt 0 (skipped) <==\n(not started)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ork logs %s: no %q in:\n%s", id, want, out)
		}
	}

	// One task, by name and index: its log alone.
	out, _ = mustRun(t, dir, "logs", id, "part", "--index", "1")
	if out != "part 1 out\npart 1 err\n" {
		t.Errorf("ork logs %s part --index 1: %q, want the log of part[1] alone", id, out)
	}
	// An attempt of a retried task; without --attempt, the latest.
	out, _ = mustRun(t, dir, "logs", id, "retried", "--attempt", "1")
	if out != "retried attempt 1\n" {
		t.Errorf("ork logs %s retried --attempt 1: %q, want the first attempt's output", id, out)
	}
	out, _ = mustRun(t, dir, "logs", id, "retried")
	if out != "retried attempt 2\n" {
		t.Errorf("ork logs %s retried: %q, want the latest attempt's output", id, out)
	}
	// A task that never started says so.
	out, _ = mustRun(t, dir, "logs", id, "after")
	if !strings.Contains(out, "not started") {
		t.Errorf("ork logs %s after: %q, want it to say the task never started", id, out)
	}
	// A task the run does not have is an error naming it.
	_, stderr, _ := mustFail(t, dir, "logs", id, "nosuch")
	if line := wantOneLineError(t, "ork logs of an unknown task", stderr); !strings.Contains(line, "nosuch") {
		t.Errorf("ork logs %s nosuch: %q, want the task named", id, line)
	}
	// --follow of a task that ended prints its log and returns.
	stdout, _, code := runWithin(t, 10*time.Second, dir, "logs", id, "part", "--index", "0", "--follow")
	if code != 0 || stdout != "part 0 out\npart 0 err\n" {
		t.Errorf("ork logs --follow of an ended task: exit %d, %q", code, stdout)
	}
}

// TestLifecycleLogsFollowAndBound: `ork logs --follow` streams a running
// task's output and ends with it; `--max-log-size` keeps the tail of a big
// log and says how much was cut.
func TestLifecycleLogsFollowAndBound(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "tick.sh", `#!/bin/sh
i=1
while [ $i -le 10 ]; do
  echo "tick $i"
  i=$((i+1))
  sleep 0.1
done
`)
	writeScript(t, dir, "big.sh", `#!/bin/sh
i=1
while [ $i -le 10000 ]; do
  echo "line $i of a long log"
  i=$((i+1))
done
`)
	lcWorkflow(t, dir, "tick", `{"tasks": {"tick": {"job_name": "tick.sh"}}}`)
	lcWorkflow(t, dir, "big", `{"job_name": "big.sh"}`)
	s := startSchedulerLocked(t, dir, "--max-log-size", "1KiB")

	out, _ := mustRun(t, dir, "trigger", "tick")
	id := runID(t, out)
	stdout, stderr, code := runWithin(t, 20*time.Second, dir, "logs", id, "tick", "--follow")
	followEnded := time.Now()
	if code != 0 {
		t.Errorf("ork logs --follow: exit %d, stderr %q", code, stderr)
	}
	var want []string
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("tick %d", i))
	}
	if got := nonEmptyLines(stdout); !slices.Equal(got, want) {
		t.Errorf("ork logs --follow printed %q, want %q", got, want)
	}
	r := lcWaitRun(t, dir, id, 15*time.Second, s)
	if r.Status != "success" {
		t.Fatalf("run of tick: %s", r.Status)
	}
	_, by := lcTasks(t, dir, id)
	if end := by["tick[0]"].FinishedAt; end == nil {
		t.Errorf("tick[0] has no end on record")
	} else if lag := followEnded.Sub(*end); lag > 3*time.Second {
		t.Errorf("ork logs --follow ended %s after the task", lag)
	}

	// A big log, bounded to about 1 KiB: its tail, after a line saying what
	// was cut.
	out, _ = mustRun(t, dir, "trigger", "big")
	id = runID(t, out)
	if r := lcWaitRun(t, dir, id, 20*time.Second, s); r.Status != "success" {
		t.Fatalf("run of big: %s", r.Status)
	}
	ts, _ := lcTasks(t, dir, id)
	if len(ts) != 1 || ts[0].Log == "" {
		t.Fatalf("tasks of big: %+v, want one with its log", ts)
	}
	if want := filepath.Join(dir, ".ork", "logs", id, "big.sh.0.1.log"); ts[0].Log != want {
		t.Errorf("log of big.sh[0] is %s, want %s", ts[0].Log, want)
	}
	data := string(readFile(t, ts[0].Log))
	if len(data) > 1126 {
		t.Errorf("bounded log is %d bytes, want at most about 1 KiB", len(data))
	}
	first, rest, _ := strings.Cut(data, "\n")
	if m := regexp.MustCompile(`^\[ork: the first (\d+) bytes of this log were cut`).FindStringSubmatch(first); m == nil {
		t.Errorf("bounded log starts with %q, want the line saying what was cut", first)
	} else if n, _ := strconv.Atoi(m[1]); n < 200000 {
		t.Errorf("bounded log says %d bytes were cut, want about 240,000", n)
	}
	if !strings.HasSuffix(data, "line 10000 of a long log\n") {
		t.Errorf("bounded log does not end with the last line printed:\n%s", data)
	}
	if !strings.HasPrefix(rest, "line ") {
		t.Errorf("bounded log keeps a partial first line: %q", strings.SplitN(rest, "\n", 2)[0])
	}
	out, _ = mustRun(t, dir, "logs", id)
	if out != data {
		t.Errorf("ork logs of the bounded log prints %d bytes, not the %d of its file", len(out), len(data))
	}
	s.stop(t)
}

// TestLifecycleFollowRetriedTask: --follow of a task that fails and is
// retried follows it to its end, through its retry.
func TestLifecycleFollowRetriedTask(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "slow.sh", `#!/bin/sh
echo "start $ORK_ATTEMPT"
sleep 0.3
[ "$ORK_ATTEMPT" -ge 2 ] && { echo "done $ORK_ATTEMPT"; exit 0; }
echo "fail $ORK_ATTEMPT"
exit 1
`)
	lcWorkflow(t, dir, "slow", `{"job_name": "slow.sh", "retries": 1, "retry_backoff": "200ms"}`)
	s := startSchedulerLocked(t, dir)
	out, _ := mustRun(t, dir, "trigger", "slow")
	id := runID(t, out)
	stdout, _, code := runWithin(t, 20*time.Second, dir, "logs", id, "slow.sh", "--follow")
	if code != 0 || !strings.Contains(stdout, "done 2") {
		t.Errorf("ork logs --follow of a retried task: exit %d, %q; want it to follow to the end of attempt 2", code, stdout)
	}
	lcWaitRun(t, dir, id, 15*time.Second, s)
	s.stop(t)
}

// ---- concurrency ----

// lcSpyScript counts, in ../spy/counts, the tasks running as it starts.
const lcSpyScript = `#!/bin/sh
touch ../spy/$ORK_TASK_INDEX.run
ls ../spy | grep -c '\.run$' >> ../spy/counts
sleep 0.2
rm ../spy/$ORK_TASK_INDEX.run
`

// TestLifecycleMaxParallel: max_parallel bounds the running tasks of a
// fan-out, in a DAG node and in a flat workflow.
func TestLifecycleMaxParallel(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "busy.sh", lcSpyScript)
	lcWorkflow(t, dir, "dag", `{"tasks": {"busy": {"job_name": "busy.sh", "task_count": 6, "max_parallel": 2}}}`)
	lcWorkflow(t, dir, "flat", `{"job_name": "busy.sh", "task_count": 6, "max_parallel": 2}`)
	for _, name := range []string{"dag", "flat"} {
		spy := filepath.Join(dir, "spy")
		if err := os.RemoveAll(spy); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(spy, 0o755); err != nil {
			t.Fatal(err)
		}
		id := lcTrigger(t, dir, 0, name)
		counts := strings.Fields(string(readFile(t, filepath.Join(spy, "counts"))))
		if len(counts) != 6 {
			t.Fatalf("%s: %d tasks started, want 6", name, len(counts))
		}
		for _, c := range counts {
			if n, _ := strconv.Atoi(c); n > 2 {
				t.Errorf("%s: %d tasks ran at once with max_parallel 2 (counts %v)", name, n, counts)
				break
			}
		}
		ts, _ := lcTasks(t, dir, id)
		if n := lcMaxOverlap(lcTaskSpans(t, ts)); n > 2 {
			t.Errorf("%s: by their records, %d tasks ran at once with max_parallel 2", name, n)
		}
	}
}

// TestLifecycleMaxActiveRuns: with max_active_runs 1, runs of a workflow
// run one after the other.
func TestLifecycleMaxActiveRuns(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "nap.sh", "#!/bin/sh\nsleep 0.3\n")
	lcWorkflow(t, dir, "one", `{"job_name": "nap.sh", "task_count": 2, "max_active_runs": 1}`)
	var ids []string
	for range 3 {
		out, _ := mustRun(t, dir, "trigger", "one")
		ids = append(ids, runID(t, out))
	}
	s := startSchedulerLocked(t, dir)
	var runs []lcRun
	for _, id := range ids {
		r := lcWaitRun(t, dir, id, 20*time.Second, s)
		if r.Status != "success" || r.StartedAt == nil || r.FinishedAt == nil {
			t.Fatalf("run %s: %+v, want success with a start and an end", id, r)
		}
		runs = append(runs, r)
	}
	s.stop(t)
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.Before(*runs[j].StartedAt) })
	for i := 1; i < len(runs); i++ {
		if runs[i].StartedAt.Before(*runs[i-1].FinishedAt) {
			t.Errorf("run %s started at %s, before run %s ended at %s: two runs were active at once",
				runs[i].ID, runs[i].StartedAt.Format(time.StampMicro), runs[i-1].ID, runs[i-1].FinishedAt.Format(time.StampMicro))
		}
	}
	// Their tasks, too, never overlap across runs.
	var spans [][2]time.Time
	for _, id := range ids {
		ts, _ := lcTasks(t, dir, id)
		spans = append(spans, lcTaskSpans(t, ts)...)
	}
	if n := lcMaxOverlap(spans); n > 2 {
		t.Errorf("%d tasks ran at once; one run of 2 tasks at a time allows 2", n)
	}
}

// TestLifecycleLimitsNoDeadlock: a DAG with max_parallel 1 on every node,
// max_active_runs 1 and one running task at most still completes.
func TestLifecycleLimitsNoDeadlock(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "step.sh", "#!/bin/sh\necho \"$ORK_TASK_NAME $ORK_TASK_INDEX\"\n")
	lcWorkflow(t, dir, "tight", `{
  "max_active_runs": 1,
  "tasks": {
    "a": {"job_name": "step.sh", "task_count": 3, "max_parallel": 1},
    "b": {"job_name": "step.sh", "task_count": 2, "max_parallel": 1, "depends_on": ["a"]},
    "c": {"job_name": "step.sh", "task_count": 2, "max_parallel": 1, "depends_on": ["a"]},
    "d": {"job_name": "step.sh", "max_parallel": 1, "depends_on": ["b", "c"]},
    "e": {"job_name": "step.sh", "task_count": 3, "max_parallel": 1}
  }
}`)
	s := startSchedulerLocked(t, dir, "--max-running-tasks", "1")
	var ids []string
	for range 2 {
		out, _ := mustRun(t, dir, "trigger", "tight")
		ids = append(ids, runID(t, out))
	}
	var spans [][2]time.Time
	for _, id := range ids {
		if r := lcWaitRun(t, dir, id, 30*time.Second, s); r.Status != "success" {
			t.Fatalf("run %s: %+v, want success", id, r)
		}
		ts, _ := lcTasks(t, dir, id)
		if len(ts) != 11 {
			t.Errorf("run %s: %d tasks, want 11", id, len(ts))
		}
		spans = append(spans, lcTaskSpans(t, ts)...)
	}
	s.stop(t)
	if n := lcMaxOverlap(spans); n > 1 {
		t.Errorf("%d tasks ran at once with --max-running-tasks 1", n)
	}
}

// ---- ork prune ----

// lcExists reports whether path exists.
func lcExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestLifecyclePrune: `ork prune` deletes the finished runs, with their
// tasks and logs, but the newest of each workflow and the unfinished ones;
// a prune cut short is reported by `ork doctor` and finished by the next
// prune.
func TestLifecyclePrune(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "hello.sh", helloScript)
	lcWorkflow(t, dir, "w1", `{"job_name": "hello.sh"}`)
	lcWorkflow(t, dir, "w2", `{"job_name": "hello.sh", "task_count": 2}`)
	var w1, w2 []string
	for range 4 {
		w1 = append(w1, lcTrigger(t, dir, 0, "w1"))
	}
	for range 2 {
		w2 = append(w2, lcTrigger(t, dir, 0, "w2"))
	}
	out, _ := mustRun(t, dir, "trigger", "w1") // no scheduler: stays pending
	pending := runID(t, out)

	ork := filepath.Join(dir, ".ork")
	entries := func(id string) map[string]string {
		return map[string]string{
			"run record": filepath.Join(ork, "runs", id+".json"),
			"tasks":      filepath.Join(ork, "tasks", id),
			"logs":       filepath.Join(ork, "logs", id),
		}
	}
	finished := append(append([]string{}, w1...), w2...)
	for _, id := range finished {
		for what, p := range entries(id) {
			if !lcExists(t, p) {
				t.Fatalf("run %s has no %s (%s) before the prune", id, what, p)
			}
		}
	}

	stdout, stderr, code := run(t, dir, "prune", "--older-than", "0s", "--keep-last", "1")
	if code != 0 || !strings.Contains(stdout, "pruned 4 ") {
		t.Fatalf("ork prune --older-than 0s --keep-last 1: exit %d, stdout %q, stderr %q; want 4 runs pruned", code, stdout, stderr)
	}
	keep := map[string]bool{w1[3]: true, w2[1]: true}
	for _, id := range finished {
		for what, p := range entries(id) {
			if got := lcExists(t, p); got != keep[id] {
				t.Errorf("after the prune, %s of run %s exists: %v, want %v", what, id, got, keep[id])
			}
		}
	}
	if !lcExists(t, entries(pending)["run record"]) {
		t.Errorf("the prune deleted the pending run %s", pending)
	}
	var ids []string
	for _, r := range lcRuns(t, dir) {
		ids = append(ids, r.ID)
	}
	if want := []string{pending, w2[1], w1[3]}; !slices.Equal(ids, want) {
		t.Errorf("ork status --json after the prune lists %v, want %v", ids, want)
	}
	_, stderr, _ = mustFail(t, dir, "tasks", w1[0])
	wantOneLineError(t, "ork tasks of a pruned run", stderr)

	// A prune cut short: the record of w1's kept run renamed as Prune does
	// first, its tasks and logs left; w2's with its tasks gone too.
	for _, id := range []string{w1[3], w2[1]} {
		if err := os.Rename(filepath.Join(ork, "runs", id+".json"), filepath.Join(ork, "runs", ".prune-"+id+".json")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(ork, "tasks", w2[1])); err != nil {
		t.Fatal(err)
	}
	ids = nil
	for _, r := range lcRuns(t, dir) {
		ids = append(ids, r.ID)
	}
	if want := []string{pending}; !slices.Equal(ids, want) {
		t.Errorf("ork status --json with prunes cut short lists %v, want only %v", ids, want)
	}
	out, _ = mustRun(t, dir, "status")
	if strings.Contains(out, w1[3]) || strings.Contains(out, w2[1]) {
		t.Errorf("ork status lists a run being pruned:\n%s", out)
	}

	stdout, stderr, code = run(t, dir, "doctor", "--json")
	if code != 1 {
		t.Errorf("ork doctor with prunes cut short: exit %d, want 1 (stderr %q)", code, stderr)
	}
	var ps []struct{ Kind, Path, What, Fix string }
	decodeJSON(t, "doctor --json", stdout, &ps)
	for _, id := range []string{w1[3], w2[1]} {
		found := false
		for _, p := range ps {
			if strings.HasSuffix(p.Path, ".prune-"+id+".json") {
				found = true
				if p.Kind != "temp" || !strings.Contains(p.Fix, "ork prune") {
					t.Errorf("ork doctor on the prune of %s: %+v, want kind temp and a fix saying to run ork prune", id, p)
				}
			}
		}
		if !found {
			t.Errorf("ork doctor does not report the prune of %s cut short: %+v", id, ps)
		}
	}

	// The next prune finishes them, though no run is old enough for it.
	mustRun(t, dir, "prune", "--older-than", "100d")
	for _, id := range []string{w1[3], w2[1]} {
		for what, p := range entries(id) {
			if lcExists(t, p) {
				t.Errorf("after the next prune, %s of run %s (%s) is still there", what, id, p)
			}
		}
		if p := filepath.Join(ork, "runs", ".prune-"+id+".json"); lcExists(t, p) {
			t.Errorf("after the next prune, %s is still there", p)
		}
	}
	if r := lcRunStatus(t, dir, pending); r.Status != "pending" {
		t.Errorf("pending run after the prunes: %s", r.Status)
	}
	stdout, _, _ = run(t, dir, "doctor", "--json")
	ps = nil
	decodeJSON(t, "doctor --json", stdout, &ps)
	for _, p := range ps {
		if p.Kind != "unfinished" {
			t.Errorf("ork doctor after the prune finished: %+v", p)
		}
	}
}
