package model_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

func testWorkflow() *model.Workflow {
	w := &model.Workflow{
		Name:      "hello",
		JobName:   "sub/hello.sh",
		TaskCount: 3,
		Params:    map[string]any{"greeting": "hi", "n": 1.0},
		CreatedAt: t0,
		UpdatedAt: t0,
	}
	w.Normalize()
	return w
}

func TestNewRun(t *testing.T) {
	w := testWorkflow()
	zone := time.FixedZone("UTC-5", -5*60*60)
	now := time.Date(2025, 3, 1, 5, 0, 0, 0, zone)
	params := map[string]any{"n": 2.0}
	r := model.NewRun(w, params, "cli", now)

	if r.ID == "" || r.Status != model.RunPending || r.WorkflowID != w.ID || r.WorkflowName != "hello" || r.TriggeredBy != "cli" {
		t.Errorf("NewRun = %+v", r)
	}
	if !reflect.DeepEqual(r.Params, params) {
		t.Errorf("Params = %v, want %v", r.Params, params)
	}
	if !r.CreatedAt.Equal(now) || r.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", r.CreatedAt, now)
	}
	if r.StartedAt != nil || r.FinishedAt != nil || r.Error != "" {
		t.Errorf("new run has start, end or error: %+v", r)
	}
	if r.Workflow == nil || !reflect.DeepEqual(*r.Workflow, *w) {
		t.Fatalf("Workflow snapshot = %+v, want %+v", r.Workflow, w)
	}
	// The snapshot is a copy: editing the workflow later does not change it.
	w.JobName = "other.sh"
	w.TaskCount = 9
	if r.Workflow.JobName != "sub/hello.sh" || r.Workflow.TaskCount != 3 {
		t.Errorf("editing the workflow changed the run's snapshot: %+v", r.Workflow)
	}
	// Each run has its own id.
	if r2 := model.NewRun(w, nil, "cli", now); r2.ID == r.ID {
		t.Errorf("two runs share id %q", r.ID)
	}
}

func TestNewTasks(t *testing.T) {
	w := testWorkflow()
	now := t1.In(time.FixedZone("UTC+1", 60*60))
	r := model.NewRun(w, map[string]any{"n": 2.0, "extra": true}, "cli", t0)
	tasks := model.NewTasks(r, now)
	if len(tasks) != 3 {
		t.Fatalf("NewTasks made %d tasks, want 3 (task_count)", len(tasks))
	}
	wantParams := map[string]any{"greeting": "hi", "n": 2.0, "extra": true}
	for i, tk := range tasks {
		want := model.Task{
			ID:        model.TaskID(r.ID, "sub/hello.sh", i),
			RunID:     r.ID,
			Name:      "sub/hello.sh",
			TaskIndex: i,
			Status:    model.TaskPending,
			Params:    wantParams,
			CreatedAt: t1,
		}
		if !reflect.DeepEqual(*tk, want) {
			t.Errorf("task %d:\n got  %s\n want %s", i, taskJSON(*tk), taskJSON(want))
		}
		if tk.CreatedAt.Location() != time.UTC {
			t.Errorf("task %d CreatedAt in %v, want UTC", i, tk.CreatedAt.Location())
		}
		if got, want := tk.Label(), fmt.Sprintf("sub/hello.sh[%d]", i); got != want {
			t.Errorf("Label() = %q, want %q", got, want)
		}
	}

	// The same run makes the same tasks again: creation is idempotent.
	again := model.NewTasks(r, t2)
	for i := range tasks {
		if again[i].ID != tasks[i].ID {
			t.Errorf("task %d: id %q then %q, want stable ids", i, tasks[i].ID, again[i].ID)
		}
	}

	// Edge cases.
	if got := model.NewTasks(&model.Run{ID: "r"}, t0); got != nil {
		t.Errorf("NewTasks of a run without a workflow = %v, want nil", got)
	}
	w.TaskCount = 0
	if got := model.NewTasks(model.NewRun(w, nil, "", t0), t0); len(got) != 1 {
		t.Errorf("NewTasks with task_count 0 made %d tasks, want 1", len(got))
	}
	w.Params = nil
	if got := model.NewTasks(model.NewRun(w, nil, "", t0), t0); got[0].Params != nil {
		t.Errorf("NewTasks without params: Params = %v, want nil", got[0].Params)
	}
}

func TestMergeParams(t *testing.T) {
	a := map[string]any{"x": 1.0, "y": "a"}
	b := map[string]any{"y": "b", "z": map[string]any{"deep": true}}
	tests := []struct {
		desc string
		in   []map[string]any
		want map[string]any
	}{
		{"none", nil, nil},
		{"all nil", []map[string]any{nil, nil}, nil},
		{"all empty", []map[string]any{{}, {}}, nil},
		{"one", []map[string]any{a}, map[string]any{"x": 1.0, "y": "a"}},
		{"later wins", []map[string]any{a, b}, map[string]any{"x": 1.0, "y": "b", "z": map[string]any{"deep": true}}},
		{"earlier loses", []map[string]any{b, a}, map[string]any{"x": 1.0, "y": "a", "z": map[string]any{"deep": true}}},
		{"nil between", []map[string]any{a, nil, b}, map[string]any{"x": 1.0, "y": "b", "z": map[string]any{"deep": true}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := model.MergeParams(tt.in...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MergeParams = %#v, want %#v", got, tt.want)
			}
		})
	}
	// The inputs are not changed.
	if !reflect.DeepEqual(a, map[string]any{"x": 1.0, "y": "a"}) {
		t.Errorf("MergeParams changed its first input: %v", a)
	}
	// The result is a new map: changing it leaves the inputs alone.
	m := model.MergeParams(a)
	m["x"] = 99.0
	if a["x"] != 1.0 {
		t.Errorf("the result of MergeParams shares its map with an input")
	}
}

func TestTaskID(t *testing.T) {
	if model.TaskID("r1", "job.sh", 0) != model.TaskID("r1", "job.sh", 0) {
		t.Fatal("TaskID is not stable")
	}
	seen := make(map[string]string)
	add := func(run, name string, i int) {
		id := model.TaskID(run, name, i)
		key := fmt.Sprintf("(%q, %q, %d)", run, name, i)
		if prev, ok := seen[id]; ok {
			t.Errorf("TaskID(%q, %q, %d) = %q, the same as for %s", run, name, i, id, prev)
		}
		seen[id] = key
	}
	for _, run := range []string{"r1", "r2"} {
		for _, name := range []string{"job.sh", "other.sh", "sub/job.sh"} {
			for i := range 500 {
				add(run, name, i)
			}
		}
	}
	// Neighbouring indexes whose decimal forms share digits.
	for _, i := range []int{1, 11, 111, 1111} {
		add("r3", "j", i)
	}
	if id := model.TaskID("r1", "job.sh", 0); len(id) != 36 {
		t.Errorf("TaskID = %q, want a UUID", id)
	}
	if model.WorkflowID("hello") != model.WorkflowID("hello") || model.WorkflowID("hello") == model.WorkflowID("Hello") {
		t.Errorf("WorkflowID is not stable or not distinct")
	}
}
