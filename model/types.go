package model

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Executor types a workflow may name.
const (
	ExecutorProcess = "process"
)

// ExecutorTypes lists the executor types this version of ork accepts.
var ExecutorTypes = []string{ExecutorProcess, ExecutorCloudRun}

// Workflow is a named job definition. Triggering it makes a Run.
type Workflow struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Description  string         `json:"description,omitempty"`
	JobName      string         `json:"job_name,omitempty"`
	ExecutorType string         `json:"executor_type"`
	TaskCount    int            `json:"task_count,omitempty"`
	Params       map[string]any `json:"params,omitempty"`
	// Tasks makes the workflow a DAG of named task nodes, each a job of its
	// own; a workflow has either JobName (one job) or Tasks.
	Tasks map[string]*TaskSpec `json:"tasks,omitempty"`
	// Retries, RetryBackoff and Timeout are the defaults of every task;
	// MaxParallel bounds the running tasks of a flat workflow's fan-out.
	Retries      int      `json:"retries,omitempty"`
	RetryBackoff Duration `json:"retry_backoff,omitempty"`
	Timeout      Duration `json:"timeout,omitempty"`
	MaxParallel  int      `json:"max_parallel,omitempty"`
	// MaxActiveRuns bounds the runs of this workflow running at once; more
	// wait, pending. 0: no bound.
	MaxActiveRuns int       `json:"max_active_runs,omitempty"`
	Project       string    `json:"project,omitempty"`
	Region        string    `json:"region,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Schedule makes the workflow run by itself on a cron schedule.
	Schedule *Schedule `json:"schedule,omitempty"`
}

// workflowNamespace seeds the stable IDs of workflows whose file has no id.
var workflowNamespace = uuid.MustParse("6f2a8f64-5f3e-4b8e-9d0c-6f726b2d7766")

// WorkflowID returns the stable id of a workflow named name, used when a
// hand-written workflow file leaves out its id.
func WorkflowID(name string) string {
	return uuid.NewSHA1(workflowNamespace, []byte(name)).String()
}

// TaskID returns the stable id of the task with the given node name and
// index in run runID. Stable ids make task creation idempotent: a scheduler
// that dies half-way through creating a run's tasks creates the same tasks
// again after a restart.
func TaskID(runID, name string, index int) string {
	return uuid.NewSHA1(workflowNamespace, []byte(runID+"/"+name+"/"+strconv.Itoa(index))).String()
}

// Normalize fills the defaults of a workflow: executor_type "process",
// task_count 1, and an id derived from the name when none is given.
func (w *Workflow) Normalize() {
	if w.ExecutorType == "" {
		w.ExecutorType = ExecutorProcess
	}
	if w.TaskCount == 0 && w.Tasks == nil {
		w.TaskCount = 1
	}
	if w.ID == "" && w.Name != "" {
		w.ID = WorkflowID(w.Name)
	}
}

// Run is one triggering of a workflow. Workflow is a snapshot of the
// workflow as it was when the run was triggered: editing or deleting the
// workflow file later does not change what a run executes.
type Run struct {
	ID           string         `json:"id"`
	WorkflowID   string         `json:"workflow_id"`
	WorkflowName string         `json:"workflow_name"`
	Status       RunStatus      `json:"status"`
	TriggeredBy  string         `json:"triggered_by,omitempty"`
	Params       map[string]any `json:"params,omitempty"`
	StartedAt    *time.Time     `json:"started_at,omitempty"`
	FinishedAt   *time.Time     `json:"finished_at,omitempty"`
	Error        string         `json:"error,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
	// Scheduler is the id of the scheduler that holds the run's lease,
	// where several may serve the database (see Cluster).
	Scheduler string    `json:"scheduler,omitempty"`
	Workflow  *Workflow `json:"workflow,omitempty"`
	// TaskCounts counts the run's tasks by status as they were when it
	// ended, so that a finished run's summary reads one file. The file
	// database also keeps it current while a large run runs (tasks not yet
	// counted there are pending).
	TaskCounts map[TaskStatus]int `json:"task_counts,omitempty"`
	// ScheduledAt is the tick a scheduled run is for (triggered_by
	// "schedule").
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
}

// Task is one unit of work of a run: one index of one job.
type Task struct {
	ID            string     `json:"id"`
	RunID         string     `json:"run_id"`
	Name          string     `json:"name"`
	TaskIndex     int        `json:"task_index"`
	Status        TaskStatus `json:"status"`
	ExecutionName string     `json:"execution_name,omitempty"`
	// Scheduler is the id of the scheduler that dispatched the current
	// attempt, where several may serve the database (see Cluster).
	Scheduler    string          `json:"scheduler,omitempty"`
	Params       map[string]any  `json:"params,omitempty"`
	Output       json.RawMessage `json:"output,omitempty"`
	Error        string          `json:"error,omitempty"`
	Attempt      int             `json:"attempt"`
	ExitCode     *int            `json:"exit_code,omitempty"`
	DispatchedAt *time.Time      `json:"dispatched_at,omitempty"`
	StartedAt    *time.Time      `json:"started_at,omitempty"`
	FinishedAt   *time.Time      `json:"finished_at,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	// RetryAt: a pending task waiting to be retried starts no earlier.
	RetryAt *time.Time `json:"retry_at,omitempty"`
	// Log is the log file of the current attempt.
	Log string `json:"log,omitempty"`
	// Attempts records every attempt that ended, oldest first.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Label names a task for people: "name[index]".
func (t *Task) Label() string { return fmt.Sprintf("%s[%d]", t.Name, t.TaskIndex) }

// TaskWithWorkflow is a task joined with the workflow of its run, which is
// what an executor needs to run it.
type TaskWithWorkflow struct {
	Task     *Task
	Workflow *Workflow
	// Upstream is the outputs of the task's upstream nodes, as a JSON
	// object: each upstream name maps to its output (an array by
	// task_index for a fan-out; null where skipped). Nil for a task
	// without upstream.
	Upstream json.RawMessage
}

// Node returns the workflow node the task belongs to.
func (t TaskWithWorkflow) Node() Node {
	if t.Workflow == nil {
		return Node{Name: t.Task.Name, TaskCount: 1, ExecutorType: ExecutorProcess}
	}
	if nd, ok := t.Workflow.Node(t.Task.Name); ok {
		return nd
	}
	// A task of a node the workflow does not have: run the workflow's job.
	nds := t.Workflow.Nodes()
	return nds[0]
}

// NewRun makes a pending run of w with the given trigger parameters.
func NewRun(w *Workflow, params map[string]any, triggeredBy string, now time.Time) *Run {
	snap := *w
	if w.Tasks != nil {
		// The run's copy is its own: later edits of the workflow's tasks
		// do not reach it.
		snap.Tasks = make(map[string]*TaskSpec, len(w.Tasks))
		for k, v := range w.Tasks {
			if v != nil {
				cp := *v
				v = &cp
			}
			snap.Tasks[k] = v
		}
	}
	return &Run{
		ID:           uuid.NewString(),
		WorkflowID:   w.ID,
		WorkflowName: w.Name,
		Status:       RunPending,
		TriggeredBy:  triggeredBy,
		Params:       params,
		CreatedAt:    now.UTC(),
		Workflow:     &snap,
	}
}

// TaskCount returns how many tasks run r has: the task_count of every node
// of its workflow, added up.
func (r *Run) TaskCount() int {
	if r.Workflow == nil {
		return 1
	}
	n := 0
	for _, nd := range r.Workflow.Nodes() {
		n += nd.TaskCount
	}
	return n
}

// NewTasks makes every task of run r, pending.
func NewTasks(r *Run, now time.Time) []*Task {
	if r.Workflow == nil {
		return nil
	}
	var out []*Task
	for _, nd := range r.Workflow.Nodes() {
		out = append(out, NewNodeTasks(r, nd, 0, nd.TaskCount, now)...)
	}
	return out
}

// NewNodeTasks makes the pending tasks of node nd of run r with indexes
// from to to-1. Their params are the workflow's, overridden by the node's,
// overridden by the run's (the trigger's).
func NewNodeTasks(r *Run, nd Node, from, to int, now time.Time) []*Task {
	if from >= to {
		return nil
	}
	params := MergeParams(r.Workflow.Params, nd.Params, r.Params)
	tasks := make([]*Task, 0, to-from)
	for i := from; i < to; i++ {
		tasks = append(tasks, &Task{
			ID:        TaskID(r.ID, nd.Name, i),
			RunID:     r.ID,
			Name:      nd.Name,
			TaskIndex: i,
			Status:    TaskPending,
			Params:    params,
			CreatedAt: now.UTC(),
		})
	}
	return tasks
}

// CompleteTasks returns the tasks of run r: those recorded plus those the
// scheduler has not created yet — a scheduler creates a run's task records
// as it dispatches them — as pending, or cancelled if the run has ended. They come in the workflow's
// order: node by node (upstream first), then by index.
func CompleteTasks(r *Run, recorded []*Task) []*Task {
	out := recorded
	if r.Workflow != nil && len(recorded) < r.TaskCount() {
		have := make(map[string]bool, len(recorded))
		for _, t := range recorded {
			have[t.ID] = true
		}
		out = append([]*Task(nil), recorded...)
		for _, t := range NewTasks(r, r.CreatedAt) {
			if !have[t.ID] {
				if r.Status.Terminal() {
					// The run ended before the task's turn came.
					t.Status, t.Error = TaskCancelled, "never started: the run ended "+string(r.Status)
				}
				out = append(out, t)
			}
		}
	}
	SortTasks(r.Workflow, out)
	return out
}

// SortTasks orders tasks node by node in the workflow's order (upstream
// first), then by index. Tasks of nodes the workflow does not have go last,
// by name.
func SortTasks(w *Workflow, ts []*Task) {
	rank := map[string]int{}
	if w != nil {
		for i, nd := range w.Nodes() {
			rank[nd.Name] = i
		}
	}
	slices.SortStableFunc(ts, func(a, b *Task) int {
		ra, oka := rank[a.Name]
		rb, okb := rank[b.Name]
		switch {
		case oka && okb && ra != rb:
			return ra - rb
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.TaskIndex - b.TaskIndex
	})
}

// MergeParams returns the union of the given parameter maps, later maps
// winning. It returns nil when all are empty.
func MergeParams(maps ...map[string]any) map[string]any {
	var out map[string]any
	for _, m := range maps {
		for k, v := range m {
			if out == nil {
				out = make(map[string]any)
			}
			out[k] = v
		}
	}
	return out
}
