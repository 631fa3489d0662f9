//go:build !cloudrun

package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Without the tag, a "cloudrun" workload fails at once with one line that
// says how to build perf-test for it.
func TestCloudRunNeedsTheTag(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"name":"cr","workflows":1,"runs_per_workflow":1,"tasks_per_run":3,"executor":"cloudrun"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Measure(context.Background(), cfg, Options{Dir: t.TempDir(), Timeout: time.Minute, Logs: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "-tags cloudrun") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want one line naming -tags cloudrun", err)
	}
}
