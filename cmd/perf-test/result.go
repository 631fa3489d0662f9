package main

import (
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ork-run/ork/sched"
)

// Result holds every figure of one measurement. It is what --json prints.
type Result struct {
	Config      string    `json:"config"`
	Description string    `json:"description,omitempty"`
	ConfigFile  string    `json:"config_file,omitempty"`
	Date        time.Time `json:"date"`
	Machine     Machine   `json:"machine"`
	Workload    Workload  `json:"workload"`
	Scheduler   Settings  `json:"scheduler"`
	Dir         string    `json:"dir,omitempty"`
	// Rounds is how many times the workload was measured; the figures are
	// those of the round of median total time.
	Rounds             int       `json:"rounds,omitempty"`
	RoundsTotalSeconds []float64 `json:"rounds_total_s,omitempty"`
	Notes              []string  `json:"notes,omitempty"`

	TotalSeconds      float64 `json:"total_s"`
	CreateRunsSeconds float64 `json:"create_runs_s,omitempty"`
	RunsPerSec        float64 `json:"runs_per_s"`
	TasksPerSec       float64 `json:"tasks_per_s"`
	FailedTasks       int     `json:"failed_tasks"`
	// RepeatedTasks counts tasks whose end was recorded more than once:
	// they ran again after they had finished.
	RepeatedTasks int `json:"repeated_tasks"`

	Latency   Latencies `json:"latency"`
	Resources Resources `json:"resources"`

	Pace     *Pace         `json:"pace,omitempty"`
	Status   *StatusTiming `json:"status,omitempty"`
	Baseline *Baseline     `json:"baseline,omitempty"`
	Idle     *Idle         `json:"idle,omitempty"`
	CloudRun *CloudRun     `json:"cloudrun,omitempty"`
	Targets  []Target      `json:"targets"`

	triggerSame, triggerOther []time.Duration
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	// LoadAvg is /proc/loadavg when the measurement began: other work on
	// the machine skews every figure.
	LoadAvg string `json:"loadavg,omitempty"`
}

// Workload is the shape of the main phase.
type Workload struct {
	Workflows       int      `json:"workflows"`
	RunsPerWorkflow int      `json:"runs_per_workflow"`
	TasksPerRun     int      `json:"tasks_per_run"`
	Runs            int      `json:"runs"`
	Tasks           int      `json:"tasks"`
	TaskDuration    Duration `json:"task_duration"`
	Executor        string   `json:"executor"`
	Trigger         string   `json:"trigger"`
	TriggerHandle   string   `json:"trigger_handle"`
	LatencySamples  int      `json:"latency_samples,omitempty"`
	BackgroundMBps  int      `json:"background_write_mb_per_s,omitempty"`
	IdleSeconds     float64  `json:"idle_seconds,omitempty"`
	DAGDepth        int      `json:"dag_depth,omitempty"`
	RunTasks        int      `json:"run_tasks"`
}

// Settings are the scheduler's effective settings, defaults filled in.
type Settings struct {
	PollInterval              Duration `json:"poll_interval"`
	MaxTasksPerBatch          int      `json:"max_tasks_per_batch"`
	MaxConcurrentDispatches   int      `json:"max_concurrent_dispatches"`
	MaxConcurrentStatusChecks int      `json:"max_concurrent_status_checks"`
	MaxRunningTasks           int      `json:"max_running_tasks"`
}

func settingsOf(c sched.Config) Settings {
	return Settings{
		PollInterval:              Duration(c.PollInterval),
		MaxTasksPerBatch:          c.MaxTasksPerBatch,
		MaxConcurrentDispatches:   c.MaxConcurrentDispatches,
		MaxConcurrentStatusChecks: c.MaxConcurrentStatusChecks,
		MaxRunningTasks:           c.MaxRunningTasks,
	}
}

// Latencies are the distributions of the main phase (and, for the trigger
// latencies, of the latency samples), in milliseconds. A nil entry was not
// measured.
type Latencies struct {
	// CreatedToDispatched is task created_at → dispatched_at. The tasks of
	// a run started by this scheduler are created already dispatched, as
	// slots free up, so it is zero for them by construction.
	CreatedToDispatched *Percentiles `json:"created_to_dispatched"`
	// RunCreatedToDispatched is the run's trigger → the task's
	// dispatched_at: the time a task waits in the queue.
	RunCreatedToDispatched *Percentiles `json:"run_created_to_dispatched"`
	// DispatchedToRunning is dispatched_at → started_at.
	DispatchedToRunning *Percentiles `json:"dispatched_to_running"`
	// FinishedToRecorded is finished_at → the moment the scheduler's write
	// of the end returned (durable).
	FinishedToRecorded *Percentiles `json:"finished_to_recorded"`
	// TriggerToFirstStart is a run's trigger through the scheduler's own
	// database handle → its first task's started_at, on an idle scheduler.
	TriggerToFirstStart *Percentiles `json:"trigger_to_first_start"`
	// TriggerToFirstStartOtherDB is the same for runs written through a
	// second handle on the directory, as `ork trigger` in another process:
	// the scheduler learns of them through fsnotify.
	TriggerToFirstStartOtherDB *Percentiles `json:"trigger_to_first_start_other_db"`
	// DAGHop is the end of a DAG node (its last task's finished_at) → the
	// start of the node that depends on it (its first task's started_at).
	DAGHop *Percentiles `json:"dag_hop"`
}

// Resources are what the process hosting the scheduler used.
type Resources struct {
	PeakRSSBytes        int64   `json:"peak_rss_bytes"`
	PeakRSSNote         string  `json:"peak_rss_note,omitempty"`
	SchedulerCPU        CPU     `json:"scheduler_cpu"`
	SchedulerCPUPercent float64 `json:"scheduler_cpu_percent_of_a_core"`
	SchedulerCPUNote    string  `json:"scheduler_cpu_note,omitempty"`
	// ChildrenCPU is the CPU time of the task processes.
	ChildrenCPU *CPU `json:"children_cpu,omitempty"`
}

// Pace compares the first and the last tenth of the tasks to end.
type Pace struct {
	Tasks            int     `json:"tasks_per_window"`
	FirstTasksPerSec float64 `json:"first_10pct_tasks_per_s"`
	LastTasksPerSec  float64 `json:"last_10pct_tasks_per_s"`
	Ratio            float64 `json:"last_over_first"`
	// Deciles is the rate of each tenth of the tasks, in order of their end.
	Deciles []float64 `json:"deciles_tasks_per_s"`
}

// StatusTiming times what `ork status` does, on a fresh database handle.
type StatusTiming struct {
	RunTasks        int     `json:"run_tasks"`
	RunSeconds      float64 `json:"status_run_s"`
	MidRunSeconds   float64 `json:"status_run_mid_run_s,omitempty"`
	MidRunDone      int     `json:"status_run_mid_run_tasks_done,omitempty"`
	ListRunsSeconds float64 `json:"status_list_s"`
	Runs            int     `json:"runs_listed"`
}

// Baseline is the same work done by xargs, once before ork's main phase
// and once after; the figures are the mean of the two.
type Baseline struct {
	Command       string  `json:"command"`
	Tasks         int     `json:"tasks"`
	Parallelism   int     `json:"parallelism"`
	Seconds       float64 `json:"total_s"`
	SecondsBefore float64 `json:"total_s_before"`
	SecondsAfter  float64 `json:"total_s_after"`
	TasksPerSec   float64 `json:"tasks_per_s"`
	ChildrenCPU   CPU     `json:"children_cpu"`
	// Ratio is ork's total time over xargs's.
	Ratio float64 `json:"ratio"`
}

// Idle is the CPU use of a scheduler with nothing to do.
type Idle struct {
	FinishedRuns      int     `json:"finished_runs"`
	SettleSeconds     float64 `json:"settle_s"`
	Seconds           float64 `json:"seconds"`
	CPU               CPU     `json:"cpu"`
	CPUPercentOfACore float64 `json:"cpu_percent_of_a_core"`
	RSSBytes          int64   `json:"rss_bytes"`
}

// CloudRun is what a "cloudrun" workload's main phase cost in requests to
// the (fake) Cloud Run service: above all the status checks, a GET of one
// execution each, which the executor sends every poll interval for every
// running execution.
type CloudRun struct {
	Project      string   `json:"project"`
	Region       string   `json:"region"`
	Job          string   `json:"job"`
	PollInterval Duration `json:"poll_interval"`
	GetLatency   Duration `json:"get_latency"`
	// Executions is the :run requests the service answered (one per task).
	Executions int `json:"executions"`
	// StatusChecks is the GETs of an execution the service answered, and
	// ExecutorStatusChecks those the executor says it sent.
	StatusChecks         int     `json:"status_checks"`
	ExecutorStatusChecks int64   `json:"executor_status_checks"`
	StatusChecksPerSec   float64 `json:"status_checks_per_s"`
	StatusChecksPerTask  float64 `json:"status_checks_per_task"`
	// MaxGetsInFlight is the most GETs of an execution the service served
	// at once (over the whole measurement).
	MaxGetsInFlight int `json:"max_status_checks_in_flight"`
	TokenGrants     int `json:"token_grants"`
}

// cloudRunCounts are the fake service's counters and the executor's count
// of status checks at one moment.
type cloudRunCounts struct {
	Runs, Gets, TokenGrants, MaxGetsInFlight int
	ExecutorChecks                           int64
}

// cloudRunFigures turns the counts taken at the start and the end of the
// main phase into its figures.
func cloudRunFigures(c CloudRunConfig, before, after cloudRunCounts, tasks int, total time.Duration) *CloudRun {
	r := &CloudRun{
		Project: c.Project, Region: c.Region, Job: c.Job, PollInterval: c.PollInterval, GetLatency: c.GetLatency,
		Executions:           after.Runs - before.Runs,
		StatusChecks:         after.Gets - before.Gets,
		ExecutorStatusChecks: after.ExecutorChecks - before.ExecutorChecks,
		MaxGetsInFlight:      after.MaxGetsInFlight,
		TokenGrants:          after.TokenGrants - before.TokenGrants,
	}
	if total > 0 {
		r.StatusChecksPerSec = round3(float64(r.StatusChecks) / total.Seconds())
	}
	if tasks > 0 {
		r.StatusChecksPerTask = round3(float64(r.StatusChecks) / float64(tasks))
	}
	return r
}

// Target is one of the performance goals, as it stands in this
// measurement. Met is nil when the measurement cannot tell.
type Target struct {
	Name  string `json:"name"`
	Goal  string `json:"goal"`
	Value string `json:"value"`
	Met   *bool  `json:"met"`
}

func newResult(cfg *Config) *Result {
	r := &Result{
		Config:      cfg.Name,
		Description: cfg.Description,
		Date:        time.Now().UTC().Truncate(time.Second),
		Machine:     machine(),
		Workload: Workload{
			Workflows: cfg.Workflows, RunsPerWorkflow: cfg.RunsPerWorkflow, TasksPerRun: cfg.TasksPerRun,
			Runs: cfg.Runs(), Tasks: cfg.Tasks(), RunTasks: cfg.RunTasks(), TaskDuration: cfg.TaskDuration,
			Executor: cfg.Executor, Trigger: cfg.Trigger, TriggerHandle: cfg.TriggerHandle, LatencySamples: cfg.LatencySamples, BackgroundMBps: cfg.BackgroundWriteMBps,
			IdleSeconds: cfg.IdleSeconds,
		},
		Scheduler: settingsOf(cfg.Scheduler.Sched()),
	}
	if cfg.DAG != nil {
		r.Workload.DAGDepth = cfg.DAG.Depth
	}
	return r
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
