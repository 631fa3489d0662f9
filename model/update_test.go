package model_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

var (
	t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(1 * time.Second)
	t2 = t0.Add(2 * time.Second)
	t3 = t0.Add(3 * time.Second)
)

func ptime(t time.Time) *time.Time { return &t }
func pint(n int) *int              { return &n }

// mkTask returns a task in the given status and attempt, edited by edits.
func mkTask(status model.TaskStatus, attempt int, edits ...func(*model.Task)) model.Task {
	tk := model.Task{ID: "t1", RunID: "r1", Name: "job.sh", TaskIndex: 0, Status: status, Attempt: attempt, CreatedAt: t0}
	for _, e := range edits {
		e(&tk)
	}
	return tk
}

// dispatched, running: the fields a task in that status has.
func dispatchedAt(at time.Time, exec string) func(*model.Task) {
	return func(tk *model.Task) { tk.DispatchedAt = ptime(at); tk.ExecutionName = exec }
}
func startedAt(at time.Time) func(*model.Task) {
	return func(tk *model.Task) { tk.StartedAt = ptime(at) }
}

func TestApplyTaskUpdate(t *testing.T) {
	tests := []struct {
		desc    string
		before  model.Task
		u       model.TaskUpdate
		changed bool
		after   model.Task // ignored when !changed: the task must stay as it was
	}{
		// pending -> dispatched starts a new attempt.
		{
			desc:    "pending to dispatched counts the next attempt",
			before:  mkTask(model.TaskPending, 0),
			u:       model.TaskUpdate{TaskID: "t1", Status: model.TaskDispatched, ExecutionName: "pid 7", At: t1},
			changed: true,
			after:   mkTask(model.TaskDispatched, 1, dispatchedAt(t1, "pid 7")),
		},
		{
			desc:    "pending to dispatched takes the given attempt",
			before:  mkTask(model.TaskPending, 1),
			u:       model.TaskUpdate{TaskID: "t1", Attempt: 3, Status: model.TaskDispatched, At: t1},
			changed: true,
			after:   mkTask(model.TaskDispatched, 3, dispatchedAt(t1, "")),
		},
		{
			desc:   "pending to dispatched with an attempt already used is stale",
			before: mkTask(model.TaskPending, 2),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 2, Status: model.TaskDispatched, At: t1},
		},
		{
			desc:   "pending to dispatched with an older attempt is stale",
			before: mkTask(model.TaskPending, 2),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskDispatched, At: t1},
		},
		{
			desc: "dispatching a requeued task clears the last attempt",
			before: mkTask(model.TaskPending, 1, dispatchedAt(t0, ""), startedAt(t0), func(tk *model.Task) {
				tk.Error = "scheduler restarted"
				tk.ExitCode = pint(1)
				tk.FinishedAt = ptime(t0)
			}),
			u:       model.TaskUpdate{TaskID: "t1", Status: model.TaskDispatched, ExecutionName: "pid 8", At: t2},
			changed: true,
			after:   mkTask(model.TaskDispatched, 2, dispatchedAt(t2, "pid 8")),
		},
		{
			desc:   "dispatched to dispatched is ignored",
			before: mkTask(model.TaskDispatched, 1, dispatchedAt(t0, "pid 7")),
			u:      model.TaskUpdate{TaskID: "t1", Status: model.TaskDispatched, At: t1},
		},
		{
			desc:   "running never goes back to dispatched",
			before: mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Status: model.TaskDispatched, At: t2},
		},
		{
			desc:   "running never goes back to dispatched, even with a new attempt",
			before: mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 2, Status: model.TaskDispatched, At: t2},
		},

		// dispatched -> running records the start.
		{
			desc:    "dispatched to running records the start",
			before:  mkTask(model.TaskDispatched, 1, dispatchedAt(t0, "pid 7")),
			u:       model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskRunning, At: t1},
			changed: true,
			after:   mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
		},
		{
			desc:    "running update with attempt 0 matches any attempt",
			before:  mkTask(model.TaskDispatched, 4, dispatchedAt(t0, "pid 7")),
			u:       model.TaskUpdate{TaskID: "t1", Status: model.TaskRunning, ExecutionName: "exec-abc", At: t1},
			changed: true,
			after:   mkTask(model.TaskRunning, 4, dispatchedAt(t0, "exec-abc"), startedAt(t1)),
		},
		{
			desc:   "running update of an older attempt is stale",
			before: mkTask(model.TaskDispatched, 2, dispatchedAt(t0, "pid 7")),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskRunning, At: t1},
		},
		{
			desc:   "pending does not jump to running",
			before: mkTask(model.TaskPending, 0),
			u:      model.TaskUpdate{TaskID: "t1", Status: model.TaskRunning, At: t1},
		},
		{
			desc:   "running to running is ignored",
			before: mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskRunning, At: t2},
		},

		// non-terminal -> terminal records the end.
		{
			desc:   "running to success records the end",
			before: mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u: model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskSuccess, ExitCode: pint(0),
				Output: json.RawMessage(`{"rows":3}`), At: t2},
			changed: true,
			after: mkTask(model.TaskSuccess, 1, dispatchedAt(t0, "pid 7"), startedAt(t1), func(tk *model.Task) {
				tk.FinishedAt = ptime(t2)
				tk.ExitCode = pint(0)
				tk.Output = json.RawMessage(`{"rows":3}`)
				tk.Attempts = []model.Attempt{{Attempt: 1, Status: model.TaskSuccess, StartedAt: ptime(t1), FinishedAt: ptime(t2), ExitCode: pint(0)}}
			}),
		},
		{
			desc:   "running to failed records the error and exit code",
			before: mkTask(model.TaskRunning, 2, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u: model.TaskUpdate{TaskID: "t1", Attempt: 2, Status: model.TaskFailed, ExitCode: pint(3),
				Error: "exit status 3", ExecutionName: "pid 7b", At: t2},
			changed: true,
			after: mkTask(model.TaskFailed, 2, dispatchedAt(t0, "pid 7b"), startedAt(t1), func(tk *model.Task) {
				tk.FinishedAt = ptime(t2)
				tk.ExitCode = pint(3)
				tk.Error = "exit status 3"
				tk.Attempts = []model.Attempt{{Attempt: 2, Status: model.TaskFailed, StartedAt: ptime(t1), FinishedAt: ptime(t2), ExitCode: pint(3), Error: "exit status 3"}}
			}),
		},
		{
			desc:    "dispatched to failed (the start failed)",
			before:  mkTask(model.TaskDispatched, 1, dispatchedAt(t0, "")),
			u:       model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskFailed, Error: "exec format error", At: t1},
			changed: true,
			after: mkTask(model.TaskFailed, 1, dispatchedAt(t0, ""), func(tk *model.Task) {
				tk.FinishedAt = ptime(t1)
				tk.Error = "exec format error"
				tk.Attempts = []model.Attempt{{Attempt: 1, Status: model.TaskFailed, FinishedAt: ptime(t1), Error: "exec format error"}}
			}),
		},
		{
			desc:   "a late report of an attempt put back in the queue is stale",
			before: mkTask(model.TaskPending, 1, dispatchedAt(t0, "")),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskFailed, Error: "killed by signal TERM", At: t1},
		},
		{
			desc:    "pending to cancelled",
			before:  mkTask(model.TaskPending, 0),
			u:       model.TaskUpdate{TaskID: "t1", Status: model.TaskCancelled, Error: "cancelled by user", At: t1},
			changed: true,
			after: mkTask(model.TaskCancelled, 0, func(tk *model.Task) {
				tk.FinishedAt = ptime(t1)
				tk.Error = "cancelled by user"
			}),
		},
		{
			desc:   "terminal update of an older attempt is stale",
			before: mkTask(model.TaskRunning, 2, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskFailed, Error: "old attempt died", At: t2},
		},
		{
			desc:   "terminal update of a newer attempt is stale too",
			before: mkTask(model.TaskRunning, 2, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 3, Status: model.TaskSuccess, At: t2},
		},

		// active -> pending puts the task back in the queue.
		{
			desc:    "running to pending requeues",
			before:  mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:       model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskPending, Error: "scheduler restarted", At: t2},
			changed: true,
			after: mkTask(model.TaskPending, 1, dispatchedAt(t0, ""), startedAt(t1), func(tk *model.Task) {
				tk.Error = "scheduler restarted"
				tk.Attempts = []model.Attempt{{Attempt: 1, Status: "interrupted", StartedAt: ptime(t1), FinishedAt: ptime(t2), Error: "scheduler restarted"}}
			}),
		},
		{
			desc:   "a failed attempt waits for its retry",
			before: mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u: model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskPending, AttemptStatus: "failed", ExitCode: pint(2),
				Error: "exit status 2", RetryAt: ptime(t2.Add(time.Minute)), At: t2},
			changed: true,
			after: mkTask(model.TaskPending, 1, dispatchedAt(t0, ""), startedAt(t1), func(tk *model.Task) {
				tk.Error = "exit status 2"
				tk.ExitCode = pint(2)
				tk.RetryAt = ptime(t2.Add(time.Minute))
				tk.Attempts = []model.Attempt{{Attempt: 1, Status: model.TaskFailed, StartedAt: ptime(t1), FinishedAt: ptime(t2), ExitCode: pint(2), Error: "exit status 2"}}
			}),
		},
		{
			desc:    "dispatched to pending requeues",
			before:  mkTask(model.TaskDispatched, 1, dispatchedAt(t0, "pid 7")),
			u:       model.TaskUpdate{TaskID: "t1", Status: model.TaskPending, At: t2},
			changed: true,
			after: mkTask(model.TaskPending, 1, dispatchedAt(t0, ""), func(tk *model.Task) {
				tk.Attempts = []model.Attempt{{Attempt: 1, Status: "interrupted", FinishedAt: ptime(t2)}}
			}),
		},
		{
			desc:    "an attempt that never started is withdrawn",
			before:  mkTask(model.TaskDispatched, 3, dispatchedAt(t0, "")),
			u:       model.TaskUpdate{TaskID: "t1", Attempt: 3, Status: model.TaskPending, Unstarted: true, At: t2},
			changed: true,
			after:   mkTask(model.TaskPending, 2),
		},
		{
			desc:    "an attempt that started is not withdrawn: it was interrupted",
			before:  mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:       model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskPending, Unstarted: true, Error: "x", At: t2},
			changed: true,
			after: mkTask(model.TaskPending, 1, dispatchedAt(t0, ""), startedAt(t1), func(tk *model.Task) {
				tk.Error = "x"
				tk.Attempts = []model.Attempt{{Attempt: 1, Status: model.AttemptInterrupted, StartedAt: ptime(t1), FinishedAt: ptime(t2), Error: "x"}}
			}),
		},
		{
			desc:   "requeue of an older attempt is stale",
			before: mkTask(model.TaskRunning, 2, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Attempt: 1, Status: model.TaskPending, At: t2},
		},
		{
			desc:   "pending to pending is ignored",
			before: mkTask(model.TaskPending, 1),
			u:      model.TaskUpdate{TaskID: "t1", Status: model.TaskPending, Error: "x", At: t2},
		},

		// Nonsense is ignored.
		{
			desc:   "unknown status",
			before: mkTask(model.TaskRunning, 1, dispatchedAt(t0, "pid 7"), startedAt(t1)),
			u:      model.TaskUpdate{TaskID: "t1", Status: "exploded", At: t2},
		},
		{
			desc:   "empty status",
			before: mkTask(model.TaskPending, 0),
			u:      model.TaskUpdate{TaskID: "t1", At: t2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := cloneTask(tt.before)
			changed := model.ApplyTaskUpdate(&got, tt.u)
			if changed != tt.changed {
				t.Errorf("ApplyTaskUpdate(%s attempt %d, %+v) = %v, want %v", tt.before.Status, tt.before.Attempt, tt.u, changed, tt.changed)
			}
			want := tt.after
			if !tt.changed {
				want = tt.before
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("task after the update:\n got  %s\n want %s", taskJSON(got), taskJSON(want))
			}
		})
	}
}

// TestApplyTaskUpdateTerminal checks that a terminal task never changes,
// whatever the update.
func TestApplyTaskUpdateTerminal(t *testing.T) {
	for _, from := range model.TaskStatuses {
		if !from.Terminal() {
			continue
		}
		for _, to := range model.TaskStatuses {
			for _, attempt := range []int{0, 1, 2} {
				before := mkTask(from, 1, dispatchedAt(t0, "pid 7"), startedAt(t1), func(tk *model.Task) {
					tk.FinishedAt = ptime(t2)
					tk.ExitCode = pint(0)
					tk.Error = "first"
				})
				got := cloneTask(before)
				u := model.TaskUpdate{TaskID: "t1", Attempt: attempt, Status: to, Error: "late", ExitCode: pint(9), At: t3}
				if model.ApplyTaskUpdate(&got, u) {
					t.Errorf("%s task changed by a %s update (attempt %d)", from, to, attempt)
				}
				if !reflect.DeepEqual(got, before) {
					t.Errorf("%s task after a %s update (attempt %d):\n got  %s\n want %s", from, to, attempt, taskJSON(got), taskJSON(before))
				}
			}
		}
	}
}

func TestApplyTaskUpdateTimes(t *testing.T) {
	// A zero At means now.
	tk := mkTask(model.TaskPending, 0)
	before := time.Now()
	if !model.ApplyTaskUpdate(&tk, model.TaskUpdate{TaskID: "t1", Status: model.TaskDispatched}) {
		t.Fatal("dispatch not applied")
	}
	after := time.Now()
	if tk.DispatchedAt == nil || tk.DispatchedAt.Before(before.Add(-time.Millisecond)) || tk.DispatchedAt.After(after.Add(time.Millisecond)) {
		t.Errorf("DispatchedAt = %v, want about now (%v)", tk.DispatchedAt, before)
	}
	if tk.DispatchedAt.Location() != time.UTC {
		t.Errorf("DispatchedAt is in %v, want UTC", tk.DispatchedAt.Location())
	}

	// Times are stored in UTC.
	zone := time.FixedZone("UTC+2", 2*60*60)
	local := time.Date(2025, 3, 1, 12, 0, 0, 0, zone)
	if !model.ApplyTaskUpdate(&tk, model.TaskUpdate{TaskID: "t1", Status: model.TaskRunning, At: local}) {
		t.Fatal("running not applied")
	}
	if !tk.StartedAt.Equal(local) || tk.StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v, want %v in UTC", tk.StartedAt, local.UTC())
	}

	// The time pointers of a task are its own: a later update does not
	// change a time recorded before.
	started := *tk.StartedAt
	if !model.ApplyTaskUpdate(&tk, model.TaskUpdate{TaskID: "t1", Status: model.TaskSuccess, At: local.Add(time.Minute)}) {
		t.Fatal("success not applied")
	}
	if !tk.StartedAt.Equal(started) || tk.FinishedAt.Sub(*tk.StartedAt) != time.Minute {
		t.Errorf("started %v finished %v, want a minute apart", tk.StartedAt, tk.FinishedAt)
	}
}

func TestApplyTaskUpdateOutputKeptWhenNoneGiven(t *testing.T) {
	tk := mkTask(model.TaskRunning, 1, func(tk *model.Task) { tk.Output = json.RawMessage(`{"partial":true}`) })
	model.ApplyTaskUpdate(&tk, model.TaskUpdate{TaskID: "t1", Status: model.TaskSuccess, At: t1})
	if string(tk.Output) != `{"partial":true}` {
		t.Errorf("Output = %s, want the earlier output kept", tk.Output)
	}
}

// mkRun returns a run in the given status, edited by edits.
func mkRun(status model.RunStatus, edits ...func(*model.Run)) model.Run {
	r := model.Run{ID: "r1", WorkflowID: "w1", WorkflowName: "hello", Status: status, CreatedAt: t0}
	for _, e := range edits {
		e(&r)
	}
	return r
}

func TestApplyRunUpdate(t *testing.T) {
	started := func(at time.Time) func(*model.Run) { return func(r *model.Run) { r.StartedAt = ptime(at) } }
	finished := func(at time.Time, msg string) func(*model.Run) {
		return func(r *model.Run) { r.FinishedAt = ptime(at); r.Error = msg }
	}
	tests := []struct {
		desc    string
		before  model.Run
		u       model.RunUpdate
		changed bool
		after   model.Run
		// anyStartedAt: the test does not care what StartedAt becomes.
		anyStartedAt bool
	}{
		{
			desc:    "pending to running records the start",
			before:  mkRun(model.RunPending),
			u:       model.RunUpdate{RunID: "r1", Status: model.RunRunning, At: t1},
			changed: true,
			after:   mkRun(model.RunRunning, started(t1)),
		},
		{
			desc:    "running to success records the end",
			before:  mkRun(model.RunRunning, started(t1)),
			u:       model.RunUpdate{RunID: "r1", Status: model.RunSuccess, At: t2},
			changed: true,
			after:   mkRun(model.RunSuccess, started(t1), finished(t2, "")),
		},
		{
			desc:    "running to failed records the error",
			before:  mkRun(model.RunRunning, started(t1)),
			u:       model.RunUpdate{RunID: "r1", Status: model.RunFailed, Error: "2 of 3 tasks failed", At: t2},
			changed: true,
			after:   mkRun(model.RunFailed, started(t1), finished(t2, "2 of 3 tasks failed")),
		},
		{
			desc:         "pending to cancelled records the end",
			before:       mkRun(model.RunPending),
			u:            model.RunUpdate{RunID: "r1", Status: model.RunCancelled, Error: "cancelled by user", At: t1},
			changed:      true,
			after:        mkRun(model.RunCancelled, finished(t1, "cancelled by user")),
			anyStartedAt: true,
		},
		{
			desc:   "running never becomes pending",
			before: mkRun(model.RunRunning, started(t1)),
			u:      model.RunUpdate{RunID: "r1", Status: model.RunPending, At: t2},
		},
		{
			desc:   "pending to pending is ignored",
			before: mkRun(model.RunPending),
			u:      model.RunUpdate{RunID: "r1", Status: model.RunPending, At: t2},
		},
		{
			desc:   "running to running keeps the first start",
			before: mkRun(model.RunRunning, started(t1)),
			u:      model.RunUpdate{RunID: "r1", Status: model.RunRunning, At: t2},
		},
		{
			desc:   "unknown status",
			before: mkRun(model.RunRunning, started(t1)),
			u:      model.RunUpdate{RunID: "r1", Status: "finished", At: t2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := tt.before
			changed := model.ApplyRunUpdate(&got, tt.u)
			if changed != tt.changed {
				t.Errorf("ApplyRunUpdate(%s, %+v) = %v, want %v", tt.before.Status, tt.u, changed, tt.changed)
			}
			want := tt.after
			if !tt.changed {
				want = tt.before
			}
			if tt.anyStartedAt {
				got.StartedAt = want.StartedAt
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("run after the update:\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

// TestApplyRunUpdateTerminal checks that a terminal run never changes.
func TestApplyRunUpdateTerminal(t *testing.T) {
	statuses := []model.RunStatus{model.RunPending, model.RunRunning, model.RunSuccess, model.RunFailed, model.RunCancelled}
	for _, from := range statuses {
		if !from.Terminal() {
			continue
		}
		for _, to := range statuses {
			before := mkRun(from, func(r *model.Run) {
				r.StartedAt = ptime(t1)
				r.FinishedAt = ptime(t2)
				r.Error = "first"
			})
			got := before
			if model.ApplyRunUpdate(&got, model.RunUpdate{RunID: "r1", Status: to, Error: "late", At: t3}) {
				t.Errorf("%s run changed by a %s update", from, to)
			}
			if !reflect.DeepEqual(got, before) {
				t.Errorf("%s run after a %s update:\n got  %+v\n want %+v", from, to, got, before)
			}
		}
	}
}

func TestApplyRunUpdateZeroTime(t *testing.T) {
	r := mkRun(model.RunPending)
	before := time.Now()
	model.ApplyRunUpdate(&r, model.RunUpdate{RunID: "r1", Status: model.RunRunning})
	if r.StartedAt == nil || r.StartedAt.Before(before.Add(-time.Millisecond)) || r.StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v, want about now in UTC", r.StartedAt)
	}
}

func TestStatuses(t *testing.T) {
	for _, s := range model.TaskStatuses {
		if !s.Valid() {
			t.Errorf("TaskStatus %q not valid", s)
		}
		if s.Terminal() && s.Active() {
			t.Errorf("TaskStatus %q both terminal and active", s)
		}
	}
	if model.TaskStatus("").Valid() || model.TaskStatus("PENDING").Valid() {
		t.Errorf("empty or upper-case task status is valid")
	}
	wantActive := map[model.TaskStatus]bool{model.TaskDispatched: true, model.TaskRunning: true}
	wantTerminal := map[model.TaskStatus]bool{model.TaskSuccess: true, model.TaskFailed: true, model.TaskCancelled: true, model.TaskSkipped: true}
	for _, s := range model.TaskStatuses {
		if s.Active() != wantActive[s] || s.Terminal() != wantTerminal[s] {
			t.Errorf("TaskStatus %q: Active %v Terminal %v", s, s.Active(), s.Terminal())
		}
	}
	if len(model.TaskStatuses) != 7 {
		t.Errorf("TaskStatuses has %d entries, want 7", len(model.TaskStatuses))
	}
	for s, terminal := range map[model.RunStatus]bool{
		model.RunPending: false, model.RunRunning: false,
		model.RunSuccess: true, model.RunFailed: true, model.RunCancelled: true,
	} {
		if !s.Valid() || s.Terminal() != terminal {
			t.Errorf("RunStatus %q: Valid %v Terminal %v", s, s.Valid(), s.Terminal())
		}
	}
	if model.RunStatus("done").Valid() {
		t.Errorf("RunStatus done is valid")
	}
}

// cloneTask copies a task deeply enough that ApplyTaskUpdate on the copy
// cannot change the original through a shared pointer.
func cloneTask(tk model.Task) model.Task {
	c := tk
	if tk.DispatchedAt != nil {
		c.DispatchedAt = ptime(*tk.DispatchedAt)
	}
	if tk.StartedAt != nil {
		c.StartedAt = ptime(*tk.StartedAt)
	}
	if tk.FinishedAt != nil {
		c.FinishedAt = ptime(*tk.FinishedAt)
	}
	if tk.ExitCode != nil {
		c.ExitCode = pint(*tk.ExitCode)
	}
	return c
}

func taskJSON(tk model.Task) string {
	b, err := json.Marshal(tk)
	if err != nil {
		return fmt.Sprintf("%+v", tk)
	}
	return string(b)
}
