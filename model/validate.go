package model

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ValidateName checks a workflow name: 1 to 100 letters, digits, '-' or '_'.
// Names become file names, so nothing else is allowed.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > 100 {
		return fmt.Errorf("name %q is longer than 100 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("name %q has %q: use only letters, digits, '-' and '_'", name, r)
		}
	}
	return nil
}

// ValidateJobName checks that a job name is a relative path that stays
// inside the script directory: not empty, no leading '/', no '..' component.
func ValidateJobName(job string) error {
	switch {
	case job == "":
		return errors.New("job_name is empty")
	case strings.HasPrefix(job, "/"):
		return fmt.Errorf("job_name %q is an absolute path: give a path relative to the script directory", job)
	case strings.ContainsRune(job, 0):
		return fmt.Errorf("job_name %q contains a NUL byte", job)
	}
	for _, part := range strings.Split(job, "/") {
		if part == ".." {
			return fmt.Errorf("job_name %q leaves the script directory: '..' is not allowed", job)
		}
	}
	if c := path.Clean(job); c == "." {
		return fmt.Errorf("job_name %q names no file", job)
	}
	return nil
}

// ValidateExecutorType checks that t is an executor type ork knows.
func ValidateExecutorType(t string) error {
	if slices.Contains(ExecutorTypes, t) {
		return nil
	}
	return fmt.Errorf("executor_type %q is unknown: use one of %s", t, strings.Join(ExecutorTypes, ", "))
}

// Validate checks a workflow after Normalize. The error names every
// problem found, one per line.
func (w *Workflow) Validate() error {
	var errs []error
	if w.Retries < 0 {
		errs = append(errs, fmt.Errorf("retries %d is negative", w.Retries))
	}
	if w.MaxParallel < 0 {
		errs = append(errs, fmt.Errorf("max_parallel %d is negative", w.MaxParallel))
	}
	if w.MaxActiveRuns < 0 {
		errs = append(errs, fmt.Errorf("max_active_runs %d is negative", w.MaxActiveRuns))
	}
	if w.Schedule != nil {
		if err := w.Schedule.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if w.Tasks != nil {
		if err := ValidateName(w.Name); err != nil {
			errs = append(errs, err)
		}
		if w.ExecutorType != "" {
			if err := ValidateExecutorType(w.ExecutorType); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, w.validateDAG()...)
		return errors.Join(append(errs, w.validateCloudRun()...)...)
	}
	if err := ValidateName(w.Name); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateJobName(w.JobName); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateExecutorType(w.ExecutorType); err != nil {
		errs = append(errs, err)
	}
	if w.TaskCount < 1 {
		errs = append(errs, fmt.Errorf("task_count %d is less than 1", w.TaskCount))
	}
	errs = append(errs, w.validateCloudRun()...)
	return errors.Join(errs...)
}
