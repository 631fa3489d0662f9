//go:build cloudrun

package cloudrun_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/exec/cloudrun"
	"github.com/ork-run/ork/exec/cloudrun/cloudruntest"
	"github.com/ork-run/ork/model"
)

const (
	project = "acme-prod"
	region  = "europe-west1"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fake starts a fake Cloud Run server and points Application Default
// Credentials (GOOGLE_APPLICATION_CREDENTIALS) and ORK_CLOUDRUN_ENDPOINT at
// it: the executors of the test use the real credential code.
func fake(t testing.TB) *cloudruntest.Server {
	t.Helper()
	s := cloudruntest.New()
	t.Cleanup(s.Close)
	key, err := s.WriteKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", key)
	t.Setenv(cloudrun.EndpointEnv, s.URL)
	return s
}

// executor makes an executor with the test's defaults (fast polls, short
// backoff) and shuts it down at the end of the test.
func executor(t *testing.T, cfg cloudrun.Config) (*cloudrun.Executor, chan exec.StatusUpdate) {
	t.Helper()
	updates := make(chan exec.StatusUpdate, 256)
	cfg.Updates = updates
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	e := cloudrun.New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	return e, updates
}

func workflow(job string) *model.Workflow {
	w := &model.Workflow{Name: "export", JobName: job, ExecutorType: model.ExecutorCloudRun,
		Project: project, Region: region, TaskCount: 3}
	w.Normalize()
	return w
}

func task(w *model.Workflow, id string, index, attempt int) model.TaskWithWorkflow {
	return model.TaskWithWorkflow{Workflow: w, Task: &model.Task{
		ID: id, RunID: "run-1", Name: w.JobName, TaskIndex: index, Attempt: attempt,
		Status: model.TaskDispatched,
	}}
}

// next returns the next update, failing the test if none comes in time.
func next(t *testing.T, updates <-chan exec.StatusUpdate) exec.StatusUpdate {
	t.Helper()
	select {
	case u := <-updates:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no status update within 10s")
	}
	panic("unreachable")
}

var executionName = regexp.MustCompile(`^projects/acme-prod/locations/europe-west1/jobs/([a-z0-9-]+)/executions/([a-z0-9-]+)-[a-z0-9]{5}$`)

func TestExecuteSucceeds(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Pending: 20 * time.Millisecond, Duration: 200 * time.Millisecond})
	e, updates := executor(t, cloudrun.Config{})
	w := workflow("export")
	w.Timeout = model.Duration(90 * time.Second)
	w.Params = map[string]any{"day": "2026-11-27", "rows": 20260101.0}
	tw := task(w, "task-a", 2, 1)
	tw.Task.Params = w.Params
	tw.Upstream = json.RawMessage(`{"extract":{"rows":3}}`)

	name, err := e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	if m := executionName.FindStringSubmatch(name); m == nil || m[1] != "export" || m[2] != "export" {
		t.Fatalf("execution name %q, want projects/acme-prod/locations/europe-west1/jobs/export/executions/export-xxxxx", name)
	}
	u := next(t, updates)
	if u.Status != model.TaskRunning || u.ExecutionName != name || u.TaskID != "task-a" || u.RunID != "run-1" || u.Attempt != 1 {
		t.Fatalf("first update %+v, want running with the execution name", u)
	}
	u = next(t, updates)
	if u.Status != model.TaskSuccess || u.ExecutionName != name || u.Error != "" {
		t.Fatalf("second update %+v, want success", u)
	}

	// The execution got the task's variables, one execution's worth of
	// tasks, and the task's timeout.
	xs := s.Executions()
	if len(xs) != 1 {
		t.Fatalf("%d executions, want 1", len(xs))
	}
	x := xs[0]
	want := map[string]string{
		"ORK_RUN_ID": "run-1", "ORK_TASK_ID": "task-a", "ORK_TASK_NAME": "export", "ORK_TASK_INDEX": "2",
		"ORK_TASK_COUNT": "3", "ORK_WORKFLOW": "export", "ORK_ATTEMPT": "1",
		"ORK_PARAMS": `{"day":"2026-11-27","rows":20260101}`, "ORK_UPSTREAM": `{"extract":{"rows":3}}`,
		"day": "2026-11-27", "rows": "20260101",
	}
	for k, v := range want {
		if x.Env[k] != v {
			t.Errorf("execution variable %s = %q, want %q", k, x.Env[k], v)
		}
	}
	for _, k := range []string{"ORK_LOG_DIR", "ORK_OUTPUT", "ORK_UPSTREAM_FILE"} {
		if _, ok := x.Env[k]; ok {
			t.Errorf("execution has %s, a variable that names a local file", k)
		}
	}
	if x.TaskCount != 1 || x.Timeout != "90s" {
		t.Errorf("execution taskCount %d timeout %q, want 1 and 90s", x.TaskCount, x.Timeout)
	}
	c := s.Counts()
	if c.Runs != 1 || c.Gets < 1 || c.TokenGrants != 1 {
		t.Errorf("counts %+v: want 1 run, some gets, and one token reused for all", c)
	}
}

func TestExecuteFailsWithConditionMessage(t *testing.T) {
	s := fake(t)
	msg := "Task export-x-task0 failed with message: The container exited with a non-zero exit code: 3."
	s.AddJob(project, region, "export", cloudruntest.Job{Duration: 50 * time.Millisecond,
		Fail: func(env map[string]string) string {
			if env["ORK_TASK_INDEX"] == "1" {
				return msg
			}
			return ""
		}})
	e, updates := executor(t, cloudrun.Config{})
	w := workflow("export")
	got := map[string]exec.StatusUpdate{}
	for i := range 2 {
		if _, err := e.Execute(context.Background(), task(w, "t"+strconv.Itoa(i), i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for len(got) < 2 {
		if u := next(t, updates); u.Status.Terminal() {
			got[u.TaskID] = u
		}
	}
	if u := got["t0"]; u.Status != model.TaskSuccess {
		t.Errorf("task 0: %+v, want success", u)
	}
	if u := got["t1"]; u.Status != model.TaskFailed || u.Error != msg {
		t.Errorf("task 1: %+v, want failed with the Completed condition's message", u)
	}
}

func TestUnknownJobIsNotFound(t *testing.T) {
	s := fake(t)
	e, updates := executor(t, cloudrun.Config{})
	_, err := e.Execute(context.Background(), task(workflow("nope"), "t", 0, 1))
	var ae *cloudrun.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusNotFound || ae.Status != "NOT_FOUND" {
		t.Fatalf("Execute of an unknown job: %v, want an APIError 404 NOT_FOUND", err)
	}
	for _, want := range []string{"run job projects/acme-prod/locations/europe-west1/jobs/nope", "not found", "does not exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q has more than one line", err)
	}
	if c := s.Counts(); c.Runs != 0 {
		t.Errorf("%d executions made", c.Runs)
	}
	select {
	case u := <-updates:
		t.Errorf("update %+v sent for an attempt that did not start", u)
	default:
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Duration: 10 * time.Millisecond})
	s.Inject("run", cloudruntest.Injected{Code: http.StatusTooManyRequests, RetryAfter: "1"})
	e, updates := executor(t, cloudrun.Config{})
	start := time.Now()
	if _, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1)); err != nil {
		t.Fatalf("Execute after a 429: %v, want it retried", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %s, before the 1s of Retry-After", d)
	}
	if c := s.Counts(); c.Runs != 1 || c.Lists != 0 {
		t.Errorf("counts %+v, want 1 execution and no search for one after a 429 (nothing started)", c)
	}
	for u := next(t, updates); !u.Status.Terminal(); u = next(t, updates) {
	}
}

func TestRetriesGiveUpWithTheLastError(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{})
	for range 3 {
		s.Inject("run", cloudruntest.Injected{Code: http.StatusTooManyRequests})
	}
	e, _ := executor(t, cloudrun.Config{MaxTries: 3})
	_, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	var ae *cloudrun.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusTooManyRequests || !strings.Contains(err.Error(), "RESOURCE_EXHAUSTED") {
		t.Fatalf("Execute after 3 × 429 with MaxTries 3: %v, want the 429", err)
	}
	if c := s.Counts(); c.Runs != 0 {
		t.Errorf("%d executions made", c.Runs)
	}
	// By default a request is sent 6 times at most.
	for range 6 {
		s.Inject("run", cloudruntest.Injected{Code: http.StatusTooManyRequests})
	}
	e, _ = executor(t, cloudrun.Config{})
	if _, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1)); !errors.As(err, &ae) || ae.HTTPStatus != http.StatusTooManyRequests {
		t.Fatalf("Execute after 6 × 429 with the default MaxTries: %v, want the 429", err)
	}
	if st := e.Stats(); st.Requests != 6 {
		t.Errorf("%d requests sent, want 6", st.Requests)
	}
}

// A :run that fails with a 5xx after the service made the execution is not
// sent again blindly: the executor finds the execution it made.
func TestServerErrorAfterRunDoesNotRunTwice(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Duration: 50 * time.Millisecond})
	s.Inject("run", cloudruntest.Injected{Code: http.StatusInternalServerError, Apply: true})
	e, updates := executor(t, cloudrun.Config{})
	name, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	xs := s.Executions()
	if len(xs) != 1 || xs[0].Name != name {
		t.Fatalf("executions %v, want exactly the one named %s", xs, name)
	}
	if c := s.Counts(); c.Lists < 1 {
		t.Errorf("counts %+v: the executor did not look for the execution before sending :run again", c)
	}
	for u := next(t, updates); !u.Status.Terminal(); u = next(t, updates) {
	}
	// A 503 that made nothing is retried: one more execution.
	s.Inject("run", cloudruntest.Injected{Code: http.StatusServiceUnavailable})
	if _, err := e.Execute(context.Background(), task(workflow("export"), "t2", 0, 1)); err != nil {
		t.Fatal(err)
	}
	if xs := s.Executions(); len(xs) != 2 {
		t.Fatalf("%d executions after a 503 that made none, want 2", len(xs))
	}
}

func TestUnauthenticatedNamesTheCredentials(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{})
	// A client that sends no token: the API answers 401.
	e, _ := executor(t, cloudrun.Config{HTTPClient: &http.Client{}})
	_, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	var ae *cloudrun.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("Execute without a token: %v, want a 401 APIError", err)
	}
	for _, want := range []string{"UNAUTHENTICATED", "credentials were refused", "GOOGLE_APPLICATION_CREDENTIALS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestTokenRefusedIsClear(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{})
	s.Inject("token", cloudruntest.Injected{Code: http.StatusBadRequest, Status: "invalid_grant"})
	e, _ := executor(t, cloudrun.Config{})
	start := time.Now()
	_, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	if err == nil {
		t.Fatal("Execute with a refused token: nil error")
	}
	for _, want := range []string{"access token", cloudruntest.ServiceAccount, "invalid_grant"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q has more than one line", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to fail", d)
	}
	if c := s.Counts(); c.Runs != 0 || c.TokenGrants != 0 {
		t.Errorf("counts %+v", c)
	}
	// The key itself is good: the next task gets a token and runs.
	if _, err := e.Execute(context.Background(), task(workflow("export"), "t2", 0, 1)); err != nil {
		t.Fatalf("second Execute: %v", err)
	}
}

func TestPermissionDeniedNamesPermissionAndAccount(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Deny: []string{"run.jobs.runWithOverrides"}})
	e, _ := executor(t, cloudrun.Config{})
	_, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	var ae *cloudrun.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusForbidden {
		t.Fatalf("Execute without the permission: %v, want a 403 APIError", err)
	}
	for _, want := range []string{"permission denied", "PERMISSION_DENIED", "grant them run.jobs.runWithOverrides", "service account " + cloudruntest.ServiceAccount} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestMissingCredentialsFailAtOnce(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{})
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/no-such-key.json")
	e, _ := executor(t, cloudrun.Config{})
	start := time.Now()
	_, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	if err == nil {
		t.Fatal("Execute without credentials: nil error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to fail", d)
	}
	for _, want := range []string{"no usable Google credentials", "no-such-key.json", "GOOGLE_APPLICATION_CREDENTIALS", "gcloud auth application-default login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q has more than one line", err)
	}
}

func TestStopCancelsTheExecution(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	e, updates := executor(t, cloudrun.Config{PollInterval: time.Hour}) // only the cancel makes it look
	tw := task(workflow("export"), "t", 0, 1)
	name, err := e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, updates); u.Status != model.TaskRunning {
		t.Fatalf("first update %+v", u)
	}
	if err := e.Stop(context.Background(), tw); err != nil {
		t.Fatal(err)
	}
	u := next(t, updates)
	if u.Status != model.TaskFailed || u.ExecutionName != name || !strings.Contains(u.Error, "cancelled") {
		t.Fatalf("after Stop: %+v, want failed, cancelled", u)
	}
	if c := s.Counts(); c.Cancels != 1 {
		t.Errorf("%d cancel requests, want 1", c.Cancels)
	}
	// Stopping it again (it has ended) is no error.
	tw.Task.ExecutionName = name
	if err := e.Stop(context.Background(), tw); err != nil {
		t.Errorf("Stop of an ended execution: %v", err)
	}
}

func TestCheckAdoptsARunningExecution(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	w := workflow("export")
	// The first executor starts two attempts, then is abandoned, as by a
	// scheduler that died: it is never shut down (which would cancel).
	dead := cloudrun.New(cloudrun.Config{Updates: make(chan exec.StatusUpdate, 16), PollInterval: time.Hour, Logger: quiet})
	named, unnamed := task(w, "named", 0, 1), task(w, "unnamed", 1, 1)
	name1, err := dead.Execute(context.Background(), named)
	if err != nil {
		t.Fatal(err)
	}
	name2, err := dead.Execute(context.Background(), unnamed)
	if err != nil {
		t.Fatal(err)
	}
	named.Task.ExecutionName = name1 // recorded; the other was not

	e, updates := executor(t, cloudrun.Config{})
	u, known, err := e.Check(context.Background(), named)
	if err != nil || !known || u.Status != model.TaskRunning || u.ExecutionName != name1 {
		t.Fatalf("Check(named) = %+v, %v, %v; want known, running, %s", u, known, err, name1)
	}
	u, known, err = e.Check(context.Background(), unnamed)
	if err != nil || !known || u.Status != model.TaskRunning || u.ExecutionName != name2 {
		t.Fatalf("Check(unnamed) = %+v, %v, %v; want known, running, %s (found by its variables)", u, known, err, name2)
	}
	// Another attempt of the task has no execution.
	if _, known, err := e.Check(context.Background(), task(w, "named", 0, 2)); known || err != nil {
		t.Fatalf("Check of attempt 2: known %v, %v; want unknown", known, err)
	}
	// Adopted: the new executor reports their ends.
	s.Complete(name1, "")
	s.Complete(name2, "Task failed with message: out of memory.")
	got := map[string]exec.StatusUpdate{}
	for len(got) < 2 {
		if u := next(t, updates); u.Status.Terminal() {
			got[u.TaskID] = u
		} else if u.Status != model.TaskRunning {
			t.Fatalf("update %+v", u)
		}
	}
	if got["named"].Status != model.TaskSuccess || got["unnamed"].Status != model.TaskFailed || got["unnamed"].ExecutionName != name2 {
		t.Fatalf("ends %+v", got)
	}
	if c := s.Counts(); c.Runs != 2 {
		t.Errorf("%d :run calls, want the 2 of the first executor only", c.Runs)
	}
	// An ended execution is known, with its end.
	u, known, err = e.Check(context.Background(), named)
	if err != nil || !known || u.Status != model.TaskSuccess {
		t.Fatalf("Check of an ended execution = %+v, %v, %v; want known success", u, known, err)
	}
	// A deleted (or made up) execution is unknown.
	named.Task.ExecutionName = "projects/acme-prod/locations/europe-west1/jobs/export/executions/export-zzzzz"
	if _, known, err := e.Check(context.Background(), named); known || err != nil {
		t.Fatalf("Check of a missing execution: known %v, %v", known, err)
	}
	dead.Shutdown(context.Background())
}

func TestStatusChecksAreBounded(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Duration: 300 * time.Millisecond})
	s.SetGetLatency(20 * time.Millisecond)
	e, updates := executor(t, cloudrun.Config{MaxConcurrentStatusChecks: 3, PollInterval: 5 * time.Millisecond})
	const n = 30
	for i := range n {
		if _, err := e.Execute(context.Background(), task(workflow("export"), "t"+strconv.Itoa(i), i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for done := 0; done < n; {
		if next(t, updates).Status == model.TaskSuccess {
			done++
		}
	}
	c := s.Counts()
	if c.MaxGetsInFlight > 3 {
		t.Errorf("%d status checks in flight at once, want at most 3", c.MaxGetsInFlight)
	}
	if c.MaxGetsInFlight < 2 {
		t.Errorf("at most %d status check in flight: the bound was never reached, the test shows nothing", c.MaxGetsInFlight)
	}
	if st := e.Stats(); st.StatusChecks != int64(c.Gets) {
		t.Errorf("executor counted %d status checks, the server %d", st.StatusChecks, c.Gets)
	}
}

func TestShutdownCancelsRunningExecutions(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	updates := make(chan exec.StatusUpdate, 16)
	e := cloudrun.New(cloudrun.Config{Updates: updates, PollInterval: time.Hour, Logger: quiet})
	for i := range 2 {
		if _, err := e.Execute(context.Background(), task(workflow("export"), "t"+strconv.Itoa(i), i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c.Cancels != 2 {
		t.Errorf("%d cancels, want 2", c.Cancels)
	}
	ends := 0
	for len(updates) > 0 {
		if u := <-updates; u.Status == model.TaskFailed {
			ends++
		}
	}
	if ends != 2 {
		t.Errorf("%d terminal updates sent during Shutdown, want 2", ends)
	}
	if _, err := e.Execute(context.Background(), task(workflow("export"), "late", 0, 1)); !errors.Is(err, exec.ErrShutdown) {
		t.Errorf("Execute after Shutdown: %v, want ErrShutdown", err)
	}
}

func TestExecuteTwiceIsRefused(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	e, _ := executor(t, cloudrun.Config{})
	tw := task(workflow("export"), "t", 0, 1)
	name, err := e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Execute(context.Background(), tw); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("second Execute of one attempt: %v, want an error naming %s", err, name)
	}
	if c := s.Counts(); c.Runs != 1 {
		t.Errorf("%d :run calls, want 1", c.Runs)
	}
}

func TestVariablesTooLargeForCloudRun(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{})
	e, _ := executor(t, cloudrun.Config{})
	big := strings.Repeat("x", cloudrun.MaxEnvValue)
	many := map[string]any{}
	for i := range cloudrun.MaxEnvVars {
		many["p"+strconv.Itoa(i)] = i
	}
	for _, tc := range []struct {
		desc     string
		params   map[string]any
		upstream string
		want     string
	}{
		{"upstream", nil, `{"a":"` + big + `"}`, "ORK_UPSTREAM (the upstream outputs) is"},
		{"one parameter", map[string]any{"blob": big + "x"}, "", "parameter blob is 32769 bytes"},
		{"all parameters", map[string]any{"a": big[:20000], "b": big[:20000]}, "", "ORK_PARAMS (all the parameters) is"},
		{"too many", many, "", "variables, more than the 1000"},
	} {
		tw := task(workflow("export"), "t", 0, 1)
		tw.Task.Params = tc.params
		if tc.upstream != "" {
			tw.Upstream = json.RawMessage(tc.upstream)
		}
		if _, err := e.Execute(context.Background(), tw); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Execute = %v, want an error about %s", tc.desc, err, tc.want)
		}
	}
	// Just under the limit goes.
	tw := task(workflow("export"), "t", 0, 1)
	tw.Task.Params = map[string]any{"blob": big[:cloudrun.MaxEnvValue-20]}
	if _, err := e.Execute(context.Background(), tw); err != nil {
		t.Errorf("a parameter of %d bytes: %v", cloudrun.MaxEnvValue-20, err)
	}
	if c := s.Counts(); c.Runs != 1 {
		t.Errorf("%d :run calls, want 1", c.Runs)
	}
}

func TestEndpoint(t *testing.T) {
	t.Setenv(cloudrun.EndpointEnv, "")
	up := make(chan exec.StatusUpdate)
	if got := cloudrun.New(cloudrun.Config{Updates: up}).Endpoint(); got != cloudrun.DefaultEndpoint {
		t.Errorf("default endpoint %q", got)
	}
	t.Setenv(cloudrun.EndpointEnv, "http://127.0.0.1:9/")
	if got := cloudrun.New(cloudrun.Config{Updates: up}).Endpoint(); got != "http://127.0.0.1:9" {
		t.Errorf("endpoint from %s: %q", cloudrun.EndpointEnv, got)
	}
	if got := cloudrun.New(cloudrun.Config{Updates: up, Endpoint: "http://emulator:8080"}).Endpoint(); got != "http://emulator:8080" {
		t.Errorf("endpoint from Config: %q", got)
	}
}

func TestDeletedExecutionFailsTheTask(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	e, updates := executor(t, cloudrun.Config{})
	name, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, updates); u.Status != model.TaskRunning {
		t.Fatalf("first update %+v", u)
	}
	s.Delete(name)
	u := next(t, updates)
	if u.Status != model.TaskFailed || !strings.Contains(u.Error, "no longer exists") || !strings.Contains(u.Error, name) {
		t.Fatalf("after the execution was deleted: %+v, want failed, no longer exists", u)
	}
}

// A restarted scheduler checks every attempt its predecessor left
// dispatched, most of which never reached Cloud Run: one listing of the
// job answers for them all.
func TestCheckListsTheJobOnceForARestart(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	w := workflow("export")
	dead := cloudrun.New(cloudrun.Config{Updates: make(chan exec.StatusUpdate, 16), PollInterval: time.Hour, Logger: quiet})
	defer dead.Shutdown(context.Background())
	started := map[string]string{}
	for i := range 3 {
		name, err := dead.Execute(context.Background(), task(w, "t"+strconv.Itoa(i), i, 1))
		if err != nil {
			t.Fatal(err)
		}
		started["t"+strconv.Itoa(i)] = name
	}
	e, _ := executor(t, cloudrun.Config{})
	for i := range 20 { // 3 started, 17 never reached Cloud Run; no names recorded
		id := "t" + strconv.Itoa(i)
		u, known, err := e.Check(context.Background(), task(w, id, i, 1))
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := started[id]; known != ok || u.ExecutionName != want {
			t.Errorf("Check(%s) = %+v, known %v; want known %v as %q", id, u, known, ok, want)
		}
	}
	if c := s.Counts(); c.Lists != 1 || c.Runs != 3 {
		t.Errorf("counts %+v: want one listing for 20 checks, and no new execution", c)
	}
	for _, name := range started {
		s.Complete(name, "")
	}
}

func TestRequestsHaveADeadline(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Hold: true})
	e, _ := executor(t, cloudrun.Config{RequestTimeout: 100 * time.Millisecond, MaxTries: 2})
	tw := task(workflow("export"), "t", 0, 1)
	name, err := e.Execute(context.Background(), tw)
	if err != nil {
		t.Fatal(err)
	}
	s.SetGetLatency(2 * time.Second) // a server that does not answer in time
	tw.Task.ExecutionName = name
	e2, _ := executor(t, cloudrun.Config{RequestTimeout: 100 * time.Millisecond, MaxTries: 2})
	start := time.Now()
	_, known, err := e2.Check(context.Background(), tw)
	if err == nil || known {
		t.Fatalf("Check against a server that does not answer: known %v, %v; want an error", known, err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Check gave up after %s, want about 2 × 100ms", d)
	}
	s.SetGetLatency(0)
	s.Complete(name, "")
}

// A :run under way is not abandoned when the caller gives up: its answer
// names the execution it started, which is then watched as usual.
func TestRunOutlivesItsCaller(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Duration: 50 * time.Millisecond})
	s.SetRunLatency(300 * time.Millisecond)
	e, updates := executor(t, cloudrun.Config{})
	if _, err := e.Execute(context.Background(), task(workflow("export"), "warm-up", 0, 1)); err != nil {
		t.Fatal(err) // credentials looked up, token fetched
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	name, err := e.Execute(ctx, task(workflow("export"), "t", 0, 1))
	if err != nil || name == "" {
		t.Fatalf("Execute whose context ended while :run was under way: %q, %v; want the execution it started", name, err)
	}
	if xs := s.Executions(); len(xs) != 2 || xs[1].Name != name {
		t.Fatalf("executions %+v, want the second named %s", xs, name)
	}
	for done := 0; done < 2; {
		if next(t, updates).Status == model.TaskSuccess {
			done++
		}
	}
}

// Access tokens expire; the executor gets a new one rather than sending an
// expired one (the API would refuse it with 401).
func TestExpiringTokensAreRenewed(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{})
	// oauth2 counts a token expired 10s before its expiry: one valid for
	// 11s is used for 1s.
	s.SetTokenLifetime(11 * time.Second)
	e, _ := executor(t, cloudrun.Config{})
	if _, err := e.Execute(context.Background(), task(workflow("export"), "t1", 0, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := e.Execute(context.Background(), task(workflow("export"), "t2", 0, 1)); err != nil {
		t.Fatalf("Execute after the first token expired: %v", err)
	}
	if c := s.Counts(); c.TokenGrants < 2 || c.Runs != 2 {
		t.Errorf("counts %+v: want a second token and 2 executions", c)
	}
}

// Each task is an execution of one Cloud Run task: a job whose parallelism
// is above 1 refuses that override, and the task fails saying why.
func TestJobWithParallelismIsRefusedClearly(t *testing.T) {
	s := fake(t)
	s.AddJob(project, region, "export", cloudruntest.Job{Parallelism: 5})
	e, _ := executor(t, cloudrun.Config{})
	_, err := e.Execute(context.Background(), task(workflow("export"), "t", 0, 1))
	var ae *cloudrun.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusBadRequest || !strings.Contains(err.Error(), "parallelism") {
		t.Fatalf("Execute on a job of parallelism 5: %v, want a 400 that names the parallelism", err)
	}
	if c := s.Counts(); c.Runs != 0 {
		t.Errorf("%d executions", c.Runs)
	}
}
