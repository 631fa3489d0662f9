package dbtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/ork-run/ork/model"
)

// ---- Runs ----

func (s *suite) testRunCreateGet(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 3)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)
	checkRun(ctx, t, db, r)

	// A run without trigger params, of a workflow without params.
	bare := newWorkflow("bare", 1)
	bare.Params = nil
	mustCreateWorkflow(ctx, t, db, bare)
	r2 := model.NewRun(bare, nil, "", at(2))
	mustCreateRun(ctx, t, db, r2)
	checkRun(ctx, t, db, r2)
}

func (s *suite) testRunErrors(t *testing.T) {
	ctx, db := s.setup(t)
	if _, err := db.GetRun(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetRun of a missing id = %v, want ErrNotFound", err)
	}
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	mustCreateRun(ctx, t, db, r)

	dup := cloneRun(r)
	dup.TriggeredBy = "someone else"
	dup.CreatedAt = at(2)
	if err := db.CreateRun(ctx, dup); !errors.Is(err, model.ErrExists) {
		t.Errorf("CreateRun of a taken id = %v, want ErrExists", err)
	}
	checkRun(ctx, t, db, r)
}

func (s *suite) testListRuns(t *testing.T) {
	ctx, db := s.setup(t)
	if runs, err := db.ListRuns(ctx, model.RunFilter{}); err != nil || len(runs) != 0 {
		t.Fatalf("ListRuns of an empty database = %d runs, %v; want none, nil", len(runs), err)
	}
	a, b := newWorkflow("a", 1), newWorkflow("b", 1)
	mustCreateWorkflow(ctx, t, db, a)
	mustCreateWorkflow(ctx, t, db, b)
	runs := map[string]*model.Run{
		"a1": newRun(a, at(1)),
		"b1": newRun(b, at(2)),
		"a2": newRun(a, at(3)),
		"b2": newRun(b, at(4)),
		"a3": newRun(a, at(5)),
	}
	// Created out of order: the order comes from CreatedAt.
	for _, k := range []string{"a2", "b1", "a3", "a1", "b2"} {
		mustCreateRun(ctx, t, db, runs[k])
	}
	// a2 runs, b2 has finished; the others are pending.
	us := []model.RunUpdate{
		{RunID: runs["a2"].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs["b2"].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs["b2"].ID, Status: model.RunSuccess, At: at(11)},
	}
	mustUpdateRuns(ctx, t, db, us)
	label := map[string]string{}
	for k, r := range runs {
		label[r.ID] = k
	}
	for _, u := range us {
		model.ApplyRunUpdate(runs[label[u.RunID]], u)
	}
	tests := []struct {
		f    model.RunFilter
		want []string
	}{
		{model.RunFilter{}, []string{"a3", "b2", "a2", "b1", "a1"}},
		{model.RunFilter{WorkflowName: "a"}, []string{"a3", "a2", "a1"}},
		{model.RunFilter{WorkflowName: "b"}, []string{"b2", "b1"}},
		{model.RunFilter{Limit: 2}, []string{"a3", "b2"}},
		{model.RunFilter{Limit: 10}, []string{"a3", "b2", "a2", "b1", "a1"}},
		{model.RunFilter{WorkflowName: "b", Limit: 1}, []string{"b2"}},
		{model.RunFilter{WorkflowName: "nope"}, nil},
		{model.RunFilter{Status: model.RunPending}, []string{"a3", "b1", "a1"}},
		{model.RunFilter{Status: model.RunRunning}, []string{"a2"}},
		{model.RunFilter{Status: model.RunSuccess, WorkflowName: "b"}, []string{"b2"}},
		{model.RunFilter{Status: model.RunSuccess, WorkflowName: "a"}, nil},
		{model.RunFilter{Status: model.RunPending, WorkflowName: "a", Limit: 1}, []string{"a3"}},
		{model.RunFilter{Status: model.RunPending, Limit: 2}, []string{"a3", "b1"}},
		{model.RunFilter{Status: model.RunFailed}, nil},
	}
	for _, tt := range tests {
		got, err := db.ListRuns(ctx, tt.f)
		if err != nil {
			t.Errorf("ListRuns(%+v): %v", tt.f, err)
			continue
		}
		var gotLabels []string
		for _, r := range got {
			gotLabels = append(gotLabels, cmp.Or(label[r.ID], r.ID))
		}
		if !slices.Equal(gotLabels, tt.want) {
			t.Errorf("ListRuns(%+v) = %q, want %q (newest first)", tt.f, gotLabels, tt.want)
			continue
		}
		for _, r := range got {
			checkRunValue(t, "ListRuns entry "+label[r.ID], r, runs[label[r.ID]])
		}
	}
}

func (s *suite) testPendingRuns(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	if runs, err := db.PendingRuns(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("PendingRuns of an empty database = %d runs, %v; want none, nil", len(runs), err)
	}
	p := make([]*model.Run, 5)
	for i := range p {
		p[i] = newRun(w, at(i+1))
	}
	for _, i := range []int{3, 0, 4, 2, 1} {
		mustCreateRun(ctx, t, db, p[i])
	}
	// p[1] starts, p[3] is cancelled before it starts.
	us := []model.RunUpdate{
		{RunID: p[1].ID, Status: model.RunRunning, At: at(10)},
		{RunID: p[3].ID, Status: model.RunCancelled, Error: "cancelled", At: at(10)},
	}
	mustUpdateRuns(ctx, t, db, us)
	for _, u := range us {
		for _, r := range p {
			if r.ID == u.RunID {
				model.ApplyRunUpdate(r, u)
			}
		}
	}
	checkPendingRuns(ctx, t, db, 10, []*model.Run{p[0], p[2], p[4]})
	checkPendingRuns(ctx, t, db, 2, []*model.Run{p[0], p[2]})
	checkPendingRuns(ctx, t, db, 1, []*model.Run{p[0]})
}

func (s *suite) testUpdateRuns(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	other := newRun(w, at(2))
	mustCreateRun(ctx, t, db, r)
	mustCreateRun(ctx, t, db, other)

	steps := []struct {
		desc  string
		u     model.RunUpdate
		check func(t *testing.T, got *model.Run)
	}{
		{
			desc: "pending to running",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(10)},
			check: func(t *testing.T, got *model.Run) {
				if got.Status != model.RunRunning || got.StartedAt == nil || !got.StartedAt.Equal(at(10)) || got.FinishedAt != nil {
					t.Errorf("after pending -> running: status %s, started %v, finished %v; want running, %v, none",
						got.Status, got.StartedAt, got.FinishedAt, at(10))
				}
			},
		},
		{
			desc: "running never goes back to pending",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunPending, At: at(11)},
		},
		{
			desc: "running to success",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunSuccess, At: at(20)},
			check: func(t *testing.T, got *model.Run) {
				if got.Status != model.RunSuccess || got.FinishedAt == nil || !got.FinishedAt.Equal(at(20)) || got.Error != "" ||
					got.StartedAt == nil || !got.StartedAt.Equal(at(10)) {
					t.Errorf("after running -> success: status %s, started %v, finished %v, error %q; want success, %v, %v, none",
						got.Status, got.StartedAt, got.FinishedAt, got.Error, at(10), at(20))
				}
			},
		},
		{
			desc: "a late running after success",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunRunning, At: at(21)},
		},
		{
			desc: "a late failed after success",
			u:    model.RunUpdate{RunID: r.ID, Status: model.RunFailed, Error: "late failure", At: at(22)},
		},
		{
			desc: "pending straight to failed",
			u:    model.RunUpdate{RunID: other.ID, Status: model.RunFailed, Error: "workflow is broken", At: at(30)},
			check: func(t *testing.T, got *model.Run) {
				if got.Status != model.RunFailed || got.Error != "workflow is broken" || got.FinishedAt == nil || !got.FinishedAt.Equal(at(30)) {
					t.Errorf("after pending -> failed: status %s, error %q, finished %v; want failed, the error, %v",
						got.Status, got.Error, got.FinishedAt, at(30))
				}
			},
		},
		{
			desc: "a late cancel after failed",
			u:    model.RunUpdate{RunID: other.ID, Status: model.RunCancelled, Error: "too late", At: at(31)},
		},
	}
	runs := map[string]*model.Run{r.ID: r, other.ID: other}
	for _, step := range steps {
		mustUpdateRuns(ctx, t, db, []model.RunUpdate{step.u})
		want := runs[step.u.RunID]
		model.ApplyRunUpdate(want, step.u)
		got, err := db.GetRun(ctx, step.u.RunID)
		if err != nil {
			t.Fatalf("%s: GetRun: %v", step.desc, err)
		}
		checkRunValue(t, step.desc, got, want)
		if step.check != nil {
			step.check(t, got)
		}
	}
	if got, err := db.GetRun(ctx, r.ID); err == nil && got.Status != model.RunSuccess {
		t.Errorf("a terminal run was overwritten: status %s, want success", got.Status)
	}
}

func (s *suite) testUpdateRunsBatch(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	var runs []*model.Run
	for i := range 4 {
		r := newRun(w, at(i+1))
		runs = append(runs, r)
		mustCreateRun(ctx, t, db, r)
	}
	// One batch: several runs, one of them twice, in order.
	us := []model.RunUpdate{
		{RunID: runs[0].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs[1].ID, Status: model.RunRunning, At: at(10)},
		{RunID: runs[1].ID, Status: model.RunSuccess, At: at(11)},
		{RunID: runs[2].ID, Status: model.RunCancelled, Error: "cancelled by user", At: at(12)},
		{RunID: runs[2].ID, Status: model.RunRunning, At: at(13)},
	}
	mustUpdateRuns(ctx, t, db, us)
	for _, u := range us {
		for _, r := range runs {
			if r.ID == u.RunID {
				model.ApplyRunUpdate(r, u)
			}
		}
	}
	wantStatus := []model.RunStatus{model.RunRunning, model.RunSuccess, model.RunCancelled, model.RunPending}
	for i, r := range runs {
		got := checkRun(ctx, t, db, r)
		if got != nil && got.Status != wantStatus[i] {
			t.Errorf("run %d after the batch: status %s, want %s", i, got.Status, wantStatus[i])
		}
	}
	checkPendingRuns(ctx, t, db, 10, []*model.Run{runs[3]})
}

// testRunCopies checks that a run the caller changes after CreateRun, or
// after a method returned it, stays as stored.
func (s *suite) testRunCopies(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutate func(ctx context.Context, t *testing.T, db model.Database, created *model.Run)
	}{
		{"ChangingWhatCreateRunWasGiven", func(ctx context.Context, t *testing.T, db model.Database, created *model.Run) {
			created.Status = model.RunFailed
			created.TriggeredBy = "changed by the caller"
			created.Workflow.JobName = "changed.sh"
		}},
		{"ChangingWhatGetRunReturned", func(ctx context.Context, t *testing.T, db model.Database, created *model.Run) {
			got, err := db.GetRun(ctx, created.ID)
			if err != nil {
				t.Fatalf("GetRun: %v", err)
			}
			got.Status = model.RunSuccess
			got.Error = "changed by the caller"
			if got.Workflow != nil {
				got.Workflow.JobName = "changed.sh"
			}
		}},
		{"ChangingWhatPendingRunsReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Run) {
			pending, err := db.PendingRuns(ctx, 10)
			if err != nil || len(pending) != 1 {
				t.Fatalf("PendingRuns = %d runs, %v; want 1", len(pending), err)
			}
			pending[0].Status = model.RunRunning
			if pending[0].Workflow != nil {
				pending[0].Workflow.JobName = "changed.sh"
			}
		}},
		{"ChangingWhatListRunsReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Run) {
			list, err := db.ListRuns(ctx, model.RunFilter{})
			if err != nil || len(list) != 1 {
				t.Fatalf("ListRuns = %d runs, %v; want 1", len(list), err)
			}
			list[0].Status = model.RunCancelled
			if list[0].Workflow != nil {
				list[0].Workflow.JobName = "changed.sh"
			}
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			ctx, db := s.setup(t)
			w := newWorkflow("hello", 1)
			mustCreateWorkflow(ctx, t, db, w)
			r := newRun(w, at(1))
			want := cloneRun(r)
			mustCreateRun(ctx, t, db, r)
			m.mutate(ctx, t, db, r)
			checkRun(ctx, t, db, want)
			checkPendingRuns(ctx, t, db, 10, []*model.Run{want})
			checkListRuns(ctx, t, db, []*model.Run{want})
		})
	}
}

// testParamsKeepDigits: numbers in the params of a workflow, a run (and
// its workflow snapshot) and a task come back with every digit.
func (s *suite) testParamsKeepDigits(t *testing.T) {
	ctx, db := s.setup(t)
	digits := func() map[string]any {
		return map[string]any{"big": json.Number("12345678901234567890"), "dec": json.Number("1.10"),
			"nested": map[string]any{"list": []any{json.Number("0.10")}}}
	}
	const want = `{"big":12345678901234567890,"dec":1.10,"nested":{"list":[0.10]}}`
	check := func(what string, p map[string]any) {
		t.Helper()
		b, err := json.Marshal(p)
		if err != nil || string(b) != want {
			t.Errorf("%s params = %s (%v), want %s", what, b, err, want)
		}
	}
	w := newWorkflow("digits", 1)
	w.Params = digits()
	mustCreateWorkflow(ctx, t, db, w)
	r := model.NewRun(w, digits(), "dbtest", at(1))
	mustCreateRun(ctx, t, db, r)
	mustCreateTasks(ctx, t, db, []*model.Task{{
		ID: model.TaskID(r.ID, w.JobName, 0), RunID: r.ID, Name: w.JobName,
		Status: model.TaskPending, Params: digits(), CreatedAt: at(2),
	}})

	gw, err := db.GetWorkflow(ctx, "digits")
	if err != nil {
		t.Fatal(err)
	}
	check("GetWorkflow", gw.Params)
	gr, err := db.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("GetRun", gr.Params)
	if gr.Workflow == nil {
		t.Fatal("GetRun: no workflow snapshot")
	}
	check("GetRun's workflow snapshot", gr.Workflow.Params)
	ts, err := db.ListTasks(ctx, r.ID)
	if err != nil || len(ts) != 1 {
		t.Fatalf("ListTasks: %d tasks, %v", len(ts), err)
	}
	check("ListTasks", ts[0].Params)
}

// testWatchRun: a database that can watch one run (model.RunWatcher) says
// when that run ends, the moment it is recorded: the end of another run
// alone does not do it, the run's own end does.
func (s *suite) testWatchRun(t *testing.T) {
	ctx, db := s.setup(t)
	rw, ok := db.(model.RunWatcher)
	if !ok {
		t.Skip("the database cannot watch one run")
	}
	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	r := newRun(w, at(1))
	other := newRun(w, at(2))
	mustCreateRun(ctx, t, db, r)
	mustCreateRun(ctx, t, db, other)
	wk := newWaker(t, "WatchRun("+r.ID+")")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wk.watching(rw.WatchRun(wctx, r.ID, wk.fn))
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: other.ID, Status: model.RunRunning, At: at(3)}})
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: other.ID, Status: model.RunSuccess, At: at(4)}})
	wk.none("the end of another run")
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: r.ID, Status: model.RunRunning, At: at(5)}})
	mustUpdateRuns(ctx, t, db, []model.RunUpdate{{RunID: r.ID, Status: model.RunFailed, At: at(6)}})
	wk.want("the run's end")
}
