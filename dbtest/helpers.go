package dbtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Building records ----

// newWorkflow returns a valid, normalized workflow with every field set.
func newWorkflow(name string, taskCount int) *model.Workflow {
	w := &model.Workflow{
		Name:         name,
		Description:  "the " + name + " workflow",
		JobName:      "jobs/" + name + ".sh",
		ExecutorType: model.ExecutorProcess,
		TaskCount:    taskCount,
		Params: map[string]any{
			"greeting": "hello",
			"count":    3.0,
			"nested": map[string]any{
				"list": []any{1.0, "two", true, nil},
				"deep": map[string]any{"x": "y"},
			},
		},
		Project:   "project-1",
		Region:    "europe-west1",
		CreatedAt: base,
		UpdatedAt: at(60),
	}
	w.Normalize()
	return w
}

// newRun returns a pending run of w created at created, with params that
// override some of the workflow's.
func newRun(w *model.Workflow, created time.Time) *model.Run {
	return model.NewRun(w, map[string]any{"count": 5.0, "extra": map[string]any{"k": "v"}}, "dbtest", created)
}

// startRun does what the scheduler does with a new run: creates it, creates
// its tasks and marks it running. It returns the run and its tasks as they
// should be stored.
func startRun(ctx context.Context, t *testing.T, db model.Database, w *model.Workflow, created time.Time) (*model.Run, []*model.Task) {
	t.Helper()
	r := newRun(w, created)
	mustCreateRun(ctx, t, db, r)
	tasks := model.NewTasks(r, created.Add(time.Second))
	mustCreateTasks(ctx, t, db, tasks)
	u := model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: created.Add(2 * time.Second)}
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{u})
	r = cloneRun(r)
	model.ApplyRunUpdate(r, u)
	return r, cloneTasks(tasks)
}

func intPtr(n int) *int { return &n }

// ---- Calls that must succeed ----

func mustCreateWorkflow(ctx context.Context, t *testing.T, db model.Database, w *model.Workflow) {
	t.Helper()
	if err := db.CreateWorkflow(ctx, w); err != nil {
		t.Fatalf("CreateWorkflow(%s): %v", w.Name, err)
	}
}

func mustCreateRun(ctx context.Context, t *testing.T, db model.Database, r *model.Run) {
	t.Helper()
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatalf("CreateRun(%s): %v", r.ID, err)
	}
}

func mustCreateTasks(ctx context.Context, t *testing.T, db model.Database, ts []*model.Task) {
	t.Helper()
	if err := db.CreateTasks(ctx, ts); err != nil {
		t.Fatalf("CreateTasks(%d tasks): %v", len(ts), err)
	}
}

func mustUpdateRuns(ctx context.Context, t *testing.T, db model.Database, us []model.RunUpdate) {
	t.Helper()
	if err := db.UpdateRuns(ctx, us); err != nil {
		t.Fatalf("UpdateRuns(%d updates): %v", len(us), err)
	}
}

// mustUpdateTasks applies us to the database and to o, checks that the
// database returned the tasks o says changed, and returns what it returned.
func mustUpdateTasks(ctx context.Context, t *testing.T, db model.Database, o *oracle, us []model.TaskUpdate) []*model.Task {
	t.Helper()
	want := o.apply(t, us)
	got, err := db.UpdateTasks(ctx, us)
	if err != nil {
		t.Fatalf("UpdateTasks(%d updates): %v", len(us), err)
	}
	checkTaskSet(t, "UpdateTasks returned", got, want)
	return got
}

// ---- The suite's own copy of the tasks ----

// oracle holds what a database should hold for a set of tasks: each update
// applied with model.ApplyTaskUpdate, the rules every backend shares.
type oracle struct {
	tasks map[string]*model.Task
}

func newOracle(sets ...[]*model.Task) *oracle {
	o := &oracle{tasks: make(map[string]*model.Task)}
	for _, ts := range sets {
		for _, tk := range ts {
			o.add(tk)
		}
	}
	return o
}

func (o *oracle) add(tk *model.Task) { o.tasks[tk.ID] = cloneTask(tk) }

func (o *oracle) get(id string) *model.Task { return cloneTask(o.tasks[id]) }

// apply applies one batch in order and returns the tasks it changed, each
// once, as they are after the batch. It may run on any goroutine.
func (o *oracle) apply(t *testing.T, us []model.TaskUpdate) []*model.Task {
	t.Helper()
	var ids []string
	for _, u := range us {
		tk, ok := o.tasks[u.TaskID]
		if !ok {
			t.Errorf("test bug: update of unknown task %s", u.TaskID)
			continue
		}
		if model.ApplyTaskUpdate(tk, u) && !slices.Contains(ids, u.TaskID) {
			ids = append(ids, u.TaskID)
		}
	}
	out := make([]*model.Task, len(ids))
	for i, id := range ids {
		out[i] = o.get(id)
	}
	return out
}

// list returns the tasks of a run as ListTasks should: by name and index.
func (o *oracle) list(runID string) []*model.Task {
	var out []*model.Task
	for _, tk := range o.tasks {
		if tk.RunID == runID {
			out = append(out, cloneTask(tk))
		}
	}
	sortTasks(out)
	return out
}

func (o *oracle) active() []*model.Task {
	var out []*model.Task
	for _, tk := range o.tasks {
		if tk.Status.Active() {
			out = append(out, cloneTask(tk))
		}
	}
	return out
}

func (o *oracle) counts(runID string) map[model.TaskStatus]int {
	c := make(map[model.TaskStatus]int)
	for _, tk := range o.tasks {
		if tk.RunID == runID {
			c[tk.Status]++
		}
	}
	return c
}

func sortTasks(ts []*model.Task) {
	slices.SortFunc(ts, func(a, b *model.Task) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.TaskIndex, b.TaskIndex))
	})
}

func cloneTask(tk *model.Task) *model.Task {
	c := *tk
	c.DispatchedAt = cloneTime(tk.DispatchedAt)
	c.StartedAt = cloneTime(tk.StartedAt)
	c.FinishedAt = cloneTime(tk.FinishedAt)
	if tk.ExitCode != nil {
		c.ExitCode = intPtr(*tk.ExitCode)
	}
	c.Output = bytes.Clone(tk.Output)
	return &c
}

func cloneTasks(ts []*model.Task) []*model.Task {
	out := make([]*model.Task, len(ts))
	for i, tk := range ts {
		out[i] = cloneTask(tk)
	}
	return out
}

func cloneRun(r *model.Run) *model.Run {
	c := *r
	c.StartedAt = cloneTime(r.StartedAt)
	c.FinishedAt = cloneTime(r.FinishedAt)
	if r.Workflow != nil {
		c.Workflow = cloneWorkflow(r.Workflow)
	}
	return &c
}

func cloneWorkflow(w *model.Workflow) *model.Workflow {
	c := *w
	return &c
}

func cloneTime(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// ---- Checks ----

func checkWorkflow(t *testing.T, what string, got, want *model.Workflow) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil workflow, want %s", what, workflowJSON(want))
		return
	}
	if g, w := workflowJSON(got), workflowJSON(want); g != w {
		t.Errorf("%s: %s\n got  %s\n want %s", what, diffJSON(g, w), g, w)
	}
}

// checkRun checks that GetRun returns want, and returns what it got.
func checkRun(ctx context.Context, t *testing.T, db model.Database, want *model.Run) *model.Run {
	t.Helper()
	got, err := db.GetRun(ctx, want.ID)
	if err != nil {
		t.Errorf("GetRun(%s): %v", want.ID, err)
		return nil
	}
	checkRunValue(t, "GetRun("+want.ID+")", got, want)
	return got
}

func checkRunValue(t *testing.T, what string, got, want *model.Run) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil run, want %s", what, runJSON(want))
		return
	}
	if g, w := runJSON(got), runJSON(want); g != w {
		t.Errorf("%s: %s\n got  %s\n want %s", what, diffJSON(g, w), g, w)
	}
}

func checkRunList(t *testing.T, what string, got, want []*model.Run) {
	t.Helper()
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, r := range got {
		g[i] = runJSON(r)
	}
	for i, r := range want {
		w[i] = runJSON(r)
	}
	if slices.Equal(g, w) {
		return
	}
	var diffs []string
	if len(g) == len(w) {
		for i := range g {
			if g[i] != w[i] {
				diffs = append(diffs, fmt.Sprintf("[%d] %s", i, diffJSON(g[i], w[i])))
			}
		}
	}
	t.Errorf("%s: %s\n got  %d runs:\n  %s\n want %d runs:\n  %s", what, strings.Join(diffs, "; "),
		len(g), strings.Join(g, "\n  "), len(w), strings.Join(w, "\n  "))
}

func checkPendingRuns(ctx context.Context, t *testing.T, db model.Database, limit int, want []*model.Run) {
	t.Helper()
	got, err := db.PendingRuns(ctx, limit)
	if err != nil {
		t.Errorf("PendingRuns(%d): %v", limit, err)
		return
	}
	checkRunList(t, fmt.Sprintf("PendingRuns(%d) (oldest first)", limit), got, want)
}

func checkListRuns(ctx context.Context, t *testing.T, db model.Database, want []*model.Run) {
	t.Helper()
	got, err := db.ListRuns(ctx, model.RunFilter{})
	if err != nil {
		t.Errorf("ListRuns: %v", err)
		return
	}
	checkRunList(t, "ListRuns (newest first)", got, want)
}

// checkTasks checks that ListTasks(runID) returns want, in that order.
func checkTasks(ctx context.Context, t *testing.T, db model.Database, runID string, want []*model.Task) {
	t.Helper()
	got, err := db.ListTasks(ctx, runID)
	if err != nil {
		t.Errorf("ListTasks(%s): %v", runID, err)
		return
	}
	checkTaskList(t, "ListTasks (by name and index)", got, want)
}

func checkTaskList(t *testing.T, what string, got, want []*model.Task) {
	t.Helper()
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, tk := range got {
		g[i] = taskJSON(tk)
	}
	for i, tk := range want {
		w[i] = taskJSON(tk)
	}
	if slices.Equal(g, w) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: got %d tasks, want %d", what, len(g), len(w))
	for i := range max(len(g), len(w)) {
		gs, ws := "(none)", "(none)"
		if i < len(g) {
			gs = g[i]
		}
		if i < len(w) {
			ws = w[i]
		}
		if gs != ws {
			if i < len(g) && i < len(w) {
				fmt.Fprintf(&b, "\n [%d] %s", i, diffJSON(gs, ws))
			}
			fmt.Fprintf(&b, "\n [%d] got  %s\n [%d] want %s", i, gs, i, ws)
		}
	}
	t.Error(b.String())
}

// checkTaskSet is checkTaskList in any order.
func checkTaskSet(t *testing.T, what string, got, want []*model.Task) {
	t.Helper()
	byID := func(a, b *model.Task) int { return strings.Compare(a.ID, b.ID) }
	got = slices.Clone(got)
	want = slices.Clone(want)
	for _, tk := range got {
		if tk == nil {
			t.Errorf("%s: a nil task", what)
			return
		}
	}
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	checkTaskList(t, what+" (in any order)", got, want)
}

// checkPendingTasks checks that PendingTasks(limit) returns the first
// limit tasks of want, in that order, each with its run's workflow
// snapshot from wfs (by run id).
func checkPendingTasks(ctx context.Context, t *testing.T, db model.Database, limit int, want []*model.Task, wfs map[string]*model.Workflow) {
	t.Helper()
	got, err := db.PendingTasks(ctx, limit)
	if err != nil {
		t.Errorf("PendingTasks(%d): %v", limit, err)
		return
	}
	if len(want) > limit {
		want = want[:limit]
	}
	what := fmt.Sprintf("PendingTasks(%d) (oldest run first, then by index)", limit)
	checkTaskList(t, what, tasksOf(t, what, got), want)
	checkWorkflows(t, what, got, wfs)
}

// checkActiveTasks checks that ActiveTasks returns want, in any order,
// each with its run's workflow snapshot from wfs.
func checkActiveTasks(ctx context.Context, t *testing.T, db model.Database, want []*model.Task, wfs map[string]*model.Workflow) {
	t.Helper()
	got, err := db.ActiveTasks(ctx)
	if err != nil {
		t.Errorf("ActiveTasks: %v", err)
		return
	}
	const what = "ActiveTasks (dispatched and running)"
	checkTaskSet(t, what, tasksOf(t, what, got), want)
	checkWorkflows(t, what, got, wfs)
}

func tasksOf(t *testing.T, what string, tws []model.TaskWithWorkflow) []*model.Task {
	t.Helper()
	out := make([]*model.Task, 0, len(tws))
	for i, tw := range tws {
		if tw.Task == nil {
			t.Errorf("%s: entry %d has a nil Task", what, i)
			continue
		}
		out = append(out, tw.Task)
	}
	return out
}

func checkWorkflows(t *testing.T, what string, tws []model.TaskWithWorkflow, wfs map[string]*model.Workflow) {
	t.Helper()
	for _, tw := range tws {
		if tw.Task == nil {
			continue
		}
		want, ok := wfs[tw.Task.RunID]
		if !ok {
			continue
		}
		checkWorkflow(t, fmt.Sprintf("%s: workflow of %s (the run's snapshot)", what, tw.Task.Label()), tw.Workflow, want)
	}
}

func checkCounts(ctx context.Context, t *testing.T, db model.Database, runID string, want map[model.TaskStatus]int) {
	t.Helper()
	got, err := db.TaskCounts(ctx, runID)
	if err != nil {
		t.Errorf("TaskCounts(%s): %v", runID, err)
		return
	}
	ok := true
	for s, n := range got {
		if want[s] != n {
			ok = false
		}
	}
	for s, n := range want {
		if got[s] != n {
			ok = false
		}
	}
	if !ok {
		t.Errorf("TaskCounts(%s) = %v, want %v", runID, got, want)
	}
}

func workflowNames(ws []*model.Workflow) []string {
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	return names
}

// waker records the calls of a watch's fn (see RunWatcher, TaskWatcher).
type waker struct {
	t    *testing.T
	what string // the watch, for messages
	ch   chan struct{}
}

func newWaker(t *testing.T, what string) *waker {
	return &waker{t: t, what: what, ch: make(chan struct{}, 1)}
}

// fn is the watch's fn.
func (w *waker) fn() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// watching fails the test on err, or skips it where the database cannot
// watch here (errors.ErrUnsupported).
func (w *waker) watching(err error) {
	w.t.Helper()
	if errors.Is(err, errors.ErrUnsupported) {
		w.t.Skipf("%s: %v", w.what, err)
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

// want fails unless the watch woke within 10s, after something.
func (w *waker) want(after string) {
	w.t.Helper()
	select {
	case <-w.ch:
	case <-time.After(10 * time.Second):
		w.t.Fatalf("%s did not wake within 10s of %s", w.what, after)
	}
}

// none fails if the watch wakes within 300ms, after something.
func (w *waker) none(after string) {
	w.t.Helper()
	select {
	case <-w.ch:
		w.t.Fatalf("%s woke at %s", w.what, after)
	case <-time.After(300 * time.Millisecond):
	}
}

// forget drops a wake already recorded.
func (w *waker) forget() {
	select {
	case <-w.ch:
	default:
	}
}
