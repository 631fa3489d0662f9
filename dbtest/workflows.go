package dbtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// ---- Workflows ----

func (s *suite) testWorkflowCreateGet(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	// A time in another zone must come back as the same instant.
	w.UpdatedAt = at(60).In(time.FixedZone("UTC+2", 2*60*60))
	mustCreateWorkflow(ctx, t, db, w)

	got, err := db.GetWorkflow(ctx, "hello")
	if err != nil {
		t.Fatalf("GetWorkflow(hello) after CreateWorkflow: %v", err)
	}
	checkWorkflow(t, "GetWorkflow(hello)", got, w)
}

func (s *suite) testWorkflowErrors(t *testing.T) {
	ctx, db := s.setup(t)
	if _, err := db.GetWorkflow(ctx, "missing"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetWorkflow(missing) = %v, want ErrNotFound", err)
	}
	if err := db.DeleteWorkflow(ctx, "missing"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("DeleteWorkflow(missing) = %v, want ErrNotFound", err)
	}

	w := newWorkflow("hello", 1)
	mustCreateWorkflow(ctx, t, db, w)
	dup := newWorkflow("hello", 5)
	dup.Description = "a second workflow of the same name"
	if err := db.CreateWorkflow(ctx, dup); !errors.Is(err, model.ErrExists) {
		t.Errorf("CreateWorkflow of a taken name = %v, want ErrExists", err)
	}
	got, err := db.GetWorkflow(ctx, "hello")
	if err != nil {
		t.Fatalf("GetWorkflow(hello): %v", err)
	}
	checkWorkflow(t, "GetWorkflow(hello) after a refused duplicate", got, w)
}

func (s *suite) testWorkflowList(t *testing.T) {
	ctx, db := s.setup(t)
	ws, err := db.ListWorkflows(ctx)
	if err != nil || len(ws) != 0 {
		t.Fatalf("ListWorkflows of an empty database = %d workflows, %v; want none, nil", len(ws), err)
	}

	want := map[string]*model.Workflow{}
	for i, name := range []string{"charlie", "alpha", "bravo", "alphabet"} {
		w := newWorkflow(name, i+1)
		want[name] = w
		mustCreateWorkflow(ctx, t, db, w)
	}
	ws, err = db.ListWorkflows(ctx)
	if err != nil {
		t.Fatalf("ListWorkflows: %v", err)
	}
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	if wantNames := []string{"alpha", "alphabet", "bravo", "charlie"}; !slices.Equal(names, wantNames) {
		t.Fatalf("ListWorkflows names = %q, want %q (sorted by name)", names, wantNames)
	}
	for _, w := range ws {
		checkWorkflow(t, "ListWorkflows entry "+w.Name, w, want[w.Name])
	}
}

func (s *suite) testWorkflowDelete(t *testing.T) {
	ctx, db := s.setup(t)
	mustCreateWorkflow(ctx, t, db, newWorkflow("alpha", 1))
	bravo := newWorkflow("bravo", 1)
	mustCreateWorkflow(ctx, t, db, bravo)

	if err := db.DeleteWorkflow(ctx, "alpha"); err != nil {
		t.Fatalf("DeleteWorkflow(alpha): %v", err)
	}
	if _, err := db.GetWorkflow(ctx, "alpha"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("GetWorkflow(alpha) after delete = %v, want ErrNotFound", err)
	}
	if err := db.DeleteWorkflow(ctx, "alpha"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("second DeleteWorkflow(alpha) = %v, want ErrNotFound", err)
	}
	ws, err := db.ListWorkflows(ctx)
	if err != nil {
		t.Fatalf("ListWorkflows: %v", err)
	}
	if len(ws) != 1 || ws[0].Name != "bravo" {
		t.Fatalf("ListWorkflows after deleting alpha = %v, want only bravo", workflowNames(ws))
	}
	checkWorkflow(t, "ListWorkflows entry bravo", ws[0], bravo)

	// The name is free again.
	again := newWorkflow("alpha", 3)
	again.Description = "alpha, the second"
	mustCreateWorkflow(ctx, t, db, again)
	got, err := db.GetWorkflow(ctx, "alpha")
	if err != nil {
		t.Fatalf("GetWorkflow(alpha) after re-creating it: %v", err)
	}
	checkWorkflow(t, "GetWorkflow(alpha) after re-creating it", got, again)
}

func (s *suite) testWorkflowDeleteKeepsRuns(t *testing.T) {
	ctx, db := s.setup(t)
	w := newWorkflow("hello", 2)
	mustCreateWorkflow(ctx, t, db, w)
	r, tasks := startRun(ctx, t, db, w, at(1))

	if err := db.DeleteWorkflow(ctx, "hello"); err != nil {
		t.Fatalf("DeleteWorkflow(hello): %v", err)
	}
	checkRun(ctx, t, db, r)
	checkTasks(ctx, t, db, r.ID, tasks)

	// A new workflow of the same name does not change what the run runs:
	// its tasks come with the run's snapshot.
	edited := newWorkflow("hello", 7)
	edited.Description = "edited after the run"
	edited.JobName = "jobs/other.sh"
	mustCreateWorkflow(ctx, t, db, edited)
	checkRun(ctx, t, db, r)
	checkPendingTasks(ctx, t, db, 10, tasks, map[string]*model.Workflow{r.ID: r.Workflow})
}

// testWorkflowCopies checks that a workflow the caller changes after
// CreateWorkflow, or after a method returned it, stays as stored.
func (s *suite) testWorkflowCopies(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutate func(ctx context.Context, t *testing.T, db model.Database, created *model.Workflow)
	}{
		{"ChangingWhatCreateWorkflowWasGiven", func(ctx context.Context, t *testing.T, db model.Database, created *model.Workflow) {
			created.Description = "changed by the caller"
			created.TaskCount = 99
		}},
		{"ChangingWhatGetWorkflowReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Workflow) {
			got, err := db.GetWorkflow(ctx, "hello")
			if err != nil {
				t.Fatalf("GetWorkflow(hello): %v", err)
			}
			got.Description = "changed by the caller"
			got.JobName = "changed.sh"
		}},
		{"ChangingWhatListWorkflowsReturned", func(ctx context.Context, t *testing.T, db model.Database, _ *model.Workflow) {
			list, err := db.ListWorkflows(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("ListWorkflows = %v, %v; want hello", workflowNames(list), err)
			}
			list[0].Description = "changed by the caller"
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			ctx, db := s.setup(t)
			w := newWorkflow("hello", 1)
			want := cloneWorkflow(w)
			mustCreateWorkflow(ctx, t, db, w)
			m.mutate(ctx, t, db, w)
			got, err := db.GetWorkflow(ctx, "hello")
			if err != nil {
				t.Fatalf("GetWorkflow(hello): %v", err)
			}
			checkWorkflow(t, "GetWorkflow after the caller changed a workflow it passed in or got back (the database must keep its own copy)", got, want)
		})
	}
}
