package sched_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

func (e *env) dagWorkflow(name string, tasks map[string]*model.TaskSpec) *model.Workflow {
	e.t.Helper()
	w := &model.Workflow{Name: name, Tasks: tasks}
	if err := e.db.CreateWorkflow(context.Background(), w); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// runningRun triggers w and leaves the run as a scheduler that died
// leaves it: running, with the first n tasks of its first node created
// (pending), which it returns.
func (e *env) runningRun(w *model.Workflow, n int) (*model.Run, []*model.Task) {
	e.t.Helper()
	ctx := context.Background()
	r := e.trigger(e.db, w)
	ts := model.NewNodeTasks(r, w.Nodes()[0], 0, n, time.Now())
	if err := e.db.CreateTasks(ctx, ts); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		e.t.Fatal(err)
	}
	return r, ts
}

func byName(ts []*model.Task) map[string][]*model.Task {
	m := map[string][]*model.Task{}
	for _, t := range ts {
		m[t.Name] = append(m[t.Name], t)
	}
	return m
}

// Outputs flow downstream: a fan-out's outputs reach the task after it as
// an array by index, and every output is stored on its task.
func TestDAGOutputsFlowDownstream(t *testing.T) {
	e := newEnv(t)
	e.script("part.sh", `printf '{"n": %s}' $((ORK_TASK_INDEX * 10)) > "$ORK_OUTPUT"`)
	e.script("sum.sh", `printf '{"upstream": %s}' "$ORK_UPSTREAM" > "$ORK_OUTPUT"`)
	w := e.dagWorkflow("fan", map[string]*model.TaskSpec{
		"part": {JobName: "part.sh", TaskCount: 3},
		"sum":  {JobName: "sum.sh", DependsOn: []string{"part"}},
	})
	s, _ := e.start(e.db, sched.Config{})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", r.Status, r.Error)
	}
	tasks := byName(e.tasks(r))
	var got struct {
		Upstream map[string][]struct{ N int } `json:"upstream"`
	}
	if err := json.Unmarshal(tasks["sum"][0].Output, &got); err != nil {
		t.Fatalf("sum output %s: %v", tasks["sum"][0].Output, err)
	}
	if ns := got.Upstream["part"]; len(ns) != 3 || ns[0].N != 0 || ns[1].N != 10 || ns[2].N != 20 {
		t.Fatalf("ORK_UPSTREAM seen by sum = %s", tasks["sum"][0].Output)
	}
}

// A failure skips what depends on it, naming it, while an independent
// branch runs on; the run fails.
func TestDAGFailureSkipsDownstreamOnly(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	e.script("bad.sh", "exit 4")
	w := e.dagWorkflow("mixed", map[string]*model.TaskSpec{
		"a": {JobName: "bad.sh"},
		"b": {JobName: "ok.sh", DependsOn: []string{"a"}},
		"c": {JobName: "ok.sh", DependsOn: []string{"b"}},
		"d": {JobName: "ok.sh"},
		"e": {JobName: "ok.sh", DependsOn: []string{"d"}},
	})
	s, _ := e.start(e.db, sched.Config{})
	r := e.wait(s, e.trigger(e.db, w))
	if r.Status != model.RunFailed || !strings.Contains(r.Error, "a[0]") {
		t.Fatalf("run = %s %q, want failed naming a[0]", r.Status, r.Error)
	}
	want := map[string]model.TaskStatus{"a": model.TaskFailed, "b": model.TaskSkipped, "c": model.TaskSkipped, "d": model.TaskSuccess, "e": model.TaskSuccess}
	for name, ts := range byName(e.tasks(r)) {
		if ts[0].Status != want[name] {
			t.Errorf("%s = %s, want %s", name, ts[0].Status, want[name])
		}
		if (name == "b" || name == "c") && ts[0].Error != "upstream task a failed" {
			t.Errorf("%s error = %q, want it to name a", name, ts[0].Error)
		}
	}
}

// A scheduler restarted between two nodes creates the downstream node's
// tasks and hands them the upstream outputs recorded before.
func TestDAGResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.script("emit.sh", `printf '{"v": "first"}' > "$ORK_OUTPUT"`)
	e.script("use.sh", `printf '{"saw": %s}' "$ORK_UPSTREAM" > "$ORK_OUTPUT"`)
	w := e.dagWorkflow("two", map[string]*model.TaskSpec{
		"emit": {JobName: "emit.sh"},
		"use":  {JobName: "use.sh", DependsOn: []string{"emit"}},
	})
	ctx := context.Background()
	// As a scheduler that died right after recording emit's success leaves
	// it: the run running, emit done with its output, no task of use yet.
	r, emit := e.runningRun(w, 1)
	if _, err := e.db.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: emit[0].ID, RunID: r.ID, Status: model.TaskDispatched}}); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if _, err := e.db.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: emit[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess, ExitCode: &zero, Output: json.RawMessage(`{"v":"recorded"}`)}}); err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	e.db = e.open()
	s, _ := e.start(e.db, sched.Config{PollInterval: time.Hour})
	got := e.wait(s, r)
	if got.Status != model.RunSuccess {
		t.Fatalf("run = %s %q", got.Status, got.Error)
	}
	use := byName(e.tasks(r))["use"]
	if len(use) != 1 || !strings.Contains(string(use[0].Output), `"recorded"`) {
		t.Fatalf("use after restart = %+v, want it to see emit's recorded output", use)
	}
	if byName(e.tasks(r))["emit"][0].Attempt != 1 {
		t.Fatalf("emit ran again after the restart")
	}
}
