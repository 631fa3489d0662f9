// Package dbtest is the conformance suite of model.Database: one set of
// tests that every storage backend runs from its own tests, so that the file
// database, PostgreSQL and any backend after them keep the same contract.
//
//	func TestDatabase(t *testing.T) {
//		dbtest.Run(t, func(t *testing.T) model.Database {
//			db, err := mybackend.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// The suite uses only the exported API of model, and takes the rules of
// status changes from model.ApplyTaskUpdate and model.ApplyRunUpdate: it
// keeps its own copy of every record, applies each update to it with those
// functions, and checks that the database agrees.
//
// Where the contract in model/database.go leaves a point open, the suite
// decides it like this:
//
//   - Records compare as JSON after normalizing: times as instants (any
//     location), at microsecond precision; empty and nil params alike; a
//     task's output as a JSON value, not as bytes.
//   - The updates of one batch apply in order. A task that one batch changes
//     more than once is returned once, as it is at the end of the batch. The
//     order of the tasks UpdateTasks returns does not matter.
//   - PendingTasks orders by the creation time of the run, then by task
//     index, whenever the tasks themselves were created.
//   - Empty batches (no updates, no tasks) are no-ops without error.
//   - ListTasks of a run that has no tasks yet is empty, not an error.
//   - TaskCounts may leave out a status that no task has.
//   - Numbers in params come back with the digits they were given
//     (12345678901234567890 and 1.10 as written): a backend that stores
//     JSON decodes them as json.Number, never through float64.
//   - ListRuns and PendingRuns return whole runs, the workflow snapshot
//     included.
//   - A database holds copies: changing a value after passing it to a
//     Create method, or a value a method returned, does not change what is
//     stored or what later calls return. This covers the workflow snapshot
//     of a run and of a TaskWithWorkflow, not the inside of params maps.
//
// A backend that implements model.ScheduleStore also runs the schedule
// tests (schedule.go): a tick claimed once, even by claimers racing for it;
// ticks at or before Through refused; AdvanceSchedule never moving back;
// pause and unpause.
//
// Left untested, because the contract does not say and a backend may
// reasonably choose: updates of ids that do not exist, ListTasks and
// TaskCounts of a run that does not exist, a limit of zero, whether the
// tasks of a run that is still pending or already finished are pending
// tasks (the suite marks a run running once its tasks exist, as the
// scheduler does), and whether CreateWorkflow validates. Reading files
// damaged by hand is backend-specific and belongs in the backend's own
// tests. Reopening after Close is tested by RunStores, for backends that
// can open a second handle on one store.
//
// The tests live by concern: workflows.go, runs.go, tasks.go, lifecycle.go
// (cancel requests, reopening), concurrency.go (parallel callers, large
// batches), stores.go (several handles on one store: RunStores); helpers.go builds records and keeps the suite's own copy of
// them, compare.go compares records as JSON.
//
// dbtest must never import a backend.
package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// testTimeout bounds each test of the suite.
const testTimeout = 2 * time.Minute

// base is the time the suite's records start at. It has microseconds,
// which every backend must keep.
var base = time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

// Run runs the whole suite against databases made by open. open must
// return a new, empty database each call (on t.TempDir() for files, a fresh
// schema for SQL) and register its own cleanup.
func Run(t *testing.T, open func(t *testing.T) model.Database) {
	s := &suite{open: open}
	t.Run("Workflows", func(t *testing.T) {
		t.Run("CreateGet", s.testWorkflowCreateGet)
		t.Run("NotFoundAndExists", s.testWorkflowErrors)
		t.Run("ListSortedByName", s.testWorkflowList)
		t.Run("Delete", s.testWorkflowDelete)
		t.Run("DeleteKeepsRuns", s.testWorkflowDeleteKeepsRuns)
		t.Run("Copies", s.testWorkflowCopies)
	})
	t.Run("Runs", func(t *testing.T) {
		t.Run("CreateGet", s.testRunCreateGet)
		t.Run("NotFoundAndExists", s.testRunErrors)
		t.Run("ListRuns", s.testListRuns)
		t.Run("PendingRuns", s.testPendingRuns)
		t.Run("UpdateRuns", s.testUpdateRuns)
		t.Run("UpdateRunsBatch", s.testUpdateRunsBatch)
		t.Run("Copies", s.testRunCopies)
		t.Run("CancelRequests", s.testCancelRequests)
		t.Run("ReopenRun", s.testReopenRun)
		t.Run("WatchRun", s.testWatchRun)
		t.Run("ParamsKeepDigits", s.testParamsKeepDigits)
	})
	t.Run("Tasks", func(t *testing.T) {
		t.Run("CreateList", s.testCreateListTasks)
		t.Run("RunWithoutTasks", s.testRunWithoutTasks)
		t.Run("CreateTasksIdempotent", s.testCreateTasksIdempotent)
		t.Run("RunTaskCounts", s.testRunTaskCounts)
		t.Run("GetTask", s.testGetTask)
		t.Run("WatchTask", s.testWatchTask)
		t.Run("PendingTasks", s.testPendingTasks)
		t.Run("ActiveTasks", s.testActiveTasks)
		t.Run("RetryAt", s.testRetryAt)
		t.Run("WithdrawUnstarted", s.testWithdrawUnstarted)
		t.Run("UpdateTasksRules", s.testUpdateTasksRules)
		t.Run("UpdateTasksSameTaskTwice", s.testUpdateTasksSameTaskTwice)
		t.Run("BatchVisibleOnReturn", s.testBatchVisibleOnReturn)
		t.Run("EmptyBatches", s.testEmptyBatches)
		t.Run("Copies", s.testTaskCopies)
	})
	t.Run("Claims", func(t *testing.T) { // cluster.go: through model.ClaimTasks
		t.Run("Order", s.testClaimOrder)
		t.Run("WithUpdates", s.testClaimWithUpdates)
		t.Run("Creates", s.testClaimCreates)
		t.Run("FencedReports", s.testFencedReports)
	})
	t.Run("Concurrent", s.testConcurrent)
	t.Run("LargeBatch", s.testLargeBatch)
	t.Run("Schedules", s.testSchedules) // schedule.go: only for a model.ScheduleStore
}

type suite struct {
	open func(t *testing.T) model.Database
}

// setup opens a fresh database and a context that ends with the test.
func (s *suite) setup(t *testing.T) (context.Context, model.Database) {
	t.Helper()
	db := s.open(t)
	if db == nil {
		t.Fatal("open returned a nil Database")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, db
}
