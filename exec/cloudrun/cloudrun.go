//go:build cloudrun

// Package cloudrun runs ork tasks on Google Cloud Run Jobs: each task
// attempt is one execution of an existing Cloud Run job, started, watched
// and cancelled through the Cloud Run Admin API v2 over net/http, with
// Application Default Credentials (golang.org/x/oauth2/google).
//
// It is built only with the build tag cloudrun, and imports model and exec
// only. It never touches the database: like every executor it reports on
// the updates channel, and the scheduler records.
//
// # The calls
//
//	start   POST {endpoint}/v2/projects/{project}/locations/{region}/jobs/{job}:run
//	        overrides: containerOverrides[].env (the task's variables),
//	        taskCount 1, timeout (the task's, if it has one). The answer is
//	        a long-running Operation whose metadata is the Execution: its
//	        name, projects/…/jobs/{job}/executions/{id}, is the task's
//	        execution_name.
//	track   GET {endpoint}/v2/{execution name}, every PollInterval, at most
//	        MaxConcurrentStatusChecks in flight across all executions.
//	stop    POST {endpoint}/v2/{execution name}:cancel (a timeout, a
//	        cancelled run, a scheduler that stops).
//	find    GET {endpoint}/v2/{job}/executions: only to find the execution
//	        of an attempt whose name was never recorded (see Check; one
//	        listing serves all the checks of a restart), and after a :run
//	        that failed in doubt.
//
// # Statuses
//
// An execution's Completed condition decides: CONDITION_SUCCEEDED is
// success; CONDITION_FAILED is failed, with the condition's message as the
// task's error (a non-zero exit, a task timeout, a cancel). An execution
// with a completionTime but no verdict in its condition is judged by its
// counts: success when succeededCount reached taskCount and no task failed
// or was cancelled. Anything else is running. A running update is sent as
// soon as :run has answered, so the execution name is recorded at once.
//
// # Restarts
//
// Check adopts the executions of a scheduler that died: an attempt with an
// execution name is looked up by that name; one without (the scheduler died
// between :run and recording the name) is looked for among the job's
// executions by the ORK_TASK_ID and ORK_ATTEMPT variables its container
// got. A running execution is then watched as if this executor had started
// it, and a finished one is reported as it ended: ork never starts a second
// execution for an attempt that has one. When a :run request fails in a way
// that leaves in doubt whether it started an execution (a 5xx answer, a
// broken connection), the same search runs before the request is sent
// again.
//
// A scheduler that stops (Shutdown) cancels the executions still running,
// since it puts their tasks back in the queue; a scheduler that dies leaves
// them running, for the next one to adopt.
//
// # Errors
//
// Google's JSON errors become APIError, which names what ork did and on
// which resource; a 404 says not found, 401 and 403 name the credentials
// and the IAM permission the call needs. 429 and 5xx answers and broken
// connections are retried with exponential backoff and full jitter; a
// Retry-After header is obeyed.
package cloudrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
)

// DefaultEndpoint is the Cloud Run Admin API.
const DefaultEndpoint = "https://run.googleapis.com"

// EndpointEnv names the environment variable that overrides the endpoint
// (an emulator, a test server) when Config.Endpoint is empty.
const EndpointEnv = "ORK_CLOUDRUN_ENDPOINT"

// Defaults of Config.
const (
	DefaultPollInterval              = 10 * time.Second
	DefaultMaxConcurrentStatusChecks = 50
	DefaultMaxTries                  = 6
	DefaultRetryBase                 = 500 * time.Millisecond
	DefaultMaxRetryWait              = 30 * time.Second
	DefaultRequestTimeout            = 60 * time.Second
)

// MaxEnvValue is the largest value of a variable a Cloud Run container
// gets (the API's limit, 32768 bytes), and MaxEnvVars the most variables
// it may have. A task whose variables (its parameters, ORK_PARAMS,
// ORK_UPSTREAM) do not fit does not start, and its error says why.
const (
	MaxEnvValue = 32 << 10
	MaxEnvVars  = 1000
)

// errNoExecution is returned when the :run answer names no execution.
var errNoExecution = errors.New("the answer of :run names no execution")

// maxListPages bounds the pages of executions read when looking for the
// execution of an attempt (100 executions a page, newest first).
const maxListPages = 10

// Config configures an Executor. The zero value of each field but Updates
// means its default.
type Config struct {
	// Updates receives the status updates. Required.
	Updates chan<- exec.StatusUpdate
	// Endpoint is the base URL of the API. Default: $ORK_CLOUDRUN_ENDPOINT,
	// or DefaultEndpoint.
	Endpoint string
	// PollInterval is how often each running execution is looked at.
	// Default 10s.
	PollInterval time.Duration
	// MaxConcurrentStatusChecks bounds the GET requests for executions in
	// flight at once. Default 50.
	MaxConcurrentStatusChecks int
	// HTTPClient, when set, sends every request as it is: it must add the
	// credentials itself. Default: Application Default Credentials, scope
	// cloud-platform, over Transport.
	HTTPClient *http.Client
	// Transport carries the requests under Application Default
	// Credentials. Default http.DefaultTransport.
	Transport http.RoundTripper
	// MaxTries is how many times one request is sent at most when it meets
	// 429, 5xx or a broken connection. Default 6.
	MaxTries int
	// RetryBase is the first backoff between tries, doubled at each; every
	// wait is drawn at random between half of it and all of it (jitter).
	// Default 500ms.
	RetryBase time.Duration
	// MaxRetryWait caps the backoff (not a Retry-After). Default 30s.
	MaxRetryWait time.Duration
	// RequestTimeout bounds each request, from sending it to reading its
	// answer. Default 60s.
	RequestTimeout time.Duration
	// Logger receives the executor's logs. Default slog.Default().
	Logger *slog.Logger
}

// Executor runs task attempts as executions of Cloud Run jobs. Create it
// with New.
type Executor struct {
	endpoint       string
	updates        chan<- exec.StatusUpdate
	interval       time.Duration
	checks         chan struct{} // a token per status request in flight
	transport      http.RoundTripper
	maxTries       int
	retryBase      time.Duration
	maxRetryWait   time.Duration
	requestTimeout time.Duration
	log            *slog.Logger

	authMu     sync.Mutex
	httpClient *http.Client
	credsDesc  string

	listMu   sync.Mutex
	listings map[string]*listing // by job

	requests     atomic.Int64 // every request sent, retries included
	statusChecks atomic.Int64 // GET requests for one execution

	ctx    context.Context // of the trackers' requests; ends with Shutdown
	cancel context.CancelFunc

	mu       sync.Mutex
	closing  bool
	byTask   map[attemptKey]*attempt
	byName   map[string]*attempt
	starting sync.WaitGroup // Execute calls between the closing check and registration
	trackers sync.WaitGroup

	stopping chan struct{} // closed when Shutdown begins
	done     chan struct{} // closed when Shutdown stops sending updates
	finished chan struct{} // closed when Shutdown has returned
}

type attemptKey struct {
	taskID  string
	attempt int
}

// attempt is one execution, started or being started: name is "" until
// :run has answered.
type attempt struct {
	key   attemptKey
	runID string
	name  string
	wake  chan struct{} // look at the execution now (after a cancel)
}

// New returns an Executor configured by cfg. It panics if cfg.Updates is
// nil. It makes no request: credentials are looked up by the first
// request.
func New(cfg Config) *Executor {
	if cfg.Updates == nil {
		panic("cloudrun: New: Config.Updates is nil")
	}
	e := &Executor{
		endpoint:       cfg.Endpoint,
		updates:        cfg.Updates,
		interval:       cfg.PollInterval,
		transport:      cfg.Transport,
		maxTries:       cfg.MaxTries,
		retryBase:      cfg.RetryBase,
		maxRetryWait:   cfg.MaxRetryWait,
		requestTimeout: cfg.RequestTimeout,
		log:            cfg.Logger,
		httpClient:     cfg.HTTPClient,
		byTask:         make(map[attemptKey]*attempt),
		byName:         make(map[string]*attempt),
		listings:       make(map[string]*listing),
		stopping:       make(chan struct{}),
		done:           make(chan struct{}),
		finished:       make(chan struct{}),
	}
	if e.endpoint == "" {
		e.endpoint = os.Getenv(EndpointEnv)
	}
	if e.endpoint == "" {
		e.endpoint = DefaultEndpoint
	}
	e.endpoint = strings.TrimRight(e.endpoint, "/")
	if e.interval <= 0 {
		e.interval = DefaultPollInterval
	}
	n := cfg.MaxConcurrentStatusChecks
	if n <= 0 {
		n = DefaultMaxConcurrentStatusChecks
	}
	e.checks = make(chan struct{}, n)
	if e.transport == nil {
		e.transport = http.DefaultTransport
	}
	if e.maxTries <= 0 {
		e.maxTries = DefaultMaxTries
	}
	if e.retryBase <= 0 {
		e.retryBase = DefaultRetryBase
	}
	if e.maxRetryWait <= 0 {
		e.maxRetryWait = DefaultMaxRetryWait
	}
	if e.requestTimeout <= 0 {
		e.requestTimeout = DefaultRequestTimeout
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.httpClient != nil {
		e.credsDesc = "the credentials of Config.HTTPClient"
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Endpoint returns the base URL the executor sends requests to.
func (e *Executor) Endpoint() string { return e.endpoint }

// Stats counts the requests an executor has sent.
type Stats struct {
	Requests     int64 // every request, retries included
	StatusChecks int64 // GET requests for one execution
}

// Stats returns the requests sent so far.
func (e *Executor) Stats() Stats {
	return Stats{Requests: e.requests.Load(), StatusChecks: e.statusChecks.Load()}
}

// JobPath returns the resource name of the Cloud Run job that task t runs:
// projects/{project}/locations/{region}/jobs/{job_name}.
func JobPath(t model.TaskWithWorkflow) (string, error) {
	if t.Task == nil || t.Workflow == nil {
		return "", errors.New("cloudrun: a task needs its workflow")
	}
	w := t.Workflow
	job := t.Node().JobName
	switch {
	case w.Project == "":
		return "", fmt.Errorf("cloudrun: workflow %s names no project", w.Name)
	case w.Region == "":
		return "", fmt.Errorf("cloudrun: workflow %s names no region", w.Name)
	}
	if err := model.ValidateCloudRunJob(job); err != nil {
		return "", fmt.Errorf("cloudrun: workflow %s: %w", w.Name, err)
	}
	return "projects/" + url.PathEscape(w.Project) + "/locations/" + url.PathEscape(w.Region) + "/jobs/" + job, nil
}

// request builds the body of the :run request of task t.
func request(t model.TaskWithWorkflow) (*runJobRequest, error) {
	upstream := "{}"
	if len(t.Upstream) > 0 {
		upstream = string(t.Upstream)
	}
	vars, _, err := exec.TaskEnv(t) // a parameter without a variable is still in ORK_PARAMS
	if err != nil {
		return nil, err
	}
	params, err := exec.ParamsJSON(t)
	if err != nil {
		return nil, err
	}
	vars = append(vars, "ORK_PARAMS="+params, "ORK_UPSTREAM="+upstream)
	// A later variable of the same name wins, as in a process's
	// environment; Cloud Run wants each name once.
	env := make([]envVar, 0, len(vars))
	index := make(map[string]int, len(vars))
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		if len(v) > MaxEnvValue {
			what := "parameter " + k
			switch k {
			case "ORK_UPSTREAM":
				what = "ORK_UPSTREAM (the upstream outputs)"
			case "ORK_PARAMS":
				what = "ORK_PARAMS (all the parameters)"
			}
			return nil, fmt.Errorf("cloudrun: task %s: %s is %d bytes, more than the %d bytes a Cloud Run variable holds: pass large data by reference (a bucket path), not in the variables",
				t.Task.Label(), what, len(v), MaxEnvValue)
		}
		if i, ok := index[k]; ok {
			env[i].Value = v
			continue
		}
		index[k] = len(env)
		env = append(env, envVar{Name: k, Value: v})
	}
	if len(env) > MaxEnvVars {
		return nil, fmt.Errorf("cloudrun: task %s has %d variables, more than the %d a Cloud Run container may have: use fewer top-level parameters (nest them in one object)",
			t.Task.Label(), len(env), MaxEnvVars)
	}
	o := &overrides{ContainerOverrides: []containerOverride{{Env: env}}, TaskCount: 1}
	if d := t.Node().Timeout; d > 0 {
		o.Timeout = protoDuration(d)
	}
	return &runJobRequest{Overrides: o}, nil
}

// Execute starts attempt t.Task.Attempt of task t as an execution of its
// workflow's Cloud Run job and returns the execution's name. An error
// means no execution was started for it (or none that ork knows of), and
// no update is sent.
func (e *Executor) Execute(ctx context.Context, t model.TaskWithWorkflow) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	select {
	case <-e.stopping:
		return "", exec.ErrShutdown
	default:
	}
	job, err := JobPath(t)
	if err != nil {
		return "", err
	}
	body, err := request(t)
	if err != nil {
		return "", err
	}
	key := attemptKey{t.Task.ID, t.Task.Attempt}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return "", exec.ErrShutdown
	}
	if a, ok := e.byTask[key]; ok {
		name := a.name
		e.mu.Unlock()
		if name == "" {
			return "", fmt.Errorf("cloudrun: task %s attempt %d is being started already", key.taskID, key.attempt)
		}
		return "", fmt.Errorf("cloudrun: task %s attempt %d runs already as %s", key.taskID, key.attempt, name)
	}
	a := &attempt{key: key, runID: t.Task.RunID, wake: make(chan struct{}, 1)}
	e.byTask[key] = a
	e.starting.Add(1)
	e.mu.Unlock()
	defer e.starting.Done()

	name, err := e.run(ctx, job, key, body)
	if err != nil {
		e.mu.Lock()
		delete(e.byTask, key)
		e.mu.Unlock()
		return "", err
	}
	running := exec.StatusUpdate{TaskID: key.taskID, RunID: a.runID, Attempt: key.attempt,
		Status: model.TaskRunning, ExecutionName: name, At: time.Now()}
	if !e.adopt(a, name, &running) {
		e.forget(a) // watched already, under a status check's adoption
	}
	return name, nil
}

// adopt registers attempt a as execution name and starts watching it. The
// tracker sends running first, if it is not nil. It returns false, and does
// nothing, when that execution is watched already.
func (e *Executor) adopt(a *attempt, name string, running *exec.StatusUpdate) bool {
	e.mu.Lock()
	if e.byName[name] != nil {
		e.mu.Unlock()
		return false
	}
	a.name = name
	e.byTask[a.key] = a
	e.byName[name] = a
	e.trackers.Add(1)
	e.mu.Unlock()
	go e.track(a, running)
	return true
}

// run sends the :run request and returns the new execution's name.
func (e *Executor) run(ctx context.Context, job string, key attemptKey, body *runJobRequest) (string, error) {
	var op operation
	var found string
	c := call{method: http.MethodPost, path: "/v2/" + job + ":run", body: body,
		op: "run job", resource: job, permission: "run.jobs.runWithOverrides", detach: true}
	c.beforeRetry = func(ctx context.Context, last error) (bool, error) {
		var ae *APIError
		if errors.As(last, &ae) && ae.HTTPStatus == http.StatusTooManyRequests {
			return false, nil // refused: nothing started
		}
		// The failed request may have started an execution all the same.
		x, err := e.find(ctx, job, key)
		if err != nil {
			e.log.Warn("cloudrun: cannot tell whether a failed :run started an execution; sending it again", "job", job, "err", err)
			return false, nil
		}
		if x != nil {
			found = x.Name
			return true, nil
		}
		return false, nil
	}
	if err := e.do(ctx, c, &op); err != nil {
		return "", err
	}
	if found != "" {
		return found, nil
	}
	if op.Error != nil {
		return "", &APIError{HTTPStatus: http.StatusOK, Code: op.Error.Code, Status: op.Error.Status,
			Message: op.Error.Message, Op: "run job", Resource: job}
	}
	if op.Metadata == nil || op.Metadata.Name == "" {
		return "", fmt.Errorf("cloudrun: run job %s: %w (operation %q)", job, errNoExecution, op.Name)
	}
	return op.Metadata.Name, nil
}

// find looks among the newest executions of job for the one that runs
// attempt key, by the ORK_TASK_ID and ORK_ATTEMPT variables of its
// container. It returns nil when there is none.
func (e *Executor) find(ctx context.Context, job string, key attemptKey) (*execution, error) {
	var found *execution
	err := e.list(ctx, job, func(k attemptKey, x *execution) bool {
		if k == key {
			found = x
			return false
		}
		return true
	})
	return found, err
}

// list calls f with each of the newest executions of job that runs an
// attempt of an ork task (up to maxListPages pages of 100), newest first,
// until f returns false.
func (e *Executor) list(ctx context.Context, job string, f func(attemptKey, *execution) bool) error {
	token := ""
	for range maxListPages {
		q := url.Values{"pageSize": {"100"}}
		if token != "" {
			q.Set("pageToken", token)
		}
		var page listExecutionsResponse
		if err := e.do(ctx, call{method: http.MethodGet, path: "/v2/" + job + "/executions", query: q,
			op: "list executions of", resource: job, permission: "run.executions.list"}, &page); err != nil {
			return err
		}
		for i := range page.Executions {
			x := &page.Executions[i]
			id, ok1 := x.env("ORK_TASK_ID")
			att, ok2 := x.env("ORK_ATTEMPT")
			n, err := strconv.Atoi(att)
			if ok1 && ok2 && err == nil && !f(attemptKey{id, n}, x) {
				return nil
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		token = page.NextPageToken
	}
	return nil
}

// listing is what one listing of a job's executions found, kept a while
// for the status checks of a restart: a scheduler that restarts checks
// every attempt its predecessor left dispatched, many of which never
// reached Cloud Run, and one listing answers for them all.
type listing struct {
	mu    sync.Mutex
	at    time.Time
	found map[attemptKey]*execution
}

// listingTTL is how long a listing answers status checks.
const listingTTL = 30 * time.Second

// findListed is find through a listing of the job made at most listingTTL
// ago. Only status checks use it: a retried :run needs the executions as
// they are now.
func (e *Executor) findListed(ctx context.Context, job string, key attemptKey) (*execution, error) {
	e.listMu.Lock()
	l := e.listings[job]
	if l == nil {
		l = &listing{}
		e.listings[job] = l
	}
	e.listMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.found == nil || time.Since(l.at) > listingTTL {
		found := make(map[attemptKey]*execution)
		err := e.list(ctx, job, func(k attemptKey, x *execution) bool {
			if _, ok := found[k]; !ok {
				found[k] = x
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		l.found, l.at = found, time.Now()
	}
	return l.found[key], nil
}

// get reads an execution, with at most MaxConcurrentStatusChecks such
// requests in flight.
func (e *Executor) get(ctx context.Context, name string) (*execution, error) {
	select {
	case e.checks <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-e.checks }()
	e.statusChecks.Add(1)
	var x execution
	err := e.do(ctx, call{method: http.MethodGet, path: "/v2/" + name,
		op: "get execution", resource: name, permission: "run.executions.get"}, &x)
	if err != nil {
		return nil, err
	}
	return &x, nil
}

// cancelExecution asks Cloud Run to cancel an execution. One that has
// ended already is not an error.
func (e *Executor) cancelExecution(ctx context.Context, name string) error {
	err := e.do(ctx, call{method: http.MethodPost, path: "/v2/" + name + ":cancel", body: struct{}{},
		op: "cancel execution", resource: name, permission: "run.executions.cancel"}, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == "FAILED_PRECONDITION" {
		return nil // it has ended
	}
	return err
}

// statusOf maps an execution to an ork status and, for a failure, the
// task's error.
func statusOf(x *execution) (model.TaskStatus, string) {
	for _, c := range x.Conditions {
		if c.Type != "Completed" {
			continue
		}
		switch c.State {
		case conditionSucceeded:
			return model.TaskSuccess, ""
		case conditionFailed:
			if c.Message != "" {
				return model.TaskFailed, c.Message
			}
			return model.TaskFailed, describeFailure(x)
		}
	}
	if x.CompletionTime != "" {
		if x.FailedCount == 0 && x.CancelledCount == 0 && x.SucceededCount >= max(1, x.TaskCount) {
			return model.TaskSuccess, ""
		}
		return model.TaskFailed, describeFailure(x)
	}
	return model.TaskRunning, ""
}

func describeFailure(x *execution) string {
	if x.CancelledCount > 0 && x.FailedCount == 0 {
		return fmt.Sprintf("execution %s was cancelled", x.Name)
	}
	return fmt.Sprintf("execution %s failed: %d of %d tasks failed, %d cancelled, %d succeeded",
		x.Name, x.FailedCount, max(x.TaskCount, 1), x.CancelledCount, x.SucceededCount)
}

// maxReadFailures is how many polls in a row may fail for a reason that
// retrying the request will not cure (401, 403, 404) before the attempt is
// given up as failed.
const maxReadFailures = 3

// track watches the execution of attempt a until it ends, and reports it.
func (e *Executor) track(a *attempt, running *exec.StatusUpdate) {
	defer e.trackers.Done()
	if running != nil {
		e.sendRunning(*running)
	}
	// The first look comes at a random point of the first interval, so
	// that executions started together are not all read together.
	wait := e.interval/2 + rand.N(e.interval/2+1)
	failures := 0
	for {
		select {
		case <-e.stopping:
			wait = min(wait, time.Second)
		default:
		}
		timer := time.NewTimer(wait)
		select {
		case <-e.done:
			timer.Stop()
			e.forget(a)
			return
		case <-a.wake:
			timer.Stop()
		case <-timer.C:
		}
		wait = e.interval
		x, err := e.get(e.ctx, a.name)
		if err != nil {
			if e.ctx.Err() != nil {
				e.forget(a)
				return
			}
			var ae *APIError
			if errors.As(err, &ae) && !transient(ae.HTTPStatus) {
				failures++
				if failures >= maxReadFailures {
					msg := fmt.Sprintf("cannot read execution %s, which may still run: %v", a.name, err)
					if ae.HTTPStatus == http.StatusNotFound {
						msg = fmt.Sprintf("execution %s no longer exists (deleted?): %v", a.name, err)
					}
					e.finish(a, model.TaskFailed, msg)
					return
				}
			}
			e.log.Warn("cloudrun: cannot read execution; will look again", "execution", a.name, "err", err)
			continue
		}
		failures = 0
		if st, msg := statusOf(x); st.Terminal() {
			e.finish(a, st, msg)
			return
		}
	}
}

// forget removes attempt a from the executor's maps.
func (e *Executor) forget(a *attempt) {
	e.mu.Lock()
	if e.byTask[a.key] == a {
		delete(e.byTask, a.key)
	}
	if e.byName[a.name] == a {
		delete(e.byName, a.name)
	}
	e.mu.Unlock()
}

// finish forgets attempt a and sends its terminal update.
func (e *Executor) finish(a *attempt, st model.TaskStatus, msg string) {
	e.forget(a)
	e.send(exec.StatusUpdate{TaskID: a.key.taskID, RunID: a.runID, Attempt: a.key.attempt,
		Status: st, ExecutionName: a.name, Error: msg, At: time.Now()})
}

// sendRunning sends a running update. Once Shutdown has begun it gives up
// when the channel is full: the terminal update that follows says more.
func (e *Executor) sendRunning(u exec.StatusUpdate) {
	select {
	case e.updates <- u:
		return
	default:
	}
	select {
	case e.updates <- u:
	case <-e.stopping:
	case <-e.done:
	}
}

// send sends a terminal update, unless Shutdown has stopped sending.
func (e *Executor) send(u exec.StatusUpdate) {
	select {
	case e.updates <- u:
		return
	default:
	}
	select {
	case e.updates <- u:
	case <-e.done:
	}
}

// Check reports what Cloud Run knows of attempt t.Task.Attempt of task t,
// which a scheduler that has died may have started. The execution is the
// one named by t.Task.ExecutionName or, when that is empty, the one of the
// job whose container got this task's ORK_TASK_ID and ORK_ATTEMPT. known is
// false when there is none (or it was deleted). A running execution is
// adopted: the executor watches it from now on and sends its updates, as
// for one it started.
func (e *Executor) Check(ctx context.Context, t model.TaskWithWorkflow) (exec.StatusUpdate, bool, error) {
	if t.Task == nil {
		return exec.StatusUpdate{}, false, errors.New("cloudrun: Check needs a task")
	}
	key := attemptKey{t.Task.ID, t.Task.Attempt}
	u := exec.StatusUpdate{TaskID: key.taskID, RunID: t.Task.RunID, Attempt: key.attempt}
	e.mu.Lock()
	a := e.byTask[key]
	if a != nil && a.name != "" {
		u.Status, u.ExecutionName, u.At = model.TaskRunning, a.name, time.Now()
		e.mu.Unlock()
		return u, true, nil
	}
	e.mu.Unlock()

	var x *execution
	if name := t.Task.ExecutionName; name != "" {
		var err error
		x, err = e.get(ctx, name)
		var ae *APIError
		if errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound {
			return exec.StatusUpdate{}, false, nil
		}
		if err != nil {
			return exec.StatusUpdate{}, false, err
		}
		if x.Name == "" {
			x.Name = name
		}
	} else {
		if t.Workflow == nil {
			return exec.StatusUpdate{}, false, nil
		}
		job, err := JobPath(t)
		if err != nil {
			return exec.StatusUpdate{}, false, nil
		}
		if x, err = e.findListed(ctx, job, key); err != nil {
			return exec.StatusUpdate{}, false, err
		}
		if x == nil {
			return exec.StatusUpdate{}, false, nil
		}
	}
	u.ExecutionName, u.At = x.Name, time.Now()
	u.Status, u.Error = statusOf(x)
	if u.Status.Terminal() {
		return u, true, nil
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return exec.StatusUpdate{}, false, exec.ErrShutdown
	}
	e.starting.Add(1) // Shutdown waits for the registration, and then cancels it too
	e.mu.Unlock()
	defer e.starting.Done()
	running := u
	if e.adopt(&attempt{key: key, runID: t.Task.RunID, wake: make(chan struct{}, 1)}, x.Name, &running) {
		e.log.Info("cloudrun: adopted a running execution", "task", t.Task.Label(), "attempt", key.attempt, "execution", x.Name)
	}
	return u, true, nil
}

// Stop cancels the execution of attempt t.Task.Attempt of task t (for a
// timeout or a cancelled run). It returns once Cloud Run has taken the
// cancel; the attempt then ends as usual, with its terminal update, when
// the execution has stopped.
func (e *Executor) Stop(ctx context.Context, t model.TaskWithWorkflow) error {
	if t.Task == nil {
		return errors.New("cloudrun: Stop needs a task")
	}
	e.mu.Lock()
	a := e.byTask[attemptKey{t.Task.ID, t.Task.Attempt}]
	name := t.Task.ExecutionName
	if a != nil && a.name != "" {
		name = a.name
	}
	e.mu.Unlock()
	if name == "" {
		return nil // not started (or not by this executor): nothing to cancel
	}
	if err := e.cancelExecution(ctx, name); err != nil {
		return err
	}
	if a != nil {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Shutdown cancels every execution still running, since the scheduler puts
// their tasks back in the queue, and watches them end until ctx ends. It
// returns when no more updates will be sent. Execute fails with
// exec.ErrShutdown once Shutdown has begun; calling Shutdown again waits
// for the first call to finish.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		select {
		case <-e.finished:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.closing = true
	close(e.stopping)
	e.mu.Unlock()
	e.starting.Wait() // executions being started are cancelled too

	e.mu.Lock()
	running := make([]*attempt, 0, len(e.byName))
	for _, a := range e.byName {
		running = append(running, a)
	}
	e.mu.Unlock()
	var first error
	var firstMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, cap(e.checks))
	for _, a := range running {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := e.cancelExecution(ctx, a.name); err != nil {
				firstMu.Lock()
				if first == nil {
					first = err
				}
				firstMu.Unlock()
				return
			}
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}()
	}
	wg.Wait()
	gone := make(chan struct{})
	go func() {
		e.trackers.Wait()
		close(gone)
	}()
	select {
	case <-gone:
	case <-ctx.Done():
	}
	close(e.done)
	e.cancel()
	<-gone
	close(e.finished)
	return first
}

var (
	_ exec.Executor = (*Executor)(nil)
	_ exec.Stopper  = (*Executor)(nil)
)
