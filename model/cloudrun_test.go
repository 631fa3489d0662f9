package model_test

import (
	"fmt"
	"testing"

	"github.com/ork-run/ork/model"
)

func TestValidateCloudRunJob(t *testing.T) {
	tests := []struct {
		job     string
		wantErr string
	}{
		{"nightly-export", ""},
		{"a", ""},
		{"", "empty"},
		{"Nightly", "lowercase"},
		{"9lives", "start with a lowercase letter"},
		{"export-", "ends with '-'"},
		{"export.sh", "'.'"},
		{"a234567890123456789012345678901234567890123456789012345678901234", "63"},
	}
	for _, tt := range tests {
		err := model.ValidateCloudRunJob(tt.job)
		checkErr(t, fmt.Sprintf("ValidateCloudRunJob(%q)", tt.job), err, tt.wantErr)
	}
}

func TestValidateCloudRunWorkflow(t *testing.T) {
	three := 3
	tests := []struct {
		desc    string
		w       model.Workflow
		wantErr string
	}{
		{"complete", model.Workflow{Name: "w", JobName: "export", ExecutorType: model.ExecutorCloudRun, Project: "acme-prod", Region: "europe-west1"}, ""},
		{"no project", model.Workflow{Name: "w", JobName: "export", ExecutorType: model.ExecutorCloudRun, Region: "europe-west1"}, "project is empty"},
		{"no region", model.Workflow{Name: "w", JobName: "export", ExecutorType: model.ExecutorCloudRun, Project: "acme-prod"}, "region is empty"},
		{"bad region", model.Workflow{Name: "w", JobName: "export", ExecutorType: model.ExecutorCloudRun, Project: "p", Region: "Europe West"}, "not a Cloud Run region"},
		{"bad project", model.Workflow{Name: "w", JobName: "export", ExecutorType: model.ExecutorCloudRun, Project: "a/b", Region: "r"}, "not a Google Cloud project id"},
		{"script as job", model.Workflow{Name: "w", JobName: "export.sh", ExecutorType: model.ExecutorCloudRun, Project: "p", Region: "r"}, "Cloud Run job name"},
		{"process needs neither", model.Workflow{Name: "w", JobName: "export.sh", ExecutorType: model.ExecutorProcess}, ""},
		{"DAG node on cloudrun", model.Workflow{Name: "w", ExecutorType: model.ExecutorProcess, Tasks: map[string]*model.TaskSpec{
			"extract": {JobName: "extract.sh"},
			"load":    {JobName: "Load_Job", ExecutorType: model.ExecutorCloudRun, DependsOn: []string{"extract"}, Retries: &three},
		}}, `task "load": job_name "Load_Job"`},
		{"DAG node on cloudrun needs a project", model.Workflow{Name: "w", Tasks: map[string]*model.TaskSpec{
			"load": {JobName: "load", ExecutorType: model.ExecutorCloudRun},
		}, Region: "us-central1"}, "project is empty"},
	}
	for _, tt := range tests {
		w := tt.w
		w.Normalize()
		checkErr(t, tt.desc, w.Validate(), tt.wantErr)
	}
}

func TestUsesExecutor(t *testing.T) {
	flat := model.Workflow{Name: "w", JobName: "export", ExecutorType: model.ExecutorCloudRun}
	dag := model.Workflow{Name: "d", Tasks: map[string]*model.TaskSpec{
		"a": {JobName: "a.sh"},
		"b": {JobName: "b", ExecutorType: model.ExecutorCloudRun, DependsOn: []string{"a"}},
	}}
	local := model.Workflow{Name: "l", JobName: "a.sh"}
	for _, w := range []*model.Workflow{&flat, &dag, &local} {
		w.Normalize()
	}
	if !flat.UsesExecutor(model.ExecutorCloudRun) || !dag.UsesExecutor(model.ExecutorCloudRun) {
		t.Error("a workflow or DAG node on cloudrun: UsesExecutor(cloudrun) = false")
	}
	if local.UsesExecutor(model.ExecutorCloudRun) {
		t.Error("a process workflow: UsesExecutor(cloudrun) = true")
	}
}
