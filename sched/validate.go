package sched

import (
	"errors"
	"fmt"
)

// FieldError is a Config field whose value is not allowed.
type FieldError struct {
	Field string // the Go name, MaxTasksPerBatch
	JSON  string // the JSON name, max_tasks_per_batch (and `ork run --max-tasks-per-batch`)
	Value any
	Rule  string // what the value must be
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("sched.Config.%s is %v: %s", e.Field, e.Value, e.Rule)
}

// Validate reports every field of c whose value is not allowed, each as a
// *FieldError naming the field (joined with errors.Join). A zero field is
// always allowed: it means the default. New calls Validate, and Run
// returns its error before doing anything.
func (c Config) Validate() error {
	var errs []error
	nonNegative := func(field, json string, v int64, show any) {
		if v < 0 {
			errs = append(errs, &FieldError{Field: field, JSON: json, Value: show, Rule: "must be 0 (the default) or more"})
		}
	}
	nonNegative("PollInterval", "poll_interval", int64(c.PollInterval), c.PollInterval)
	nonNegative("MaxTasksPerBatch", "max_tasks_per_batch", int64(c.MaxTasksPerBatch), c.MaxTasksPerBatch)
	nonNegative("MaxConcurrentDispatches", "max_concurrent_dispatches", int64(c.MaxConcurrentDispatches), c.MaxConcurrentDispatches)
	nonNegative("MaxConcurrentStatusChecks", "max_concurrent_status_checks", int64(c.MaxConcurrentStatusChecks), c.MaxConcurrentStatusChecks)
	nonNegative("MaxRunningTasks", "max_running_tasks", int64(c.MaxRunningTasks), c.MaxRunningTasks)
	return errors.Join(errs...)
}
