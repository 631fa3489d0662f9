//go:build cloudrun

package cloudrun

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

func TestStatusOf(t *testing.T) {
	completed := func(state, msg string) []condition {
		return []condition{{Type: "Started", State: conditionSucceeded}, {Type: "Completed", State: state, Message: msg}}
	}
	tests := []struct {
		desc    string
		x       execution
		want    model.TaskStatus
		wantErr string
	}{
		{"pending", execution{Conditions: completed("CONDITION_PENDING", "")}, model.TaskRunning, ""},
		{"running", execution{RunningCount: 1, Conditions: completed("CONDITION_RECONCILING", "")}, model.TaskRunning, ""},
		{"succeeded", execution{SucceededCount: 1, Conditions: completed(conditionSucceeded, "Execution completed successfully.")}, model.TaskSuccess, ""},
		{"failed", execution{FailedCount: 1, Conditions: completed(conditionFailed, "Task x failed: exit code 2.")}, model.TaskFailed, "Task x failed: exit code 2."},
		{"failed without a message", execution{Name: "e1", TaskCount: 1, FailedCount: 1, Conditions: completed(conditionFailed, "")}, model.TaskFailed, "execution e1 failed: 1 of 1 tasks failed"},
		{"cancelled without a message", execution{Name: "e1", CancelledCount: 1, Conditions: completed(conditionFailed, "")}, model.TaskFailed, "execution e1 was cancelled"},
		// No verdict in the conditions: the counts decide once it completed.
		{"counts: succeeded", execution{TaskCount: 1, SucceededCount: 1, CompletionTime: "2026-11-28T01:00:00Z"}, model.TaskSuccess, ""},
		{"counts: failed", execution{Name: "e1", TaskCount: 1, FailedCount: 1, CompletionTime: "2026-11-28T01:00:00Z"}, model.TaskFailed, "1 of 1 tasks failed"},
		{"counts: cancelled", execution{Name: "e1", TaskCount: 1, CancelledCount: 1, CompletionTime: "2026-11-28T01:00:00Z"}, model.TaskFailed, "was cancelled"},
		{"counts: not completed", execution{TaskCount: 1, SucceededCount: 1}, model.TaskRunning, ""},
	}
	for _, tt := range tests {
		st, msg := statusOf(&tt.x)
		if st != tt.want || !strings.Contains(msg, tt.wantErr) || (tt.wantErr == "" && msg != "") {
			t.Errorf("%s: statusOf = %s, %q; want %s, %q", tt.desc, st, msg, tt.want, tt.wantErr)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 0 ", 0},
		{"-1", 0},
		{"soon", 0},
		{"86400", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), time.Millisecond},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestBackoffHasJitterAndACap(t *testing.T) {
	e := &Executor{retryBase: 100 * time.Millisecond, maxRetryWait: time.Second}
	seen := map[time.Duration]bool{}
	for try := range 8 {
		want := min(100*time.Millisecond<<try, time.Second)
		for range 20 {
			d := e.backoff(try)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", try, d, want/2, want)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d different waits in 160: no jitter", len(seen))
	}
}

func TestProtoDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:        "30s",
		1500 * time.Millisecond: "1.5s",
		90 * time.Minute:        "5400s",
	} {
		if got := protoDuration(d); got != want {
			t.Errorf("protoDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
