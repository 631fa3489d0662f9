package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/sched"
)

// schedConfig reads the scheduler's settings from the flags of `ork run`.
// A value is taken as written: 0 means 0 where 0 has a meaning
// (--shutdown-grace 0: do not wait; --max-interruptions 0: a task whose
// scheduler dies while it runs fails), and is refused where it has none.
// warn receives the deprecation notice of --crash-retries.
func schedConfig(c *cli.Context, warn func(string)) (sched.Config, error) {
	cfg := sched.Config{
		PollInterval:              c.Duration("poll-interval"),
		MaxTasksPerBatch:          c.Int("max-tasks-per-batch"),
		MaxConcurrentDispatches:   c.Int("max-concurrent-dispatches"),
		MaxConcurrentStatusChecks: c.Int("max-concurrent-status-checks"),
		MaxRunningTasks:           c.Int("max-running-tasks"),
		ShutdownGrace:             c.Duration("shutdown-grace"),
		MaxInterruptions:          c.Int("max-interruptions"),
		Lease:                     c.Duration("lease"),
	}
	if cfg.PollInterval <= 0 {
		return cfg, fmt.Errorf("--poll-interval (ORK_POLL_INTERVAL) is %s: must be more than 0, like 1s", cfg.PollInterval)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"max-tasks-per-batch", cfg.MaxTasksPerBatch},
		{"max-concurrent-dispatches", cfg.MaxConcurrentDispatches},
		{"max-concurrent-status-checks", cfg.MaxConcurrentStatusChecks},
		{"max-running-tasks", cfg.MaxRunningTasks},
	} {
		if f.v < 1 {
			return cfg, fmt.Errorf("--%s (%s) is %d: must be 1 or more", f.name, envName(f.name), f.v)
		}
	}
	if cfg.Lease < 100*time.Millisecond {
		return cfg, fmt.Errorf("--lease (ORK_LEASE) is %s: must be 100ms or more, like 15s", cfg.Lease)
	}
	if cfg.ShutdownGrace < 0 {
		return cfg, fmt.Errorf("--shutdown-grace (ORK_SHUTDOWN_GRACE) is %s: must be 0 (stop running tasks at once) or more", cfg.ShutdownGrace)
	}
	if c.IsSet("crash-retries") {
		n := c.Int("crash-retries")
		if c.IsSet("max-interruptions") {
			return cfg, fmt.Errorf("--crash-retries is the old name of --max-interruptions: give only --max-interruptions")
		}
		warn(fmt.Sprintf("--crash-retries (ORK_CRASH_RETRIES) is deprecated: it now means --max-interruptions %d (ORK_MAX_INTERRUPTIONS)", max(n, 0)))
		cfg.MaxInterruptions = max(n, 0)
	}
	if cfg.MaxInterruptions < 0 {
		return cfg, fmt.Errorf("--max-interruptions (ORK_MAX_INTERRUPTIONS) is %d: must be 0 (a task whose scheduler dies while it runs fails) or more", cfg.MaxInterruptions)
	}
	// In a Config, 0 means the default; "none" is negative.
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = -1
	}
	if cfg.MaxInterruptions == 0 {
		cfg.MaxInterruptions = -1
	}
	return cfg, nil
}

// runFlags are the flags of `ork run`, with the scheduler's defaults.
func runFlags() []cli.Flag {
	d := sched.Config{}.WithDefaults()
	return []cli.Flag{
		&cli.StringFlag{Name: "script-dir", EnvVars: []string{"ORK_SCRIPT_DIR"}, Usage: "where job scripts live (default: scripts/ beside the ork directory)"},
		&cli.DurationFlag{Name: "poll-interval", Value: d.PollInterval, EnvVars: []string{"ORK_POLL_INTERVAL"}, Usage: "safety-net poll interval (events wake the scheduler at once)"},
		&cli.IntFlag{Name: "max-tasks-per-batch", Value: d.MaxTasksPerBatch, EnvVars: []string{"ORK_MAX_TASKS_PER_BATCH"}, Usage: "pending tasks taken per loop"},
		&cli.IntFlag{Name: "max-concurrent-dispatches", Value: d.MaxConcurrentDispatches, EnvVars: []string{"ORK_MAX_CONCURRENT_DISPATCHES"}, Usage: "executor calls in flight while dispatching"},
		&cli.IntFlag{Name: "max-concurrent-status-checks", Value: d.MaxConcurrentStatusChecks, EnvVars: []string{"ORK_MAX_CONCURRENT_STATUS_CHECKS"}, Usage: "executor status checks in flight (at start-up recovery; Cloud Run polling)"},
		&cli.IntFlag{Name: "max-running-tasks", Value: d.MaxRunningTasks, EnvVars: []string{"ORK_MAX_RUNNING_TASKS"}, Usage: "tasks running at once (as many more may wait dispatched)"},
		&cli.DurationFlag{Name: "lease", Value: d.Lease, EnvVars: []string{"ORK_LEASE"}, Usage: "with several schedulers on one PostgreSQL database: how long this one's runs stay its own without a heartbeat (it heartbeats every lease/3); when it dies, another takes them over after about lease + lease/3"},
		&cli.DurationFlag{Name: "shutdown-grace", Value: d.ShutdownGrace, EnvVars: []string{"ORK_SHUTDOWN_GRACE"}, Usage: "on SIGINT/SIGTERM, how long to wait for running tasks before stopping them (0: do not wait)"},
		&cli.IntFlag{Name: "max-interruptions", Value: d.MaxInterruptions, EnvVars: []string{"ORK_MAX_INTERRUPTIONS"}, Usage: "times a task's attempts may be cut short by a dying scheduler and run again; one more fails it (0: the first fails it)"},
		&cli.IntFlag{Name: "crash-retries", EnvVars: []string{"ORK_CRASH_RETRIES"}, Hidden: true, Usage: "deprecated: the old name of --max-interruptions"},
		&cli.StringFlag{Name: "max-log-size", Value: "10MiB", EnvVars: []string{"ORK_MAX_LOG_SIZE"}, Usage: "keep at most this much of each attempt's log (its tail), e.g. 10MiB, 512KiB; 0: no bound"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, EnvVars: []string{"ORK_VERBOSE"}, Usage: "log every task"},
	}
}

// envName is the environment variable of an `ork run` flag.
func envName(flag string) string {
	return "ORK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
