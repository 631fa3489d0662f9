package model_test

import (
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// TestRetryDelayBounds checks the documented backoff: base × 2^(attempt-1),
// capped at 10 minutes, with ±20% jitter — never outside [0.8, 1.2] × that,
// and spread over the range (so that tasks failing together do not retry
// together).
func TestRetryDelayBounds(t *testing.T) {
	tests := []struct {
		base    time.Duration
		attempt int
		want    time.Duration // before jitter
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 4, 8 * time.Second},
		{5 * time.Second, 3, 20 * time.Second},
		{time.Minute, 10, model.MaxRetryBackoff},
		{time.Second, 1000, model.MaxRetryBackoff},
		{time.Hour, 1, model.MaxRetryBackoff},
	}
	for _, tt := range tests {
		lo, hi := time.Duration(float64(tt.want)*0.8), time.Duration(float64(tt.want)*1.2)
		least, most := time.Duration(1<<62), time.Duration(0)
		for range 2000 {
			d := model.RetryDelay(tt.base, tt.attempt)
			least, most = min(least, d), max(most, d)
		}
		if least < lo || most > hi {
			t.Errorf("RetryDelay(%s, %d) ranged over [%s, %s], want within [%s, %s]", tt.base, tt.attempt, least, most, lo, hi)
		}
		// 2000 draws cover the range: the extremes come within 2% of its ends.
		if least > time.Duration(float64(tt.want)*0.82) || most < time.Duration(float64(tt.want)*1.18) {
			t.Errorf("RetryDelay(%s, %d) ranged over [%s, %s] only, want about [%s, %s]: too little jitter", tt.base, tt.attempt, least, most, lo, hi)
		}
	}
	if d := model.RetryDelay(0, 3); d != 0 {
		t.Errorf("RetryDelay(0, 3) = %s, want 0", d)
	}
}

// TestInterruptionsAndFailures checks what the scheduler's bounds count:
// failures only the failed attempts; interruptions only the attempts cut
// short by a dying scheduler, not those of a graceful stop.
func TestInterruptionsAndFailures(t *testing.T) {
	tk := &model.Task{Attempts: []model.Attempt{
		{Attempt: 1, Status: model.TaskFailed, Error: "exit status 1"},
		{Attempt: 2, Status: model.AttemptInterrupted, Error: model.SchedulerDied + " while running attempt 2"},
		{Attempt: 3, Status: model.AttemptInterrupted, Error: "attempt 3 stopped by scheduler shutdown"},
		{Attempt: 4, Status: model.AttemptInterrupted, Error: model.SchedulerDied + " while running attempt 4"},
		{Attempt: 5, Status: model.TaskFailed, Error: "timed out after 1s"},
	}}
	if n := tk.Failures(); n != 2 {
		t.Errorf("Failures = %d, want 2", n)
	}
	if n := tk.Interruptions(); n != 2 {
		t.Errorf("Interruptions = %d, want 2", n)
	}
}
