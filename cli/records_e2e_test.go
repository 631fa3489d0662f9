//go:build unix

package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// openProjectDB opens the file database of a project, as a scheduler would.
func openProjectDB(t *testing.T, dir string) *filedb.DB {
	t.Helper()
	db, err := filedb.Open(filepath.Join(dir, ".ork"), filedb.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// runningRun leaves a run of hello running with its 3 tasks dispatched,
// as a scheduler killed mid-run does.
func runningRun(t *testing.T, dir string) *model.Run {
	t.Helper()
	ctx := context.Background()
	db := openProjectDB(t, dir)
	defer db.Close()
	w, err := db.GetWorkflow(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	r := model.NewRun(w, nil, "test", time.Now())
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	if err := db.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// A damaged task file of an unfinished run: `ork status RUN` says the run
// waits for it, `ork doctor` names it and says to stop the scheduler
// first. An emptied run file is listed by `ork status` as damaged.
func TestE2EDamagedFilesAreShown(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	r := runningRun(t, dir)
	taskFile := filepath.Join(dir, ".ork", "tasks", r.ID, "hello.sh.1.json")
	data := readFile(t, taskFile)
	writeFile(t, taskFile, string(data[:len(data)/2]), 0o644)

	out := mustRunOut(t, dir, "status", r.ID)
	if !strings.Contains(out, "Waiting:") || !strings.Contains(out, "hello.sh.1.json") || !strings.Contains(out, "stop the scheduler first") {
		t.Errorf("ork status of a run with a damaged task does not say why it waits:\n%s", out)
	}
	stdout, _, code := run(t, dir, "doctor", "--json")
	if code != 1 {
		t.Fatalf("doctor exit %d, want 1", code)
	}
	var ps []filedb.Problem
	decodeJSON(t, "doctor --json", stdout, &ps)
	found := false
	for _, p := range ps {
		if p.Kind == "damaged" && strings.HasSuffix(p.Path, "hello.sh.1.json") {
			found = true
			if !strings.Contains(p.What, "cannot end") || !strings.Contains(p.Fix, "stop the scheduler") {
				t.Errorf("doctor on a damaged task of an unfinished run: %+v; want it to say the run waits and to stop the scheduler first", p)
			}
		}
	}
	if !found {
		t.Errorf("doctor does not report the damaged task: %+v", ps)
	}

	// An emptied run file: listed as damaged, in text and JSON.
	id := runID(t, mustRunOut(t, dir, "trigger", "hello"))
	if err := os.Truncate(filepath.Join(dir, ".ork", "runs", id+".json"), 0); err != nil {
		t.Fatal(err)
	}
	out = mustRunOut(t, dir, "status")
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, id) {
			line = l
		}
	}
	if !strings.Contains(line, "damaged") || !strings.Contains(line, "file is empty") {
		t.Errorf("ork status does not list the emptied run as damaged:\n%s", out)
	}
	var runs []jsonRun
	decodeJSON(t, "status --json", mustRunOut(t, dir, "status", "--json"), &runs)
	statuses := map[string]string{}
	for _, jr := range runs {
		statuses[jr.ID] = jr.Status
	}
	if statuses[id] != "damaged" || statuses[r.ID] != "running" || len(runs) != 2 {
		t.Errorf("status --json = %+v; want the emptied run damaged and the other running", runs)
	}
}

// `ork prune` and `ork retry`s of the same runs, from many processes at
// once: each run ends either deleted whole, or reopened once — pending,
// with all its task records — and never both; no prune marker is left.
func TestE2EPruneAndRetryRace(t *testing.T) {
	t.Parallel()
	// The retries start a little after the prune, later each round, so
	// that the prune meets them at different moments.
	total := map[string]int{}
	for round, delay := range []time.Duration{0, 0, 3 * time.Millisecond, 6 * time.Millisecond} {
		pruned, reopened := pruneRetryRound(t, delay)
		t.Logf("round %d (retries %v after the prune): %d runs pruned, %d reopened", round, delay, pruned, reopened)
		total["pruned"] += pruned
		total["reopened"] += reopened
	}
	t.Logf("in all: %v", total)
}

func pruneRetryRound(t *testing.T, delay time.Duration) (pruned, reopened int) {
	dir := newHelloProject(t)
	const n = 8
	ctx := context.Background()
	db := openProjectDB(t, dir)
	w, err := db.GetWorkflow(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range n {
		r := model.NewRun(w, nil, "test", time.Now())
		if err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		ts := model.NewTasks(r, time.Now())
		for _, tk := range ts {
			tk.Status, tk.Attempt, tk.Error = model.TaskFailed, 1, "exit status 1"
		}
		if err := db.CreateTasks(ctx, ts); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning}}); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: time.Now().Add(-time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	db.Close()

	type result struct {
		out  string
		code int
	}
	var mu sync.Mutex
	retries := map[string][]result{}
	var prune result
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, id := range ids {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				time.Sleep(delay)
				out, errOut, code := run(t, dir, "retry", id)
				mu.Lock()
				retries[id] = append(retries[id], result{out + errOut, code})
				mu.Unlock()
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		out, errOut, code := run(t, dir, "prune", "--older-than", "30m")
		prune = result{out + errOut, code}
	}()
	close(start)
	wg.Wait()
	if prune.code != 0 {
		t.Fatalf("ork prune: exit %d: %s", prune.code, prune.out)
	}
	ork := filepath.Join(dir, ".ork")
	db = openProjectDB(t, dir)
	defer db.Close()
	for _, id := range ids {
		ok := 0
		for _, r := range retries[id] {
			if r.code == 0 {
				ok++
			}
		}
		r, err := db.GetRun(ctx, id)
		_, taskDirErr := os.Stat(filepath.Join(ork, "tasks", id))
		switch {
		case err != nil:
			pruned++
			if ok != 0 || taskDirErr == nil {
				t.Errorf("run %s was pruned (%v) but %d retries succeeded, tasks dir: %v", id, err, ok, taskDirErr)
			}
		default:
			reopened++
			ts, terr := db.ListTasks(ctx, id)
			if r.Status != model.RunPending || ok != 1 || terr != nil || len(ts) != 3 {
				t.Errorf("run %s after the race: %s, %d retries succeeded, %d tasks (%v); want pending, reopened once, 3 tasks\n%v",
					id, r.Status, ok, len(ts), terr, retries[id])
			}
			for _, tk := range ts {
				if tk.Status != model.TaskPending {
					t.Errorf("run %s task %s = %s, want pending", id, tk.Label(), tk.Status)
				}
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(ork, "runs"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".prune-") {
			t.Errorf("prune marker left: %s", e.Name())
		}
	}
	if !strings.Contains(prune.out, fmt.Sprintf("pruned %d ", pruned)) {
		t.Errorf("prune says %q; %d runs are gone", prune.out, pruned)
	}
	return pruned, reopened
}

// The tasks directory of a running run removed while `ork run` runs (the
// repair once recommended for a damaged run, done without stopping the
// scheduler): other runs still start and end, `ork status RUN` and
// `ork doctor` say what happened and that the scheduler must be stopped.
func TestE2ERemovedTasksDirDoesNotStallTheScheduler(t *testing.T) {
	t.Parallel()
	dir := newHelloProject(t)
	gate := filepath.Join(dir, "gate")
	writeScript(t, dir, "held.sh", "#!/bin/sh\nwhile [ ! -e '"+gate+"' ]; do sleep 0.01; done\n")
	mustRun(t, dir, "create-workflow", "--name", "held", "--job-name", "held.sh", "--task-count", "2")
	s := startScheduler(t, dir)
	s.waitLocked(t)
	id := runID(t, mustRunOut(t, dir, "trigger", "held"))
	waitFor(t, 20*time.Second, "both held tasks to run", func() bool {
		ts := runTasks(t, dir, id)
		return len(ts) == 2 && ts[0].Status == "running" && ts[1].Status == "running"
	})
	if err := os.RemoveAll(filepath.Join(dir, ".ork", "tasks", id)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, gate, "", 0o644) // the held tasks end; their records cannot be written

	// Everything else goes on: a new run starts, runs and succeeds.
	stdout, stderr, code := runWithin(t, 30*time.Second, dir, "trigger", "hello", "--wait")
	if code != 0 {
		t.Fatalf("ork trigger hello --wait after a removed tasks directory: exit %d\n%s\n%s\nscheduler:\n%s", code, stdout, stderr, s.output())
	}
	if !strings.Contains(s.output(), "record left as it is") {
		t.Errorf("ork run does not report the records it could not write:\n%s", s.output())
	}
	if st := runStatus(t, dir, id); st.Status != "running" {
		t.Errorf("the run whose tasks were removed is %s, want it left running (waiting)", st.Status)
	}
	if out := mustRunOut(t, dir, "status", id); !strings.Contains(out, "Waiting:") || !strings.Contains(out, "were removed") {
		t.Errorf("ork status of the run does not say why it waits:\n%s", out)
	}
	stdout, _, code = run(t, dir, "doctor", "--json")
	var ps []filedb.Problem
	decodeJSON(t, "doctor --json", stdout, &ps)
	found := false
	for _, p := range ps {
		if strings.HasSuffix(p.Path, filepath.Join("tasks", id)) && strings.Contains(p.What, "removed") && strings.HasPrefix(p.Fix, "stop the scheduler") {
			found = true
		}
	}
	if code != 1 || !found {
		t.Errorf("ork doctor (exit %d) does not report the removed tasks directory: %+v", code, ps)
	}
	s.stop(t)
}
