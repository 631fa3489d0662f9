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

// The index of a new scheduler's database reads a run file it has not
// listed as ended (see EndedFile) as every reader does: a file that does
// not parse, or does not decode as a run, is reported, and a run that a
// person reopened by adding a second "status" key, or one in another
// case, is pending for the scheduler too.
func TestIndexReadsRunsAsEveryReaderDoes(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	var ended []*model.Run
	for i := range 5 {
		r := mustCreateRun(t, d, testWorkflow("done", i+1))
		finishRun(t, d, r, model.RunSuccess)
		ended = append(ended, r)
	}
	pending := mustCreateRun(t, d, testWorkflow("waiting", 2))
	d.Close()
	edit := func(r *model.Run, f func(string) string) {
		t.Helper()
		p := d.runPath(r.ID)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The tail of one cut short, past its status.
	edit(ended[0], func(s string) string { return s[:strings.Index(s, `"workflow"`)+20] })
	// Two reopened by hand, with a second key.
	edit(ended[1], func(s string) string {
		return strings.TrimSuffix(strings.TrimSpace(s), "}") + `, "status": "pending"}`
	})
	edit(ended[2], func(s string) string {
		return strings.TrimSuffix(strings.TrimSpace(s), "}") + `, "Status": "pending"}`
	})
	// One that parses, but holds a number where a time belongs.
	edit(ended[4], func(s string) string {
		i := strings.Index(s, `"created_at": "`)
		j := i + strings.Index(s[i+15:], `"`) + 16
		return s[:i] + `"created_at": 5` + s[j:]
	})

	d2, logs := openTest(t, dir)
	got, err := d2.PendingRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{pending.ID: true, ended[1].ID: true, ended[2].ID: true}
	for _, r := range got {
		if !want[r.ID] {
			t.Errorf("PendingRuns has %s, which has ended", r.ID)
		}
		delete(want, r.ID)
	}
	for id := range want {
		if r, err := d2.GetRun(ctx, id); err == nil {
			t.Errorf("PendingRuns misses run %s, which GetRun says is %s", id, r.Status)
		}
	}
	for _, r := range []*model.Run{ended[0], ended[4]} {
		if s := logs.String(); !strings.Contains(s, "damaged") || !strings.Contains(s, r.ID) {
			t.Errorf("building the index did not report the damaged run file of %s:\n%s", r.ID, s)
		}
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
	ageRuns(b, dir) // listed once settled (endedSettle)
	start := func(b *testing.B) {
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
	// Every file read: no list of ended runs (the first start on a
	// history, or after the list was lost).
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			os.Remove(filepath.Join(dir, EndedFile))
			b.StartTimer()
			start(b)
		}
	})
	// The list names every ended run, unchanged since (EndedFile).
	b.Run("listed", func(b *testing.B) {
		start(b)
		for b.Loop() {
			start(b)
		}
	})
}
