package sched_test

import (
	"os"
	"strings"
	"testing"
	"time"
)

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLog is a file where every task start of a test writes a line.
type startLog string

func (p startLog) count() int {
	data, _ := os.ReadFile(string(p))
	return strings.Count(string(data), "\n")
}
