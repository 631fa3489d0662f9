package sched

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Config tunes the scheduler. The zero value of each field means its default.
type Config struct {
	// PollInterval is how long the scheduler sleeps when nothing wakes it.
	// It is only the safety net: new runs and status updates wake it at
	// once. Default 1s.
	PollInterval time.Duration `json:"poll_interval"`
	// MaxTasksPerBatch bounds the pending tasks taken, and the runs started,
	// in one loop. Default 100.
	MaxTasksPerBatch int `json:"max_tasks_per_batch"`
	// MaxConcurrentDispatches bounds the executor calls in flight at once
	// while dispatching a batch. Default 10.
	MaxConcurrentDispatches int `json:"max_concurrent_dispatches"`
	// MaxConcurrentStatusChecks bounds the executor status checks in flight
	// at once, when the scheduler starts and looks at tasks a previous
	// scheduler left dispatched or running. Default 50.
	MaxConcurrentStatusChecks int `json:"max_concurrent_status_checks"`
	// MaxRunningTasks bounds the tasks dispatched or running at once.
	// Default 4 × the number of CPUs.
	MaxRunningTasks int `json:"max_running_tasks"`
	// ShutdownGrace is how long a stopping scheduler waits for running
	// tasks before it stops them and puts them back in the queue. Default
	// 10s; negative means do not wait.
	ShutdownGrace time.Duration `json:"shutdown_grace"`
	// CrashRetries is how many times a task is retried when a scheduler
	// died while it ran. Default 1; negative means never.
	CrashRetries int `json:"crash_retries"`
	// Logger receives the scheduler's logs. Default slog.Default().
	Logger *slog.Logger `json:"-"`
	// NoSchedules: do not fire workflows' schedules (schedule.go). For a
	// scheduler that serves one run, such as `ork trigger --wait`'s.
	NoSchedules bool `json:"-"`
	// Clock tells the schedules the time. Default: the system clock.
	Clock Clock `json:"-"`
}

// DefaultMaxRunningTasks is the default limit on tasks running at once.
func DefaultMaxRunningTasks() int { return 4 * runtime.NumCPU() }

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.MaxTasksPerBatch <= 0 {
		c.MaxTasksPerBatch = 100
	}
	if c.MaxConcurrentDispatches <= 0 {
		c.MaxConcurrentDispatches = 10
	}
	if c.MaxConcurrentStatusChecks <= 0 {
		c.MaxConcurrentStatusChecks = 50
	}
	if c.MaxRunningTasks <= 0 {
		c.MaxRunningTasks = DefaultMaxRunningTasks()
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.CrashRetries == 0 {
		c.CrashRetries = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// String shows the settings in the form of `ork run` flags.
func (c Config) String() string {
	return fmt.Sprintf("poll-interval=%s max-tasks-per-batch=%d max-concurrent-dispatches=%d max-concurrent-status-checks=%d max-running-tasks=%d",
		c.PollInterval, c.MaxTasksPerBatch, c.MaxConcurrentDispatches, c.MaxConcurrentStatusChecks, c.MaxRunningTasks)
}
