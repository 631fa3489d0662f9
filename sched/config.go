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
	// MaxInterruptions bounds the attempts of a task that may be cut short
	// by the death of their scheduler (a crash, a kill -9): an interrupted
	// attempt runs again without counting against the task's retries, but
	// the task whose attempt is interrupted once more than this fails —
	// it may be what kills its scheduler. Default 5; negative means none
	// (the first such interruption fails the task). A graceful stop does
	// not count.
	MaxInterruptions int `json:"max_interruptions"`
	// Lease is how long a scheduler's runs stay its own without a
	// heartbeat, where several schedulers serve one database (a
	// model.Cluster): the scheduler heartbeats every Lease/3, and when it
	// dies another takes over its runs within about Lease plus a reap
	// interval (see TakeoverBound). Default 15s.
	Lease time.Duration `json:"lease"`
	// ID names the scheduler (in its tasks' records, ORK_SCHEDULER and
	// `ork schedulers`). Default: host:pid:random, made by New.
	ID string `json:"-"`
	// Logger receives the scheduler's logs. Default slog.Default().
	Logger *slog.Logger `json:"-"`
	// NoSchedules: do not fire workflows' schedules (schedule.go). For a
	// scheduler that serves one run, such as `ork trigger --wait`'s.
	NoSchedules bool `json:"-"`
	// Clock tells the schedules the time. Default: the system clock.
	Clock Clock `json:"-"`
}

// DefaultMaxInterruptions is the default of Config.MaxInterruptions.
const DefaultMaxInterruptions = 5

// DefaultLease is the default of Config.Lease.
const DefaultLease = 15 * time.Second

// DefaultShutdownGrace is the default of Config.ShutdownGrace.
const DefaultShutdownGrace = 10 * time.Second

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
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.MaxInterruptions == 0 {
		c.MaxInterruptions = DefaultMaxInterruptions
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Lookahead is how many tasks beyond the running slots may wait
// dispatched, so that a slot freed while the loop waits for the disk finds
// a task ready to start: as many as there are slots. A task dispatched
// ahead that never starts (the scheduler stopped or died first) goes back
// to the queue with no attempt counted.
func (c Config) Lookahead() int { return c.MaxRunningTasks }

// TakeoverBound is about how long after a scheduler dies another takes
// over its runs: its lease runs out, then the leader, which looks every
// Lease/3, reaps it, and a scheduler with room claims its runs at its next
// loop (within PollInterval).
func (c Config) TakeoverBound() time.Duration {
	c = c.WithDefaults()
	return c.Lease + c.Lease/3 + c.PollInterval
}

// String shows the settings in the form of `ork run` flags (0 where a
// negative value means none).
func (c Config) String() string {
	return fmt.Sprintf("poll-interval=%s max-tasks-per-batch=%d max-concurrent-dispatches=%d max-concurrent-status-checks=%d max-running-tasks=%d lease=%s shutdown-grace=%s max-interruptions=%d",
		c.PollInterval, c.MaxTasksPerBatch, c.MaxConcurrentDispatches, c.MaxConcurrentStatusChecks, c.MaxRunningTasks,
		c.Lease, max(c.ShutdownGrace, 0), max(c.MaxInterruptions, 0))
}
