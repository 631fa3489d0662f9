package filedb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// TestGetTaskReadsOneFile: on a handle without the scheduler's index (as
// `ork logs --follow` has), GetTask reads the file of its task and no
// other: the others are damaged, and neither reported nor in the way. A
// damaged file of the task itself is the error, with its position.
func TestGetTaskReadsOneFile(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	var r *model.Run
	var tasks []*model.Task
	func() {
		d, _ := openTest(t, dir)
		r = mustCreateRun(t, d, testWorkflow("fan", 50))
		tasks = model.NewTasks(r, time.Now())
		if err := d.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
	}()
	want := tasks[37]
	ents, err := os.ReadDir(filepath.Join(dir, TasksDir, r.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "fan.sh.37.json" {
			os.WriteFile(filepath.Join(dir, TasksDir, r.ID, e.Name()), []byte("{torn"), 0o644)
		}
	}

	d, logs := openTest(t, dir)
	got, err := d.GetTask(ctx, r.ID, "fan.sh", 37)
	if err != nil {
		t.Fatalf("GetTask(fan.sh[37]): %v", err)
	}
	if got.ID != want.ID || got.Name != "fan.sh" || got.TaskIndex != 37 || got.Status != model.TaskPending {
		t.Fatalf("GetTask(fan.sh[37]) = %+v", got)
	}
	if s := logs.String(); s != "" {
		t.Errorf("GetTask of one task read others, and reported them:\n%s", s)
	}

	_, err = d.GetTask(ctx, r.ID, "fan.sh", 3)
	var fe *model.FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "fan.sh.3.json") || errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetTask of a damaged task file: %v; want the file's error", err)
	}
	if !strings.Contains(logs.String(), "fan.sh.3.json") {
		t.Errorf("damaged task file not reported; log:\n%s", logs)
	}
}

// TestGetTaskOfATaskAddedByHand: a task that the run's workflow does not
// have is found in the file named after it, as ListTasks lists it; a file
// named after a task that holds another is no answer.
func TestGetTaskOfATaskAddedByHand(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r := mustCreateRun(t, d, testWorkflow("hello", 1))
	extra := &model.Task{ID: model.TaskID(r.ID, "extra.sh", 2), RunID: r.ID, Name: "extra.sh", TaskIndex: 2, Status: model.TaskPending, CreatedAt: time.Now().UTC()}
	if err := d.CreateTasks(ctx, append(model.NewTasks(r, time.Now()), extra)); err != nil {
		t.Fatal(err)
	}
	// A copy of extra's file under the name of task 5 of extra.sh.
	data, err := os.ReadFile(filepath.Join(dir, TasksDir, r.ID, "extra.sh.2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TasksDir, r.ID, "extra.sh.5.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	other, _ := openTest(t, dir) // no index: from the files
	got, err := other.GetTask(ctx, r.ID, "extra.sh", 2)
	if err != nil || got.ID != extra.ID || got.Name != extra.Name || got.TaskIndex != extra.TaskIndex {
		t.Errorf("GetTask(extra.sh[2]) = %+v, %v", got, err)
	}
	for _, c := range []struct {
		name  string
		index int
	}{{"extra.sh", 5}, {"no-such.sh", 0}, {"hello.sh", 1}} {
		if _, err := other.GetTask(ctx, r.ID, c.name, c.index); !errors.Is(err, model.ErrNotFound) {
			t.Errorf("GetTask(%s[%d]): %v, want ErrNotFound", c.name, c.index, err)
		}
	}
}
