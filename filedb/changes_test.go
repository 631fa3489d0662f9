package filedb

import (
	"context"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// WatchChanges names the run whose record or task records another handle
// (another process, as far as files go) wrote: a new run, its tasks
// created, a task updated, the run ended — and a run that existed and was
// running before the watch began.
func TestWatchChangesNamesChangedRuns(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	watcher, _ := openTest(t, dir)
	writer, _ := openTest(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A run already running before the watch starts, with one task.
	old := mustCreateRun(t, writer, testWorkflow("old", 2))
	oldTasks := model.NewTasks(old, time.Now())
	if err := writer.CreateTasks(ctx, oldTasks[:1]); err != nil {
		t.Fatal(err)
	}
	if err := writer.UpdateRuns(ctx, []model.RunUpdate{{RunID: old.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}

	got := make(chan string, 1024)
	if err := watcher.WatchChanges(ctx, func(id string) { got <- id }); err != nil {
		t.Fatal(err)
	}
	expect := func(what, id string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case x := <-got:
				if x == id {
					return
				}
			case <-deadline:
				t.Fatalf("%s: no change reported for run %s", what, id)
			}
		}
	}
	drain := func() {
		time.Sleep(20 * time.Millisecond)
		for len(got) > 0 {
			<-got
		}
	}

	drain()
	if _, err := writer.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: oldTasks[0].ID, RunID: old.ID, Status: model.TaskDispatched, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	expect("a task of a run running before the watch updated", old.ID)

	drain()
	r := mustCreateRun(t, writer, testWorkflow("new", 2))
	expect("a run created", r.ID)

	drain()
	ts := model.NewTasks(r, time.Now())
	if err := writer.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	expect("the run's tasks created", r.ID)

	drain()
	if _, err := writer.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: ts[1].ID, RunID: r.ID, Status: model.TaskDispatched, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	expect("a task updated", r.ID)

	drain()
	if err := writer.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunSuccess}}); err != nil {
		t.Fatal(err)
	}
	expect("the run ended", r.ID)

	// Once ctx ends, fn is called no more.
	cancel()
	time.Sleep(50 * time.Millisecond)
	drain()
	mustCreateRun(t, writer, testWorkflow("after", 1))
	time.Sleep(100 * time.Millisecond)
	if len(got) != 0 {
		t.Errorf("fn called %d time(s) after the watch's context ended", len(got))
	}
}

// An observer's watch takes nothing from the scheduler's: a run created by
// another process wakes the scheduler (Changes) and reaches the observer.
func TestWatchChangesLeavesSchedulerWakeups(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	sched, _ := openTest(t, dir)
	writer, _ := openTest(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := sched.PendingRuns(ctx, 0); err != nil { // starts the scheduler's index and watcher
		t.Fatal(err)
	}
	got := make(chan string, 64)
	if err := sched.WatchChanges(ctx, func(id string) { got <- id }); err != nil {
		t.Fatal(err)
	}
	// Drain a wakeup left from the start.
	select {
	case <-sched.Changes():
	case <-time.After(50 * time.Millisecond):
	}
	r := mustCreateRun(t, writer, testWorkflow("w", 1))
	select {
	case <-sched.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("the scheduler was not woken by the new run")
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case id := <-got:
			if id == r.ID {
				return
			}
		case <-deadline:
			t.Fatal("the observer did not hear of the new run")
		}
	}
}
