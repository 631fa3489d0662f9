//go:build unix

// End-to-end tests of the ork CLI: the real binary, built once, spawned in
// a fresh project directory per test, the way a person uses it.

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// orkBin is the ork binary built by TestMain.
var orkBin string

// releaseEnv and releaseTags are how the Makefile builds ork (BUILD_ENV,
// BUILD_TAGS): TestBuildIsStatic checks that both agree.
const (
	releaseEnv  = "CGO_ENABLED=0"
	releaseTags = "urfave_cli_no_docs"
)

// buildTags are the further build tags of orkBin: those of the test binary (see
// the tagged test files), so that each build's tests run its own ork.
var buildTags string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ork-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	orkBin = filepath.Join(dir, "ork")
	// Built as `make build` builds it (see the Makefile): static, without
	// cgo nor urfave/cli's docs.
	tags := releaseTags
	if buildTags != "" {
		tags += "," + buildTags
	}
	build := osexec.Command("go", "build", "-o", orkBin, "-tags", tags, "..")
	build.Env = append(os.Environ(), releaseEnv)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		return 1
	}
	return m.Run()
}

// cmdTimeout bounds every command a test runs.
const cmdTimeout = 60 * time.Second

// orkEnv is the environment of the ork processes: ours, without any ORK_*
// variable (ORK_DIR, ORK_SCRIPT_DIR, ...) that would change what they do.
func orkEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORK_") {
			env = append(env, kv)
		}
	}
	return env
}

func orkCmd(ctx context.Context, dir string, args ...string) *osexec.Cmd {
	cmd := osexec.CommandContext(ctx, orkBin, args...)
	cmd.Dir = dir
	cmd.Env = orkEnv()
	return cmd
}

// run runs ork with args in dir and returns what it printed and its exit
// code.
func run(t *testing.T, dir string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runWithin(t, cmdTimeout, dir, args...)
}

// runWithin is run for a command that must end within timeout.
func runWithin(t *testing.T, timeout time.Duration, dir string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runEnvWithin(t, timeout, dir, nil, args...)
}

// runEnvWithin is runWithin with the variables env added to the
// environment of ork.
func runEnvWithin(t *testing.T, timeout time.Duration, dir string, env []string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := orkCmd(ctx, dir, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ork %s: still running after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, out.String(), errb.String())
	}
	var ee *osexec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exitCode = ee.ExitCode()
	default:
		t.Fatalf("ork %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), exitCode
}

// mustRun runs ork and fails the test unless it exits 0.
func mustRun(t *testing.T, dir string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := run(t, dir, args...)
	if code != 0 {
		t.Fatalf("ork %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

// mustFail runs ork and fails the test unless it exits non-zero.
func mustFail(t *testing.T, dir string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	stdout, stderr, code := run(t, dir, args...)
	if code == 0 {
		t.Fatalf("ork %s: exit 0, want failure\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout, stderr)
	}
	return stdout, stderr, code
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := nonEmptyLines(s)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// runID returns the run id that trigger printed as its last stdout line.
func runID(t *testing.T, stdout string) string {
	t.Helper()
	id := strings.TrimSpace(lastLine(stdout))
	if !uuidRE.MatchString(id) {
		t.Fatalf("last line of trigger's stdout is %q, want a run id (UUID); stdout:\n%s", id, stdout)
	}
	return id
}

// wantOneLineError checks that stderr is exactly one non-empty line, an ork
// error, and returns it.
func wantOneLineError(t *testing.T, what, stderr string) string {
	t.Helper()
	lines := nonEmptyLines(stderr)
	if len(lines) != 1 {
		t.Fatalf("%s: stderr has %d non-empty lines, want 1:\n%s", what, len(lines), stderr)
	}
	if !strings.HasPrefix(lines[0], "ork: ") {
		t.Errorf("%s: stderr %q does not start with \"ork: \"", what, lines[0])
	}
	return lines[0]
}

func decodeJSON(t *testing.T, what, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("%s: not the JSON wanted (%v):\n%s", what, err, data)
	}
}

func writeFile(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile keeps the mode of an existing file; make it the one asked.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeScript writes an executable script scripts/name in the project.
func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "scripts", name), body, 0o755)
}

const helloScript = "#!/bin/sh\necho \"task $ORK_TASK_INDEX of $ORK_TASK_COUNT\"\n"

// newProject makes an initialized project in a fresh temp dir.
func newProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mustRun(t, dir, "init")
	if st, err := os.Stat(filepath.Join(dir, ".ork")); err != nil || !st.IsDir() {
		t.Fatalf("ork init made no .ork directory: %v", err)
	}
	return dir
}

// newHelloProject makes a project with scripts/hello.sh and the workflow
// hello running it as 3 tasks.
func newHelloProject(t *testing.T) string {
	t.Helper()
	dir := newProject(t)
	writeScript(t, dir, "hello.sh", helloScript)
	mustRun(t, dir, "create-workflow", "--name", "hello", "--job-name", "hello.sh", "--executor", "process", "--task-count", "3")
	return dir
}

// jsonRun and jsonTask hold the fields the tests look at; keys are
// checked separately, since encoding/json matches names case-insensitively.
type jsonRun struct {
	ID           string `json:"id"`
	WorkflowID   string `json:"workflow_id"`
	WorkflowName string `json:"workflow_name"`
	Status       string `json:"status"`
	Error        string `json:"error"`
}

type jsonTask struct {
	TaskIndex int    `json:"task_index"`
	Status    string `json:"status"`
	Attempt   int    `json:"attempt"`
	ExitCode  *int   `json:"exit_code"`
	Error     string `json:"error"`
}

type jsonWorkflow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	JobName   string `json:"job_name"`
	TaskCount int    `json:"task_count"`
}

// wantKeys checks that the JSON object obj has every key of want.
func wantKeys(t *testing.T, what string, obj map[string]json.RawMessage, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := obj[k]; !ok {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			t.Errorf("%s: no key %q; keys are %v", what, k, keys)
		}
	}
}

func runStatus(t *testing.T, dir, id string) jsonRun {
	t.Helper()
	out, _ := mustRun(t, dir, "status", id, "--json")
	var r jsonRun
	decodeJSON(t, "status "+id+" --json", out, &r)
	return r
}

func runTasks(t *testing.T, dir, id string) []jsonTask {
	t.Helper()
	out, _ := mustRun(t, dir, "tasks", id, "--json")
	var ts []jsonTask
	decodeJSON(t, "tasks "+id+" --json", out, &ts)
	return ts
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestE2ESession is the first session of a new user: init, a script, a
// workflow of 3 tasks, a run, and every way to look at it.
func TestE2ESession(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)

	stdout, stderr := mustRun(t, dir, "trigger", "hello", "--wait")
	id := runID(t, stdout)
	if !strings.Contains(stderr, id) || !strings.Contains(stderr, "success") {
		t.Errorf("trigger --wait: stderr does not report the run's success:\n%s", stderr)
	}

	// status: a table with the run first.
	out, _ := mustRun(t, dir, "status")
	lines := nonEmptyLines(out)
	if len(lines) < 2 {
		t.Fatalf("status: want a header and a run, got:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != id || f[1] != "hello" || f[2] != "success" {
		t.Errorf("status: first row is %q, want run %s of hello with status success", lines[1], id)
	}

	// status --json: an array, the run first, snake_case names.
	out, _ = mustRun(t, dir, "status", "--json")
	var raw []map[string]json.RawMessage
	decodeJSON(t, "status --json", out, &raw)
	if len(raw) != 1 {
		t.Fatalf("status --json: %d runs, want 1:\n%s", len(raw), out)
	}
	wantKeys(t, "status --json", raw[0], "id", "workflow_id", "workflow_name", "status", "created_at", "started_at", "finished_at")
	var runs []jsonRun
	decodeJSON(t, "status --json", out, &runs)
	if r := runs[0]; r.ID != id || r.Status != "success" || r.WorkflowName != "hello" || r.WorkflowID == "" {
		t.Errorf("status --json: first run is %+v, want id %s, workflow hello, status success", r, id)
	}

	// status RUN --json: one object.
	out, _ = mustRun(t, dir, "status", id, "--json")
	var one map[string]json.RawMessage
	decodeJSON(t, "status RUN --json", out, &one)
	wantKeys(t, "status RUN --json", one, "id", "workflow_id", "workflow_name", "status", "created_at")
	if r := runStatus(t, dir, id); r.ID != id || r.Status != "success" {
		t.Errorf("status RUN --json: %+v, want id %s with status success", r, id)
	}

	// tasks RUN: 3 rows, all success.
	out, _ = mustRun(t, dir, "tasks", id)
	lines = nonEmptyLines(out)
	if len(lines) != 4 {
		t.Fatalf("tasks: want a header and 3 tasks, got:\n%s", out)
	}
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 3 || f[1] != fmt.Sprint(i) || f[2] != "success" {
			t.Errorf("tasks: row %d is %q, want index %d with status success", i, l, i)
		}
	}

	// tasks RUN --json: 3 objects, indexes 0..2, each succeeded at once.
	out, _ = mustRun(t, dir, "tasks", id, "--json")
	var rawTasks []map[string]json.RawMessage
	decodeJSON(t, "tasks --json", out, &rawTasks)
	for i, rt := range rawTasks {
		wantKeys(t, fmt.Sprintf("tasks --json [%d]", i), rt, "id", "run_id", "task_index", "status", "attempt", "exit_code", "created_at")
	}
	ts := runTasks(t, dir, id)
	if len(ts) != 3 {
		t.Fatalf("tasks --json: %d tasks, want 3:\n%s", len(ts), out)
	}
	for i, tk := range ts {
		if tk.TaskIndex != i || tk.Status != "success" || tk.Attempt != 1 || tk.ExitCode == nil || *tk.ExitCode != 0 {
			t.Errorf("tasks --json [%d]: %+v, want task_index %d, success, attempt 1, exit_code 0", i, tk, i)
		}
	}

	// The logs: one file per task, each with its own line.
	logDir := filepath.Join(dir, ".ork", "logs", id)
	var got []string
	err := filepath.WalkDir(logDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		got = append(got, strings.TrimSpace(string(readFile(t, p))))
		return nil
	})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	slices.Sort(got)
	if want := []string{"task 0 of 3", "task 1 of 3", "task 2 of 3"}; !slices.Equal(got, want) {
		t.Errorf("log files under %s hold %q, want %q", logDir, got, want)
	}

	// list-workflows --json.
	out, _ = mustRun(t, dir, "list-workflows", "--json")
	var rawWs []map[string]json.RawMessage
	decodeJSON(t, "list-workflows --json", out, &rawWs)
	for i, w := range rawWs {
		wantKeys(t, fmt.Sprintf("list-workflows --json [%d]", i), w, "id", "name", "job_name", "executor_type", "task_count", "created_at")
	}
	var ws []jsonWorkflow
	decodeJSON(t, "list-workflows --json", out, &ws)
	if len(ws) != 1 || ws[0].Name != "hello" || ws[0].JobName != "hello.sh" || ws[0].TaskCount != 3 || ws[0].ID == "" {
		t.Errorf("list-workflows --json: %+v, want hello with job_name hello.sh and task_count 3", ws)
	}
	if ws[0].ID != runs[0].WorkflowID {
		t.Errorf("workflow id %s, but the run says workflow_id %s", ws[0].ID, runs[0].WorkflowID)
	}
}

// TestE2ERunsNewestFirst checks the order of `ork status` and its
// --workflow and --limit filters.
func TestE2ERunsNewestFirst(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	mustRun(t, dir, "create-workflow", "--name", "other", "--job-name", "hello.sh")

	out, _ := mustRun(t, dir, "trigger", "hello", "--wait")
	first := runID(t, out)
	out, _ = mustRun(t, dir, "trigger", "other", "--wait")
	second := runID(t, out)
	out, _ = mustRun(t, dir, "trigger", "hello", "--wait")
	third := runID(t, out)

	ids := func(args ...string) []string {
		t.Helper()
		out, _ := mustRun(t, dir, append([]string{"status", "--json"}, args...)...)
		var runs []jsonRun
		decodeJSON(t, "status --json", out, &runs)
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if got, want := ids(), []string{third, second, first}; !slices.Equal(got, want) {
		t.Errorf("status --json: runs %q, want newest first %q", got, want)
	}
	if got, want := ids("--workflow", "other"), []string{second}; !slices.Equal(got, want) {
		t.Errorf("status --workflow other: runs %q, want %q", got, want)
	}
	if got, want := ids("--workflow", "hello"), []string{third, first}; !slices.Equal(got, want) {
		t.Errorf("status --workflow hello: runs %q, want %q", got, want)
	}
	if got, want := ids("--limit", "1"), []string{third}; !slices.Equal(got, want) {
		t.Errorf("status --limit 1: runs %q, want %q", got, want)
	}
	// A workflow that does not exist is an error, not an empty list.
	if stdout, stderr, _ := mustFail(t, dir, "status", "--json", "--workflow", "nobody"); stdout != "" || !strings.Contains(stderr, `no such workflow "nobody"`) {
		t.Errorf("status --workflow nobody: stdout %q, stderr %q, want only an error saying there is no such workflow", stdout, stderr)
	}
}

// TestE2EFailingTask checks that a task's exit status fails its run, and
// that the failure names the task.
func TestE2EFailingTask(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "flaky.sh", "#!/bin/sh\nif [ \"$ORK_TASK_INDEX\" = 1 ]; then echo boom >&2; exit 3; fi\necho ok\n")
	mustRun(t, dir, "create-workflow", "--name", "flaky", "--job-name", "flaky.sh", "--task-count", "3")

	stdout, stderr, code := mustFail(t, dir, "trigger", "flaky", "--wait")
	if code != 1 {
		t.Errorf("trigger --wait of a failing run: exit %d, want 1", code)
	}
	id := runID(t, stdout)
	last := lastLine(stderr)
	if !strings.HasPrefix(last, "ork: ") || !strings.Contains(last, "failed") || !strings.Contains(last, "flaky.sh[1]") || !strings.Contains(last, id) {
		t.Errorf("trigger --wait: last stderr line %q, want an error naming run %s, \"failed\" and the task flaky.sh[1]", last, id)
	}
	if strings.Contains(last, "flaky.sh[0]") || strings.Contains(last, "flaky.sh[2]") {
		t.Errorf("trigger --wait: last stderr line %q names tasks that succeeded", last)
	}

	r := runStatus(t, dir, id)
	if r.Status != "failed" || !strings.Contains(r.Error, "flaky.sh[1]") {
		t.Errorf("status --json: %+v, want status failed with an error naming flaky.sh[1]", r)
	}
	ts := runTasks(t, dir, id)
	if len(ts) != 3 {
		t.Fatalf("tasks --json: %d tasks, want 3", len(ts))
	}
	for i, tk := range ts {
		wantStatus, wantExit := "success", 0
		if i == 1 {
			wantStatus, wantExit = "failed", 3
		}
		if tk.TaskIndex != i || tk.Status != wantStatus || tk.ExitCode == nil || *tk.ExitCode != wantExit {
			t.Errorf("tasks --json [%d]: %+v, want task_index %d, status %s, exit_code %d", i, tk, i, wantStatus, wantExit)
		}
	}
	log := readFile(t, filepath.Join(dir, ".ork", "logs", id, "flaky.sh.1.1.log"))
	if !strings.Contains(string(log), "boom") {
		t.Errorf("log of the failed task is %q, want its stderr \"boom\"", log)
	}
}

// TestE2EBadWorkflowRefused checks that create-workflow refuses a job name
// that leaves the script directory and an unknown executor, and writes
// nothing.
func TestE2EBadWorkflowRefused(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--job-name", "../evil.sh"}, []string{"'..'", "../evil.sh"}},
		{[]string{"--job-name", "sub/../../evil.sh"}, []string{"'..'"}},
		{[]string{"--job-name", "/bin/true"}, []string{"/bin/true", "absolute"}},
		{[]string{"--job-name", "ok.sh", "-e", "nope"}, append([]string{`"nope"`}, model.ExecutorTypes...)},
	} {
		args := append([]string{"create-workflow", "--name", "x"}, tc.args...)
		_, stderr, _ := mustFail(t, dir, args...)
		line := wantOneLineError(t, strings.Join(args, " "), stderr)
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("ork %s: error %q does not mention %s", strings.Join(args, " "), line, w)
			}
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, ".ork", "workflows"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("refused workflows left files behind: %v", names)
	}
	out, _ := mustRun(t, dir, "list-workflows", "--json")
	var ws []jsonWorkflow
	decodeJSON(t, "list-workflows --json", out, &ws)
	if len(ws) != 0 {
		t.Errorf("list-workflows --json: %+v, want none", ws)
	}
}

// TestE2EScriptProblems checks that a missing or non-executable script
// fails its task with an error that says what to do.
func TestE2EScriptProblems(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeFile(t, filepath.Join(dir, "scripts", "noexec.sh"), "#!/bin/sh\necho hi\n", 0o644)
	for _, tc := range []struct {
		name, job, want string
	}{
		{"missing", "missing.sh", "not found"},
		{"noexec", "noexec.sh", "chmod"},
	} {
		_, stderr := mustRun(t, dir, "create-workflow", "--name", tc.name, "--job-name", tc.job)
		if tc.name == "missing" && !strings.Contains(stderr, "does not exist") {
			t.Errorf("create-workflow of a missing script: stderr %q, want a warning that it does not exist", stderr)
		}
		stdout, stderr, code := mustFail(t, dir, "trigger", tc.name, "--wait")
		if code != 1 {
			t.Errorf("trigger %s --wait: exit %d, want 1\nstderr:\n%s", tc.name, code, stderr)
		}
		id := runID(t, stdout)
		if r := runStatus(t, dir, id); r.Status != "failed" {
			t.Errorf("run of %s: status %q, want failed", tc.name, r.Status)
		}
		ts := runTasks(t, dir, id)
		if len(ts) != 1 {
			t.Fatalf("tasks of %s: %d, want 1", tc.name, len(ts))
		}
		if ts[0].Status != "failed" || !strings.Contains(ts[0].Error, tc.want) || !strings.Contains(ts[0].Error, tc.job) {
			t.Errorf("task of %s: %+v, want failed with an error naming %s and saying %q", tc.name, ts[0], tc.job, tc.want)
		}
	}
}

// TestE2EHandWrittenWorkflow checks that a workflow file written by hand,
// without id or name, works and is never rewritten.
func TestE2EHandWrittenWorkflow(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "hello.sh", helloScript)
	path := filepath.Join(dir, ".ork", "workflows", "hand.json")
	const hand = "{\n  \"job_name\": \"hello.sh\",\n  \"task_count\": 2\n}\n"
	writeFile(t, path, hand, 0o644)
	st0, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	list := func() jsonWorkflow {
		t.Helper()
		out, _ := mustRun(t, dir, "list-workflows", "--json")
		var ws []jsonWorkflow
		decodeJSON(t, "list-workflows --json", out, &ws)
		if len(ws) != 1 || ws[0].Name != "hand" || ws[0].JobName != "hello.sh" || ws[0].TaskCount != 2 {
			t.Fatalf("list-workflows --json: %+v, want the workflow hand (hello.sh, 2 tasks)", ws)
		}
		return ws[0]
	}
	w1, w2 := list(), list()
	if w1.ID == "" || w1.ID != w2.ID {
		t.Errorf("hand-written workflow ids %q then %q, want one stable non-empty id", w1.ID, w2.ID)
	}

	out, _ := mustRun(t, dir, "trigger", "hand", "--wait")
	id := runID(t, out)
	r := runStatus(t, dir, id)
	if r.Status != "success" || r.WorkflowName != "hand" || r.WorkflowID != w1.ID {
		t.Errorf("run of hand: %+v, want success of workflow hand with workflow_id %s", r, w1.ID)
	}
	if got := list(); got.ID != w1.ID {
		t.Errorf("workflow id after a run is %q, want %q", got.ID, w1.ID)
	}
	if got := string(readFile(t, path)); got != hand {
		t.Errorf("hand.json was rewritten:\n%s\nwant:\n%s", got, hand)
	}
	if st1, err := os.Stat(path); err != nil || !os.SameFile(st0, st1) || !st1.ModTime().Equal(st0.ModTime()) {
		t.Errorf("hand.json was replaced or touched (err %v)", err)
	}
}

// TestE2EBrokenWorkflowFile checks that a workflow file that does not parse
// is reported with its line and column, left alone, and stops nothing else.
func TestE2EBrokenWorkflowFile(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	// Line 3 has a second comma where a key must start.
	const broken = "{\n  \"job_name\": \"hello.sh\",\n  \"task_count\": 2,,\n  \"description\": \"x\"\n}\n"
	line3 := strings.Split(broken, "\n")[2]
	col := strings.Index(line3, ",,") + 2 // 1-based column of the second comma
	wantPos := fmt.Sprintf("broken.json: line 3, column %d", col)
	bpath := filepath.Join(dir, ".ork", "workflows", "broken.json")
	writeFile(t, bpath, broken, 0o644)
	relBroken := filepath.Join(".ork", "workflows", "broken.json")

	// validate
	_, stderr, code := mustFail(t, dir, "validate", relBroken)
	if code != 1 {
		t.Errorf("validate broken.json: exit %d, want 1", code)
	}
	if !strings.Contains(stderr, wantPos) {
		t.Errorf("validate broken.json: stderr %q, want %q", stderr, wantPos)
	}
	out, _ := mustRun(t, dir, "validate", filepath.Join(".ork", "workflows", "hello.json"))
	if !strings.Contains(out, "hello.json: ok") {
		t.Errorf("validate hello.json: stdout %q, want it ok", out)
	}
	_, stderr, _ = mustFail(t, dir, "validate", filepath.Join(".ork", "workflows", "hello.json"), relBroken)
	if !strings.Contains(stderr, wantPos) || strings.Contains(stderr, "hello.json:") {
		t.Errorf("validate hello.json broken.json: stderr %q, want only broken.json reported", stderr)
	}

	// list-workflows: the good ones, and the broken file reported.
	for _, args := range [][]string{{"list-workflows"}, {"list-workflows", "--json"}} {
		out, stderr, _ := mustFail(t, dir, args...)
		if !strings.Contains(stderr, wantPos) {
			t.Errorf("%s: stderr %q, want %q", strings.Join(args, " "), stderr, wantPos)
		}
		if args[len(args)-1] == "--json" {
			var ws []jsonWorkflow
			decodeJSON(t, "list-workflows --json", out, &ws)
			if len(ws) != 1 || ws[0].Name != "hello" {
				t.Errorf("list-workflows --json: %+v, want hello only", ws)
			}
		} else if !strings.Contains(out, "hello") {
			t.Errorf("list-workflows: stdout %q, want hello listed", out)
		}
	}

	// trigger broken fails with the position; nothing was created.
	_, stderr, _ = mustFail(t, dir, "trigger", "broken")
	if line := wantOneLineError(t, "trigger broken", stderr); !strings.Contains(line, wantPos) {
		t.Errorf("trigger broken: stderr %q, want %q", line, wantPos)
	}
	// The other workflows still run, on a scheduler that sees the broken file.
	out, _ = mustRun(t, dir, "trigger", "hello", "--wait")
	id := runID(t, out)
	if r := runStatus(t, dir, id); r.Status != "success" {
		t.Errorf("run of hello beside a broken file: status %q, want success", r.Status)
	}
	out, _ = mustRun(t, dir, "status", "--json")
	var runs []jsonRun
	decodeJSON(t, "status --json", out, &runs)
	if len(runs) != 1 {
		t.Errorf("status --json: %d runs, want only the run of hello", len(runs))
	}
	if got := string(readFile(t, bpath)); got != broken {
		t.Errorf("broken.json was changed:\n%s\nwant:\n%s", got, broken)
	}

	// A typo in a field name is an error naming the field and where it is.
	typo := filepath.Join(dir, "typo.json")
	writeFile(t, typo, "{\n  \"job_name\": \"hello.sh\",\n  \"task_cont\": 2\n}\n", 0o644)
	_, stderr, code = mustFail(t, dir, "validate", "typo.json")
	if code != 1 || !strings.Contains(stderr, "task_cont") || !strings.Contains(stderr, "typo.json: line 3, column 3") {
		t.Errorf("validate typo.json: exit %d, stderr %q; want 1 and an error naming task_cont at line 3, column 3", code, stderr)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bgSchedulerTimeout bounds the life of a background `ork run`, in case a
// test neither stops nor kills it.
const bgSchedulerTimeout = 3 * time.Minute

// bgScheduler is an `ork run` process in the background of a test.
type bgScheduler struct {
	dir    string
	cmd    *osexec.Cmd
	out    *syncBuffer   // its stdout and stderr
	exited chan struct{} // closed once the process has been waited for
	err    error         // what Wait returned; read after exited is closed
}

// startScheduler starts `ork run args...` in dir, in a process group of its
// own (so that a signal meant for the test never reaches it, and it is
// killed alone). If it still runs when the test ends, it gets SIGTERM, and
// SIGKILL 15s later.
func startScheduler(t *testing.T, dir string, args ...string) *bgScheduler {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bgSchedulerTimeout)
	s := &bgScheduler{dir: dir, out: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = orkCmd(ctx, dir, append([]string{"run"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ork run: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		defer cancel()
		if s.done() {
			return
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// startSchedulerLocked is startScheduler, then waitLocked.
func startSchedulerLocked(t *testing.T, dir string, args ...string) *bgScheduler {
	t.Helper()
	s := startScheduler(t, dir, args...)
	s.waitLocked(t)
	return s
}

// pid is the scheduler's process id.
func (s *bgScheduler) pid() int { return s.cmd.Process.Pid }

// output returns what the scheduler has printed so far, stdout and stderr.
func (s *bgScheduler) output() string { return s.out.String() }

// lockHolder is how the scheduler lock file starts while this scheduler
// holds it.
func (s *bgScheduler) lockHolder() string { return fmt.Sprintf("pid %d ", s.pid()) }

// done reports whether the scheduler has exited.
func (s *bgScheduler) done() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// lockedOrExited waits until the scheduler holds the scheduler lock or has
// exited, and reports whether it holds the lock.
func (s *bgScheduler) lockedOrExited(t *testing.T) bool {
	t.Helper()
	lockPath := schedulerLockPath(s.dir)
	locked := false
	waitFor(t, 10*time.Second, "ork run to take the scheduler lock", func() bool {
		if s.done() {
			return true
		}
		b, _ := os.ReadFile(lockPath)
		locked = strings.HasPrefix(string(b), s.lockHolder())
		return locked
	})
	return locked
}

// waitLocked waits until the scheduler holds the scheduler lock, and fails
// the test if it exits first. The scheduler takes the lock once it has set
// up its signal handling, so it handles SIGTERM from then on.
func (s *bgScheduler) waitLocked(t *testing.T) {
	t.Helper()
	if !s.lockedOrExited(t) {
		t.Fatalf("ork run exited early (%v):\n%s", s.err, s.output())
	}
}

// stop sends SIGTERM and checks that the scheduler exits 0 within 15s.
func (s *bgScheduler) stop(t *testing.T) {
	t.Helper()
	s.stopWith(t, syscall.SIGTERM, 15*time.Second)
}

// stopWith sends sig and checks that the scheduler exits 0 within timeout.
// It fails the test at once if the scheduler had exited already.
func (s *bgScheduler) stopWith(t *testing.T, sig syscall.Signal, timeout time.Duration) {
	t.Helper()
	if s.done() {
		t.Fatalf("ork run had exited already (%v):\n%s", s.err, s.output())
	}
	name := signalNames[sig]
	if name == "" {
		name = sig.String()
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !s.done() {
		t.Fatalf("%s to ork run: %v", name, err)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			t.Errorf("ork run after %s: %v, want exit 0\n%s", name, s.err, s.output())
		}
	case <-time.After(timeout):
		t.Fatalf("ork run still running %s after %s:\n%s", timeout, name, s.output())
	}
}

// kill9 sends SIGKILL to the scheduler and waits for it. It fails the test
// if the scheduler had exited already, or ended otherwise than by the
// SIGKILL.
func (s *bgScheduler) kill9(t *testing.T) {
	t.Helper()
	if s.done() {
		t.Fatalf("ork run (pid %d) exited on its own (%v) before it was killed:\n%s", s.pid(), s.err, s.output())
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill ork run: %v", err)
	}
	<-s.exited
	var ee *osexec.ExitError
	if !errors.As(s.err, &ee) {
		t.Fatalf("ork run after SIGKILL: %v, want death by SIGKILL:\n%s", s.err, s.output())
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("ork run exited with %v before SIGKILL reached it:\n%s", s.err, s.output())
	}
}

// kill9OrStopped is kill9 for a scheduler that was sent SIGTERM: it
// reports false, instead of failing, when the scheduler finished its clean
// stop (exit 0) before SIGKILL reached it.
func (s *bgScheduler) kill9OrStopped(t *testing.T) bool {
	t.Helper()
	if !s.done() {
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("kill ork run: %v", err)
		}
	}
	<-s.exited
	if s.err == nil {
		return false
	}
	var ee *osexec.ExitError
	if !errors.As(s.err, &ee) {
		t.Fatalf("ork run after SIGTERM then SIGKILL: %v, want death by SIGKILL or a clean exit:\n%s", s.err, s.output())
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("ork run after SIGTERM then SIGKILL: %v, want death by SIGKILL or a clean exit:\n%s", s.err, s.output())
	}
	return true
}

// signalNames are the names of the signals a test stops a scheduler with.
var signalNames = map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}

// schedulerLockPath is the scheduler lock file of the project in dir.
func schedulerLockPath(dir string) string {
	return filepath.Join(dir, ".ork", "scheduler.lock")
}

// TestE2ESchedulerProcess checks `ork run` as a scheduler of its own: it
// runs what other processes trigger, keeps a second scheduler out, and
// stops cleanly on SIGTERM.
func TestE2ESchedulerProcess(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)

	sched := startSchedulerLocked(t, dir)
	holder := sched.lockHolder()

	// A trigger from another process, run by the scheduler.
	stdout, stderr := mustRun(t, dir, "trigger", "hello")
	id := runID(t, stdout)
	if strings.Contains(stderr, "no scheduler") {
		t.Errorf("trigger with a scheduler running: stderr %q says none runs", stderr)
	}
	waitFor(t, 10*time.Second, "run "+id+" to succeed under ork run", func() bool {
		r := runStatus(t, dir, id)
		if r.Status == "failed" || r.Status == "cancelled" {
			t.Fatalf("run %s: %+v\nork run:\n%s", id, r, sched.output())
		}
		return r.Status == "success"
	})
	if ts := runTasks(t, dir, id); len(ts) != 3 {
		t.Errorf("run %s: %d tasks, want 3", id, len(ts))
	}

	// A second scheduler is refused at once, naming the first.
	_, stderr, code := runWithin(t, 5*time.Second, dir, "run")
	if code == 0 {
		t.Errorf("second ork run: exit 0, want a refusal")
	}
	if !strings.Contains(lastLine(stderr), holder) {
		t.Errorf("second ork run: stderr %q, want the holder %q named", stderr, strings.TrimSpace(holder))
	}

	// trigger --wait waits on the running scheduler.
	stdout, stderr = mustRun(t, dir, "trigger", "hello", "--wait")
	id2 := runID(t, stdout)
	if r := runStatus(t, dir, id2); r.Status != "success" {
		t.Errorf("trigger --wait under ork run: status %q, want success\nstderr:\n%s", r.Status, stderr)
	}
	waitFor(t, 10*time.Second, "ork run to log the run it ran", func() bool {
		return strings.Contains(sched.output(), id2)
	})

	// SIGTERM stops it, with exit status 0.
	sched.stopWith(t, syscall.SIGTERM, 5*time.Second)
	b, _ := os.ReadFile(schedulerLockPath(dir))
	if strings.TrimSpace(string(b)) != "" {
		t.Errorf("scheduler.lock still names %q after ork run stopped", b)
	}
}

// TestE2EParams checks workflow params, overridden at trigger time, in the
// script's environment.
func TestE2EParams(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "params.sh", "#!/bin/sh\necho \"$greeting $n $ORK_PARAMS\"\n")
	mustRun(t, dir, "create-workflow", "--name", "params", "--job-name", "params.sh", "--param", "greeting=hi", "--param", "n=5")

	out, _ := mustRun(t, dir, "trigger", "params", "--param", "greeting=yo", "--wait")
	id := runID(t, out)
	log := strings.TrimSpace(string(readFile(t, filepath.Join(dir, ".ork", "logs", id, "params.sh.0.1.log"))))
	rest, ok := strings.CutPrefix(log, "yo 5 ")
	if !ok {
		t.Fatalf("log %q, want it to start with \"yo 5 \"", log)
	}
	var params map[string]any
	decodeJSON(t, "ORK_PARAMS", rest, &params)
	if want := map[string]any{"greeting": "yo", "n": 5.0}; len(params) != len(want) || params["greeting"] != want["greeting"] || params["n"] != want["n"] {
		t.Errorf("ORK_PARAMS = %v, want %v", params, want)
	}

	// Without an override, the workflow's defaults.
	out, _ = mustRun(t, dir, "trigger", "params", "--wait")
	id = runID(t, out)
	log = strings.TrimSpace(string(readFile(t, filepath.Join(dir, ".ork", "logs", id, "params.sh.0.1.log"))))
	if !strings.HasPrefix(log, "hi 5 ") {
		t.Errorf("log %q, want it to start with \"hi 5 \"", log)
	}
}

// TestE2EErrorsAreOneLine checks that errors are one line on stderr, and
// that every command but init asks for `ork init` where there is none.
func TestE2EErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	for _, args := range [][]string{
		{"status", "nonexistent-run"},
		{"status", "a", "b"},
		{"tasks"},
		{"tasks", "nonexistent-run"},
		{"trigger"},
		{"trigger", "nosuch"},
		{"trigger", "hello", "--param", "novalue"},
		{"delete-workflow", "nosuch"},
		{"create-workflow", "--name", "hello", "--job-name", "hello.sh"},
		{"create-workflow", "--name", "bad name", "--job-name", "hello.sh"},
		{"create-workflow", "--name", "zero", "--job-name", "hello.sh", "--task-count", "0"},
	} {
		stdout, stderr, _ := mustFail(t, dir, args...)
		wantOneLineError(t, strings.Join(args, " "), stderr)
		if stdout != "" {
			t.Errorf("ork %s: stdout %q, want nothing", strings.Join(args, " "), stdout)
		}
	}

	empty := t.TempDir()
	for _, args := range [][]string{
		{"status"},
		{"status", "--json"},
		{"list-workflows"},
		{"create-workflow", "--name", "hello", "--job-name", "hello.sh"},
		{"delete-workflow", "hello"},
		{"trigger", "hello"},
		{"trigger", "hello", "--wait"},
		{"tasks", "nonexistent-run"},
		{"run"},
	} {
		stdout, stderr, _ := mustFail(t, empty, args...)
		line := wantOneLineError(t, strings.Join(args, " ")+" without .ork", stderr)
		if !strings.Contains(line, "ork init") {
			t.Errorf("ork %s without .ork: stderr %q, want it to say to run `ork init`", strings.Join(args, " "), line)
		}
		if stdout != "" {
			t.Errorf("ork %s without .ork: stdout %q, want nothing", strings.Join(args, " "), stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, ".ork")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("commands without .ork made one (stat: %v)", err)
	}
}
