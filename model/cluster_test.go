package model

import (
	"testing"
	"time"
)

func TestUpdateFromAnotherSchedulerIsIgnored(t *testing.T) {
	task := &Task{ID: "t", RunID: "r", Status: TaskPending}
	if !ApplyTaskUpdate(task, TaskUpdate{Status: TaskDispatched, Attempt: 1, Scheduler: "a"}) {
		t.Fatal("dispatch not applied")
	}
	if task.Scheduler != "a" {
		t.Fatalf("scheduler = %q, want a", task.Scheduler)
	}
	// A report of attempt 1 from scheduler b is about an attempt b never
	// dispatched.
	if ApplyTaskUpdate(task, TaskUpdate{Status: TaskSuccess, Attempt: 1, Scheduler: "b"}) {
		t.Fatal("a report from another scheduler was applied")
	}
	if !ApplyTaskUpdate(task, TaskUpdate{Status: TaskRunning, Attempt: 1, Scheduler: "a"}) {
		t.Fatal("a report from the attempt's scheduler was ignored")
	}
	// Rescued by b: back to pending, then dispatched again by b.
	if !ApplyTaskUpdate(task, TaskUpdate{Status: TaskPending, Attempt: 1, Scheduler: "a", At: time.Now()}) {
		t.Fatal("rescue not applied")
	}
	if !ApplyTaskUpdate(task, TaskUpdate{Status: TaskDispatched, Attempt: 2, Scheduler: "b"}) {
		t.Fatal("second dispatch not applied")
	}
	// The late report of a's attempt lands nowhere.
	for _, a := range []int{1, 2} {
		if ApplyTaskUpdate(task, TaskUpdate{Status: TaskFailed, Attempt: a, Scheduler: "a"}) {
			t.Fatalf("a's late report for attempt %d was applied", a)
		}
	}
	// A cancel names no scheduler.
	if !ApplyTaskUpdate(task, TaskUpdate{Status: TaskCancelled}) {
		t.Fatal("cancel not applied")
	}
}

func TestPickClaims(t *testing.T) {
	mk := func(ids ...string) []TaskWithWorkflow {
		var ps []TaskWithWorkflow
		for _, id := range ids {
			ps = append(ps, TaskWithWorkflow{Task: &Task{ID: id, RunID: "r" + id[:1], Name: id[:1]}})
		}
		return ps
	}
	ids := func(ps []TaskWithWorkflow) (s []string) {
		for _, p := range ps {
			s = append(s, p.Task.ID)
		}
		return s
	}
	ps := mk("a1", "a2", "b1", "b2", "c1")
	got := ids(pickClaims(ps, Claim{Limit: 10, Last: []string{"b1", "a1"}, Skip: []string{"c1"}, SkipNodes: []NodeRef{{"rb", "b"}}}))
	want := []string{"a2", "a1"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("picked %v, want %v", got, want)
	}
	if got := ids(pickClaims(mk("a1", "a2", "b1"), Claim{Limit: 2, Last: []string{"a1"}})); len(got) != 2 || got[0] != "a2" || got[1] != "b1" {
		t.Fatalf("picked %v, want [a2 b1]", got)
	}
}
