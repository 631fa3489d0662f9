package model

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// sliceStreamer streams recorded tasks as a database would: in the run's
// task order.
type sliceStreamer struct {
	w  *Workflow
	ts []*Task
}

func (s sliceStreamer) StreamTasks(ctx context.Context, runID string, fn func(*Task) error) error {
	o := NewTaskOrder(s.w)
	ts := slices.Clone(s.ts)
	slices.SortFunc(ts, func(a, b *Task) int { return o.Compare(a.Name, a.TaskIndex, b.Name, b.TaskIndex) })
	for _, t := range ts {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// StreamCompleteTasks hands over what CompleteTasks returns, task for task.
func TestStreamCompleteTasksIsCompleteTasks(t *testing.T) {
	dag := &Workflow{Name: "dag", Params: map[string]any{"w": 1}, Tasks: map[string]*TaskSpec{
		"z": {JobName: "z.sh", TaskCount: 2, Params: map[string]any{"n": "z"}},
		"a": {JobName: "a.sh", TaskCount: 11, DependsOn: []string{"z"}},
		"m": {JobName: "m.sh", DependsOn: []string{"a"}},
	}}
	flat := &Workflow{Name: "flat", JobName: "f.sh", TaskCount: 12}
	for _, w := range []*Workflow{dag, flat} {
		w.Normalize()
		for _, status := range []RunStatus{RunRunning, RunFailed} {
			r := NewRun(w, map[string]any{"p": "run"}, "test", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			r.Status = status
			all := NewTasks(r, r.CreatedAt)
			pick := func(keep func(i int, t *Task) bool) []*Task {
				var out []*Task
				for i, t := range all {
					if keep(i, t) {
						cp := *t
						cp.Status = TaskSuccess
						out = append(out, &cp)
					}
				}
				return out
			}
			cases := map[string][]*Task{
				"none":  nil,
				"all":   pick(func(int, *Task) bool { return true }),
				"first": pick(func(i int, _ *Task) bool { return i < 3 }),
				"gaps":  pick(func(i int, _ *Task) bool { return i%3 == 1 }),
				"last":  pick(func(i int, _ *Task) bool { return i == len(all)-1 }),
				// A task of a node the workflow does not name: last.
				"stray": append(pick(func(i int, _ *Task) bool { return i%2 == 0 }), &Task{ID: "x", RunID: r.ID, Name: "gone", TaskIndex: 0, Status: TaskFailed}),
			}
			for name, rec := range cases {
				want := CompleteTasks(r, slices.Clone(rec))
				var got []*Task
				err := StreamCompleteTasks(context.Background(), sliceStreamer{w, rec}, r, func(t *Task) error {
					got = append(got, t)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s run of %s, %s recorded:\nstreamed %s\nwant     %s", status, w.Name, name, taskLabels(got), taskLabels(want))
				}
			}
		}
	}
	// fn's error ends the stream, whether it came on a recorded task or on
	// one filled in.
	r := NewRun(flat, nil, "test", time.Now())
	stop := errors.New("stop")
	for _, rec := range [][]*Task{nil, NewTasks(r, r.CreatedAt)} {
		n := 0
		err := StreamCompleteTasks(context.Background(), sliceStreamer{flat, rec}, r, func(*Task) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("%d recorded: %v after %d calls; want stop after 1", len(rec), err, n)
		}
	}
}

func taskLabels(ts []*Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Label()+":"+string(t.Status))
	}
	return out
}

// Rank orders nodes as Compare does.
func TestTaskOrderRankAgreesWithCompare(t *testing.T) {
	w := &Workflow{Name: "dag", Tasks: map[string]*TaskSpec{
		"z": {JobName: "z.sh"}, "a": {JobName: "a.sh", DependsOn: []string{"z"}}, "m": {JobName: "m.sh", DependsOn: []string{"a"}},
	}}
	o := NewTaskOrder(w)
	names := []string{"z", "a", "m", "b", "y"}
	for _, a := range names {
		for _, b := range names {
			if a == b {
				continue
			}
			c := o.Compare(a, 0, b, 0)
			ra, rb := o.Rank(a), o.Rank(b)
			if ra != rb && (ra < rb) != (c < 0) {
				t.Errorf("Rank(%s)=%d, Rank(%s)=%d, but Compare=%d", a, ra, b, rb, c)
			}
			if ra == rb && (a < b) != (c < 0) {
				t.Errorf("%s and %s rank the same and Compare=%d, want by name", a, b, c)
			}
		}
	}
}
