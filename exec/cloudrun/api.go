//go:build cloudrun

package cloudrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The resources of the Cloud Run Admin API v2 that ork reads and writes,
// with their JSON field names. Only the fields ork uses are declared.

// runJobRequest is the body of POST v2/{job}:run.
type runJobRequest struct {
	Overrides *overrides `json:"overrides,omitempty"`
}

// overrides replaces parts of the job's configuration for one execution.
type overrides struct {
	ContainerOverrides []containerOverride `json:"containerOverrides,omitempty"`
	TaskCount          int                 `json:"taskCount,omitempty"`
	// Timeout is a google.protobuf.Duration in its JSON form: "30s",
	// "1.5s".
	Timeout string `json:"timeout,omitempty"`
}

type containerOverride struct {
	Name string   `json:"name,omitempty"`
	Env  []envVar `json:"env,omitempty"`
}

type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// operation is a google.longrunning.Operation. The Operation of jobs.run
// and executions.cancel carries the Execution as its metadata.
type operation struct {
	Name     string     `json:"name"`
	Metadata *execution `json:"metadata,omitempty"`
	Done     bool       `json:"done,omitempty"`
	Error    *status    `json:"error,omitempty"`
}

// status is a google.rpc.Status.
type status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status,omitempty"`
}

// execution is a google.cloud.run.v2.Execution.
type execution struct {
	Name           string        `json:"name"`
	Job            string        `json:"job,omitempty"`
	CreateTime     string        `json:"createTime,omitempty"`
	StartTime      string        `json:"startTime,omitempty"`
	CompletionTime string        `json:"completionTime,omitempty"`
	TaskCount      int           `json:"taskCount,omitempty"`
	RunningCount   int           `json:"runningCount,omitempty"`
	SucceededCount int           `json:"succeededCount,omitempty"`
	FailedCount    int           `json:"failedCount,omitempty"`
	CancelledCount int           `json:"cancelledCount,omitempty"`
	Conditions     []condition   `json:"conditions,omitempty"`
	Template       *taskTemplate `json:"template,omitempty"`
	LogURI         string        `json:"logUri,omitempty"`
}

type taskTemplate struct {
	Containers []container `json:"containers,omitempty"`
}

type container struct {
	Name string   `json:"name,omitempty"`
	Env  []envVar `json:"env,omitempty"`
}

// condition is a google.cloud.run.v2.Condition.
type condition struct {
	Type            string `json:"type"`
	State           string `json:"state,omitempty"`
	Message         string `json:"message,omitempty"`
	Reason          string `json:"reason,omitempty"`
	ExecutionReason string `json:"executionReason,omitempty"`
}

// Condition states.
const (
	conditionSucceeded = "CONDITION_SUCCEEDED"
	conditionFailed    = "CONDITION_FAILED"
)

type listExecutionsResponse struct {
	Executions    []execution `json:"executions"`
	NextPageToken string      `json:"nextPageToken,omitempty"`
}

// env returns the value of variable name in the execution's first
// container that has it, and whether one has.
func (x *execution) env(name string) (string, bool) {
	if x.Template == nil {
		return "", false
	}
	for _, c := range x.Template.Containers {
		for _, v := range c.Env {
			if v.Name == name {
				return v.Value, true
			}
		}
	}
	return "", false
}

// APIError is an error answer of the Cloud Run Admin API, in Google's JSON
// error shape: {"error": {"code", "message", "status"}}.
type APIError struct {
	HTTPStatus int    // the HTTP status code
	Code       int    // error.code
	Status     string // error.status, like NOT_FOUND or PERMISSION_DENIED
	Message    string // error.message
	// What ork was doing and on which resource: "run job
	// projects/p/locations/r/jobs/j".
	Op, Resource string
	// Permission is the IAM permission the call needs.
	Permission string
	// Credentials describes the credentials used, for 401 and 403.
	Credentials string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudrun: %s %s: ", e.Op, e.Resource)
	switch e.HTTPStatus {
	case http.StatusNotFound:
		b.WriteString("not found")
	case http.StatusUnauthorized:
		b.WriteString("the credentials were refused")
	case http.StatusForbidden:
		b.WriteString("permission denied")
	default:
		b.WriteString(http.StatusText(e.HTTPStatus))
	}
	fmt.Fprintf(&b, " (%d", e.HTTPStatus)
	if e.Status != "" {
		b.WriteString(" " + e.Status)
	}
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": " + strings.TrimRight(oneLine(e.Message), ". "))
	}
	switch e.HTTPStatus {
	case http.StatusUnauthorized:
		fmt.Fprintf(&b, "; credentials: %s; check GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`", e.Credentials)
	case http.StatusForbidden:
		fmt.Fprintf(&b, "; credentials: %s; grant them %s", e.Credentials, e.Permission)
	}
	return b.String()
}

// tokenError is a refusal of the token endpoint, on one line.
type tokenError struct {
	op, resource, creds string
	err                 *oauth2.RetrieveError
}

func (e *tokenError) Error() string {
	why := e.err.ErrorCode
	if e.err.ErrorDescription != "" {
		why += ": " + e.err.ErrorDescription
	}
	if why == "" {
		why = oneLine(string(e.err.Body))
	}
	st := ""
	if e.err.Response != nil {
		st = e.err.Response.Status + ": "
	}
	return fmt.Sprintf("cloudrun: %s %s: getting an access token with %s: the token endpoint answered %s%s", e.op, e.resource, e.creds, st, why)
}

func (e *tokenError) Unwrap() error { return e.err }

// oneLine joins the lines of s and bounds its length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// transient reports whether a status code is worth retrying.
func transient(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// call is one API request.
type call struct {
	method     string
	path       string // after the endpoint: "/v2/projects/..."
	query      url.Values
	body       any
	op         string // for errors: "run job"
	resource   string
	permission string
	// detach keeps the request going when the caller's context ends (its
	// deadline still holds): for :run, whose answer names what it started.
	detach bool
	// beforeRetry, when set, runs before a request is sent again after
	// the transient failure last; done=true stops the retries and returns
	// err.
	beforeRetry func(ctx context.Context, last error) (done bool, err error)
}

// do sends c and decodes a 2xx answer into out. 429 and 5xx answers and
// network errors are retried with exponential backoff and full jitter,
// waiting what Retry-After says when the answer has one.
func (e *Executor) do(ctx context.Context, c call, out any) error {
	client, creds, err := e.client(ctx)
	if err != nil {
		return err
	}
	var body []byte
	if c.body != nil {
		if body, err = json.Marshal(c.body); err != nil {
			return fmt.Errorf("cloudrun: %s: %w", c.op, err)
		}
	}
	u := e.endpoint + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var lastErr error
	for try := 0; ; try++ {
		if try > 0 && c.beforeRetry != nil {
			if done, err := c.beforeRetry(ctx, lastErr); done {
				return err
			}
		}
		wait, err := e.once(ctx, client, creds, c, u, body, out)
		if err == nil {
			return nil
		}
		lastErr = err
		if wait < 0 || try+1 >= e.maxTries {
			return lastErr
		}
		if wait == 0 {
			wait = e.backoff(try)
		}
		e.log.Debug("cloudrun: retrying", "op", c.op, "resource", c.resource, "after", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %v)", lastErr, ctx.Err())
		case <-t.C:
		}
	}
}

// once sends one request. wait < 0 means the error is final; otherwise the
// request may be retried after wait (0: after the usual backoff).
func (e *Executor) once(ctx context.Context, client *http.Client, creds string, c call, u string, body []byte, out any) (wait time.Duration, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Every request has a deadline, so a server that never answers fails
	// the call instead of hanging it. A request that starts something
	// (detach) is not abandoned when ctx ends: once sent, its answer is
	// what tells which execution it started.
	parent := ctx
	if c.detach {
		parent = context.WithoutCancel(ctx)
	}
	reqCtx, cancel := context.WithTimeout(parent, e.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, c.method, u, rd)
	if err != nil {
		return -1, fmt.Errorf("cloudrun: %s: %w", c.op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	e.requests.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && !c.detach {
			return -1, fmt.Errorf("cloudrun: %s %s: %w", c.op, c.resource, ctx.Err())
		}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			err = &tokenError{op: c.op, resource: c.resource, creds: creds, err: re}
			if re.Response != nil && !transient(re.Response.StatusCode) {
				return -1, err
			}
			return 0, err
		}
		return 0, fmt.Errorf("cloudrun: %s %s: %w", c.op, c.resource, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, fmt.Errorf("cloudrun: %s %s: reading the answer: %w", c.op, c.resource, err)
	}
	if resp.StatusCode/100 == 2 {
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return -1, fmt.Errorf("cloudrun: %s %s: the answer is not the JSON expected: %w", c.op, c.resource, err)
			}
		}
		return 0, nil
	}
	apiErr := &APIError{HTTPStatus: resp.StatusCode, Op: c.op, Resource: c.resource, Permission: c.permission, Credentials: creds}
	var ge struct {
		Error *status `json:"error"`
	}
	if json.Unmarshal(data, &ge) == nil && ge.Error != nil {
		apiErr.Code, apiErr.Status, apiErr.Message = ge.Error.Code, ge.Error.Status, ge.Error.Message
	} else {
		apiErr.Message = oneLine(string(data))
	}
	if !transient(resp.StatusCode) {
		return -1, apiErr
	}
	return retryAfter(resp.Header.Get("Retry-After"), time.Now()), apiErr
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. It
// returns 0 when there is none or it cannot be read.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
		return time.Millisecond
	}
	return 0
}

// maxRetryAfter caps what a Retry-After header can make ork wait.
const maxRetryAfter = 5 * time.Minute

// backoff is the wait before retry try+1: full jitter over an exponential
// that starts at RetryBase and is capped at MaxRetryWait.
func (e *Executor) backoff(try int) time.Duration {
	d := e.retryBase << min(try, 20)
	if d <= 0 || d > e.maxRetryWait {
		d = e.maxRetryWait
	}
	return d/2 + rand.N(d/2+1)
}

// protoDuration writes d as a google.protobuf.Duration in JSON: "30s".
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
