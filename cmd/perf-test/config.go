package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ork-run/ork/sched"
)

// Executors a workload may use.
const (
	// ExecProcess runs a generated shell script per task through ork's
	// process executor, as `ork run` does.
	ExecProcess = "process"
	// ExecNoop runs nothing: an in-process executor reports each task
	// running at once and successful after task_duration. It gives the
	// scheduler's and the database's own cost.
	ExecNoop = "noop"
	// ExecCloudRun runs each task as an execution of a fake Cloud Run v2
	// service started in this process (exec/cloudrun/cloudruntest), through
	// ork's real Cloud Run executor with real credentials (a generated
	// service-account key whose tokens the fake grants). An execution runs
	// for task_duration. It needs a perf-test built with -tags cloudrun.
	ExecCloudRun = "cloudrun"
)

// Trigger modes.
const (
	// TriggerBatch creates every run at once, one after another, while the
	// scheduler runs.
	TriggerBatch = "batch"
	// TriggerSpaced creates one run at a time and waits for it to end
	// before the next, so each run meets an idle scheduler: the trigger
	// latency without queueing.
	TriggerSpaced = "spaced"
)

// Database handles a run may be triggered through.
const (
	// HandleOther is a second filedb handle on the directory, as `ork
	// trigger` in another process has: the scheduler learns of the run
	// through fsnotify.
	HandleOther = "other"
	// HandleSame is the scheduler's own handle, as `ork trigger --wait`
	// and a program embedding ork use.
	HandleSame = "same"
	// HandleAlternate alternates the two, run by run.
	HandleAlternate = "alternate"
)

// Config is one workload, read from perf-configs/NAME.json.
type Config struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Workflows, RunsPerWorkflow and TasksPerRun give the shape: Workflows
	// workflows of TasksPerRun tasks each, each triggered RunsPerWorkflow
	// times. In a DAG workload TasksPerRun is the task_count of each node.
	Workflows       int      `json:"workflows"`
	RunsPerWorkflow int      `json:"runs_per_workflow"`
	TasksPerRun     int      `json:"tasks_per_run"`
	TaskDuration    Duration `json:"task_duration"`
	Executor        string   `json:"executor"`
	Trigger         string   `json:"trigger"`
	// TriggerHandle is the database handle the runs of the main phase are
	// created through: "other" (default for batch), "same", or "alternate"
	// (default for spaced).
	TriggerHandle string `json:"trigger_handle,omitempty"`
	// LatencySamples, when positive, adds a phase after the main one: that
	// many one-task runs triggered one at a time on the idle scheduler, half
	// from the scheduler's own database handle and half from a second one
	// on the same directory (what `ork trigger` does from another process).
	LatencySamples int `json:"latency_samples,omitempty"`
	// Baseline runs the same tasks with `xargs -P N -n 1`, N being the
	// scheduler's max_running_tasks, for process workloads. Default true.
	Baseline *bool `json:"baseline,omitempty"`
	// IdleSeconds, when positive, adds a phase after the main one: the
	// scheduler is restarted on the directory (now holding the finished
	// runs of the main phase) and left idle that long; its CPU use is
	// measured.
	IdleSeconds float64 `json:"idle_seconds,omitempty"`
	// BackgroundWriteMBps, when positive, runs a writer during the main
	// phase that writes that many MB a second to a file next to the ork
	// directory, on the same file system, without syncing it: another
	// program at work (a build, a download), whose data a durable write of
	// ork's may have to wait for.
	BackgroundWriteMBps int `json:"background_write_mb_per_s,omitempty"`
	// DAG makes the workflows DAGs whose nodes depend on each other, to
	// measure the hop from a node's end to its dependent's start.
	DAG *DAGConfig `json:"dag,omitempty"`
	// Scheduler is the scheduler's Config; zero fields take ork's defaults.
	Scheduler SchedConfig `json:"scheduler"`
	// CloudRun sets the Cloud Run executor and its fake service, for the
	// executor "cloudrun".
	CloudRun *CloudRunConfig `json:"cloudrun,omitempty"`
}

// CloudRunConfig sets a "cloudrun" workload: the job the workflows run and
// the executor's polling. Zero fields take the defaults below, or the
// executor's.
type CloudRunConfig struct {
	Project string `json:"project,omitempty"` // default "perf-project"
	Region  string `json:"region,omitempty"`  // default "europe-west1"
	Job     string `json:"job,omitempty"`     // default "perf-job"
	// PollInterval is how often each running execution is looked at
	// (default the executor's, 10s).
	PollInterval Duration `json:"poll_interval,omitempty"`
	// GetLatency makes the fake take that much longer to answer each GET
	// of an execution, as a distant API does.
	GetLatency Duration `json:"get_latency,omitempty"`
}

// Defaults of CloudRunConfig.
const (
	defaultCloudRunProject = "perf-project"
	defaultCloudRunRegion  = "europe-west1"
	defaultCloudRunJob     = "perf-job"
)

// withDefaults fills in the job's defaults.
func (c CloudRunConfig) withDefaults() CloudRunConfig {
	if c.Project == "" {
		c.Project = defaultCloudRunProject
	}
	if c.Region == "" {
		c.Region = defaultCloudRunRegion
	}
	if c.Job == "" {
		c.Job = defaultCloudRunJob
	}
	return c
}

// DAGConfig shapes a DAG workload: a chain of nodes.
type DAGConfig struct {
	// Depth is the length of the chain: node i depends on node i-1.
	Depth int `json:"depth"`
}

// NodeNames returns the names of the chain's nodes, upstream first.
func (d *DAGConfig) NodeNames() []string {
	out := make([]string, d.Depth)
	for i := range out {
		out[i] = fmt.Sprintf("n%03d", i+1)
	}
	return out
}

// SchedConfig mirrors sched.Config with durations written as text ("1s").
type SchedConfig struct {
	PollInterval              Duration `json:"poll_interval,omitempty"`
	MaxTasksPerBatch          int      `json:"max_tasks_per_batch,omitempty"`
	MaxConcurrentDispatches   int      `json:"max_concurrent_dispatches,omitempty"`
	MaxConcurrentStatusChecks int      `json:"max_concurrent_status_checks,omitempty"`
	MaxRunningTasks           int      `json:"max_running_tasks,omitempty"`
	ShutdownGrace             Duration `json:"shutdown_grace,omitempty"`
}

// Sched returns the sched.Config, ork's defaults filled in.
func (c SchedConfig) Sched() sched.Config {
	return sched.Config{
		PollInterval:              time.Duration(c.PollInterval),
		MaxTasksPerBatch:          c.MaxTasksPerBatch,
		MaxConcurrentDispatches:   c.MaxConcurrentDispatches,
		MaxConcurrentStatusChecks: c.MaxConcurrentStatusChecks,
		MaxRunningTasks:           c.MaxRunningTasks,
		ShutdownGrace:             time.Duration(c.ShutdownGrace),
	}.WithDefaults()
}

// Duration is a time.Duration written in JSON as text: "10ms", "1.5s", "0s".
type Duration time.Duration

// UnmarshalJSON accepts a duration string, or the number 0.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "0" {
		*d = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is text such as \"10ms\" or \"1s\", not %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// std returns the time.Duration.
func (d Duration) std() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Runs is the number of runs of the main phase.
func (c *Config) Runs() int { return c.Workflows * c.RunsPerWorkflow }

// RunTasks is the number of tasks of one run.
func (c *Config) RunTasks() int {
	if c.DAG != nil {
		return c.DAG.Depth * c.TasksPerRun
	}
	return c.TasksPerRun
}

// Tasks is the number of tasks of the main phase.
func (c *Config) Tasks() int { return c.Runs() * c.RunTasks() }

// BaselineEnabled reports whether the xargs baseline runs.
func (c *Config) BaselineEnabled() bool {
	return c.Executor == ExecProcess && (c.Baseline == nil || *c.Baseline)
}

// ParseConfig reads a workload from JSON; unknown fields are errors, so a
// typo does not silently fall back to a default.
func ParseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	if c.Executor == "" {
		c.Executor = ExecNoop
	}
	if c.Trigger == "" {
		c.Trigger = TriggerBatch
	}
	if c.TriggerHandle == "" {
		c.TriggerHandle = HandleOther
		if c.Trigger == TriggerSpaced {
			c.TriggerHandle = HandleAlternate
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks a workload.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if c.Workflows < 1 || c.RunsPerWorkflow < 1 || c.TasksPerRun < 1 {
		errs = append(errs, fmt.Errorf("workflows (%d), runs_per_workflow (%d) and tasks_per_run (%d) must each be at least 1", c.Workflows, c.RunsPerWorkflow, c.TasksPerRun))
	}
	if c.TaskDuration < 0 {
		errs = append(errs, errors.New("task_duration is negative"))
	}
	switch c.Executor {
	case ExecProcess, ExecNoop, ExecCloudRun:
	default:
		errs = append(errs, fmt.Errorf("executor %q: want %q, %q or %q", c.Executor, ExecProcess, ExecNoop, ExecCloudRun))
	}
	if c.CloudRun != nil {
		if c.Executor != ExecCloudRun {
			errs = append(errs, fmt.Errorf("cloudrun settings are for the executor %q, not %q", ExecCloudRun, c.Executor))
		}
		if c.CloudRun.PollInterval < 0 || c.CloudRun.GetLatency < 0 {
			errs = append(errs, errors.New("cloudrun.poll_interval and cloudrun.get_latency must not be negative"))
		}
	}
	switch c.Trigger {
	case TriggerBatch, TriggerSpaced:
	default:
		errs = append(errs, fmt.Errorf("trigger %q: want %q or %q", c.Trigger, TriggerBatch, TriggerSpaced))
	}
	switch c.TriggerHandle {
	case HandleOther, HandleSame, HandleAlternate:
	default:
		errs = append(errs, fmt.Errorf("trigger_handle %q: want %q, %q or %q", c.TriggerHandle, HandleOther, HandleSame, HandleAlternate))
	}
	if c.LatencySamples < 0 || c.IdleSeconds < 0 || c.BackgroundWriteMBps < 0 {
		errs = append(errs, errors.New("latency_samples, idle_seconds and background_write_mb_per_s must not be negative"))
	}
	if c.DAG != nil && c.DAG.Depth < 2 {
		errs = append(errs, fmt.Errorf("dag.depth %d: a chain needs at least 2 nodes", c.DAG.Depth))
	}
	s := c.Scheduler
	if s.PollInterval < 0 || s.MaxTasksPerBatch < 0 || s.MaxConcurrentDispatches < 0 || s.MaxConcurrentStatusChecks < 0 || s.MaxRunningTasks < 0 {
		errs = append(errs, errors.New("scheduler settings must not be negative (0 means ork's default)"))
	}
	return errors.Join(errs...)
}

// LoadConfig reads a workload from a file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// configDirName is the directory of the workloads, at the module root.
const configDirName = "perf-configs"

// ResolveConfig turns a workload name ("quick") or a path into a file: a
// path that exists is taken as it is; a name is looked up as
// perf-configs/NAME.json in the current directory and its parents, then
// beside the executable.
func ResolveConfig(arg string) (string, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return arg, nil
	}
	if strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".json") {
		return "", fmt.Errorf("config file %s not found", arg)
	}
	var tried []string
	for _, dir := range configDirs() {
		p := filepath.Join(dir, arg+".json")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("workload %q: no %s directory found in the current directory or its parents", arg, configDirName)
	}
	return "", fmt.Errorf("workload %q not found (looked at %s)", arg, strings.Join(tried, ", "))
}

// configDirs lists the perf-configs directories that exist, nearest first.
func configDirs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(start string) {
		for dir := start; ; {
			p := filepath.Join(dir, configDirName)
			if st, err := os.Stat(p); err == nil && st.IsDir() && !seen[p] {
				seen[p] = true
				out = append(out, p)
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	}
	if wd, err := os.Getwd(); err == nil {
		add(wd)
	}
	if exe, err := os.Executable(); err == nil {
		add(filepath.Dir(exe))
	}
	return out
}
