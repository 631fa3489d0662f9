package filedb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// dagWorkflow is a DAG whose nodes' order (upstream first) is not the order
// of their names: z (2 tasks) -> a (3 tasks) -> m (1 task).
func dagWorkflow() *model.Workflow {
	return &model.Workflow{Name: "dag", Tasks: map[string]*model.TaskSpec{
		"z": {JobName: "z.sh", TaskCount: 2},
		"a": {JobName: "a.sh", TaskCount: 12, DependsOn: []string{"z"}},
		"m": {JobName: "m.sh", DependsOn: []string{"a"}},
	}}
}

func streamAll(t *testing.T, d *DB, runID string) []*model.Task {
	t.Helper()
	var out []*model.Task
	if err := d.StreamTasks(context.Background(), runID, func(tk *model.Task) error {
		out = append(out, tk)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func labels(ts []*model.Task) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.Label() + " ")
	}
	return b.String()
}

// StreamTasks hands over the same tasks as ListTasks, in the order of the
// run's workflow (model.SortTasks), from a fresh handle (the directory) and
// from the scheduler's own (its index).
func TestStreamTasksInTheWorkflowsOrder(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	d, _ := openTest(t, dir)
	r := mustCreateRun(t, d, dagWorkflow())
	all := model.NewTasks(r, time.Now())
	// Every task but a[5] recorded; a[10] and a[11] sort before a[2] by
	// their file names' bytes, not by their indexes.
	var rec []*model.Task
	for _, tk := range all {
		if tk.Name != "a" || tk.TaskIndex != 5 {
			rec = append(rec, tk)
		}
	}
	if err := d.CreateTasks(ctx, rec); err != nil {
		t.Fatal(err)
	}
	want, err := d.ListTasks(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	model.SortTasks(r.Workflow, want)

	got := streamAll(t, d, r.ID)
	if labels(got) != labels(want) {
		t.Errorf("scheduler's handle streamed %s\nwant %s", labels(got), labels(want))
	}
	fresh, _ := openTest(t, dir)
	got = streamAll(t, fresh, r.ID)
	if labels(got) != labels(want) {
		t.Errorf("fresh handle streamed %s\nwant %s", labels(got), labels(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Status != want[i].Status {
			t.Errorf("task %d: streamed %+v, want %+v", i, got[i], want[i])
		}
	}

	// fn's error stops the stream and is returned.
	stop := errors.New("stop")
	n := 0
	err = fresh.StreamTasks(ctx, r.ID, func(*model.Task) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("StreamTasks after fn failed: %v, %d calls; want the error after one", err, n)
	}
	if err := fresh.StreamTasks(ctx, "nosuchrun", func(*model.Task) error { return nil }); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("StreamTasks of a missing run: %v, want ErrNotFound", err)
	}
}

// Each record is read when its turn comes, after the ones before it were
// handed over: the last task file, rewritten while the first task is
// handled, comes out as rewritten; and a damaged file is reported and
// skipped without stopping the others.
func TestStreamTasksReadsEachRecordInItsTurn(t *testing.T) {
	ctx := context.Background()
	dir := initDir(t)
	var r *model.Run
	func() {
		d, _ := openTest(t, dir)
		r = mustCreateRun(t, d, testWorkflow("big", 50))
		if err := d.CreateTasks(ctx, model.NewTasks(r, time.Now())); err != nil {
			t.Fatal(err)
		}
	}()
	tdir := filepath.Join(dir, "tasks", r.ID)
	last := filepath.Join(tdir, "big.sh.49.json")
	torn := filepath.Join(tdir, "big.sh.20.json")
	data := mustRead(t, torn)
	if err := os.WriteFile(torn, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	d, logs := openTest(t, dir)
	var got []*model.Task
	err := d.StreamTasks(ctx, r.ID, func(tk *model.Task) error {
		if len(got) == 0 {
			// Rewrite the last record as the first is handed over.
			rec := mustRead(t, last)
			rec = []byte(strings.Replace(string(rec), `"status": "pending"`, `"status": "cancelled"`, 1))
			if err := os.WriteFile(last, rec, 0o644); err != nil {
				return err
			}
			if strings.Contains(logs.String(), "big.sh.20.json") {
				return fmt.Errorf("the damaged 21st record was read before the first was handed over")
			}
		}
		got = append(got, tk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 49 {
		t.Fatalf("streamed %d tasks, want the 49 intact ones", len(got))
	}
	if l := got[48]; l.TaskIndex != 49 || l.Status != model.TaskCancelled {
		t.Errorf("last task streamed %s %s; want big.sh[49] as rewritten during the stream (cancelled)", l.Label(), l.Status)
	}
	if !strings.Contains(logs.String(), "big.sh.20.json") {
		t.Errorf("damaged task file not reported; log:\n%s", logs)
	}
}

func TestParseTaskFile(t *testing.T) {
	for _, tk := range []*model.Task{{Name: "a.sh", TaskIndex: 0}, {Name: "x y/z%", TaskIndex: 1234}, {Name: "n.7", TaskIndex: 3}} {
		tk.RunID = "r"
		file := filepath.Base((&DB{root: "/x"}).taskPath(tk))
		name, index, ok := parseTaskFile(file)
		if !ok || name != tk.Name || index != tk.TaskIndex {
			t.Errorf("parseTaskFile(%q) = %q, %d, %v; want %q, %d", file, name, index, ok, tk.Name, tk.TaskIndex)
		}
	}
	for _, f := range []string{"x.json", "a.b.json", "a.-1.json", "a.01.json", "a%zz.1.json"} {
		if _, _, ok := parseTaskFile(f); ok {
			t.Errorf("parseTaskFile(%q) accepted a name taskPath never makes", f)
		}
	}
}
