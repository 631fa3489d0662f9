//go:build cloudrun

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// A small "cloudrun" workload end to end: 20 tasks, each an execution of
// the fake Cloud Run service that runs 300ms, through ork's Cloud Run
// executor with real credentials, polled every 100ms. The reported figures
// agree with the fake's own counters, and the polling is what the interval
// asks for.
func TestCloudRunWorkload(t *testing.T) {
	const tasks = 20
	interval, duration := 100*time.Millisecond, 300*time.Millisecond
	cfg, err := ParseConfig([]byte(`{"name":"cr","workflows":1,"runs_per_workflow":1,"tasks_per_run":20,
		"task_duration":"300ms","executor":"cloudrun","scheduler":{"max_running_tasks":20},
		"cloudrun":{"poll_interval":"100ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var final *cloudRunCounts
	onCloudRunClose = func(c cloudRunCounts) { final = &c }
	t.Cleanup(func() { onCloudRunClose = nil })
	credsBefore, hadCreds := os.LookupEnv(credentialsEnv)

	res, err := Measure(context.Background(), cfg, Options{Dir: t.TempDir(), Timeout: time.Minute, Logs: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if final == nil {
		t.Fatal("the fake Cloud Run service was never closed")
	}
	if v, ok := os.LookupEnv(credentialsEnv); ok != hadCreds || v != credsBefore {
		t.Errorf("%s = %q after the measurement, want it as before (%q)", credentialsEnv, v, credsBefore)
	}
	c := res.CloudRun
	if c == nil {
		t.Fatalf("no Cloud Run figures: %+v", res)
	}
	if res.FailedTasks != 0 || res.TasksPerSec <= 0 || res.Baseline != nil {
		t.Errorf("result = %+v", res)
	}
	// Every request the fake answered belongs to the main phase: one :run
	// per task, and every GET of an execution is counted, by the fake and
	// by the executor alike.
	if c.Executions != tasks || final.Runs != tasks {
		t.Errorf("executions: reported %d, fake answered %d; want %d", c.Executions, final.Runs, tasks)
	}
	if c.StatusChecks != final.Gets || c.ExecutorStatusChecks != int64(final.Gets) {
		t.Errorf("status checks: reported %d, executor %d, fake answered %d", c.StatusChecks, c.ExecutorStatusChecks, final.Gets)
	}
	if final.TokenGrants < 1 || c.TokenGrants != final.TokenGrants {
		t.Errorf("tokens granted: reported %d, fake %d; want at least 1 (real credentials)", c.TokenGrants, final.TokenGrants)
	}
	// The rates are the counts over the main phase's time.
	if want := float64(c.StatusChecks) / res.TotalSeconds; math.Abs(c.StatusChecksPerSec-want) > 0.01*want+0.01 {
		t.Errorf("status checks/s = %v, want %d / %.3f s = %v", c.StatusChecksPerSec, c.StatusChecks, res.TotalSeconds, want)
	}
	if want := float64(c.StatusChecks) / tasks; math.Abs(c.StatusChecksPerTask-want) > 0.001 {
		t.Errorf("status checks per task = %v, want %v", c.StatusChecksPerTask, want)
	}
	if want := float64(tasks) / res.TotalSeconds; math.Abs(res.TasksPerSec-want) > 0.01*want+0.01 {
		t.Errorf("tasks/s = %v, want %v", res.TasksPerSec, want)
	}
	// Each execution is looked at until it has ended (at least once), and
	// no more than once per interval while the phase lasts.
	total := time.Duration(res.TotalSeconds * float64(time.Second))
	if total < duration {
		t.Errorf("main phase took %s, less than one execution (%s)", total, duration)
	}
	perTask := int(total/interval) + 2
	if c.StatusChecks < tasks || c.StatusChecks > tasks*perTask {
		t.Errorf("%d status checks for %d executions of %s polled every %s in %s: want %d to %d",
			c.StatusChecks, tasks, duration, interval, total, tasks, tasks*perTask)
	}
	if c.PollInterval.std() != interval || c.Job != defaultCloudRunJob || c.MaxGetsInFlight < 1 || c.MaxGetsInFlight > res.Scheduler.MaxConcurrentStatusChecks {
		t.Errorf("cloud run figures = %+v", c)
	}

	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CLOUD RUN", "status checks/s", "status checks per task", "jobs/" + defaultCloudRunJob} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %q:\n%s", want, table.String())
		}
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"status_checks_per_s"`) {
		t.Errorf("JSON has no status_checks_per_s: %s", data)
	}
}
