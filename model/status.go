package model

// RunStatus is the state of a Run.
type RunStatus string

// Run statuses. A run is created pending, becomes running when the scheduler
// creates its tasks, and ends success, failed or cancelled.
const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunSuccess   RunStatus = "success"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Terminal reports whether s is a final status.
func (s RunStatus) Terminal() bool {
	return s == RunSuccess || s == RunFailed || s == RunCancelled
}

// Valid reports whether s is one of the known run statuses.
func (s RunStatus) Valid() bool {
	switch s {
	case RunPending, RunRunning, RunSuccess, RunFailed, RunCancelled:
		return true
	}
	return false
}

// TaskStatus is the state of a Task.
type TaskStatus string

// Task statuses. pending -> dispatched (handed to an executor, attempt
// counted) -> running (the executor saw it start) -> success, failed or
// cancelled.
const (
	TaskPending    TaskStatus = "pending"
	TaskDispatched TaskStatus = "dispatched"
	TaskRunning    TaskStatus = "running"
	TaskSuccess    TaskStatus = "success"
	TaskFailed     TaskStatus = "failed"
	TaskCancelled  TaskStatus = "cancelled"
	// TaskSkipped: the task never ran because of its upstream — a
	// condition was false, every upstream was skipped, or an upstream
	// failed.
	TaskSkipped TaskStatus = "skipped"
)

// TaskStatuses lists every task status in life-cycle order.
var TaskStatuses = []TaskStatus{TaskPending, TaskDispatched, TaskRunning, TaskSuccess, TaskFailed, TaskCancelled, TaskSkipped}

// Terminal reports whether s is a final status.
func (s TaskStatus) Terminal() bool {
	return s == TaskSuccess || s == TaskFailed || s == TaskCancelled || s == TaskSkipped
}

// Active reports whether a task in status s has been handed to an executor
// and not yet finished.
func (s TaskStatus) Active() bool {
	return s == TaskDispatched || s == TaskRunning
}

// Valid reports whether s is one of the known task statuses.
func (s TaskStatus) Valid() bool {
	switch s {
	case TaskPending, TaskDispatched, TaskRunning, TaskSuccess, TaskFailed, TaskCancelled, TaskSkipped:
		return true
	}
	return false
}
