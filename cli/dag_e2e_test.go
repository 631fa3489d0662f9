//go:build unix

// End-to-end tests of DAG workflows: the reference workloads of
// testdata/dag, the order and failure rules of the scheduler, parameters,
// outputs, conditions and validation, through the real binary.

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dagTask holds the fields of a task record the DAG tests look at.
type dagTask struct {
	Name       string          `json:"name"`
	TaskIndex  int             `json:"task_index"`
	Status     string          `json:"status"`
	Error      string          `json:"error"`
	Output     json.RawMessage `json:"output"`
	Params     map[string]any  `json:"params"`
	Attempt    int             `json:"attempt"`
	ExitCode   *int            `json:"exit_code"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
}

func (d dagTask) label() string { return fmt.Sprintf("%s[%d]", d.Name, d.TaskIndex) }

// dagTasks returns the tasks of run id, as `ork tasks RUN --json` lists
// them, and the same tasks by label ("name[index]").
func dagTasks(t *testing.T, dir, id string) ([]dagTask, map[string]dagTask) {
	t.Helper()
	out, _ := mustRun(t, dir, "tasks", id, "--json")
	var ts []dagTask
	decodeJSON(t, "tasks "+id+" --json", out, &ts)
	by := make(map[string]dagTask, len(ts))
	for _, tk := range ts {
		if _, dup := by[tk.label()]; dup {
			t.Errorf("tasks %s --json lists %s twice", id, tk.label())
		}
		by[tk.label()] = tk
	}
	return ts, by
}

func dagLabels(ts []dagTask) []string {
	out := make([]string, len(ts))
	for i, tk := range ts {
		out[i] = tk.label()
	}
	return out
}

// wantTask checks the status of a task and that its error contains
// errPart ("" for no error wanted).
func wantTask(t *testing.T, by map[string]dagTask, label, status, errPart string) dagTask {
	t.Helper()
	tk, ok := by[label]
	if !ok {
		t.Errorf("no task %s; tasks are %v", label, slices.Sorted(maps.Keys(by)))
		return tk
	}
	if tk.Status != status {
		t.Errorf("task %s: status %q (error %q), want %q", label, tk.Status, tk.Error, status)
	}
	switch {
	case errPart == "" && tk.Error != "":
		t.Errorf("task %s: error %q, want none", label, tk.Error)
	case errPart != "" && !strings.Contains(tk.Error, errPart):
		t.Errorf("task %s: error %q, want it to contain %q", label, tk.Error, errPart)
	}
	return tk
}

// sameJSON checks that got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %q is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad wanted JSON %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// newDAGProject makes a project with the given workflow files (name ->
// JSON) and scripts (name -> body).
func newDAGProject(t *testing.T, workflows, scripts map[string]string) string {
	t.Helper()
	dir := newProject(t)
	for name, data := range workflows {
		writeFile(t, filepath.Join(dir, ".ork", "workflows", name+".json"), data, 0o644)
	}
	for name, body := range scripts {
		writeScript(t, dir, name, body)
	}
	return dir
}

// copyReference copies the reference workflow testdata/dag/NAME.json into
// the project, and every script of testdata/dag/scripts.
func copyReference(t *testing.T, dir, name string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, ".ork", "workflows", name+".json"), string(readFile(t, filepath.Join("..", "testdata", "dag", name+".json"))), 0o644)
	ents, err := os.ReadDir(filepath.Join("..", "testdata", "dag", "scripts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		writeScript(t, dir, e.Name(), string(readFile(t, filepath.Join("..", "testdata", "dag", "scripts", e.Name()))))
	}
}

// runEnv is run with variables added to the environment of ork (and so
// of its scripts).
func runEnv(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runEnvWithin(t, cmdTimeout, dir, env, args...)
}

// dagTrigger triggers a workflow with --wait and returns the run id; it
// fails the test unless ork exits with wantExit.
func dagTrigger(t *testing.T, dir string, wantExit int, name string, args ...string) (id, stderr string) {
	t.Helper()
	all := append([]string{"trigger", name, "--wait"}, args...)
	stdout, stderr, code := run(t, dir, all...)
	if code != wantExit {
		t.Fatalf("ork %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(all, " "), code, wantExit, stdout, stderr)
	}
	return runID(t, stdout), stderr
}

// TestDAGReferenceWorkloads runs the three reference workloads of
// testdata/dag and checks what each task did and passed on.
func TestDAGReferenceWorkloads(t *testing.T) {
	t.Parallel()

	t.Run("validate", func(t *testing.T) {
		t.Parallel()
		files := []string{
			filepath.Join("..", "testdata", "dag", "parallel_tasks.json"),
			filepath.Join("..", "testdata", "dag", "data_pipeline.json"),
			filepath.Join("..", "testdata", "dag", "conditional_branching.json"),
		}
		out, _ := mustRun(t, ".", append([]string{"validate"}, files...)...)
		for _, f := range files {
			if !strings.Contains(out, f+": ok") {
				t.Errorf("validate: stdout %q, want %s: ok", out, f)
			}
		}
	})

	t.Run("parallel_tasks", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t)
		copyReference(t, dir, "parallel_tasks")
		id, stderr := dagTrigger(t, dir, 0, "parallel_tasks")
		if !strings.Contains(stderr, "5 success") {
			t.Errorf("trigger --wait: stderr %q, want the summary \"5 success\"", stderr)
		}
		if r := runStatus(t, dir, id); r.Status != "success" || r.Error != "" {
			t.Errorf("run: %+v, want success without error", r)
		}
		ts, by := dagTasks(t, dir, id)
		want := []string{"partition[0]", "partition[1]", "partition[2]", "partition[3]", "combine[0]"}
		if got := dagLabels(ts); !slices.Equal(got, want) {
			t.Errorf("tasks %q, want %q", got, want)
		}
		total := 0
		for i := 0; i < 4; i++ {
			sum := 0
			for k := 1; k <= 400; k++ {
				if k%4 == i {
					sum += k
				}
			}
			total += sum
			tk := wantTask(t, by, fmt.Sprintf("partition[%d]", i), "success", "")
			sameJSON(t, tk.label()+" output", tk.Output, fmt.Sprintf(`{"partition": %d, "sum": %d}`, i, sum))
		}
		if total != 80200 {
			t.Fatalf("the partial sums add up to %d, want 80200", total)
		}
		tk := wantTask(t, by, "combine[0]", "success", "")
		sameJSON(t, "combine output", tk.Output, `{"partitions": 4, "total": 80200}`)
	})

	t.Run("data_pipeline", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t)
		copyReference(t, dir, "data_pipeline")
		tmp := t.TempDir()
		stdout, stderr, code := runEnv(t, dir, []string{"TMPDIR=" + tmp}, "trigger", "data_pipeline", "--wait")
		if code != 0 {
			t.Fatalf("trigger data_pipeline --wait: exit %d\n%s", code, stderr)
		}
		id := runID(t, stdout)
		ts, by := dagTasks(t, dir, id)
		want := []string{"extract[0]", "transform[0]", "transform[1]", "transform[2]", "transform[3]", "load[0]"}
		if got := dagLabels(ts); !slices.Equal(got, want) {
			t.Errorf("tasks %q, want %q", got, want)
		}
		work := filepath.Join(tmp, "ork-pipeline-"+id)
		ex := wantTask(t, by, "extract[0]", "success", "")
		sameJSON(t, "extract output", ex.Output, fmt.Sprintf(`{"path": %q, "rows": 100}`, filepath.Join(work, "raw.txt")))
		for i := 0; i < 4; i++ {
			tk := wantTask(t, by, fmt.Sprintf("transform[%d]", i), "success", "")
			sameJSON(t, tk.label()+" output", tk.Output, fmt.Sprintf(`{"path": %q, "rows": 25}`, filepath.Join(work, fmt.Sprintf("part-%d.txt", i))))
		}
		ld := wantTask(t, by, "load[0]", "success", "")
		target := filepath.Join(work, "warehouse.txt")
		sameJSON(t, "load output", ld.Output, fmt.Sprintf(`{"target": "warehouse", "rows": 100, "path": %q}`, target))
		if ld.Params["target"] != "warehouse" || ld.Params["rows"] != 100.0 {
			t.Errorf("load params %v, want target warehouse (the task's) and rows 100 (the workflow's)", ld.Params)
		}
		lines := nonEmptyLines(string(readFile(t, target)))
		if len(lines) != 100 {
			t.Fatalf("%s has %d lines, want 100", target, len(lines))
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if l != strings.ToUpper(l) {
				t.Errorf("line %q of %s is not upper-case", l, target)
			}
			seen[l] = true
		}
		for k := 1; k <= 100; k++ {
			if !seen[fmt.Sprintf("ROW %d", k)] {
				t.Errorf("%s has no line \"ROW %d\"", target, k)
			}
		}
	})

	t.Run("conditional_branching", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t)
		copyReference(t, dir, "conditional_branching")
		for _, tc := range []struct {
			args          []string
			quality       string
			ran, skipped  string
			skippedReason string
		}{
			{nil, "good", "clean", "repair", "condition `check.quality != \"good\"` is false"},
			{[]string{"--param", "quality=bad"}, "bad", "repair", "clean", "condition `check.quality == \"good\"` is false"},
		} {
			id, stderr := dagTrigger(t, dir, 0, "conditional_branching", tc.args...)
			if !strings.Contains(stderr, "3 success, 1 skipped") {
				t.Errorf("quality %s: trigger --wait: stderr %q, want the summary \"3 success, 1 skipped\"", tc.quality, stderr)
			}
			if r := runStatus(t, dir, id); r.Status != "success" {
				t.Errorf("quality %s: run %+v, want success", tc.quality, r)
			}
			ts, by := dagTasks(t, dir, id)
			if got, want := dagLabels(ts), []string{"check[0]", "clean[0]", "repair[0]", "report[0]"}; !slices.Equal(got, want) {
				t.Errorf("quality %s: tasks %q, want %q", tc.quality, got, want)
			}
			ck := wantTask(t, by, "check[0]", "success", "")
			sameJSON(t, "check output", ck.Output, fmt.Sprintf(`{"quality": %q}`, tc.quality))
			ran := wantTask(t, by, tc.ran+"[0]", "success", "")
			sameJSON(t, tc.ran+" output", ran.Output, fmt.Sprintf(`{"branch": %q}`, tc.ran))
			sk := wantTask(t, by, tc.skipped+"[0]", "skipped", tc.skippedReason)
			if sk.Output != nil || sk.Attempt != 0 || sk.ExitCode != nil || sk.StartedAt != nil {
				t.Errorf("quality %s: skipped task %+v has an output, an attempt, an exit code or a start", tc.quality, sk)
			}
			rp := wantTask(t, by, "report[0]", "success", "")
			sameJSON(t, "report output", rp.Output, fmt.Sprintf(`{"ran": %q}`, tc.ran))
			// The skipped branch never started: no log.
			if _, err := os.Stat(filepath.Join(dir, ".ork", "logs", id, tc.skipped+".0.1.log")); err == nil {
				t.Errorf("quality %s: the skipped branch %s has a log", tc.quality, tc.skipped)
			}
		}
	})
}

// TestDAGFanOutOrdering checks that a downstream task starts only after
// every index of its fan-out upstream has ended, and that the indexes of
// the fan-out run at the same time.
func TestDAGFanOutOrdering(t *testing.T) {
	t.Parallel()
	stamps := t.TempDir()
	dir := newDAGProject(t,
		map[string]string{"order": fmt.Sprintf(`{"name": "order", "params": {"stamps": %q}, "tasks": {
			"up":   {"job_name": "up.sh", "task_count": 3},
			"down": {"job_name": "down.sh", "depends_on": ["up"]}}}`, stamps)},
		map[string]string{
			// Index i works for 0.3 + 0.1*i seconds.
			"up.sh": "#!/bin/sh\nset -eu\nf=\"$stamps/up.$ORK_TASK_INDEX\"\n" +
				"echo \"start $(date +%s%N)\" > \"$f\"\nsleep 0.$((ORK_TASK_INDEX + 3))\necho \"end $(date +%s%N)\" >> \"$f\"\n",
			"down.sh": "#!/bin/sh\nset -eu\necho \"start $(date +%s%N)\" > \"$stamps/down\"\n",
		})
	id, _ := dagTrigger(t, dir, 0, "order")
	_, by := dagTasks(t, dir, id)
	for _, l := range []string{"up[0]", "up[1]", "up[2]", "down[0]"} {
		wantTask(t, by, l, "success", "")
	}

	stamp := func(file, what string) int64 {
		t.Helper()
		for _, l := range nonEmptyLines(string(readFile(t, filepath.Join(stamps, file)))) {
			if v, ok := strings.CutPrefix(l, what+" "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("%s: %q is not a time in nanoseconds", file, l)
				}
				return n
			}
		}
		t.Fatalf("%s has no %s time", file, what)
		return 0
	}
	downStart := stamp("down", "start")
	var lastStart, firstEnd int64
	for i := 0; i < 3; i++ {
		f := fmt.Sprintf("up.%d", i)
		start, end := stamp(f, "start"), stamp(f, "end")
		if downStart <= end {
			t.Errorf("down started at %d, before up[%d] ended at %d", downStart, i, end)
		}
		if i == 0 || start > lastStart {
			lastStart = start
		}
		if i == 0 || end < firstEnd {
			firstEnd = end
		}
	}
	if lastStart >= firstEnd {
		t.Errorf("the fan-out did not run at once: the last index started at %d, after the first ended at %d", lastStart, firstEnd)
	}
	// The task records agree.
	for i := 0; i < 3; i++ {
		up := by[fmt.Sprintf("up[%d]", i)]
		if down := by["down[0]"]; up.FinishedAt == nil || down.StartedAt == nil || down.StartedAt.Before(*up.FinishedAt) {
			t.Errorf("records: down started at %v, up[%d] finished at %v", down.StartedAt, i, up.FinishedAt)
		}
	}
}

// TestDAGFailureSkipsDownstream checks the failure rule: the downstream
// tasks of a failed task are skipped, naming it; independent branches run
// to the end; the run fails because of the failed task.
func TestDAGFailureSkipsDownstream(t *testing.T) {
	t.Parallel()
	dir := newDAGProject(t,
		map[string]string{"fail": `{"name": "fail", "tasks": {
			"a": {"job_name": "fail.sh"},
			"b": {"job_name": "ok.sh", "depends_on": ["a"]},
			"c": {"job_name": "ok.sh", "depends_on": ["b"]},
			"d": {"job_name": "slow.sh"},
			"e": {"job_name": "ok.sh", "depends_on": ["d"]},
			"f": {"job_name": "ok.sh", "depends_on": ["b", "e"]},
			"p": {"job_name": "part.sh", "task_count": 3},
			"q": {"job_name": "ok.sh", "depends_on": ["p"]}}}`},
		map[string]string{
			"fail.sh": "#!/bin/sh\necho boom >&2\nexit 1\n",
			"ok.sh":   "#!/bin/sh\necho ok\n",
			"slow.sh": "#!/bin/sh\nsleep 0.3\necho slow\n",
			// Index 1 fails first; the others end later, and succeed.
			"part.sh": "#!/bin/sh\n[ \"$ORK_TASK_INDEX\" = 1 ] && exit 2\nsleep 0.2\n",
		})
	id, stderr := dagTrigger(t, dir, 1, "fail")
	last := lastLine(stderr)
	if !strings.HasPrefix(last, "ork: ") || !strings.Contains(last, "a[0]") || !strings.Contains(last, id) {
		t.Errorf("trigger --wait: last stderr line %q, want an error naming run %s and the task a[0]", last, id)
	}
	if !strings.Contains(stderr, "4 success, 2 failed, 4 skipped") {
		t.Errorf("trigger --wait: stderr %q, want the summary \"4 success, 2 failed, 4 skipped\"", stderr)
	}
	r := runStatus(t, dir, id)
	if r.Status != "failed" || !strings.Contains(r.Error, "a[0]") || !strings.Contains(r.Error, "p[1]") {
		t.Errorf("run %+v, want failed with an error naming a[0] and p[1]", r)
	}
	for _, n := range []string{"b", "c", "d", "e", "f", "q"} {
		if strings.Contains(r.Error, n+"[0]") {
			t.Errorf("run error %q names %s[0], which did not fail", r.Error, n)
		}
	}
	ts, by := dagTasks(t, dir, id)
	if got, want := dagLabels(ts), []string{"a[0]", "b[0]", "c[0]", "d[0]", "e[0]", "f[0]", "p[0]", "p[1]", "p[2]", "q[0]"}; !slices.Equal(got, want) {
		t.Errorf("tasks %q, want %q", got, want)
	}
	a := wantTask(t, by, "a[0]", "failed", "exit status 1")
	if a.ExitCode == nil || *a.ExitCode != 1 {
		t.Errorf("a: exit code %v, want 1", a.ExitCode)
	}
	for _, l := range []string{"b[0]", "c[0]", "f[0]"} {
		tk := wantTask(t, by, l, "skipped", "upstream task a failed")
		if tk.Attempt != 0 || tk.StartedAt != nil {
			t.Errorf("%s was skipped but started: %+v", l, tk)
		}
	}
	// One failed index of a fan-out is enough to skip its downstream, once
	// every index has ended.
	wantTask(t, by, "p[0]", "success", "")
	p1 := wantTask(t, by, "p[1]", "failed", "exit status 2")
	p2 := wantTask(t, by, "p[2]", "success", "")
	q := wantTask(t, by, "q[0]", "skipped", "upstream task p failed")
	if p1.FinishedAt != nil && p2.FinishedAt != nil && !p2.FinishedAt.After(*p1.FinishedAt) {
		t.Errorf("p[2] finished at %v, not after p[1] failed at %v: the test proves less than it should", p2.FinishedAt, p1.FinishedAt)
	}
	wantTask(t, by, "d[0]", "success", "")
	e := wantTask(t, by, "e[0]", "success", "")
	// The independent branch went on after a had failed.
	if a.FinishedAt != nil && (e.StartedAt == nil || !e.StartedAt.After(*a.FinishedAt)) {
		t.Errorf("e started at %v, want after a failed at %v", e.StartedAt, a.FinishedAt)
	}
	if q.FinishedAt != nil && p2.FinishedAt != nil && q.FinishedAt.Before(*p2.FinishedAt) {
		t.Errorf("q was skipped at %v, before p[2] ended at %v", q.FinishedAt, p2.FinishedAt)
	}
}

// TestDAGSkipRule checks conditions and the rule for a node whose every
// upstream was skipped, and that a run with skipped tasks succeeds.
func TestDAGSkipRule(t *testing.T) {
	t.Parallel()
	dir := newDAGProject(t,
		map[string]string{"skip": `{"name": "skip", "tasks": {
			"check": {"job_name": "check.sh"},
			"left":  {"job_name": "ok.sh", "depends_on": ["check"], "when": "check.go == true"},
			"right": {"job_name": "ok.sh", "depends_on": ["check"], "when": "check.n > 10"},
			"join":  {"job_name": "ok.sh", "depends_on": ["left", "right"]},
			"after": {"job_name": "ok.sh", "depends_on": ["join"]},
			"mixed": {"job_name": "upstream.sh", "depends_on": ["join", "check"]},
			"other": {"job_name": "ok.sh", "depends_on": ["check"], "when": "check.n <= 10"}}}`},
		map[string]string{
			"check.sh":    "#!/bin/sh\necho '{\"go\": false, \"n\": 5}' > \"$ORK_OUTPUT\"\n",
			"ok.sh":       "#!/bin/sh\necho ok\n",
			"upstream.sh": "#!/bin/sh\nprintf '%s' \"$ORK_UPSTREAM\" > \"$ORK_OUTPUT\"\n",
		})
	id, stderr := dagTrigger(t, dir, 0, "skip")
	if !strings.Contains(stderr, "3 success, 4 skipped") {
		t.Errorf("trigger --wait: stderr %q, want the summary \"3 success, 4 skipped\"", stderr)
	}
	if r := runStatus(t, dir, id); r.Status != "success" || r.Error != "" {
		t.Errorf("run %+v, want success without error", r)
	}
	ts, by := dagTasks(t, dir, id)
	want := []string{"check[0]", "left[0]", "other[0]", "right[0]", "join[0]", "after[0]", "mixed[0]"}
	if got := dagLabels(ts); !slices.Equal(got, want) {
		t.Errorf("tasks %q, want %q", got, want)
	}
	wantTask(t, by, "check[0]", "success", "")
	wantTask(t, by, "left[0]", "skipped", "condition `check.go == true` is false")
	wantTask(t, by, "right[0]", "skipped", "condition `check.n > 10` is false")
	wantTask(t, by, "other[0]", "success", "")
	wantTask(t, by, "join[0]", "skipped", "every upstream task was skipped")
	wantTask(t, by, "after[0]", "skipped", "every upstream task was skipped")
	// One upstream skipped, one succeeded: the task runs, and sees null
	// for the skipped one.
	mixed := wantTask(t, by, "mixed[0]", "success", "")
	sameJSON(t, "mixed output (its ORK_UPSTREAM)", mixed.Output, `{"join": null, "check": {"go": false, "n": 5}}`)
}

// TestDAGParamsPrecedence checks workflow params < task params < trigger
// params (--params-file < --param), in the variables and in ORK_PARAMS.
func TestDAGParamsPrecedence(t *testing.T) {
	t.Parallel()
	const show = "#!/bin/sh\nset -eu\n" +
		"printf '{\"vars\": \"p=%s q=%s r=%s s=%s\", \"params\": %s}' \"${p-}\" \"${q-}\" \"${r-}\" \"${s-}\" \"$ORK_PARAMS\" > \"$ORK_OUTPUT\"\n"
	dir := newDAGProject(t,
		map[string]string{"params": `{"name": "params", "params": {"p": "wf", "q": "wf", "r": "wf"}, "tasks": {
			"node":  {"job_name": "show.sh", "params": {"q": "node", "r": "node"}},
			"plain": {"job_name": "show.sh", "depends_on": ["node"]}}}`},
		map[string]string{"show.sh": show})
	pfile := filepath.Join(dir, "params.json")
	writeFile(t, pfile, `{"r": "file", "s": "file"}`, 0o644)

	id, _ := dagTrigger(t, dir, 0, "params", "--params-file", pfile, "--param", "s=cli")
	_, by := dagTasks(t, dir, id)
	node := wantTask(t, by, "node[0]", "success", "")
	sameJSON(t, "node output", node.Output, `{"vars": "p=wf q=node r=file s=cli", "params": {"p": "wf", "q": "node", "r": "file", "s": "cli"}}`)
	plain := wantTask(t, by, "plain[0]", "success", "")
	sameJSON(t, "plain output", plain.Output, `{"vars": "p=wf q=wf r=file s=cli", "params": {"p": "wf", "q": "wf", "r": "file", "s": "cli"}}`)
	if want := map[string]any{"p": "wf", "q": "node", "r": "file", "s": "cli"}; !reflect.DeepEqual(node.Params, want) {
		t.Errorf("node's task record: params %v, want %v", node.Params, want)
	}
	out, _ := mustRun(t, dir, "status", id, "--json")
	var r struct {
		Params map[string]any `json:"params"`
	}
	decodeJSON(t, "status --json", out, &r)
	if want := map[string]any{"r": "file", "s": "cli"}; !reflect.DeepEqual(r.Params, want) {
		t.Errorf("run record: params %v, want the trigger's %v", r.Params, want)
	}

	// Without trigger params: the workflow's, under the node's.
	id, _ = dagTrigger(t, dir, 0, "params")
	_, by = dagTasks(t, dir, id)
	sameJSON(t, "node output", by["node[0]"].Output, `{"vars": "p=wf q=node r=node s=", "params": {"p": "wf", "q": "node", "r": "node"}}`)
}

// TestDAGOutputs checks task outputs: the limits, no output, and what the
// downstream tasks receive in ORK_UPSTREAM.
func TestDAGOutputs(t *testing.T) {
	t.Parallel()
	const echoUpstream = "#!/bin/sh\nprintf '%s' \"$ORK_UPSTREAM\" > \"$ORK_OUTPUT\"\n"
	dir := newDAGProject(t,
		map[string]string{
			"bad": `{"name": "bad", "tasks": {
				"big":    {"job_name": "big.sh"},
				"exact":  {"job_name": "exact.sh"},
				"array":  {"job_name": "array.sh"},
				"null":   {"job_name": "null.sh"},
				"broken": {"job_name": "broken.sh"},
				"after":  {"job_name": "echo.sh", "depends_on": ["big"]}}}`,
			"good": `{"name": "good", "tasks": {
				"root":  {"job_name": "echo.sh"},
				"none":  {"job_name": "none.sh"},
				"empty": {"job_name": "empty.sh"},
				"up":    {"job_name": "up.sh"},
				"one":   {"job_name": "echo.sh", "depends_on": ["up"]},
				"fan":   {"job_name": "fan.sh", "task_count": 3},
				"join":  {"job_name": "echo.sh", "depends_on": ["fan", "up", "none"]}}}`,
		},
		map[string]string{
			"big.sh": "#!/bin/sh\nhead -c 2097152 /dev/zero | tr '\\0' x > \"$ORK_OUTPUT\"\n",
			// A JSON object of exactly 1 MiB is not too large.
			"exact.sh":  "#!/bin/sh\n{ printf '{\"a\":\"'; head -c 1048568 /dev/zero | tr '\\0' x; printf '\"}'; } > \"$ORK_OUTPUT\"\n",
			"array.sh":  "#!/bin/sh\necho '[1,2]' > \"$ORK_OUTPUT\"\n",
			"null.sh":   "#!/bin/sh\necho null > \"$ORK_OUTPUT\"\n",
			"broken.sh": "#!/bin/sh\necho '{\"a\": ' > \"$ORK_OUTPUT\"\n",
			"echo.sh":   echoUpstream,
			"none.sh":   "#!/bin/sh\necho no output\n",
			"empty.sh":  "#!/bin/sh\necho '{}' > \"$ORK_OUTPUT\"\n",
			"up.sh":     "#!/bin/sh\necho '{\"x\": 1, \"s\": \"hi\", \"nested\": {\"list\": [1, 2]}}' > \"$ORK_OUTPUT\"\n",
			// Index 1 writes no output.
			"fan.sh": "#!/bin/sh\n[ \"$ORK_TASK_INDEX\" = 1 ] && exit 0\necho \"{\\\"i\\\": $ORK_TASK_INDEX}\" > \"$ORK_OUTPUT\"\n",
		})

	t.Run("bad", func(t *testing.T) {
		t.Parallel()
		id, _ := dagTrigger(t, dir, 1, "bad")
		_, by := dagTasks(t, dir, id)
		big := wantTask(t, by, "big[0]", "failed", "larger than 1 MiB")
		if big.Output != nil {
			t.Errorf("big: output %.100s..., want none", big.Output)
		}
		if big.ExitCode == nil || *big.ExitCode != 0 {
			t.Errorf("big: exit code %v, want 0 (the script succeeded; its output did not)", big.ExitCode)
		}
		exact := wantTask(t, by, "exact[0]", "success", "")
		var compact bytes.Buffer
		if err := json.Compact(&compact, exact.Output); err != nil || compact.Len() != 1<<20 {
			t.Errorf("exact: output of %d bytes (%v), want 1 MiB", compact.Len(), err)
		}
		for _, l := range []string{"array[0]", "null[0]", "broken[0]"} {
			tk := wantTask(t, by, l, "failed", "not a JSON object")
			if tk.Output != nil {
				t.Errorf("%s: output %s, want none", l, tk.Output)
			}
		}
		wantTask(t, by, "after[0]", "skipped", "upstream task big failed")
		r := runStatus(t, dir, id)
		for _, l := range []string{"big[0]", "array[0]", "null[0]", "broken[0]"} {
			if !strings.Contains(r.Error, l) {
				t.Errorf("run error %q does not name %s", r.Error, l)
			}
		}
	})

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		id, _ := dagTrigger(t, dir, 0, "good")
		out, _ := mustRun(t, dir, "tasks", id, "--json")
		var raw []map[string]json.RawMessage
		decodeJSON(t, "tasks --json", out, &raw)
		_, by := dagTasks(t, dir, id)
		for _, rt := range raw {
			var name string
			json.Unmarshal(rt["name"], &name)
			if _, has := rt["output"]; name == "none" && has {
				t.Errorf("none: the task record has an output %s, want no output key", rt["output"])
			}
		}
		if none := wantTask(t, by, "none[0]", "success", ""); none.Output != nil {
			t.Errorf("none: output %s, want none", none.Output)
		}
		sameJSON(t, "root output (its ORK_UPSTREAM)", wantTask(t, by, "root[0]", "success", "").Output, `{}`)
		sameJSON(t, "empty output", wantTask(t, by, "empty[0]", "success", "").Output, `{}`)
		sameJSON(t, "up output", wantTask(t, by, "up[0]", "success", "").Output, `{"x": 1, "s": "hi", "nested": {"list": [1, 2]}}`)
		sameJSON(t, "one output (its ORK_UPSTREAM)", wantTask(t, by, "one[0]", "success", "").Output,
			`{"up": {"x": 1, "s": "hi", "nested": {"list": [1, 2]}}}`)
		sameJSON(t, "fan[0] output", wantTask(t, by, "fan[0]", "success", "").Output, `{"i": 0}`)
		if fan1 := wantTask(t, by, "fan[1]", "success", ""); fan1.Output != nil {
			t.Errorf("fan[1]: output %s, want none", fan1.Output)
		}
		sameJSON(t, "join output (its ORK_UPSTREAM)", wantTask(t, by, "join[0]", "success", "").Output,
			`{"fan": [{"i": 0}, null, {"i": 2}], "up": {"x": 1, "s": "hi", "nested": {"list": [1, 2]}}, "none": null}`)
	})
}

// TestDAGValidation checks that broken DAG files are refused by validate
// and trigger with one clear error naming the file and the task, and that
// the scheduler runs the good workflows beside them.
func TestDAGValidation(t *testing.T) {
	t.Parallel()
	dir := newDAGProject(t,
		map[string]string{
			"cyc": `{"name": "cyc", "tasks": {
				"a": {"job_name": "ok.sh", "depends_on": ["c"]},
				"b": {"job_name": "ok.sh", "depends_on": ["a"]},
				"c": {"job_name": "ok.sh", "depends_on": ["b"]},
				"d": {"job_name": "ok.sh"}}}`,
			"etl": `{"name": "etl", "tasks": {
				"extract":   {"job_name": "ok.sh"},
				"transform": {"job_name": "ok.sh", "depends_on": ["extract"]},
				"load":      {"job_name": "ok.sh", "depends_on": ["transfrom"]}}}`,
			"escape": `{"name": "escape", "tasks": {"x": {"job_name": "../x.sh"}}}`,
			"good":   `{"name": "good", "tasks": {"a": {"job_name": "ok.sh"}, "b": {"job_name": "ok.sh", "depends_on": ["a"]}}}`,
		},
		map[string]string{"ok.sh": "#!/bin/sh\necho ok\n"})
	rel := func(name string) string { return filepath.Join(".ork", "workflows", name+".json") }

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"cyc", []string{"tasks form a cycle: a -> b -> c -> a"}},
		{"etl", []string{`task "load": depends_on names "transfrom", which is not a task of this workflow`}},
		{"escape", []string{`task "x": job_name "../x.sh" leaves the script directory`}},
	} {
		_, stderr, code := mustFail(t, dir, "validate", rel(tc.name))
		if code != 1 {
			t.Errorf("validate %s: exit %d, want 1", tc.name, code)
		}
		lines := nonEmptyLines(stderr)
		if len(lines) != 2 || !strings.HasPrefix(lines[0], rel(tc.name)+": ") || lines[1] != "ork: 1 of 1 files are not valid" {
			t.Errorf("validate %s: stderr %q, want the error for %s and a count", tc.name, stderr, rel(tc.name))
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("validate %s: stderr %q, want %q", tc.name, stderr, w)
			}
		}
		msg := strings.TrimPrefix(lines[0], rel(tc.name)+": ")

		// trigger refuses it with the same message, and creates no run.
		_, stderr, _ = mustFail(t, dir, "trigger", tc.name)
		line := wantOneLineError(t, "trigger "+tc.name, stderr)
		if !strings.Contains(line, tc.name+".json: "+msg) {
			t.Errorf("trigger %s: error %q, want the message of validate %q", tc.name, line, msg)
		}
		_, stderr, _ = mustFail(t, dir, "trigger", tc.name, "--wait")
		if line := wantOneLineError(t, "trigger --wait "+tc.name, stderr); !strings.Contains(line, msg) {
			t.Errorf("trigger --wait %s: error %q, want %q", tc.name, line, msg)
		}
	}
	out, _ := mustRun(t, dir, "status", "--json")
	var runs []jsonRun
	decodeJSON(t, "status --json", out, &runs)
	if len(runs) != 0 {
		t.Errorf("refused triggers made runs: %+v", runs)
	}
	// The scheduler that sees the broken files runs the good workflow.
	id, _ := dagTrigger(t, dir, 0, "good")
	if r := runStatus(t, dir, id); r.Status != "success" {
		t.Errorf("run of good beside broken files: %+v, want success", r)
	}
	// list-workflows names the broken files and lists the good one.
	out, stderr, _ := mustFail(t, dir, "list-workflows")
	for _, name := range []string{"cyc", "etl", "escape"} {
		if !strings.Contains(stderr, rel(name)) {
			t.Errorf("list-workflows: stderr %q does not name %s", stderr, rel(name))
		}
	}
	if !strings.Contains(out, "good") || !strings.Contains(out, "(DAG of 2 jobs)") {
		t.Errorf("list-workflows: stdout %q, want good listed as a DAG of 2 jobs", out)
	}
}

// TestDAGTasksListing checks that `ork tasks` lists a run's tasks node by
// node in the workflow's order (upstream first, ties by name), the tasks
// not created yet included as pending: before any scheduler ran, while
// the run is in progress, and after.
func TestDAGTasksListing(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "gate")
	dir := newDAGProject(t,
		map[string]string{"listing": fmt.Sprintf(`{"name": "listing", "params": {"gate": %q}, "tasks": {
			"zeta":  {"job_name": "wait.sh"},
			"alpha": {"job_name": "ok.sh", "depends_on": ["zeta"], "task_count": 2},
			"beta":  {"job_name": "ok.sh"},
			"mid":   {"job_name": "ok.sh", "depends_on": ["alpha", "beta"]}}}`, gate)},
		map[string]string{
			"ok.sh": "#!/bin/sh\necho ok\n",
			// Waits (at most 20 s) for the gate file.
			"wait.sh": "#!/bin/sh\ni=0\nwhile [ ! -e \"$gate\" ]; do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.05; done\n",
		})
	order := []string{"beta[0]", "zeta[0]", "alpha[0]", "alpha[1]", "mid[0]"}

	// Triggered without a scheduler: every task, pending.
	stdout, stderr := mustRun(t, dir, "trigger", "listing")
	id := runID(t, stdout)
	if !strings.Contains(stderr, "no scheduler") {
		t.Errorf("trigger without a scheduler: stderr %q, want a note that none runs", stderr)
	}
	ts, _ := dagTasks(t, dir, id)
	if got := dagLabels(ts); !slices.Equal(got, order) {
		t.Errorf("tasks of a run not started: %q, want %q", got, order)
	}
	for _, tk := range ts {
		if tk.Status != "pending" {
			t.Errorf("task %s of a run not started: status %q, want pending", tk.label(), tk.Status)
		}
	}
	out, _ := mustRun(t, dir, "tasks", id)
	lines := nonEmptyLines(out)
	if len(lines) != 1+len(order) || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("tasks %s: want a header and %d rows, got:\n%s", id, len(order), out)
	}
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 3 || f[0]+"["+f[1]+"]" != order[i] || f[2] != "pending" {
			t.Errorf("tasks %s: row %d is %q, want %s pending", id, i, l, order[i])
		}
	}
	out, _ = mustRun(t, dir, "status", id)
	if !strings.Contains(out, "5 pending") {
		t.Errorf("status %s: %q, want \"5 pending\"", id, out)
	}

	// A scheduler takes the run; zeta waits at the gate.
	sched := startScheduler(t, dir)
	var by map[string]dagTask
	waitFor(t, 15*time.Second, "zeta to run and beta to succeed", func() bool {
		ts, by = dagTasks(t, dir, id)
		return by["zeta[0]"].Status == "running" && by["beta[0]"].Status == "success"
	})
	if got := dagLabels(ts); !slices.Equal(got, order) {
		t.Errorf("tasks of a run in progress: %q, want %q", got, order)
	}
	for _, l := range []string{"alpha[0]", "alpha[1]", "mid[0]"} {
		wantTask(t, by, l, "pending", "")
	}
	out, _ = mustRun(t, dir, "status", id)
	if !strings.Contains(out, "1 running") || !strings.Contains(out, "3 pending") || !strings.Contains(out, "1 success") {
		t.Errorf("status %s while zeta runs: %q, want 1 success, 1 running, 3 pending", id, out)
	}

	writeFile(t, gate, "", 0o644)
	waitFor(t, 15*time.Second, "run "+id+" to succeed", func() bool {
		r := runStatus(t, dir, id)
		if r.Status == "failed" || r.Status == "cancelled" {
			t.Fatalf("run %s: %+v\nork run:\n%s", id, r, sched.output())
		}
		return r.Status == "success"
	})
	ts, _ = dagTasks(t, dir, id)
	if got := dagLabels(ts); !slices.Equal(got, order) {
		t.Errorf("tasks of a run that ended: %q, want %q", got, order)
	}
	for _, tk := range ts {
		if tk.Status != "success" {
			t.Errorf("task %s: status %q, want success", tk.label(), tk.Status)
		}
	}

	sched.stopWith(t, syscall.SIGINT, 10*time.Second)
}

// TestDAGLargeUpstreamOutput checks what README promises of outputs up to
// 1 MiB: an upstream output over what an environment variable can hold
// (Linux: 128 KiB) reaches the downstream task through ORK_UPSTREAM_FILE,
// and ORK_UPSTREAM is then empty (it holds the JSON up to 64 KiB only)
// rather than making the start fail.
func TestDAGLargeUpstreamOutput(t *testing.T) {
	t.Parallel()
	dir := newDAGProject(t,
		map[string]string{"large": `{"name": "large", "tasks": {
			"big":  {"job_name": "big.sh"},
			"down": {"job_name": "down.sh", "depends_on": ["big"]},
			"small": {"job_name": "small.sh"},
			"down2": {"job_name": "same.sh", "depends_on": ["small"]}}}`},
		map[string]string{
			// A small output: in ORK_UPSTREAM and in ORK_UPSTREAM_FILE alike.
			"small.sh": "#!/bin/sh\necho '{\"a\": 1}' > \"$ORK_OUTPUT\"\n",
			"same.sh":  "#!/bin/sh\nif [ -n \"$ORK_UPSTREAM\" ] && [ \"$ORK_UPSTREAM\" = \"$(cat \"$ORK_UPSTREAM_FILE\")\" ]; then echo '{\"same\": true}'; else echo '{\"same\": false}'; fi > \"$ORK_OUTPUT\"\n",
			// 200,000 bytes: well under 1 MiB.
			"big.sh":  "#!/bin/sh\n{ printf '{\"a\":\"'; head -c 199992 /dev/zero | tr '\\0' x; printf '\"}'; } > \"$ORK_OUTPUT\"\n",
			"down.sh": "#!/bin/sh\necho \"{\\\"env\\\": ${#ORK_UPSTREAM}, \\\"file\\\": $(wc -c < \"$ORK_UPSTREAM_FILE\")}\" > \"$ORK_OUTPUT\"\n",
		})
	id, _ := dagTrigger(t, dir, 0, "large")
	_, by := dagTasks(t, dir, id)
	wantTask(t, by, "big[0]", "success", "")
	down := wantTask(t, by, "down[0]", "success", "")
	sameJSON(t, "down output", down.Output, `{"env": 0, "file": 200008}`)
	down2 := wantTask(t, by, "down2[0]", "success", "")
	sameJSON(t, "down2 output", down2.Output, `{"same": true}`)
}
