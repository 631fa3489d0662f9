package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/runctl"
)

// ---- views: what the API returns ----

// nodeView is one node of a workflow's DAG.
type nodeView struct {
	Name      string   `json:"name"`
	JobName   string   `json:"job_name"`
	DependsOn []string `json:"depends_on"`
	TaskCount int      `json:"task_count"`
	When      string   `json:"when,omitempty"`
}

type workflowView struct {
	*model.Workflow
	Nodes    []nodeView `json:"nodes"`
	LastRuns []runView  `json:"last_runs"`
}

// runView is a run with its task counts; the events carry the same.
type runView struct {
	ID           string                   `json:"id"`
	WorkflowName string                   `json:"workflow_name"`
	Status       model.RunStatus          `json:"status"`
	TriggeredBy  string                   `json:"triggered_by,omitempty"`
	Params       map[string]any           `json:"params,omitempty"`
	CreatedAt    time.Time                `json:"created_at"`
	StartedAt    *time.Time               `json:"started_at,omitempty"`
	FinishedAt   *time.Time               `json:"finished_at,omitempty"`
	Error        string                   `json:"error,omitempty"`
	TaskTotal    int                      `json:"task_total"`
	TaskCounts   map[model.TaskStatus]int `json:"task_counts"`
}

type runDetail struct {
	runView
	Nodes []nodeView `json:"nodes"`
}

func nodesOf(w *model.Workflow) []nodeView {
	out := []nodeView{}
	if w == nil {
		return out
	}
	for _, nd := range w.Nodes() {
		v := nodeView{Name: nd.Name, JobName: nd.JobName, DependsOn: nd.DependsOn, TaskCount: nd.TaskCount}
		if v.DependsOn == nil {
			v.DependsOn = []string{}
		}
		if w.Tasks != nil && w.Tasks[nd.Name] != nil {
			v.When = w.Tasks[nd.Name].When
		}
		out = append(out, v)
	}
	return out
}

// summarize returns the run with its task counts; the tasks the scheduler
// has not created yet count as pending (cancelled once the run ended).
func summarize(ctx context.Context, db model.Database, run *model.Run) (runView, error) {
	counts := run.TaskCounts
	if counts == nil || !run.Status.Terminal() {
		c, err := db.TaskCounts(ctx, run.ID)
		if err != nil {
			return runView{}, err
		}
		counts = c
	}
	return viewRun(run, counts), nil
}

// viewRun is the run with the counts of its recorded tasks.
func viewRun(run *model.Run, counts map[model.TaskStatus]int) runView {
	return runView{ID: run.ID, WorkflowName: run.WorkflowName, Status: run.Status, TriggeredBy: run.TriggeredBy,
		Params: run.Params, CreatedAt: run.CreatedAt, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt,
		Error: run.Error, TaskTotal: run.TaskCount(), TaskCounts: completeCounts(run, counts)}
}

// countTasks counts recorded tasks by status.
func countTasks(ts []*model.Task) map[model.TaskStatus]int {
	c := map[model.TaskStatus]int{}
	for _, t := range ts {
		c[t.Status]++
	}
	return c
}

func completeCounts(run *model.Run, counts map[model.TaskStatus]int) map[model.TaskStatus]int {
	out := make(map[model.TaskStatus]int, len(counts)+1)
	n := 0
	for k, c := range counts {
		if c > 0 {
			out[k] = c
			n += c
		}
	}
	if rest := run.TaskCount() - n; rest > 0 {
		if run.Status.Terminal() {
			out[model.TaskCancelled] += rest
		} else {
			out[model.TaskPending] += rest
		}
	}
	return out
}

// taskView is a task as the UI lists it: everything but its params.
type taskView struct {
	ID           string           `json:"id"`
	Name         string           `json:"name"`
	Index        int              `json:"index"`
	Status       model.TaskStatus `json:"status"`
	Attempt      int              `json:"attempt"`
	ExitCode     *int             `json:"exit_code,omitempty"`
	Error        string           `json:"error,omitempty"`
	Output       any              `json:"output,omitempty"`
	DispatchedAt *time.Time       `json:"dispatched_at,omitempty"`
	StartedAt    *time.Time       `json:"started_at,omitempty"`
	FinishedAt   *time.Time       `json:"finished_at,omitempty"`
	RetryAt      *time.Time       `json:"retry_at,omitempty"`
	Attempts     []attemptView    `json:"attempts,omitempty"`
}

type attemptView struct {
	Attempt    int              `json:"attempt"`
	Status     model.TaskStatus `json:"status"`
	StartedAt  *time.Time       `json:"started_at,omitempty"`
	FinishedAt *time.Time       `json:"finished_at,omitempty"`
	ExitCode   *int             `json:"exit_code,omitempty"`
	Error      string           `json:"error,omitempty"`
}

func viewTask(t *model.Task) taskView {
	v := taskView{ID: t.ID, Name: t.Name, Index: t.TaskIndex, Status: t.Status, Attempt: t.Attempt,
		ExitCode: t.ExitCode, Error: t.Error, DispatchedAt: t.DispatchedAt, StartedAt: t.StartedAt,
		FinishedAt: t.FinishedAt, RetryAt: t.RetryAt}
	if len(t.Output) > 0 {
		v.Output = t.Output
	}
	for _, a := range t.Attempts {
		v.Attempts = append(v.Attempts, attemptView{Attempt: a.Attempt, Status: a.Status, StartedAt: a.StartedAt,
			FinishedAt: a.FinishedAt, ExitCode: a.ExitCode, Error: a.Error})
	}
	return v
}

// ---- workflows ----

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) {
	wfs, err := s.db.ListWorkflows(r.Context())
	var problems []string
	if err != nil {
		if len(wfs) == 0 && !isFileErrors(err) {
			s.dbError(w, r, err)
			return
		}
		// Workflows that do not load are reported; the others are listed.
		problems = append(problems, err.Error())
	}
	// The last runs of each workflow, from one listing of the newest runs.
	runs, err := s.db.ListRuns(r.Context(), model.RunFilter{Limit: 1000})
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	last := map[string][]runView{}
	for _, run := range runs {
		if len(last[run.WorkflowName]) >= 5 {
			continue
		}
		v, err := summarize(r.Context(), s.db, run)
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		last[run.WorkflowName] = append(last[run.WorkflowName], v)
	}
	out := make([]workflowView, 0, len(wfs))
	for _, wf := range wfs {
		lr := last[wf.Name]
		if lr == nil {
			lr = []runView{}
		}
		out = append(out, workflowView{Workflow: wf, Nodes: nodesOf(wf), LastRuns: lr})
	}
	writeJSON(w, http.StatusOK, struct {
		Workflows []workflowView `json:"workflows"`
		Problems  []string       `json:"problems,omitempty"`
	}{out, problems})
}

func isFileErrors(err error) bool {
	var fe *model.FileError
	return errors.As(err, &fe)
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) {
	wf, err := s.db.GetWorkflow(r.Context(), r.PathValue("name"))
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	runs, err := s.db.ListRuns(r.Context(), model.RunFilter{WorkflowName: wf.Name, Limit: 10})
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	lr := []runView{}
	for _, run := range runs {
		v, err := summarize(r.Context(), s.db, run)
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		lr = append(lr, v)
	}
	writeJSON(w, http.StatusOK, workflowView{Workflow: wf, Nodes: nodesOf(wf), LastRuns: lr})
}

// maxBody bounds a request body.
const maxBody = 1 << 20

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Params map[string]any `json:"params"`
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: %v (at most %d bytes)", err, maxBody))
		return
	}
	if len(data) > 0 {
		if err := model.DecodeJSON("request body", data, &body, true); err != nil {
			writeError(w, http.StatusBadRequest, err.Error()+` (send {"params": {...}})`)
			return
		}
	}
	run, err := runctl.Trigger(r.Context(), s.db, r.PathValue("name"), body.Params, s.opts.TriggeredBy, s.opts.CheckWorkflow)
	var refused *runctl.RefusedError
	if errors.As(err, &refused) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	v, err := summarize(r.Context(), s.db, run)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/runs/"+run.ID)
	writeJSON(w, http.StatusCreated, v)
}

// ---- runs ----

const defaultRunLimit, maxRunLimit = 50, 500

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := model.RunFilter{WorkflowName: q.Get("workflow"), Status: model.RunStatus(q.Get("status"))}
	if f.Status != "" && !f.Status.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: use pending, running, success, failed or cancelled", f.Status))
		return
	}
	limit := defaultRunLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxRunLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: give a number from 1 to %d", l, maxRunLimit))
			return
		}
		limit = n
	}
	var before time.Time
	if b := q.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("before %q: give a time like 2026-01-02T15:04:05.999Z (the next field of the previous page)", b))
			return
		}
		before = t
	}
	// The Database pages by count only: ask for everything up to the
	// cursor's page when there is a cursor.
	if before.IsZero() {
		f.Limit = limit + 1
	}
	runs, err := s.db.ListRuns(r.Context(), f)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	if !before.IsZero() {
		i := slices.IndexFunc(runs, func(x *model.Run) bool { return x.CreatedAt.Before(before) })
		if i < 0 {
			runs = nil
		} else {
			runs = runs[i:]
		}
	}
	next := ""
	if len(runs) > limit {
		runs = runs[:limit]
		next = runs[limit-1].CreatedAt.Format(time.RFC3339Nano)
	}
	out := make([]runView, 0, len(runs))
	for _, run := range runs {
		v, err := summarize(r.Context(), s.db, run)
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, struct {
		Runs []runView `json:"runs"`
		Next string    `json:"next,omitempty"`
	}{out, next})
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.db.GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	v, err := summarize(r.Context(), s.db, run)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, runDetail{runView: v, Nodes: nodesOf(run.Workflow)})
}

func (s *Server) runTasks(r *http.Request, id string) (*model.Run, []*model.Task, error) {
	run, err := s.db.GetRun(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	ts, err := s.db.ListTasks(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	return run, model.CompleteTasks(run, ts), nil
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	_, ts, err := s.runTasks(r, r.PathValue("id"))
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]taskView, len(ts))
	for i, t := range ts {
		out[i] = viewTask(t)
	}
	writeJSON(w, http.StatusOK, struct {
		Tasks []taskView `json:"tasks"`
	}{out})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	run, outcome, err := runctl.Cancel(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	if outcome == runctl.AlreadyEnded {
		writeError(w, http.StatusConflict, fmt.Sprintf("run %s already ended (%s): nothing to cancel", run.ID, run.Status))
		return
	}
	code := http.StatusAccepted // the scheduler applies the request
	if outcome == runctl.Cancelled {
		code = http.StatusOK
		if cur, err := s.db.GetRun(r.Context(), run.ID); err == nil {
			run = cur
		}
	}
	v, err := summarize(r.Context(), s.db, run)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	writeJSON(w, code, struct {
		Outcome string  `json:"outcome"`
		Run     runView `json:"run"`
	}{outcome.String(), v})
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	p, err := runctl.Retry(r.Context(), s.db, r.PathValue("id"))
	if errors.Is(err, runctl.ErrConflict) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	run, err := s.db.GetRun(r.Context(), p.Run.ID)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	v, err := summarize(r.Context(), s.db, run)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Run      runView `json:"run"`
		Again    int     `json:"again"`
		NeverRan int     `json:"never_ran"`
	}{v, len(p.Reset), p.NeverRan})
}
