//go:build unix

package exec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// helperEnv selects a helper mode when the test binary runs itself.
const helperEnv = "ORK_EXEC_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "parent-death":
		parentDeathHelper()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// parentDeathHelper starts sleeper.sh from ORK_EXEC_TEST_DIR, prints its
// execution name and sleeps until it is killed.
func parentDeathHelper() {
	dir := os.Getenv("ORK_EXEC_TEST_DIR")
	e := NewProcessExecutor(ProcessConfig{
		ScriptDir: dir,
		LogDir:    filepath.Join(dir, "logs"),
		Updates:   make(chan StatusUpdate, 16),
	})
	name, err := e.Execute(context.Background(), newTask("sleeper.sh", "helper-task", 0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(name)
	time.Sleep(time.Hour)
}

// fixture is a ProcessExecutor with its directories and update channel.
type fixture struct {
	e       *ProcessExecutor
	updates chan StatusUpdate
	scripts string
	logs    string
}

// newFixture makes an executor over fresh directories. It is shut down
// when the test ends.
func newFixture(t *testing.T, configure func(*ProcessConfig)) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		updates: make(chan StatusUpdate, 1024),
		scripts: filepath.Join(root, "scripts"),
		logs:    filepath.Join(root, "logs"),
	}
	if err := os.Mkdir(f.scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := ProcessConfig{ScriptDir: f.scripts, LogDir: f.logs, Updates: f.updates, KillGrace: 2 * time.Second}
	if configure != nil {
		configure(&cfg)
	}
	f.e = NewProcessExecutor(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.e.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return f
}

// script writes an executable /bin/sh script and returns its path.
func (f *fixture) script(t *testing.T, name, body string) string {
	t.Helper()
	return writeFile(t, filepath.Join(f.scripts, name), "#!/bin/sh\n"+body+"\n", 0o755)
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTask returns attempt 1 of task id (index index) of a run "run-1" of a
// workflow "wf" whose job is job.
func newTask(job, id string, index int) model.TaskWithWorkflow {
	return model.TaskWithWorkflow{
		Task: &model.Task{
			ID: id, RunID: "run-1", Name: job, TaskIndex: index,
			Status: model.TaskDispatched, Attempt: 1,
		},
		Workflow: &model.Workflow{Name: "wf", JobName: job, ExecutorType: model.ExecutorProcess, TaskCount: 1},
	}
}

// logOf returns the log file of t, by the documented layout.
func (f *fixture) logOf(t model.TaskWithWorkflow) string {
	return filepath.Join(f.logs, t.Task.RunID, fmt.Sprintf("%s.%d.%d.log", t.Task.Name, t.Task.TaskIndex, t.Task.Attempt))
}

func (f *fixture) readLog(t *testing.T, tw model.TaskWithWorkflow) string {
	t.Helper()
	data, err := os.ReadFile(f.logOf(tw))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// next returns the next update, failing the test after a while.
func (f *fixture) next(t *testing.T) StatusUpdate {
	t.Helper()
	select {
	case u := <-f.updates:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10s")
		return StatusUpdate{}
	}
}

// run executes tw and returns its running and terminal updates.
func (f *fixture) run(t *testing.T, tw model.TaskWithWorkflow) (name string, running, final StatusUpdate) {
	t.Helper()
	name, err := f.e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	running = f.next(t)
	final = f.next(t)
	return name, running, final
}

// noUpdate fails if an update arrives within d.
func (f *fixture) noUpdate(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case u := <-f.updates:
		t.Fatalf("unexpected update %+v", u)
	case <-time.After(d):
	}
}

func TestProcessSuccess(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "hello.sh", "echo hello")
	tw := newTask("hello.sh", "task-1", 0)
	before := time.Now()
	name, running, final := f.run(t, tw)

	if !strings.HasPrefix(name, "pid:") {
		t.Errorf("execution name %q, want pid:<pid>", name)
	}
	if _, err := strconv.Atoi(strings.TrimPrefix(name, "pid:")); err != nil {
		t.Errorf("execution name %q has no pid: %v", name, err)
	}
	logPath, _ := LogPath(f.logs, "run-1", "hello.sh", 0, 1)
	want := StatusUpdate{TaskID: "task-1", RunID: "run-1", Attempt: 1, Status: model.TaskRunning, ExecutionName: name, Log: logPath}
	if got := withoutTime(running); !reflect.DeepEqual(got, want) {
		t.Errorf("first update\n got %+v\nwant %+v", got, want)
	}
	if running.At.Before(before) || running.At.After(time.Now()) {
		t.Errorf("running At %v is not the start time", running.At)
	}
	if final.Status != model.TaskSuccess || final.ExitCode == nil || *final.ExitCode != 0 || final.Error != "" {
		t.Errorf("final update %+v, want success with exit code 0", final)
	}
	if final.TaskID != "task-1" || final.RunID != "run-1" || final.Attempt != 1 || final.ExecutionName != name {
		t.Errorf("final update %+v does not name the attempt", final)
	}
	if final.At.Before(running.At) {
		t.Errorf("final At %v before running At %v", final.At, running.At)
	}
	if got := f.readLog(t, tw); got != "hello\n" {
		t.Errorf("log = %q, want %q", got, "hello\n")
	}
	f.noUpdate(t, 50*time.Millisecond)
}

func withoutTime(u StatusUpdate) StatusUpdate {
	u.At = time.Time{}
	return u
}

func TestProcessExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		status   model.TaskStatus
		exitCode int
		errText  string
	}{
		{"exit 0", "exit 0", model.TaskSuccess, 0, ""},
		{"exit 3", "exit 3", model.TaskFailed, 3, "exit status 3"},
		{"exit 255", "exit 255", model.TaskFailed, 255, "exit status 255"},
		{"failing command", "false", model.TaskFailed, 1, "exit status 1"},
		{"SIGTERM", "kill -TERM $$; sleep 5", model.TaskFailed, 128 + 15, "killed by signal TERM"},
		{"SIGKILL", "kill -KILL $$; sleep 5", model.TaskFailed, 128 + 9, "killed by signal KILL"},
		{"SIGUSR1", "kill -USR1 $$; sleep 5", model.TaskFailed, 128 + int(syscall.SIGUSR1), "killed by signal USR1"},
	}
	f := newFixture(t, nil)
	for i, tt := range tests {
		f.script(t, fmt.Sprintf("s%d.sh", i), tt.body)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, running, final := f.run(t, newTask(fmt.Sprintf("s%d.sh", i), "task-"+tt.name, 0))
			if running.Status != model.TaskRunning {
				t.Errorf("first update %+v, want running", running)
			}
			if final.Status != tt.status {
				t.Errorf("status %q, want %q (%+v)", final.Status, tt.status, final)
			}
			if final.ExitCode == nil || *final.ExitCode != tt.exitCode {
				t.Errorf("exit code %v, want %d", ptrString(final.ExitCode), tt.exitCode)
			}
			if final.Error != tt.errText {
				t.Errorf("error %q, want %q", final.Error, tt.errText)
			}
		})
	}
}

func ptrString(p *int) string {
	if p == nil {
		return "nil"
	}
	return strconv.Itoa(*p)
}

// envOf parses the output of env into a map.
func envOf(out string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestProcessEnvironment(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) {
		c.Env = []string{"PATH=/usr/bin:/bin", "BASE_VAR=base", "OVERRIDDEN=base"}
	})
	f.script(t, "env.sh", "env")
	params := map[string]any{
		"greeting":    "hello world",
		"day":         float64(20260101),
		"big":         1e21,
		"ratio":       0.25,
		"negative":    float64(-7),
		"flag":        true,
		"off":         false,
		"nothing":     nil,
		"nested":      map[string]any{"b": []any{float64(1), "two"}, "a": map[string]any{"deep": true}},
		"list":        []any{float64(1), float64(2)},
		"html":        "<a & b>",
		"OVERRIDDEN":  "param",
		"ORK_RUN_ID":  "spoofed",
		"ORK_LOG_DIR": "spoofed",
		"bad=key":     "skipped",
		"":            "skipped",
		"nul\x00key":  "skipped",
		"nulvalue":    "a\x00b",
	}
	tw := newTask("env.sh", "task-env", 2)
	tw.Task.RunID = "run-env"
	tw.Task.Attempt = 3
	tw.Task.Scheduler = "host-a:4242:0badcafe"
	tw.Task.Params = params
	tw.Workflow.Name = "env-flow"
	tw.Workflow.TaskCount = 4
	_, _, final := f.run(t, tw)
	if final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	env := envOf(f.readLog(t, tw))
	logDir, err := filepath.EvalSymlinks(f.logs)
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"BASE_VAR":       "base",
		"OVERRIDDEN":     "param",
		"greeting":       "hello world",
		"day":            "20260101",
		"big":            "1000000000000000000000",
		"ratio":          "0.25",
		"negative":       "-7",
		"flag":           "true",
		"off":            "false",
		"nothing":        "",
		"nested":         `{"a":{"deep":true},"b":[1,"two"]}`,
		"list":           `[1,2]`,
		"html":           "<a & b>",
		"ORK_RUN_ID":     "run-env",
		"ORK_TASK_ID":    "task-env",
		"ORK_TASK_NAME":  "env.sh",
		"ORK_TASK_INDEX": "2",
		"ORK_TASK_COUNT": "4",
		"ORK_WORKFLOW":   "env-flow",
		"ORK_ATTEMPT":    "3",
		"ORK_SCHEDULER":  "host-a:4242:0badcafe",
		"ORK_LOG_DIR":    logDir,
	}
	for k, v := range want {
		got, ok := env[k]
		if !ok {
			t.Errorf("%s is not set", k)
		} else if got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"bad", "nulvalue", "HOME"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s=%q is set, want it absent", k, v)
		}
	}

	var got map[string]any
	if err := json.Unmarshal([]byte(env["ORK_PARAMS"]), &got); err != nil {
		t.Fatalf("ORK_PARAMS %q: %v", env["ORK_PARAMS"], err)
	}
	if !reflect.DeepEqual(got, params) {
		t.Errorf("ORK_PARAMS decodes to\n%v\nwant\n%v", got, params)
	}
	if !strings.Contains(env["ORK_PARAMS"], `"html":"<a & b>"`) {
		t.Errorf("ORK_PARAMS %s escapes HTML characters", env["ORK_PARAMS"])
	}
}

func TestProcessEnvironmentDefaults(t *testing.T) {
	t.Setenv("ORK_TEST_INHERITED", "yes")
	f := newFixture(t, nil) // Env nil: this process's environment
	f.script(t, "env.sh", "env; pwd")
	tw := newTask("env.sh", "task-env", 0)
	_, _, final := f.run(t, tw)
	if final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	out := f.readLog(t, tw)
	env := envOf(out)
	if env["ORK_TEST_INHERITED"] != "yes" {
		t.Errorf("the environment of the scheduler is not inherited")
	}
	if env["ORK_PARAMS"] != "{}" {
		t.Errorf("ORK_PARAMS=%q without params, want {}", env["ORK_PARAMS"])
	}
	if !strings.HasSuffix(out, "\n"+f.scripts+"\n") {
		t.Errorf("working directory is not the script directory %s; output:\n%s", f.scripts, out)
	}
}

func TestProcessRelativeScriptDir(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "rel", "pwd.sh"), "#!/bin/sh\npwd\n", 0o755)
	t.Chdir(root)
	updates := make(chan StatusUpdate, 4)
	e := NewProcessExecutor(ProcessConfig{ScriptDir: "rel", LogDir: "logs", Updates: updates})
	defer e.Shutdown(context.Background())
	tw := newTask("pwd.sh", "task-rel", 0)
	if _, err := e.Execute(context.Background(), tw); err != nil {
		t.Fatal(err)
	}
	<-updates
	if u := <-updates; u.Status != model.TaskSuccess {
		t.Fatalf("final %+v", u)
	}
	t.Chdir(t.TempDir()) // the directories were made absolute at construction
	data, err := os.ReadFile(filepath.Join(root, "logs", "run-1", "pwd.sh.0.1.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(data)), filepath.Join(root, "rel"); got != want {
		t.Errorf("pwd = %q, want %q", got, want)
	}
}

func TestProcessOutputCaptured(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "both.sh", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 4")
	tw := newTask("both.sh", "task-out", 5)
	tw.Task.Attempt = 2
	// An old, longer log of the same attempt is truncated, not appended to.
	writeFile(t, f.logOf(tw), strings.Repeat("stale\n", 100), 0o644)
	_, _, final := f.run(t, tw)
	if final.Status != model.TaskFailed || *final.ExitCode != 4 {
		t.Fatalf("final %+v", final)
	}
	if got, want := f.readLog(t, tw), "out1\nerr1\nout2\nerr2\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	fi, err := os.Stat(f.logOf(tw))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644&^currentUmask() {
		t.Errorf("log mode %v", fi.Mode().Perm())
	}
	p, err := LogPath(f.logs, "run-1", "both.sh", 5, 2)
	if err != nil || p != f.logOf(tw) {
		t.Errorf("LogPath = %q, %v; want %q", p, err, f.logOf(tw))
	}
}

func currentUmask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestProcessSubdirectoryJob(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "etl/load.sh", `echo "$ORK_TASK_NAME"`)
	tw := newTask("etl/load.sh", "task-sub", 0)
	_, _, final := f.run(t, tw)
	if final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	if got := f.readLog(t, tw); got != "etl/load.sh\n" {
		t.Errorf("log %q", got)
	}
}

func TestProcessLogDirRemoved(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "hello.sh", "echo hi")
	tw := newTask("hello.sh", "task-1", 0)
	f.run(t, tw)
	// Someone cleans up the logs while the executor runs.
	if err := os.RemoveAll(f.logs); err != nil {
		t.Fatal(err)
	}
	tw.Task.Attempt = 2
	_, _, final := f.run(t, tw)
	if final.Status != model.TaskSuccess {
		t.Fatalf("final %+v", final)
	}
	if got := f.readLog(t, tw); got != "hi\n" {
		t.Errorf("log %q", got)
	}
}

func TestProcessSymlinkInsideScriptDir(t *testing.T) {
	f := newFixture(t, nil)
	// The path check compares names only: a link placed in the script
	// directory by its owner is followed.
	outside := writeFile(t, filepath.Join(t.TempDir(), "real.sh"), "#!/bin/sh\necho real\n", 0o755)
	if err := os.Symlink(outside, filepath.Join(f.scripts, "link.sh")); err != nil {
		t.Fatal(err)
	}
	tw := newTask("link.sh", "task-link", 0)
	_, _, final := f.run(t, tw)
	if final.Status != model.TaskSuccess || f.readLog(t, tw) != "real\n" {
		t.Fatalf("final %+v, log %q", final, f.readLog(t, tw))
	}
}

func TestProcessExecuteErrors(t *testing.T) {
	f := newFixture(t, nil)
	s := f.scripts
	writeFile(t, filepath.Join(s, "plain.sh"), "#!/bin/sh\necho hi\n", 0o644)
	writeFile(t, filepath.Join(s, "noshebang.sh"), "echo hi\n", 0o755)
	writeFile(t, filepath.Join(s, "badinterp.sh"), "#!/nonexistent/interp -x\necho hi\n", 0o755)
	writeFile(t, filepath.Join(s, "file.sh"), "#!/bin/sh\n", 0o755)
	if err := os.Mkdir(filepath.Join(s, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(s, "fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		job  string
		want string
	}{
		{"missing.sh", fmt.Sprintf("script %s not found (job_name %q is looked up in %s)", filepath.Join(s, "missing.sh"), "missing.sh", s)},
		{"sub/missing.sh", "script " + filepath.Join(s, "sub/missing.sh") + " not found"},
		{"file.sh/below", "script " + filepath.Join(s, "file.sh/below") + " not found"},
		{"plain.sh", fmt.Sprintf("script %[1]s is not executable: chmod +x %[1]s", filepath.Join(s, "plain.sh"))},
		{"adir", "script " + filepath.Join(s, "adir") + " is a directory"},
		{"fifo", "script " + filepath.Join(s, "fifo") + " is not a regular file"},
		{"noshebang.sh", fmt.Sprintf("script %s cannot be executed: does it start with a #! line?", filepath.Join(s, "noshebang.sh"))},
		{"badinterp.sh", "its interpreter /nonexistent/interp (from its #! line) was not found"},
		{"..", "leaves the script directory"},
		{"../outside.sh", "leaves the script directory"},
		{"a/../../outside.sh", "leaves the script directory"},
		{"/bin/true", "is an absolute path"},
		{"", "job_name is empty"},
		{".", "names no file"},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			name, err := f.e.Execute(context.Background(), newTask(tt.job, "task-err", 0))
			if err == nil {
				t.Fatalf("Execute = %q, nil; want an error containing %q", name, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
	f.noUpdate(t, 50*time.Millisecond)
	if n := len(f.e.byName); n != 0 {
		t.Errorf("%d attempts tracked after failed starts", n)
	}
}

func TestProcessExecuteBadInput(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "ok.sh", "true")
	badRun := newTask("ok.sh", "t", 0)
	badRun.Task.RunID = "../escape"
	noName := newTask("ok.sh", "t", 0)
	noName.Task.Name = ""
	tests := []struct {
		name string
		e    *ProcessExecutor
		t    model.TaskWithWorkflow
		want string
	}{
		{"no task", f.e, model.TaskWithWorkflow{Workflow: &model.Workflow{JobName: "ok.sh"}}, "needs a task"},
		{"no workflow", f.e, model.TaskWithWorkflow{Task: &model.Task{ID: "t"}}, "needs a task"},
		{"bad run id", f.e, badRun, `run id "../escape" cannot name a log directory`},
		{"no task name", f.e, noName, "task name is empty"},
		{"no script dir", NewProcessExecutor(ProcessConfig{LogDir: f.logs, Updates: f.updates}), newTask("ok.sh", "t", 0), "ScriptDir is empty"},
		{"no log dir", NewProcessExecutor(ProcessConfig{ScriptDir: f.scripts, Updates: f.updates}), newTask("ok.sh", "t", 0), "LogDir is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.e.Execute(context.Background(), tt.t)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Execute error %v, want one containing %q", err, tt.want)
			}
		})
	}
	f.noUpdate(t, 50*time.Millisecond)
}

func TestProcessExecuteCancelledContext(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "ok.sh", "true")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tw := newTask("ok.sh", "t", 0)
	if _, err := f.e.Execute(ctx, tw); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute error %v, want context.Canceled", err)
	}
	if _, err := os.Stat(f.logOf(tw)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a log file was made for an attempt that did not start: %v", err)
	}
	f.noUpdate(t, 50*time.Millisecond)
}

func TestProcessLivesOnAfterContext(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "short.sh", "sleep 0.2; echo done")
	ctx, cancel := context.WithCancel(context.Background())
	tw := newTask("short.sh", "t", 0)
	if _, err := f.e.Execute(ctx, tw); err != nil {
		t.Fatal(err)
	}
	cancel()
	f.next(t)
	if u := f.next(t); u.Status != model.TaskSuccess {
		t.Fatalf("final %+v: the process did not outlive its Execute context", u)
	}
}

func TestProcessSameAttemptTwice(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "sleep.sh", "exec sleep 300")
	tw := newTask("sleep.sh", "t", 0)
	name, err := f.e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.e.Execute(context.Background(), tw)
	if err == nil || !strings.Contains(err.Error(), "already running as "+name) {
		t.Errorf("second Execute error %v, want it to say the attempt runs as %s", err, name)
	}

	// Of many Executes of one attempt at once, one starts it.
	var wg sync.WaitGroup
	var ok atomic.Int32
	tw2 := newTask("sleep.sh", "t2", 1)
	for range 10 {
		wg.Go(func() {
			if _, err := f.e.Execute(context.Background(), tw2); err == nil {
				ok.Add(1)
			} else if !strings.Contains(err.Error(), "already") {
				t.Errorf("Execute: %v", err)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 1 {
		t.Errorf("%d of 10 concurrent Executes of one attempt started it, want 1", n)
	}
	// Another attempt of the same task is another matter.
	tw.Task.Attempt = 2
	if _, err := f.e.Execute(context.Background(), tw); err != nil {
		t.Errorf("Execute of attempt 2: %v", err)
	}
}

// pidOf returns the pid of an execution name.
func pidOf(t *testing.T, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimPrefix(name, "pid:"))
	if err != nil {
		t.Fatalf("execution name %q: %v", name, err)
	}
	return pid
}

// gone reports whether process pid has ended (a zombie waiting for a
// parent that does not reap it counts as ended).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after %v", pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPid waits for a script to write a pid into file p.
func readPid(t *testing.T, p string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(p)
		if s := strings.TrimSpace(string(data)); err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("pid file %s: %v", p, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s after 10s", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProcessCheck(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "sleep.sh", "exec sleep 300")
	tw := newTask("sleep.sh", "task-check", 0)
	name, err := f.e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	running := f.next(t)
	tw.Task.ExecutionName = name

	other := func(change func(*model.Task)) model.TaskWithWorkflow {
		task := *tw.Task
		change(&task)
		return model.TaskWithWorkflow{Task: &task, Workflow: tw.Workflow}
	}
	tests := []struct {
		name  string
		t     model.TaskWithWorkflow
		known bool
	}{
		{"by execution name", tw, true},
		{"by task and attempt", other(func(t *model.Task) { t.ExecutionName = "" }), true},
		{"unknown execution name", other(func(t *model.Task) { t.ExecutionName = "pid:999999999" }), false},
		{"not a pid", other(func(t *model.Task) { t.ExecutionName = "projects/x/executions/y" }), false},
		{"same pid, other task", other(func(t *model.Task) { t.ID = "task-other" }), false},
		{"same pid, other attempt", other(func(t *model.Task) { t.Attempt = 2 }), false},
		{"other attempt, no name", other(func(t *model.Task) { t.Attempt = 2; t.ExecutionName = "" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, known, err := f.e.Check(context.Background(), tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if known != tt.known {
				t.Fatalf("known = %v, want %v", known, tt.known)
			}
			if known && !reflect.DeepEqual(u, running) {
				t.Errorf("Check update\n got %+v\nwant %+v", u, running)
			}
		})
	}

	// Once the process has ended, the attempt is unknown.
	if err := syscall.Kill(pidOf(t, name), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if u := f.next(t); u.Status != model.TaskFailed || u.Error != "killed by signal KILL" || *u.ExitCode != 137 {
		t.Fatalf("final %+v", u)
	}
	if _, known, err := f.e.Check(context.Background(), tw); known || err != nil {
		t.Errorf("Check after the end = known %v, %v; want unknown", known, err)
	}
	if _, _, err := f.e.Check(context.Background(), model.TaskWithWorkflow{}); err == nil {
		t.Error("Check without a task: no error")
	}
}

func TestProcessShutdownKillsProcessGroup(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) { c.KillGrace = 5 * time.Second })
	f.script(t, "tree.sh", `sleep 300 & echo $! > "$PIDFILE"; wait`)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	tw := newTask("tree.sh", "task-tree", 0)
	tw.Task.Params = map[string]any{"PIDFILE": pidFile}
	name, err := f.e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	if u := f.next(t); u.Status != model.TaskRunning {
		t.Fatalf("first update %+v", u)
	}
	child := readPid(t, pidFile)
	script := pidOf(t, name)

	start := time.Now()
	if err := f.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v: SIGTERM should have ended the group at once", d)
	}
	if !gone(script) {
		t.Errorf("script %d still runs after Shutdown", script)
	}
	waitGone(t, child, 2*time.Second)

	// What was sent before Shutdown returned may be in the channel; it is
	// the terminal update of the script, if anything.
	for len(f.updates) > 0 {
		u := <-f.updates
		if u.Status != model.TaskFailed || u.Error != "killed by signal TERM" || *u.ExitCode != 143 {
			t.Errorf("update during Shutdown %+v, want failed by SIGTERM", u)
		}
	}
	f.noUpdate(t, 300*time.Millisecond)

	if _, known, _ := f.e.Check(context.Background(), tw); known {
		t.Error("Check after Shutdown: known")
	}
	if _, err := f.e.Execute(context.Background(), newTask("tree.sh", "task-late", 0)); !errors.Is(err, ErrShutdown) {
		t.Errorf("Execute after Shutdown = %v, want ErrShutdown", err)
	}
	if err := f.e.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

func TestProcessShutdownEscalatesToKill(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) { c.KillGrace = 300 * time.Millisecond })
	// The ignored SIGTERM is inherited by the child too.
	f.script(t, "stubborn.sh", `trap '' TERM; sleep 300 & echo $! > "$PIDFILE"; wait; wait`)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	tw := newTask("stubborn.sh", "task-stubborn", 0)
	tw.Task.Params = map[string]any{"PIDFILE": pidFile}
	name, err := f.e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	f.next(t)
	child := readPid(t, pidFile)

	start := time.Now()
	if err := f.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("Shutdown took %v, want about the kill grace of 300ms", d)
	}
	if !gone(pidOf(t, name)) {
		t.Error("script still runs after Shutdown")
	}
	waitGone(t, child, 2*time.Second)
	for len(f.updates) > 0 {
		if u := <-f.updates; u.Error != "killed by signal KILL" {
			t.Errorf("update during Shutdown %+v, want killed by SIGKILL", u)
		}
	}
	f.noUpdate(t, 200*time.Millisecond)
}

func TestProcessShutdownContextCutsGrace(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) { c.KillGrace = time.Minute })
	f.script(t, "stubborn.sh", `trap '' TERM; echo $$ > "$PIDFILE"; sleep 300`)
	pidFile := filepath.Join(t.TempDir(), "script.pid")
	tw := newTask("stubborn.sh", "t", 0)
	tw.Task.Params = map[string]any{"PIDFILE": pidFile}
	name, err := f.e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	f.next(t)
	readPid(t, pidFile) // SIGTERM is ignored from now on
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := f.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("Shutdown took %v; want about 200ms, when the context ended", d)
	}
	if !gone(pidOf(t, name)) {
		t.Error("script still runs after Shutdown")
	}
}

func TestProcessShutdownNegativeGrace(t *testing.T) {
	f := newFixture(t, func(c *ProcessConfig) { c.KillGrace = -1 })
	f.script(t, "stubborn.sh", `trap '' TERM; echo $$ > "$PIDFILE"; sleep 300`)
	pidFile := filepath.Join(t.TempDir(), "script.pid")
	tw := newTask("stubborn.sh", "t", 0)
	tw.Task.Params = map[string]any{"PIDFILE": pidFile}
	if _, err := f.e.Execute(context.Background(), tw); err != nil {
		t.Fatal(err)
	}
	f.next(t)
	pid := readPid(t, pidFile)
	start := time.Now()
	if err := f.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v; a negative grace means SIGKILL at once", d)
	}
	if !gone(pid) {
		t.Error("script still runs after Shutdown")
	}
	select {
	case u := <-f.updates:
		if u.Error != "killed by signal KILL" {
			t.Errorf("final update %+v, want killed by SIGKILL", u)
		}
	default:
		t.Error("no terminal update, though the channel had room")
	}
}

func TestProcessShutdownWithoutReader(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "sleep.sh"), "#!/bin/sh\nexec sleep 300\n", 0o755)
	writeFile(t, filepath.Join(root, "quick.sh"), "#!/bin/sh\ntrue\n", 0o755)
	updates := make(chan StatusUpdate) // unbuffered, and nobody reads it
	e := NewProcessExecutor(ProcessConfig{ScriptDir: root, LogDir: filepath.Join(root, "logs"), Updates: updates, KillGrace: 5 * time.Second})
	var pids []int
	for i := range 5 {
		name, err := e.Execute(context.Background(), newTask("sleep.sh", fmt.Sprintf("sleep-%d", i), i))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pidOf(t, name))
		name, err = e.Execute(context.Background(), newTask("quick.sh", fmt.Sprintf("quick-%d", i), i))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pidOf(t, name))
	}
	start := time.Now()
	done := make(chan error)
	go func() { done <- e.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown blocks on an updates channel nobody reads")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v; SIGTERM ends sleep at once", d)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
	select {
	case u := <-updates:
		t.Errorf("update after Shutdown: %+v", u)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestProcessShutdownConcurrentWithExecute(t *testing.T) {
	f := newFixture(t, nil)
	f.script(t, "sleep.sh", "exec sleep 300")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var pids []int
	for i := range 20 {
		wg.Go(func() {
			name, err := f.e.Execute(context.Background(), newTask("sleep.sh", fmt.Sprintf("t%d", i), i))
			if err == nil {
				pid, _ := strconv.Atoi(strings.TrimPrefix(name, "pid:"))
				mu.Lock()
				pids = append(pids, pid)
				mu.Unlock()
			} else if !errors.Is(err, ErrShutdown) {
				t.Errorf("Execute: %v", err)
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := f.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d started around Shutdown still runs", pid)
		}
	}
}

func TestProcessManyConcurrent(t *testing.T) {
	const n = 200
	f := newFixture(t, nil)
	f.script(t, "quick.sh", `echo "task $ORK_TASK_INDEX"; exit $((ORK_TASK_INDEX % 2))`)

	type seen struct {
		running, terminal int
		order             []model.TaskStatus
		last              StatusUpdate
	}
	results := make(map[string]*seen)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		terminals := 0
		for terminals < n {
			u := <-f.updates
			s := results[u.TaskID]
			if s == nil {
				s = &seen{}
				results[u.TaskID] = s
			}
			s.order = append(s.order, u.Status)
			if u.Status.Terminal() {
				s.terminal++
				s.last = u
				terminals++
			} else {
				s.running++
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tw := newTask("quick.sh", fmt.Sprintf("task-%03d", i), i)
			tw.Workflow.TaskCount = n
			if _, err := f.e.Execute(context.Background(), tw); err != nil {
				t.Errorf("Execute %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	select {
	case <-collected:
	case <-time.After(15 * time.Second):
		t.Fatal("not every task reported an end within 15s")
	}
	f.noUpdate(t, 100*time.Millisecond)

	if len(results) != n {
		t.Fatalf("updates for %d tasks, want %d", len(results), n)
	}
	for i := range n {
		id := fmt.Sprintf("task-%03d", i)
		s := results[id]
		if s == nil {
			t.Errorf("%s: no update", id)
			continue
		}
		if s.running != 1 || s.terminal != 1 || s.order[0] != model.TaskRunning {
			t.Errorf("%s: updates %v, want running then one terminal", id, s.order)
		}
		wantCode := i % 2
		if s.last.ExitCode == nil || *s.last.ExitCode != wantCode {
			t.Errorf("%s: exit code %s, want %d", id, ptrString(s.last.ExitCode), wantCode)
		}
		tw := newTask("quick.sh", id, i)
		if got, want := f.readLog(t, tw), fmt.Sprintf("task %d\n", i); got != want {
			t.Errorf("%s: log %q, want %q", id, got, want)
		}
	}
}

func TestProcessParentDeath(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sleeper.sh"), "#!/bin/sh\nexec sleep 300\n", 0o755)
	helper := osexec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=parent-death", "ORK_EXEC_TEST_DIR="+dir)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Wait()
	defer helper.Process.Kill()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var name string
	select {
	case name = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper did not start the script within 10s")
	}
	pid := pidOf(t, name)
	// Whatever happens, do not leave the sleep behind.
	defer syscall.Kill(-pid, syscall.SIGKILL)
	if gone(pid) {
		t.Fatalf("script %d is not running", pid)
	}

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	waitGone(t, pid, 3*time.Second)
}

func TestLogPath(t *testing.T) {
	tests := []struct {
		runID, name string
		index, att  int
		want        string // relative to /logs, or the error
		bad         bool
	}{
		{"r1", "job.sh", 0, 1, "r1/job.sh.0.1.log", false},
		{"r1", "etl/load.sh", 12, 3, "r1/etl/load.sh.12.3.log", false},
		{"r1", "a//b.sh", 0, 1, "r1/a/b.sh.0.1.log", false},
		{"", "job.sh", 0, 1, "cannot name a log directory", true},
		{"..", "job.sh", 0, 1, "cannot name a log directory", true},
		{"a/b", "job.sh", 0, 1, "contains '/'", true},
		{"r1", "", 0, 1, "task name is empty", true},
		{"r1", "/etc/passwd", 0, 1, "is absolute", true},
		{"r1", "../x", 0, 1, "'..' is not allowed", true},
		{"r1", "a/../../x", 0, 1, "'..' is not allowed", true},
		{"r1", ".", 0, 1, "names no file", true},
	}
	for _, tt := range tests {
		t.Run(tt.runID+"/"+tt.name, func(t *testing.T) {
			got, err := LogPath("/logs", tt.runID, tt.name, tt.index, tt.att)
			if tt.bad {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("LogPath = %q, %v; want an error containing %q", got, err, tt.want)
				}
				return
			}
			if err != nil || got != filepath.Join("/logs", tt.want) {
				t.Errorf("LogPath = %q, %v; want %q", got, err, filepath.Join("/logs", tt.want))
			}
		})
	}
}

func TestLogPrefixAndAttempt(t *testing.T) {
	tests := []struct {
		runID, name string
		index       int
		dir, prefix string // dir relative to /logs
	}{
		{"r1", "job.sh", 0, "r1", "job.sh.0."},
		{"r1", "etl/load.sh", 12, "r1/etl", "load.sh.12."},
		{"r1", "a//b.sh", 0, "r1/a", "b.sh.0."},
		{"r1", "x/", 3, "r1/x", ".3."},
	}
	for _, tt := range tests {
		dir, prefix, err := LogPrefix("/logs", tt.runID, tt.name, tt.index)
		if err != nil || dir != filepath.Join("/logs", filepath.FromSlash(tt.dir)) || prefix != tt.prefix {
			t.Errorf("LogPrefix(%q, %q, %d) = %q, %q, %v; want %q, %q", tt.runID, tt.name, tt.index, dir, prefix, err, filepath.Join("/logs", tt.dir), tt.prefix)
			continue
		}
		for _, att := range []int{1, 2, 10, 123} {
			p, err := LogPath("/logs", tt.runID, tt.name, tt.index, att)
			if err != nil || filepath.Dir(p) != dir {
				t.Errorf("LogPath(%q, %q, %d, %d) = %q, %v; want a file in %q", tt.runID, tt.name, tt.index, att, p, err, dir)
				continue
			}
			if got, ok := LogAttempt(prefix, filepath.Base(p)); !ok || got != att {
				t.Errorf("LogAttempt(%q, %q) = %d, %v; want %d, true", prefix, filepath.Base(p), got, ok, att)
			}
		}
	}
	// LogPrefix refuses what LogPath refuses.
	for _, bad := range [][2]string{{"", "job.sh"}, {"a/b", "job.sh"}, {"r1", ""}, {"r1", "/etc/passwd"}, {"r1", "../x"}, {"r1", "."}} {
		if dir, prefix, err := LogPrefix("/logs", bad[0], bad[1], 0); err == nil {
			t.Errorf("LogPrefix(%q, %q) = %q, %q; want an error", bad[0], bad[1], dir, prefix)
		}
	}

	for _, tt := range []struct {
		base string
		att  int
		ok   bool
	}{
		{"job.sh.0.1.log", 1, true},
		{"job.sh.0.0.log", 0, true},
		{"job.sh.0.42.log", 42, true},
		{"job.sh.0..log", 0, false},                        // no attempt
		{"job.sh.0.01.log", 0, false},                      // not as LogPath writes 1
		{"job.sh.0.+1.log", 0, false},                      // a sign
		{"job.sh.0.-1.log", 0, false},                      // a sign
		{"job.sh.0.1.log.tmp", 0, false},                   // not .log
		{"job.sh.0.1", 0, false},                           // no .log
		{"job.sh.1.1.log", 0, false},                       // another index
		{"xjob.sh.0.1.log", 0, false},                      // another name
		{"job.sh.0.1a.log", 0, false},                      // not a number
		{"job.sh.0.99999999999999999999999.log", 0, false}, // too large
	} {
		if att, ok := LogAttempt("job.sh.0.", tt.base); att != tt.att || ok != tt.ok {
			t.Errorf("LogAttempt(%q) = %d, %v; want %d, %v", tt.base, att, ok, tt.att, tt.ok)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		dir, p string
		want   bool
	}{
		{"/s", "/s/a.sh", true},
		{"/s", "/s/sub/a.sh", true},
		{"/s", "/s", false},
		{"/s", "/", false},
		{"/s", "/s2/a.sh", false},
		{"/s", "/other/a.sh", false},
		{"/s", "/s/..x", true}, // a file named "..x" is inside
		{"/s/sub", "/s/a.sh", false},
	}
	for _, tt := range tests {
		if got := within(tt.dir, tt.p); got != tt.want {
			t.Errorf("within(%q, %q) = %v, want %v", tt.dir, tt.p, got, tt.want)
		}
	}
}

func TestParamString(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, ""},
		{"text", "text"},
		{"", ""},
		{true, "true"},
		{false, "false"},
		{float64(20260101), "20260101"},
		{float64(0), "0"},
		{float64(-3), "-3"},
		{1e21, "1000000000000000000000"},
		{0.5, "0.5"},
		{1.5e-7, "1.5e-07"},
		{123456.789, "123456.789"},
		{float32(2.5), "2.5"},
		{42, "42"},
		{int64(-9), "-9"},
		{uint64(7), "7"},
		{json.Number("1e3"), "1e3"},
		{map[string]any{"z": 1, "a": "<b>"}, `{"a":"<b>","z":1}`},
		{[]any{}, "[]"},
		{map[string]any{}, "{}"},
	}
	for _, tt := range tests {
		got, err := paramString(tt.v)
		if err != nil || got != tt.want {
			t.Errorf("paramString(%#v) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
	if _, err := paramString(func() {}); err == nil {
		t.Error("paramString(func) gave no error")
	}
}

func TestSignalName(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{
		syscall.SIGTERM: "TERM", syscall.SIGKILL: "KILL", syscall.SIGSEGV: "SEGV", syscall.Signal(63): "63",
	} {
		if got := signalName(sig); got != want {
			t.Errorf("signalName(%d) = %q, want %q", sig, got, want)
		}
	}
}

// BenchmarkProcessExecute measures starting, waiting for and reporting
// short processes, many at a time.
func BenchmarkProcessExecute(b *testing.B) {
	for _, bench := range []struct{ name, script string }{
		{"true", "#!/bin/true\n"},
		{"sh", "#!/bin/sh\necho \"$ORK_TASK_ID\"\n"},
	} {
		b.Run(bench.name, func(b *testing.B) {
			root := b.TempDir()
			if err := os.WriteFile(filepath.Join(root, "job"), []byte(bench.script), 0o755); err != nil {
				b.Fatal(err)
			}
			updates := make(chan StatusUpdate, 4096)
			e := NewProcessExecutor(ProcessConfig{ScriptDir: root, LogDir: filepath.Join(root, "logs"), Updates: updates})
			defer e.Shutdown(context.Background())

			ended := make(chan struct{})
			go func() {
				defer close(ended)
				for n := 0; n < b.N; {
					u := <-updates
					if u.Status.Terminal() {
						if u.Status != model.TaskSuccess {
							b.Errorf("update %+v", u)
						}
						n++
					}
				}
			}()
			var seq atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(seq.Add(1))
					tw := newTask("job", "task-"+strconv.Itoa(i), i)
					if _, err := e.Execute(context.Background(), tw); err != nil {
						b.Fatal(err)
					}
				}
			})
			<-ended
			b.StopTimer()
		})
	}
}
