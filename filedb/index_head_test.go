package filedb

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// finishRun records run r as ended with status st.
func finishRun(t testing.TB, d *DB, r *model.Run, st model.RunStatus) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []model.RunStatus{model.RunRunning, st} {
		if err := d.UpdateRuns(ctx, []model.RunUpdate{{RunID: r.ID, Status: s}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHeadSaysFinished(t *testing.T) {
	d, _ := openTest(t, initDir(t))
	done := mustCreateRun(t, d, testWorkflow("done", 2))
	finishRun(t, d, done, model.RunFailed)
	pending := mustCreateRun(t, d, testWorkflow("waiting", 2))
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		path string
		id   string
		want bool
	}{
		{"finished, as the database writes it", d.runPath(done.ID), done.ID, true},
		{"pending, as the database writes it", d.runPath(pending.ID), pending.ID, false},
		{"status before id (by hand)", write("a.json", `{"status": "success", "id": "a"}`), "a", false},
		{"status after a nested value", write("b.json", `{"id": "b", "params": {"status": "x"}, "status": "success"}`), "b", false},
		{"another id", write("c.json", `{"id": "other", "status": "success"}`), "c", false},
		{"a status that is not terminal", write("d.json", `{"id": "d", "status": "running"}`), "d", false},
		{"an unknown status", write("e.json", `{"id": "e", "status": "Success"}`), "e", false},
		{"a head that does not parse", write("f.json", `{"id": "f", "status" "success"}`), "f", false},
		{"not an object", write("g.json", `["g", "success"]`), "g", false},
		{"empty", write("h.json", ``), "h", false},
		{"missing", filepath.Join(dir, "none.json"), "none", false},
	} {
		if got := headSaysFinished(tc.path, tc.id); got != tc.want {
			t.Errorf("%s: headSaysFinished = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The index of a new scheduler's database reads only the head of a
// finished run's file: the rest of it (the workflow's snapshot) may be
// damaged, and the index neither needs it nor reports it. Unfinished runs,
// and a finished run whose file is written in another order, are read
// whole as before.
func TestIndexReadsTheHeadOfFinishedRuns(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	var finished []*model.Run
	for i := range 3 {
		r := mustCreateRun(t, d, testWorkflow("done", i+1))
		finishRun(t, d, r, model.RunSuccess)
		finished = append(finished, r)
	}
	pending := mustCreateRun(t, d, testWorkflow("waiting", 2))
	d.Close()

	// Damage the tail of one finished run's file, past its status.
	p := d.runPath(finished[0].ID)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), `"workflow"`)
	if i < 0 {
		t.Fatalf("no workflow snapshot in %s:\n%s", p, data)
	}
	if err := os.WriteFile(p, data[:i+20], 0o644); err != nil {
		t.Fatal(err)
	}
	// Write another with its status last, as a person might.
	by := d.runPath(finished[1].ID)
	if err := os.WriteFile(by, []byte(`{"id": "`+finished[1].ID+`", "workflow_name": "done", "status": "success"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	d2, logs := openTest(t, dir)
	got, err := d2.PendingRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != pending.ID {
		t.Fatalf("PendingRuns = %v, want only %s", got, pending.ID)
	}
	running, err := d2.ListRuns(ctx, model.RunFilter{Status: model.RunRunning})
	if err != nil || len(running) != 0 {
		t.Fatalf("running runs = %v, %v; want none", running, err)
	}
	if s := logs.String(); strings.Contains(s, "damaged") {
		t.Errorf("building the index reported a finished run's damaged tail; it should not have read it:\n%s", s)
	}
	// Reading that run itself still says it is damaged.
	if _, err := d2.GetRun(ctx, finished[0].ID); err == nil {
		t.Errorf("GetRun of the run with a damaged file: no error")
	}
	if r, err := d2.GetRun(ctx, finished[2].ID); err != nil || r.Status != model.RunSuccess {
		t.Errorf("GetRun of a finished run = %v, %v; want it, success", r, err)
	}
}

// BenchmarkIndexOverHistory is what a scheduler starting on a project with
// a history pays before its first loop: 1,000 finished runs, each with the
// snapshot of a 50-node chain (5.8 KB a file), and one pending run; a new
// DB builds its index (PendingRuns) and lists the running runs, as the
// scheduler's start-up does.
func BenchmarkIndexOverHistory(b *testing.B) {
	ctx := context.Background()
	dir := initDir(b)
	d, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := &model.Workflow{Name: "chain", Tasks: map[string]*model.TaskSpec{}}
	for i := 1; i <= 50; i++ {
		spec := &model.TaskSpec{JobName: "noop.sh"}
		if i > 1 {
			spec.DependsOn = []string{"t" + strconv.Itoa(i-1)}
		}
		w.Tasks["t"+strconv.Itoa(i)] = spec
	}
	w.Normalize()
	for range 1000 {
		r := model.NewRun(w, nil, "bench", time.Now())
		if err := d.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
		finishRun(b, d, r, model.RunSuccess)
	}
	if err := d.CreateRun(ctx, model.NewRun(w, nil, "bench", time.Now())); err != nil {
		b.Fatal(err)
	}
	d.Close()
	for b.Loop() {
		d, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if ps, err := d.PendingRuns(ctx, 0); err != nil || len(ps) != 1 {
			b.Fatalf("PendingRuns = %d runs, %v; want 1", len(ps), err)
		}
		if _, err := d.ListRuns(ctx, model.RunFilter{Status: model.RunRunning}); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}
