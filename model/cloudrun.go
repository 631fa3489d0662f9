package model

import (
	"errors"
	"fmt"
	"strings"
)

// ExecutorCloudRun runs each task as one execution of an existing Cloud Run
// job (build tag cloudrun). The workflow names the job's project and region;
// each node's job_name is the Cloud Run job.
const ExecutorCloudRun = "cloudrun"

// UsesExecutor reports whether the workflow, or any of its DAG nodes, runs
// on executor type typ.
func (w *Workflow) UsesExecutor(typ string) bool {
	for _, nd := range w.Nodes() {
		if nd.ExecutorType == typ {
			return true
		}
	}
	return false
}

// ValidateCloudRunJob checks the name of a Cloud Run job: 1 to 63 lowercase
// letters, digits and '-', starting with a letter and not ending with '-'.
func ValidateCloudRunJob(job string) error {
	if job == "" {
		return errors.New("job_name is empty: name the Cloud Run job to run")
	}
	if len(job) > 63 {
		return fmt.Errorf("job_name %q is longer than 63 characters, which a Cloud Run job name cannot be", job)
	}
	for i, r := range job {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("job_name %q has %q: a Cloud Run job name has only lowercase letters, digits and '-'", job, r)
		}
		if i == 0 && !(r >= 'a' && r <= 'z') {
			return fmt.Errorf("job_name %q must start with a lowercase letter to name a Cloud Run job", job)
		}
	}
	if strings.HasSuffix(job, "-") {
		return fmt.Errorf("job_name %q ends with '-', which a Cloud Run job name cannot", job)
	}
	return nil
}

// validateCloudRun checks what the cloudrun nodes of a workflow need: the
// workflow's project and region, and a Cloud Run job name per node.
func (w *Workflow) validateCloudRun() []error {
	var errs []error
	uses := false
	for _, nd := range w.Nodes() {
		if nd.ExecutorType != ExecutorCloudRun {
			continue
		}
		uses = true
		if err := ValidateCloudRunJob(nd.JobName); err != nil {
			if w.IsDAG() {
				err = fmt.Errorf("task %q: %w", nd.Name, err)
			}
			errs = append(errs, err)
		}
	}
	if !uses {
		return nil
	}
	if w.Project == "" {
		errs = append(errs, errors.New("project is empty: a cloudrun workflow names the Google Cloud project of its job"))
	} else if strings.ContainsAny(w.Project, "/ \t\n") {
		errs = append(errs, fmt.Errorf("project %q is not a Google Cloud project id", w.Project))
	}
	if w.Region == "" {
		errs = append(errs, errors.New("region is empty: a cloudrun workflow names the region of its job, like europe-west1"))
	} else {
		for _, r := range w.Region {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				errs = append(errs, fmt.Errorf("region %q is not a Cloud Run region, like europe-west1", w.Region))
				break
			}
		}
	}
	return errs
}
