package sched_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// The file database after a crash of a scheduler whose host name differs
// from today's (a container recreated over the same .ork volume): a task
// dispatched ahead that never started (no log) must go back without an
// attempt, as RELIABILITY.md promises.
func TestRecoveryWithdrawsAfterTheHostIsRenamed(t *testing.T) {
	e := newEnv(t)
	e.script("ok.sh", "exit 0")
	w := e.workflow("ok", "ok.sh", 1)
	r := e.trigger(e.db, w)
	ts := e.crashed(r)
	e.up([]model.TaskUpdate{{TaskID: ts[0].ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched, Scheduler: "old-container-3f2a:1:deadbeef"}})
	e.db.Close()
	e.db = e.open()
	s, _ := e.start(e.db, sched.Config{PollInterval: time.Hour})
	got := e.wait(s, r)
	task := e.tasks(got)[0]
	var as []string
	for _, a := range task.Attempts {
		as = append(as, fmt.Sprintf("%d:%s", a.Attempt, a.Status))
	}
	if fmt.Sprint(as) != "[1:success]" {
		t.Fatalf("attempts %v, want [1:success]: an attempt that never began was charged", as)
	}
}
