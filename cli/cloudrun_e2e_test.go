//go:build cloudrun

package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/exec/cloudrun/cloudruntest"
)

func init() {
	// The tests of this build run an ork built with the same tag.
	if buildTags != "" {
		buildTags += ","
	}
	buildTags += "cloudrun"
}

// TestE2ECloudRunWorkflow runs a workflow on the fake Cloud Run service
// with the real binary: validate accepts it, trigger --wait runs each task
// as one execution, with the credentials of a service-account key file
// (GOOGLE_APPLICATION_CREDENTIALS) and the endpoint of
// ORK_CLOUDRUN_ENDPOINT, and a failed execution's message becomes the
// task's error.
func TestE2ECloudRunWorkflow(t *testing.T) {
	t.Parallel()
	fake := cloudruntest.New()
	defer fake.Close()
	fake.AddJob("acme-prod", "europe-west1", "nightly-export", cloudruntest.Job{Duration: 100 * time.Millisecond,
		Fail: func(env map[string]string) string {
			if env["ORK_TASK_INDEX"] == "2" && env["day"] == "bad" {
				return "Task nightly-export-x-task0 failed: The container exited with a non-zero exit code: 1."
			}
			return ""
		}})
	key, err := fake.WriteKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GOOGLE_APPLICATION_CREDENTIALS=" + key, "ORK_CLOUDRUN_ENDPOINT=" + fake.URL, "ORK_CLOUDRUN_POLL_INTERVAL=50ms"}
	dir := newProject(t)
	mustRun(t, dir, "create-workflow", "--name", "export", "--job-name", "nightly-export", "-e", "cloudrun",
		"--project", "acme-prod", "--region", "europe-west1", "--task-count", "3", "--param", "day=ok")
	mustRun(t, dir, "validate", filepath.Join(dir, ".ork", "workflows", "export.json"))
	// The README's example.
	readme := filepath.Join(t.TempDir(), "export.json")
	writeFile(t, readme, `{
  "name": "export",
  "job_name": "nightly-export",
  "executor_type": "cloudrun",
  "project": "acme-prod",
  "region": "europe-west1",
  "task_count": 10,
  "timeout": "30m",
  "params": {"bucket": "gs://acme-exports"}
}`, 0o644)
	mustRun(t, dir, "validate", readme)

	out, stderr, code := runEnvWithin(t, cmdTimeout, dir, env, "trigger", "export", "--wait")
	if code != 0 {
		t.Fatalf("ork trigger export --wait: exit %d\n%s\n%s", code, out, stderr)
	}
	id := runID(t, out)
	if r := runStatus(t, dir, id); r.Status != "success" {
		t.Fatalf("run %+v, want success", r)
	}
	tasks := func(id string) []struct {
		TaskIndex     int    `json:"task_index"`
		Status        string `json:"status"`
		ExecutionName string `json:"execution_name"`
		Error         string `json:"error"`
	} {
		out, _ := mustRun(t, dir, "tasks", id, "--json")
		var ts []struct {
			TaskIndex     int    `json:"task_index"`
			Status        string `json:"status"`
			ExecutionName string `json:"execution_name"`
			Error         string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &ts); err != nil {
			t.Fatalf("tasks --json: %v\n%s", err, out)
		}
		return ts
	}
	names := map[string]bool{}
	for _, x := range fake.Executions() {
		names[x.Name] = true
	}
	for _, ts := range tasks(id) {
		if ts.Status != "success" || !names[ts.ExecutionName] {
			t.Errorf("task %+v, want success with the name of an execution of the fake", ts)
		}
	}
	if c := fake.Counts(); c.Runs != 3 || c.TokenGrants != 1 {
		t.Errorf("fake counts %+v, want 3 :run and one token", c)
	}

	out, stderr, code = runEnvWithin(t, cmdTimeout, dir, env, "trigger", "export", "--wait", "--param", "day=bad")
	if code == 0 {
		t.Fatalf("a run with a failing execution exited 0\n%s\n%s", out, stderr)
	}
	id = runID(t, out)
	for _, ts := range tasks(id) {
		if ts.TaskIndex == 2 && (ts.Status != "failed" || !strings.Contains(ts.Error, "non-zero exit code: 1")) {
			t.Errorf("task 2 %+v, want failed with the execution's message", ts)
		}
	}
}
