package sched_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// gateScript makes job name wait for the file gate before it ends.
func (e *env) gateScript(name, gate string) {
	e.script(name, `while [ ! -e '`+gate+`' ]; do sleep 0.01; done`)
}

func (e *env) waitTasks(db model.Database, r *model.Run, what string, cond func([]*model.Task) bool) {
	e.t.Helper()
	waitUntil(e.t, 20*time.Second, what, func() bool {
		ts, err := db.ListTasks(context.Background(), r.ID)
		return err == nil && cond(ts)
	})
}

func allStatus(n int, st model.TaskStatus) func([]*model.Task) bool {
	return func(ts []*model.Task) bool {
		if len(ts) != n {
			return false
		}
		for _, t := range ts {
			if t.Status != st {
				return false
			}
		}
		return true
	}
}

// The tasks directory of a running run removed by hand (or by a prune
// racing a retry) while `ork run` runs: the writes of that run's tasks fail
// alone, every other run goes on, nothing of the removed run is written
// again, and `ork doctor` names the situation.
func TestRemovedTasksDirFailsOnlyItsRun(t *testing.T) {
	e := newEnv(t)
	gate := filepath.Join(t.TempDir(), "gate")
	e.gateScript("held.sh", gate)
	e.script("ok.sh", "exit 0")
	held := e.workflow("held", "held.sh", 2)
	ok := e.workflow("ok", "ok.sh", 3)
	s, _ := e.start(e.db, sched.Config{})
	r1 := e.trigger(e.db, held)
	e.waitTasks(e.db, r1, "both held tasks run", allStatus(2, model.TaskRunning))

	tasksDir := filepath.Join(e.dir, "tasks", r1.ID)
	if err := os.RemoveAll(tasksDir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(gate, nil, 0o644) // the held tasks end: their records cannot be written
	waitUntil(t, 20*time.Second, "the scheduler reports the records it cannot write", func() bool {
		return strings.Count(e.logs.String(), "record left as it is") >= 2
	})

	// Everything else goes on: a new run starts, runs and ends.
	r2 := e.wait(s, e.trigger(e.db, ok))
	if r2.Status != model.RunSuccess {
		t.Fatalf("run of another workflow = %s (%s), want success; log:\n%s", r2.Status, r2.Error, e.logs)
	}
	if _, err := os.Stat(tasksDir); !os.IsNotExist(err) {
		t.Errorf("the removed tasks directory was made again: %v", err)
	}
	if got, err := e.db.GetRun(context.Background(), r1.ID); err != nil || got.Status.Terminal() {
		t.Errorf("the run whose tasks were removed = %+v, %v; want it left unfinished, waiting", got, err)
	}
	ps, err := filedb.Doctor(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		if p.Kind == "damaged" && strings.Contains(p.Path, r1.ID) && strings.Contains(p.What, "removed") && strings.Contains(p.Fix, "stop the scheduler") {
			found = true
		}
	}
	if !found {
		t.Errorf("doctor does not report the run whose tasks were removed: %+v", ps)
	}
}

// A task file of an unfinished run that is damaged is never executed again
// — not on this scheduler start, nor on the next — and never written over;
// the rest of the run goes on, and the run waits for a person.
func TestDamagedTaskIsNeverExecuted(t *testing.T) {
	e := newEnv(t)
	side := filepath.Join(t.TempDir(), "side")
	e.script("side.sh", `echo "$ORK_TASK_INDEX" >> '`+side+`'`)
	w := e.workflow("side", "side.sh", 2)
	ctx := context.Background()
	r := e.trigger(e.db, w)
	ts := model.NewTasks(r, time.Now())
	if err := e.db.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := e.db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, "tasks", r.ID, "side.sh.0.json")
	data := readBytes(t, p)
	damaged := data[:len(data)/2] // cut short, as by a crash of the disk
	if err := os.WriteFile(p, damaged, 0o644); err != nil {
		t.Fatal(err)
	}

	for start := 1; start <= 2; start++ {
		db := e.open()
		_, stop := e.start(db, sched.Config{})
		e.waitTasks(db, r, "task 1 succeeds", func(ts []*model.Task) bool {
			return len(ts) == 1 && ts[0].TaskIndex == 1 && ts[0].Status == model.TaskSuccess
		})
		waitUntil(t, 20*time.Second, "the scheduler reports the damaged task", func() bool {
			return strings.Count(e.logs.String(), "create tasks: record left as it is") >= start
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := string(readBytes(t, side)); got != "1\n" {
			t.Fatalf("after scheduler start %d the scripts ran for tasks %q, want only task 1 once", start, got)
		}
		if got := readBytes(t, p); string(got) != string(damaged) {
			t.Fatalf("the damaged task file was written over: %q", got)
		}
		if got, err := db.GetRun(ctx, r.ID); err != nil || got.Status != model.RunRunning {
			t.Fatalf("run = %+v, %v; want it running, waiting for the damaged task", got, err)
		}
	}
}

// A run file emptied while its run was unfinished is never written over
// by the scheduler, and is listed as damaged.
func TestEmptiedRunFileIsNeverWrittenOver(t *testing.T) {
	e := newEnv(t)
	gate := filepath.Join(t.TempDir(), "gate")
	e.gateScript("held.sh", gate)
	w := e.workflow("held", "held.sh", 1)
	_, _ = e.start(e.db, sched.Config{})
	r := e.trigger(e.db, w)
	e.waitTasks(e.db, r, "the task runs", allStatus(1, model.TaskRunning))
	runFile := filepath.Join(e.dir, "runs", r.ID+".json")
	if err := os.Truncate(runFile, 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(gate, nil, 0o644)
	e.waitTasks(e.db, r, "the task succeeds", allStatus(1, model.TaskSuccess))
	waitUntil(t, 20*time.Second, "the scheduler refuses to finish the run", func() bool {
		return strings.Contains(e.logs.String(), "finish runs: record left as it is")
	})
	if st, err := os.Stat(runFile); err != nil || st.Size() != 0 {
		t.Fatalf("the emptied run file was written over: %v, %v", st.Size(), err)
	}
	other := e.open()
	_, damaged, err := other.ListRunsDamaged(context.Background(), model.RunFilter{})
	if err != nil || len(damaged) != 1 || !strings.Contains(damaged[0].Error(), r.ID) {
		t.Fatalf("ListRunsDamaged = %v, %v; want the emptied run", damaged, err)
	}
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
