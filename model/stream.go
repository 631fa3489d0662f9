package model

import (
	"context"
	"math"
	"strings"
)

// TaskStreamer is implemented by databases that can hand over the tasks of
// a run one at a time, reading each as it goes, instead of loading every
// record first as ListTasks does: `ork tasks` on a run of 100,000 tasks
// prints its first lines at once and holds a few records at a time.
type TaskStreamer interface {
	// StreamTasks calls fn with each recorded task of run runID in the
	// run's task order (see TaskOrder), and stops at the first error fn
	// returns, returning it. Records that do not load are skipped and
	// reported as ListTasks skips and reports them. ErrNotFound if the run
	// does not exist.
	StreamTasks(ctx context.Context, runID string, fn func(*Task) error) error
}

// TaskOrder is the order SortTasks puts a run's tasks in: node by node in
// the workflow's order (upstream first), then by index; tasks of nodes the
// workflow does not have go last, by name.
type TaskOrder struct {
	rank map[string]int
}

// NewTaskOrder returns the task order of workflow w (nil: by name, then
// index).
func NewTaskOrder(w *Workflow) TaskOrder {
	o := TaskOrder{rank: map[string]int{}}
	if w != nil {
		for i, nd := range w.Nodes() {
			o.rank[nd.Name] = i
		}
	}
	return o
}

// Rank is the place of node name in the order: the nodes of the workflow
// by their order, then every other name (math.MaxInt).
func (o TaskOrder) Rank(name string) int {
	if r, ok := o.rank[name]; ok {
		return r
	}
	return math.MaxInt
}

// Compare orders task (aName, aIndex) against task (bName, bIndex): negative
// if a comes first, positive if b does, 0 if they are the same task.
func (o TaskOrder) Compare(aName string, aIndex int, bName string, bIndex int) int {
	ra, oka := o.rank[aName]
	rb, okb := o.rank[bName]
	switch {
	case oka && okb && ra != rb:
		return ra - rb
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	}
	if c := strings.Compare(aName, bName); c != 0 {
		return c
	}
	return aIndex - bIndex
}

// StreamCompleteTasks is CompleteTasks one task at a time: it calls fn with
// each task of run r, in the same order — those s has recorded, and those
// the scheduler has not created yet as pending (cancelled if the run has
// ended) — holding one recorded task at a time. It stops at fn's first
// error and returns it.
//
// It differs from CompleteTasks only for a run that has records of tasks
// its workflow does not name and lacks some that it does: CompleteTasks
// fills in the missing ones only while fewer tasks are recorded than the
// workflow has; this does always.
func StreamCompleteTasks(ctx context.Context, s TaskStreamer, r *Run, fn func(*Task) error) error {
	if r.Workflow == nil {
		return s.StreamTasks(ctx, r.ID, fn)
	}
	order := NewTaskOrder(r.Workflow)
	nodes := r.Workflow.Nodes()
	// The next task the workflow has, as a cursor over its nodes.
	node, index := 0, 0
	skipEmpty := func() {
		for node < len(nodes) && index >= nodes[node].TaskCount {
			node, index = node+1, 0
		}
	}
	skipEmpty()
	var params map[string]any
	paramsNode := -1
	// emitMissing calls fn with the workflow's tasks that come before the
	// recorded task (name, idx) (all of them when last), and moves the
	// cursor past the recorded one.
	emitMissing := func(name string, idx int, last bool) error {
		for skipEmpty(); node < len(nodes); skipEmpty() {
			nd := nodes[node]
			c := -1 // the workflow's task comes first
			if !last {
				c = order.Compare(nd.Name, index, name, idx)
			}
			if c == 0 {
				index++
				return nil
			}
			if c > 0 {
				return nil
			}
			if paramsNode != node {
				params, paramsNode = MergeParams(r.Workflow.Params, nd.Params, r.Params), node
			}
			t := &Task{
				ID:        TaskID(r.ID, nd.Name, index),
				RunID:     r.ID,
				Name:      nd.Name,
				TaskIndex: index,
				Status:    TaskPending,
				Params:    params,
				CreatedAt: r.CreatedAt.UTC(),
			}
			if r.Status.Terminal() {
				// The run ended before the task's turn came.
				t.Status, t.Error = TaskCancelled, "never started: the run ended "+string(r.Status)
			}
			index++
			if err := fn(t); err != nil {
				return err
			}
		}
		return nil
	}
	err := s.StreamTasks(ctx, r.ID, func(t *Task) error {
		if err := emitMissing(t.Name, t.TaskIndex, false); err != nil {
			return err
		}
		return fn(t)
	})
	if err != nil {
		return err
	}
	return emitMissing("", 0, true)
}
