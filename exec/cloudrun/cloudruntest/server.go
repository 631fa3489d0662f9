//go:build cloudrun

// Package cloudruntest is a fake Cloud Run Admin API v2 for tests: an
// httptest server that answers as the real service does — jobs.run returns
// a long-running Operation whose metadata is the new Execution, executions
// go from pending to running to succeeded or failed as time passes, cancel
// stops them, errors come in Google's JSON shape (404 for an unknown job,
// 401 without a valid token, 403 for a denied permission, 429 with
// Retry-After when told to) — and an OAuth token endpoint that accepts the
// signed JWT of the service-account key it writes, so that real
// Application Default Credentials work against it.
package cloudruntest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServiceAccount is the client_email of the key the server writes.
const ServiceAccount = "ork-runner@fake-project.iam.gserviceaccount.com"

// Job is how the executions of one job behave.
type Job struct {
	// Pending is how long an execution waits before it runs; Duration how
	// long it then runs.
	Pending, Duration time.Duration
	// Hold keeps executions running until Complete is called.
	Hold bool
	// Fail decides the end of an execution from its container's
	// variables: "" succeeds, anything else fails with that message (as
	// the container exiting non-zero).
	Fail func(env map[string]string) string
	// Parallelism is the job's parallelism: like the real service, :run
	// refuses a taskCount override below it (0: unset, no limit).
	Parallelism int
	// Deny lists IAM permissions the caller lacks on this job:
	// run.jobs.runWithOverrides, run.executions.get, run.executions.cancel,
	// run.executions.list.
	Deny []string
}

// Execution is what the server knows of one execution.
type Execution struct {
	Name      string
	Job       string
	Env       map[string]string // the variables of the container override
	EnvOrder  []string          // their names, in the order given
	TaskCount int
	Timeout   string
	Created   time.Time
	Cancelled bool
	// set by Complete
	done    bool
	failMsg string
}

// Server is the fake. Its fields are its answers' counts; read them with
// the methods.
type Server struct {
	*httptest.Server

	key *rsa.PrivateKey

	mu          sync.Mutex
	jobs        map[string]*Job // "projects/p/locations/r/jobs/j"
	execs       map[string]*Execution
	order       []string             // execution names, oldest first
	tokens      map[string]time.Time // access token → its expiry
	tokenLife   time.Duration
	inject      map[string][]Injected
	runs        int
	gets        int
	cancels     int
	lists       int
	tokenGrants int
	seq         int
	inFlight    int
	maxInFlight int
	getsNow     int
	maxGets     int
	getLatency  time.Duration
	runLatency  time.Duration
	noAuth      bool
}

// Injected is an error answer the server gives instead of the real one.
type Injected struct {
	Code       int    // HTTP status
	Status     string // Google's status, like RESOURCE_EXHAUSTED
	RetryAfter string // the Retry-After header, if any
	// Apply makes the server do what was asked all the same (a :run makes
	// its execution) before it answers with the error, as a service that
	// fails after the fact.
	Apply bool
}

// New starts a fake server. Close it when done.
func New() *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := &Server{
		key:    key,
		jobs:   make(map[string]*Job),
		execs:  make(map[string]*Execution),
		tokens: make(map[string]time.Time),
		inject: make(map[string][]Injected),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetTokenLifetime sets how long the access tokens granted from now on
// are valid (default an hour); the API refuses an expired one with 401.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	s.tokenLife = d
	s.mu.Unlock()
}

// AllowAnonymous makes the API accept requests without a token (for an
// executor given its own HTTP client).
func (s *Server) AllowAnonymous() {
	s.mu.Lock()
	s.noAuth = true
	s.mu.Unlock()
}

// AddJob creates job projects/{project}/locations/{region}/jobs/{name}.
func (s *Server) AddJob(project, region, name string, j Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs["projects/"+project+"/locations/"+region+"/jobs/"+name] = &j
}

// Inject makes the next answers to op ("run", "get", "cancel", "list",
// "token") be the given errors, one each, in order.
func (s *Server) Inject(op string, errs ...Injected) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject[op] = append(s.inject[op], errs...)
}

// WriteKey writes a service-account key file whose token_uri is this
// server's token endpoint, and returns its path.
func (s *Server) WriteKey(dir string) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return "", err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	f := map[string]string{
		"type":                        "service_account",
		"project_id":                  "fake-project",
		"private_key_id":              "0123456789abcdef",
		"private_key":                 string(keyPEM),
		"client_email":                ServiceAccount,
		"client_id":                   "123456789",
		"auth_uri":                    s.URL + "/o/oauth2/auth",
		"token_uri":                   s.URL + "/token",
		"auth_provider_x509_cert_url": s.URL + "/certs",
		"universe_domain":             "googleapis.com",
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "service-account.json")
	return p, os.WriteFile(p, data, 0o600)
}

// Complete ends a held execution: it succeeds when failMsg is "".
func (s *Server) Complete(name, failMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.execs[name]; x != nil {
		x.done, x.failMsg = true, failMsg
	}
}

// Delete removes an execution, as `gcloud run jobs executions delete`.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.execs, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
}

// Counts are the requests the server has answered, by kind.
type Counts struct {
	Runs, Gets, Cancels, Lists, TokenGrants int
	// MaxInFlight is the most API requests it ever served at once, and
	// MaxGetsInFlight the most requests for one execution.
	MaxInFlight, MaxGetsInFlight int
}

// SetRunLatency makes every :run request take d more.
func (s *Server) SetRunLatency(d time.Duration) {
	s.mu.Lock()
	s.runLatency = d
	s.mu.Unlock()
}

// SetGetLatency makes every request for one execution take d more.
func (s *Server) SetGetLatency(d time.Duration) {
	s.mu.Lock()
	s.getLatency = d
	s.mu.Unlock()
}

// Counts returns the requests served so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Counts{Runs: s.runs, Gets: s.gets, Cancels: s.cancels, Lists: s.lists,
		TokenGrants: s.tokenGrants, MaxInFlight: s.maxInFlight, MaxGetsInFlight: s.maxGets}
}

// Executions returns a copy of every execution, oldest first.
func (s *Server) Executions() []Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Execution, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, *s.execs[n])
	}
	return out
}

// --- HTTP ---

type apiStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func writeError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]apiStatus{"error": {Code: code, Message: msg, Status: status}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// injected returns the next injected error for op, if any. s.mu is held.
func (s *Server) injected(op string) (Injected, bool) {
	q := s.inject[op]
	if len(q) == 0 {
		return Injected{}, false
	}
	s.inject[op] = q[1:]
	return q[0], true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.serveToken(w, r)
		return
	}
	s.mu.Lock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	path, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	s.mu.Lock()
	expiry, known := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	authorized := s.noAuth || known && time.Now().Before(expiry)
	s.mu.Unlock()
	if !authorized {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED",
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
		return
	}
	path, verb, _ := strings.Cut(path, ":")
	parts := strings.Split(path, "/")
	switch {
	case r.Method == http.MethodPost && verb == "run" && len(parts) == 6 && parts[0] == "projects" && parts[2] == "locations" && parts[4] == "jobs":
		s.serveRun(w, r, path)
	case r.Method == http.MethodGet && verb == "" && len(parts) == 8 && parts[6] == "executions":
		s.serveGet(w, path)
	case r.Method == http.MethodPost && verb == "cancel" && len(parts) == 8 && parts[6] == "executions":
		s.serveCancel(w, r, path)
	case r.Method == http.MethodGet && verb == "" && len(parts) == 7 && parts[6] == "executions":
		s.serveList(w, r, strings.TrimSuffix(path, "/executions"))
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("%s %s is not a method of the Cloud Run Admin API v2", r.Method, r.URL.Path))
	}
}

// jobOf checks that job exists and allows permission. s.mu is held.
func (s *Server) jobOf(w http.ResponseWriter, job, permission string) *Job {
	parts := strings.Split(job, "/")
	j := s.jobs[job]
	if j == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Resource '%s' of kind 'JOB' in region '%s' in project '%s' does not exist.", parts[5], parts[3], parts[1]))
		return nil
	}
	if slices.Contains(j.Deny, permission) {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("Permission '%s' denied on resource '%s' (or it may not exist).", permission, job))
		return nil
	}
	return j
}

func (s *Server) serveRun(w http.ResponseWriter, r *http.Request, job string) {
	data, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	latency := s.runLatency
	s.mu.Unlock()
	time.Sleep(latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	inj, injected := s.injected("run")
	if injected && !inj.Apply {
		s.writeInjected(w, inj)
		return
	}
	j := s.jobOf(w, job, "run.jobs.runWithOverrides")
	if j == nil {
		return
	}
	// Like the real service, refuse fields it does not know.
	var body struct {
		ValidateOnly bool   `json:"validateOnly"`
		Etag         string `json:"etag"`
		Overrides    *struct {
			ContainerOverrides []struct {
				Name      string   `json:"name"`
				Args      []string `json:"args"`
				ClearArgs bool     `json:"clearArgs"`
				Env       []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"env"`
			} `json:"containerOverrides"`
			TaskCount int    `json:"taskCount"`
			Timeout   string `json:"timeout"`
		} `json:"overrides"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	x := &Execution{Job: job, Env: map[string]string{}, TaskCount: 1, Created: time.Now()}
	if o := body.Overrides; o != nil {
		if o.Timeout != "" {
			if _, err := time.ParseDuration(o.Timeout); err != nil || !strings.HasSuffix(o.Timeout, "s") {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid value at 'overrides.timeout' (type.googleapis.com/google.protobuf.Duration), Field 'timeout', Illegal duration format; duration must end with 's': %q", o.Timeout))
				return
			}
			x.Timeout = o.Timeout
		}
		if o.TaskCount > 0 {
			if o.TaskCount < j.Parallelism {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("overrides.taskCount (%d) must be greater than or equal to the job's parallelism (%d).", o.TaskCount, j.Parallelism))
				return
			}
			x.TaskCount = o.TaskCount
		}
		for _, c := range o.ContainerOverrides {
			if len(c.Env) > 1000 {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("overrides.containerOverrides[0].env: %d variables, more than the maximum of 1000.", len(c.Env)))
				return
			}
			for _, v := range c.Env {
				if len(v.Value) > 32768 {
					writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("overrides.containerOverrides[0].env[%s].value: the maximum length is 32768 bytes.", v.Name))
					return
				}
				if _, dup := x.Env[v.Name]; dup {
					writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("spec.template.spec.containers[0].env: duplicate variable name %q", v.Name))
					return
				}
				x.Env[v.Name] = v.Value
				x.EnvOrder = append(x.EnvOrder, v.Name)
			}
		}
	}
	s.runs++
	s.seq++
	id := fmt.Sprintf("%s-%s", job[strings.LastIndexByte(job, '/')+1:], suffix(s.seq))
	x.Name = job + "/executions/" + id
	s.execs[x.Name] = x
	s.order = append(s.order, x.Name)
	if injected {
		s.writeInjected(w, inj)
		return
	}
	meta := s.render(x, j, time.Now())
	meta["@type"] = "type.googleapis.com/google.cloud.run.v2.Execution"
	parts := strings.Split(job, "/")
	writeJSON(w, map[string]any{
		"name":     fmt.Sprintf("projects/%s/locations/%s/operations/%s", parts[1], parts[3], randomHex(16)),
		"metadata": meta,
	})
}

func (s *Server) writeInjected(w http.ResponseWriter, e Injected) {
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	status, msg := e.Status, http.StatusText(e.Code)
	switch e.Code {
	case http.StatusTooManyRequests:
		if status == "" {
			status = "RESOURCE_EXHAUSTED"
		}
		msg = "Quota exceeded for quota metric 'Job run requests' and limit 'Job run requests per minute per region' of service 'run.googleapis.com'."
	case http.StatusServiceUnavailable:
		if status == "" {
			status = "UNAVAILABLE"
		}
		msg = "The service is currently unavailable."
	case http.StatusInternalServerError:
		if status == "" {
			status = "INTERNAL"
		}
		msg = "Internal error encountered."
	}
	writeError(w, e.Code, status, msg)
}

func (s *Server) serveGet(w http.ResponseWriter, name string) {
	s.mu.Lock()
	s.getsNow++
	s.maxGets = max(s.maxGets, s.getsNow)
	latency := s.getLatency
	s.mu.Unlock()
	time.Sleep(latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.getsNow-- }()
	s.gets++
	if e, ok := s.injected("get"); ok {
		s.writeInjected(w, e)
		return
	}
	job := name[:strings.Index(name, "/executions/")]
	j := s.jobOf(w, job, "run.executions.get")
	if j == nil {
		return
	}
	x := s.execs[name]
	if x == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Resource '%s' of kind 'EXECUTION' in region '%s' in project '%s' does not exist.",
			name[strings.LastIndexByte(name, '/')+1:], strings.Split(name, "/")[3], strings.Split(name, "/")[1]))
		return
	}
	writeJSON(w, s.render(x, j, time.Now()))
}

func (s *Server) serveCancel(w http.ResponseWriter, r *http.Request, name string) {
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels++
	if e, ok := s.injected("cancel"); ok {
		s.writeInjected(w, e)
		return
	}
	job := name[:strings.Index(name, "/executions/")]
	j := s.jobOf(w, job, "run.executions.cancel")
	if j == nil {
		return
	}
	x := s.execs[name]
	if x == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Resource '%s' of kind 'EXECUTION' does not exist.", name))
		return
	}
	now := time.Now()
	if st := s.phase(x, j, now); st == phaseSucceeded || st == phaseFailed || st == phaseCancelled {
		writeError(w, http.StatusBadRequest, "FAILED_PRECONDITION", fmt.Sprintf("Execution %s has already completed.", name[strings.LastIndexByte(name, '/')+1:]))
		return
	}
	x.Cancelled = true
	meta := s.render(x, j, now)
	meta["@type"] = "type.googleapis.com/google.cloud.run.v2.Execution"
	parts := strings.Split(name, "/")
	writeJSON(w, map[string]any{
		"name":     fmt.Sprintf("projects/%s/locations/%s/operations/%s", parts[1], parts[3], randomHex(16)),
		"metadata": meta,
	})
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	if e, ok := s.injected("list"); ok {
		s.writeInjected(w, e)
		return
	}
	j := s.jobOf(w, job, "run.executions.list")
	if j == nil {
		return
	}
	size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
	if size <= 0 || size > 1000 {
		size = 100
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
	var mine []string // newest first, as the real service lists them
	for i := len(s.order) - 1; i >= 0; i-- {
		if s.execs[s.order[i]].Job == job {
			mine = append(mine, s.order[i])
		}
	}
	now := time.Now()
	out := map[string]any{}
	var page []map[string]any
	for i := start; i < len(mine) && i < start+size; i++ {
		page = append(page, s.render(s.execs[mine[i]], j, now))
	}
	if len(page) > 0 {
		out["executions"] = page
	}
	if start+size < len(mine) {
		out["nextPageToken"] = strconv.Itoa(start + size)
	}
	writeJSON(w, out)
}

type phase int

const (
	phasePending phase = iota
	phaseRunning
	phaseSucceeded
	phaseFailed
	phaseCancelled
)

// phase is where execution x of job j is at time now. s.mu is held.
func (s *Server) phase(x *Execution, j *Job, now time.Time) phase {
	switch {
	case x.Cancelled:
		return phaseCancelled
	case now.Before(x.Created.Add(j.Pending)):
		return phasePending
	case j.Hold && !x.done:
		return phaseRunning
	case !j.Hold && now.Before(x.Created.Add(j.Pending+j.Duration)):
		return phaseRunning
	}
	msg := x.failMsg
	if !j.Hold && j.Fail != nil {
		msg = j.Fail(x.Env)
	}
	if msg != "" {
		return phaseFailed
	}
	return phaseSucceeded
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// render is the JSON of an Execution as the v2 API gives it. s.mu is held.
func (s *Server) render(x *Execution, j *Job, now time.Time) map[string]any {
	p := s.phase(x, j, now)
	started := x.Created.Add(j.Pending)
	ended := started.Add(j.Duration)
	if ended.After(now) {
		ended = now
	}
	env := make([]map[string]string, 0, len(x.EnvOrder))
	for _, k := range x.EnvOrder {
		env = append(env, map[string]string{"name": k, "value": x.Env[k]})
	}
	parts := strings.Split(x.Name, "/")
	out := map[string]any{
		"name":        x.Name,
		"uid":         randomHex(8),
		"generation":  "1",
		"createTime":  ts(x.Created),
		"job":         parts[5],
		"parallelism": 1,
		"taskCount":   x.TaskCount,
		"template": map[string]any{
			"containers": []map[string]any{{"image": "us-docker.pkg.dev/cloudrun/container/job:latest", "env": env}},
			"maxRetries": 3,
			"timeout":    cmp(x.Timeout, "600s"),
		},
		"launchStage": "GA",
		"logUri":      "https://console.cloud.google.com/logs/viewer?project=" + parts[1],
		"etag":        `"` + randomHex(6) + `"`,
	}
	completed := map[string]any{"type": "Completed", "lastTransitionTime": ts(now)}
	conds := []map[string]any{
		{"type": "ResourcesAvailable", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": ts(started)},
	}
	switch p {
	case phasePending:
		out["reconciling"] = true
		conds[0]["state"] = "CONDITION_RECONCILING"
		completed["state"] = "CONDITION_PENDING"
		conds = append(conds, map[string]any{"type": "Started", "state": "CONDITION_PENDING"}, completed)
	case phaseRunning:
		out["startTime"] = ts(started)
		out["runningCount"] = x.TaskCount
		completed["state"] = "CONDITION_RECONCILING"
		conds = append(conds, map[string]any{"type": "Started", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": ts(started)}, completed)
	case phaseSucceeded:
		out["startTime"], out["completionTime"] = ts(started), ts(ended)
		out["succeededCount"] = x.TaskCount
		completed["state"] = "CONDITION_SUCCEEDED"
		completed["message"] = "Execution completed successfully in " + ended.Sub(started).Round(time.Millisecond).String() + "."
		conds = append(conds, map[string]any{"type": "Started", "state": "CONDITION_SUCCEEDED"}, completed)
	case phaseFailed:
		msg := x.failMsg
		if !j.Hold && j.Fail != nil {
			msg = j.Fail(x.Env)
		}
		out["startTime"], out["completionTime"] = ts(started), ts(ended)
		out["failedCount"] = x.TaskCount
		out["retriedCount"] = 3
		completed["state"] = "CONDITION_FAILED"
		completed["executionReason"] = "NON_ZERO_EXIT_CODE"
		completed["message"] = msg
		conds = append(conds, map[string]any{"type": "Started", "state": "CONDITION_SUCCEEDED"}, completed)
	case phaseCancelled:
		out["startTime"], out["completionTime"] = ts(started), ts(now)
		out["cancelledCount"] = x.TaskCount
		completed["state"] = "CONDITION_FAILED"
		completed["executionReason"] = "CANCELLED"
		completed["message"] = "The execution was cancelled."
		conds = append(conds, map[string]any{"type": "Started", "state": "CONDITION_SUCCEEDED"}, completed)
	}
	out["conditions"] = conds
	return out
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// suffix makes the 5-character id of an execution, as the service does
// (job-name-x7k2p).
func suffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[(int(b[i])+n)%len(alphabet)]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// --- the OAuth token endpoint ---

// serveToken takes the JWT-bearer grant of a service account: the
// assertion must be an RS256 JWT signed with the key WriteKey wrote, for
// this endpoint, asking for a scope.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(code int, e, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": e, "error_description": desc})
	}
	s.mu.Lock()
	inj, injected := s.injected("token")
	s.mu.Unlock()
	if injected {
		oauthErr(inj.Code, cmp(inj.Status, "invalid_grant"), "Invalid JWT Signature.")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+g)
		return
	}
	claims, err := s.verifyJWT(r.PostForm.Get("assertion"))
	if err != nil {
		oauthErr(http.StatusBadRequest, "invalid_grant", err.Error())
		return
	}
	if claims.Iss != ServiceAccount {
		oauthErr(http.StatusBadRequest, "invalid_grant", "Invalid issuer: "+claims.Iss)
		return
	}
	if claims.Aud != s.URL+"/token" {
		oauthErr(http.StatusBadRequest, "invalid_grant", "Invalid JWT: audience is "+claims.Aud)
		return
	}
	if claims.Scope == "" {
		oauthErr(http.StatusBadRequest, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	if now := time.Now().Unix(); claims.Exp < now || claims.Iat > now+300 {
		oauthErr(http.StatusBadRequest, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
		return
	}
	tok := "ya29.fake-" + randomHex(16)
	s.mu.Lock()
	life := s.tokenLife
	if life <= 0 {
		life = time.Hour
	}
	s.tokens[tok] = time.Now().Add(life)
	s.tokenGrants++
	s.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": tok, "expires_in": int(life.Seconds()), "token_type": "Bearer"})
}

type jwtClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

func (s *Server) verifyJWT(assertion string) (*jwtClaims, error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("Invalid JWT: %d parts", len(parts))
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(parts[0], &hdr); err != nil || hdr.Alg != "RS256" {
		return nil, fmt.Errorf("Invalid JWT header (alg %q, %v)", hdr.Alg, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("Invalid JWT Signature: %v", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("Invalid JWT Signature.")
	}
	var c jwtClaims
	if err := decodePart(parts[1], &c); err != nil {
		return nil, fmt.Errorf("Invalid JWT claims: %v", err)
	}
	return &c, nil
}

func decodePart(p string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
