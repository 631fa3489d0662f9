package model

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Duration is a time.Duration written in JSON as a string like "30s",
// "5m" or "1h30m".
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("a duration must be a string like \"30s\" or \"5m\", not %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: write it like \"30s\", \"5m\" or \"1h30m\"", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Attempt is the record of one attempt of a task: when it ran and how it
// ended.
type Attempt struct {
	Attempt    int        `json:"attempt"`
	Status     TaskStatus `json:"status"` // how the attempt ended: success, failed, cancelled, or interrupted (to be run again)
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Error      string     `json:"error,omitempty"`
	Log        string     `json:"log,omitempty"`
}

// AttemptInterrupted is how an attempt ends that was cut short by its
// scheduler: one that died (a crash, kill -9) or stopped (SIGTERM, after
// the shutdown grace). The task goes back to the queue; an interrupted
// attempt does not count against the task's retries. It is an attempt's
// status only, never a task's.
const AttemptInterrupted TaskStatus = "interrupted"

// SchedulerDied begins the error of an attempt interrupted because its
// scheduler died (not because it stopped): Task.Interruptions counts these.
const SchedulerDied = "scheduler died"

// Interruptions counts the attempts of t that were cut short because their
// scheduler died (see SchedulerDied). A scheduler bounds them, so that a
// task that keeps killing its scheduler ends failed.
func (t *Task) Interruptions() int {
	n := 0
	for _, a := range t.Attempts {
		if a.Status == AttemptInterrupted && strings.HasPrefix(a.Error, SchedulerDied) {
			n++
		}
	}
	return n
}

// Failures counts the attempts of t that failed: those the task's retries
// bound (interrupted attempts do not count).
func (t *Task) Failures() int {
	n := 0
	for _, a := range t.Attempts {
		if a.Status == TaskFailed {
			n++
		}
	}
	return n
}

// MaxRetryBackoff caps the wait between retries.
const MaxRetryBackoff = 10 * time.Minute

// RetryDelay is the wait before retrying after attempt failed: base × 2^(attempt-1),
// capped at MaxRetryBackoff, with ±20% jitter so that many tasks failing
// together do not retry together.
func RetryDelay(base time.Duration, attempt int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < attempt && d < MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxRetryBackoff)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}
