package dbtest_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/dbtest"
	"github.com/ork-run/ork/model"
)

// TestSuite runs the suite against memDB, the simplest backend that keeps
// the contract, so that the suite itself is tested: a failure of a real
// backend is then the backend's.
func TestSuite(t *testing.T) {
	dbtest.Run(t, func(t *testing.T) model.Database {
		db := newMemDB()
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// memDB is a model.Database in memory, behind one mutex. It stores and
// returns deep copies.
type memDB struct {
	mu        sync.Mutex
	workflows map[string]*model.Workflow
	runs      map[string]*model.Run
	tasks     map[string]*model.Task
	cancels   map[string]bool
	schedules map[string]model.ScheduleState // memdb_schedule_test.go
}

func newMemDB() *memDB {
	return &memDB{
		workflows: make(map[string]*model.Workflow),
		runs:      make(map[string]*model.Run),
		tasks:     make(map[string]*model.Task),
		cancels:   make(map[string]bool),
		schedules: make(map[string]model.ScheduleState),
	}
}

// clone deep-copies v through JSON, as a backend that stores JSON would.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var c T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers keep their digits, as the contract says
	if err := dec.Decode(&c); err != nil {
		panic(err)
	}
	return &c
}

func (d *memDB) CreateWorkflow(_ context.Context, w *model.Workflow) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.workflows[w.Name]; ok {
		return fmt.Errorf("workflow %q: %w", w.Name, model.ErrExists)
	}
	d.workflows[w.Name] = clone(w)
	return nil
}

func (d *memDB) GetWorkflow(_ context.Context, name string) (*model.Workflow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.workflows[name]
	if !ok {
		return nil, fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	return clone(w), nil
}

func (d *memDB) ListWorkflows(context.Context) ([]*model.Workflow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*model.Workflow
	for _, w := range d.workflows {
		out = append(out, clone(w))
	}
	slices.SortFunc(out, func(a, b *model.Workflow) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (d *memDB) DeleteWorkflow(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.workflows[name]; !ok {
		return fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	delete(d.workflows, name)
	return nil
}

func (d *memDB) CreateRun(_ context.Context, r *model.Run) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.runs[r.ID]; ok {
		return fmt.Errorf("run %s: %w", r.ID, model.ErrExists)
	}
	d.runs[r.ID] = clone(r)
	return nil
}

func (d *memDB) GetRun(_ context.Context, id string) (*model.Run, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %s: %w", id, model.ErrNotFound)
	}
	return clone(r), nil
}

// sortedRuns returns copies of the runs that keep, oldest first.
func (d *memDB) sortedRuns(keep func(*model.Run) bool) []*model.Run {
	var out []*model.Run
	for _, r := range d.runs {
		if keep(r) {
			out = append(out, clone(r))
		}
	}
	slices.SortFunc(out, func(a, b *model.Run) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

func (d *memDB) ListRuns(_ context.Context, f model.RunFilter) ([]*model.Run, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.sortedRuns(func(r *model.Run) bool {
		return (f.WorkflowName == "" || r.WorkflowName == f.WorkflowName) && (f.Status == "" || r.Status == f.Status)
	})
	slices.Reverse(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (d *memDB) PendingRuns(_ context.Context, limit int) ([]*model.Run, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.sortedRuns(func(r *model.Run) bool { return r.Status == model.RunPending })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (d *memDB) UpdateRuns(_ context.Context, us []model.RunUpdate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range us {
		if r, ok := d.runs[u.RunID]; ok {
			model.ApplyRunUpdate(r, u)
		}
	}
	return nil
}

func (d *memDB) CreateTasks(_ context.Context, ts []*model.Task) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range ts {
		if _, ok := d.tasks[t.ID]; !ok {
			d.tasks[t.ID] = clone(t)
		}
	}
	return nil
}

// withWorkflows returns copies of the tasks that keep, each with its run's
// workflow, oldest run first, then by index and name.
func (d *memDB) withWorkflows(keep func(*model.Task) bool) []model.TaskWithWorkflow {
	var out []model.TaskWithWorkflow
	for _, t := range d.tasks {
		if !keep(t) {
			continue
		}
		tw := model.TaskWithWorkflow{Task: clone(t)}
		if r, ok := d.runs[t.RunID]; ok && r.Workflow != nil {
			tw.Workflow = clone(r.Workflow)
		}
		out = append(out, tw)
	}
	created := func(t *model.Task) string {
		if r, ok := d.runs[t.RunID]; ok {
			return r.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000000")
		}
		return ""
	}
	slices.SortFunc(out, func(a, b model.TaskWithWorkflow) int {
		return cmp.Or(
			strings.Compare(created(a.Task), created(b.Task)),
			strings.Compare(a.Task.RunID, b.Task.RunID),
			cmp.Compare(a.Task.TaskIndex, b.Task.TaskIndex),
			strings.Compare(a.Task.Name, b.Task.Name),
		)
	})
	return out
}

func (d *memDB) PendingTasks(_ context.Context, limit int) ([]model.TaskWithWorkflow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	out := d.withWorkflows(func(t *model.Task) bool {
		return t.Status == model.TaskPending && (t.RetryAt == nil || !t.RetryAt.After(now))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (d *memDB) ActiveTasks(context.Context) ([]model.TaskWithWorkflow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.withWorkflows(func(t *model.Task) bool { return t.Status.Active() }), nil
}

func (d *memDB) UpdateTasks(_ context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var changed []string
	for _, u := range us {
		t, ok := d.tasks[u.TaskID]
		if ok && model.ApplyTaskUpdate(t, u) && !slices.Contains(changed, t.ID) {
			changed = append(changed, t.ID)
		}
	}
	out := make([]*model.Task, len(changed))
	for i, id := range changed {
		out[i] = clone(d.tasks[id])
	}
	return out, nil
}

func (d *memDB) ListTasks(_ context.Context, runID string) ([]*model.Task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*model.Task
	for _, t := range d.tasks {
		if t.RunID == runID {
			out = append(out, clone(t))
		}
	}
	slices.SortFunc(out, func(a, b *model.Task) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.TaskIndex, b.TaskIndex))
	})
	return out, nil
}

func (d *memDB) TaskCounts(_ context.Context, runID string) (map[model.TaskStatus]int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	counts := make(map[model.TaskStatus]int)
	for _, t := range d.tasks {
		if t.RunID == runID {
			counts[t.Status]++
		}
	}
	return counts, nil
}

func (d *memDB) Close() error { return nil }

func (m *memDB) RequestCancel(ctx context.Context, runID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[runID]
	if r == nil {
		return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	if !r.Status.Terminal() {
		m.cancels[runID] = true
	}
	return nil
}

func (m *memDB) CancelRequests(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id := range m.cancels {
		if r := m.runs[id]; r != nil && !r.Status.Terminal() {
			out = append(out, id)
		} else {
			delete(m.cancels, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m *memDB) ReopenRun(ctx context.Context, runID string, reset, remove []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[runID]
	if r == nil {
		return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	if !r.Status.Terminal() {
		return fmt.Errorf("run %s is %s", runID, r.Status)
	}
	delete(m.cancels, runID) // a request made before the retry
	for _, id := range remove {
		if t := m.tasks[id]; t != nil && t.RunID == runID {
			delete(m.tasks, id)
		}
	}
	for _, id := range reset {
		if t := m.tasks[id]; t != nil && t.RunID == runID {
			t.Status = model.TaskPending
			t.Error, t.ExecutionName, t.Log = "", "", ""
			t.ExitCode, t.DispatchedAt, t.StartedAt, t.FinishedAt, t.RetryAt = nil, nil, nil, nil, nil
			t.Output = nil
		}
	}
	r.Status, r.Error, r.StartedAt, r.FinishedAt, r.TaskCounts = model.RunPending, "", nil, nil, nil
	return nil
}
