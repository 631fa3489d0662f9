package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// scriptName is the job every generated workflow runs.
const scriptName = "task.sh"

// Options are the command-line settings of one measurement.
type Options struct {
	Dir     string        // where the .ork directory goes; "" for a fresh temporary directory
	Keep    bool          // keep the directory afterwards
	Timeout time.Duration // the whole measurement
	Logs    io.Writer     // scheduler and database logs (warnings and errors)
	// MemProfile, when set, is where a heap profile is written when half
	// the tasks of the main phase have ended.
	MemProfile string
	// DatabaseURL, when set, puts the workflows, runs and tasks in
	// PostgreSQL (a perf-test built with -tags postgres), in a new schema
	// of that database, dropped afterwards unless Keep; the logs stay in
	// the .ork directory.
	DatabaseURL string
}

// harness is one ork directory with a scheduler running in this process,
// as `ork run` runs it: the file database, the shipped scheduler, and
// either the process executor or the no-op one.
type harness struct {
	cfg     *Config
	opts    Options
	root    string // holds .ork and scripts/
	dir     string // the .ork directory
	scripts string
	log     *slog.Logger

	store   string // h.dir, or the PostgreSQL URL of the measurement's schema
	dropPG  func() error
	db      model.Database
	rec     *recordingDB
	trigDB  model.Database // a second handle on the store, as another process has
	s       *sched.Scheduler
	scfg    sched.Config
	stop    context.CancelFunc
	stopped chan error
	cr      *cloudRunFake // the fake Cloud Run service of a "cloudrun" workload
}

func newHarness(cfg *Config, opts Options) (*harness, error) {
	h := &harness{cfg: cfg, opts: opts}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		root, err := os.MkdirTemp(opts.Dir, "perf-"+cfg.Name+"-")
		if err != nil {
			return nil, err
		}
		h.root = root
	} else {
		root, err := os.MkdirTemp("", "ork-perf-"+cfg.Name+"-")
		if err != nil {
			return nil, err
		}
		h.root = root
	}
	h.dir = filepath.Join(h.root, ".ork")
	h.scripts = filepath.Join(h.root, "scripts")
	h.log = slog.New(slog.NewTextHandler(opts.Logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := filedb.Init(h.dir); err != nil {
		return nil, err
	}
	h.store = h.dir
	if opts.DatabaseURL != "" {
		url, drop, err := newPostgresSchema(context.Background(), opts.DatabaseURL, cfg.Name)
		if err != nil {
			return nil, err
		}
		h.store, h.dropPG = url, drop
	}
	if err := os.MkdirAll(h.scripts, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(h.scripts, scriptName), []byte(scriptBody(time.Duration(cfg.TaskDuration))), 0o755); err != nil {
		return nil, err
	}
	return h, nil
}

// scriptBody is the task script: exit 0, or sleep for the task duration.
func scriptBody(d time.Duration) string {
	if d <= 0 {
		return "#!/bin/sh\nexit 0\n"
	}
	return "#!/bin/sh\nsleep " + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "\n"
}

// start opens the database and starts the scheduler on it.
func (h *harness) start(ctx context.Context, expect int) error {
	db, err := openStore(ctx, h.store, h.log)
	if err != nil {
		return err
	}
	h.db = db
	h.rec = newRecordingDB(db, expect)
	updates := make(chan exec.StatusUpdate, 4096) // as `ork run`
	mgr := exec.NewManager(updates)
	// Workflows say executor_type "process"; the no-op executor takes
	// that type's place for scheduler-only figures.
	switch h.cfg.Executor {
	case ExecNoop:
		mgr.Register(model.ExecutorProcess, newNoopExecutor(updates, time.Duration(h.cfg.TaskDuration)))
	case ExecCloudRun:
		if err := h.registerCloudRun(mgr, updates); err != nil {
			db.Close()
			return err
		}
	default:
		mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
			ScriptDir: h.scripts, LogDir: filepath.Join(h.dir, filedb.LogsDir), Updates: updates,
		}))
	}
	scfg := h.cfg.Scheduler.Sched()
	scfg.Logger = h.log
	h.s = sched.New(h.rec.scheduled(), mgr, scfg)
	h.scfg = h.s.Config()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.stop = cancel
	h.stopped = make(chan error, 1)
	go func() { h.stopped <- h.s.Run(sctx) }()
	return nil
}

// halt stops the scheduler and closes its database.
func (h *harness) halt() error {
	if h.stop == nil {
		return nil
	}
	h.stop()
	err := <-h.stopped
	h.stop = nil
	if h.trigDB != nil {
		h.trigDB.Close()
		h.trigDB = nil
	}
	if cerr := h.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanup stops the fake Cloud Run service, if any, and removes the
// directory unless asked to keep it.
func (h *harness) cleanup() {
	h.cr.close()
	if !h.opts.Keep {
		os.RemoveAll(h.root)
		if h.dropPG != nil {
			h.dropPG()
		}
	}
}

// workflows creates n workflows of the given number of tasks, or, with a
// DAG, of a chain of nodes of that many tasks each.
func (h *harness) workflows(ctx context.Context, n, tasks int, dag *DAGConfig, prefix string) ([]*model.Workflow, error) {
	out := make([]*model.Workflow, 0, n)
	for i := range n {
		w := &model.Workflow{
			Name:         fmt.Sprintf("%s-%d", prefix, i),
			Description:  "perf-test workload " + h.cfg.Name,
			ExecutorType: model.ExecutorProcess,
		}
		job := scriptName
		if h.cfg.Executor == ExecCloudRun {
			c := h.cr.job()
			w.ExecutorType, w.Project, w.Region, job = model.ExecutorCloudRun, c.Project, c.Region, c.Job
		}
		if dag == nil {
			w.JobName, w.TaskCount = job, tasks
		} else {
			w.Tasks = make(map[string]*model.TaskSpec, dag.Depth)
			prev := ""
			for _, name := range dag.NodeNames() {
				spec := &model.TaskSpec{JobName: job, TaskCount: tasks}
				if prev != "" {
					spec.DependsOn = []string{prev}
				}
				w.Tasks[name] = spec
				prev = name
			}
		}
		if err := h.db.CreateWorkflow(ctx, w); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// trigger creates a run of w through db and returns it; its created_at is
// the moment of the trigger.
func trigger(ctx context.Context, db model.Database, w *model.Workflow) (*model.Run, error) {
	r := model.NewRun(w, nil, "perf-test", time.Now())
	if err := db.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// handle returns the database handle the i-th run is triggered through,
// and whether it is the second handle.
func (h *harness) handle(mode string, i int) (model.Database, bool) {
	if mode == HandleOther || mode == HandleAlternate && i%2 == 1 {
		return h.trigDB, true
	}
	return h.rec, false
}

// repeated notes tasks whose end was recorded more than once.
func (h *harness) repeated(res *Result, n int) {
	if n == 0 {
		return
	}
	res.RepeatedTasks += n
	res.Notes = append(res.Notes, fmt.Sprintf("%d tasks ran again after they had finished (their end was recorded twice); the figures count each task once", n))
}

// wait waits for a run to end and fails unless it succeeded.
func (h *harness) wait(ctx context.Context, id string) error {
	r, err := h.s.WaitRun(ctx, id)
	if err != nil {
		return fmt.Errorf("wait for run %s: %w", id, err)
	}
	if r.Status != model.RunSuccess {
		return fmt.Errorf("run %s ended %s: %s", id, r.Status, r.Error)
	}
	return nil
}

// Measure runs the workload cfg describes and returns its figures.
func Measure(ctx context.Context, cfg *Config, opts Options) (*Result, error) {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	res := newResult(cfg)
	h, err := newHarness(cfg, opts)
	if err != nil {
		return nil, err
	}
	defer h.cleanup()
	if opts.Keep {
		res.Dir = h.dir
	}
	if opts.DatabaseURL != "" {
		res.Notes = append(res.Notes, "backend: PostgreSQL ("+redactPassword(opts.DatabaseURL)+"), a schema of its own")
	}
	if err := h.start(ctx, cfg.Tasks()); err != nil {
		return nil, err
	}
	defer h.halt()
	res.Scheduler = settingsOf(h.scfg)
	trigDB, err := openStore(ctx, h.store, h.log)
	if err != nil {
		return nil, err
	}
	h.trigDB = trigDB

	wfs, err := h.workflows(ctx, cfg.Workflows, cfg.TasksPerRun, cfg.DAG, "perf")
	if err != nil {
		return nil, err
	}
	var xBefore time.Duration
	var cpuBefore CPU
	if cfg.BaselineEnabled() {
		if xBefore, cpuBefore, err = h.xargs(ctx); err != nil {
			return nil, err
		}
	}
	stopWriter := h.backgroundWriter(res)
	err = h.mainPhase(ctx, res, wfs)
	stopWriter()
	if err != nil {
		return nil, err
	}
	if cfg.BaselineEnabled() {
		xAfter, cpuAfter, err := h.xargs(ctx)
		if err != nil {
			return nil, err
		}
		h.baseline(res, xBefore, xAfter, cpuBefore, cpuAfter)
	}
	if cfg.LatencySamples > 0 {
		lw, err := h.workflows(ctx, 1, 1, nil, "latency")
		if err != nil {
			return nil, err
		}
		if err := h.latencyPhase(ctx, res, lw[0]); err != nil {
			return nil, err
		}
	}
	if cfg.IdleSeconds > 0 {
		if err := h.halt(); err != nil {
			return nil, fmt.Errorf("stop the scheduler before the idle phase: %w", err)
		}
		if err := h.idlePhase(ctx, res); err != nil {
			return nil, err
		}
	}
	res.evaluate()
	return res, nil
}

// mainPhase triggers every run of the workload and waits for all of them.
func (h *harness) mainPhase(ctx context.Context, res *Result, wfs []*model.Workflow) error {
	cfg := h.cfg
	triggered := make(map[string]time.Time, cfg.Runs())
	viaOther := make(map[string]bool)

	// The mid-run status check of a large run: `ork status RUN` from
	// another process while the scheduler works on it.
	var mid *midStatus
	if cfg.Trigger == TriggerBatch && cfg.RunTasks() >= 10000 {
		mid = &midStatus{}
	}

	h.rec.take()
	crBefore := h.cr.counts()
	peakReset := resetPeakRSS()
	meter := startCPU()
	t0 := time.Now()
	var ids []string
	i := 0
	for range cfg.RunsPerWorkflow {
		for _, w := range wfs {
			db, other := h.handle(cfg.TriggerHandle, i)
			i++
			r, err := trigger(ctx, db, w)
			if err != nil {
				return err
			}
			triggered[r.ID] = r.CreatedAt
			viaOther[r.ID] = other
			ids = append(ids, r.ID)
			if cfg.Trigger == TriggerSpaced {
				if err := h.wait(ctx, r.ID); err != nil {
					return err
				}
			}
		}
	}
	// Helpers that act when half the tasks have ended; waited for before
	// the figures are taken.
	var helpers sync.WaitGroup
	if cfg.Trigger == TriggerBatch {
		res.CreateRunsSeconds = round3(time.Since(t0).Seconds())
		if h.opts.MemProfile != "" {
			helpers.Go(func() { h.heapProfileAtHalf(ctx) })
		}
		if mid != nil {
			helpers.Go(func() { mid.watch(ctx, h, ids[len(ids)-1], cfg.RunTasks()) })
		}
		for _, id := range ids {
			if err := h.wait(ctx, id); err != nil {
				return err
			}
		}
	}
	total := time.Since(t0)
	self, children, _ := meter.stop()
	crAfter := h.cr.counts()
	rss := peakRSS()
	helpers.Wait()
	lastRun := ids[len(ids)-1]

	res.TotalSeconds = round3(total.Seconds())
	res.RunsPerSec = round3(float64(len(ids)) / total.Seconds())
	res.TasksPerSec = round3(float64(cfg.Tasks()) / total.Seconds())
	res.Resources.PeakRSSBytes = rss
	res.Resources.PeakRSSNote = "VmHWM of the perf-test process, which hosts the scheduler, the database and the executor"
	if peakReset {
		res.Resources.PeakRSSNote += ", over the main phase"
	}
	res.Resources.SchedulerCPU = self
	res.Resources.SchedulerCPUPercent = round3(100 * self.Total() / total.Seconds())
	switch cfg.Executor {
	case ExecProcess:
		res.Resources.ChildrenCPU = &children
	case ExecCloudRun:
		res.Resources.SchedulerCPUNote = "includes the Cloud Run executor, the fake Cloud Run service (in this process) and the trigger"
		res.CloudRun = cloudRunFigures(h.cr.job(), crBefore, crAfter, cfg.Tasks(), total)
	default:
		res.Resources.SchedulerCPUNote = "includes the in-process no-op executor and the trigger"
	}
	if cfg.BackgroundWriteMBps > 0 {
		res.Resources.SchedulerCPUNote = strings.TrimPrefix(res.Resources.SchedulerCPUNote+"; and the background writer", "; ")
	}

	samples, repeated := firstEnds(h.rec.take())
	h.repeated(res, repeated)
	if len(samples) != cfg.Tasks() {
		return fmt.Errorf("%d tasks ended, want %d", len(samples), cfg.Tasks())
	}
	var created, queued, running, recorded []time.Duration
	first := make(map[string]int64, len(ids))
	for _, s := range samples {
		if !s.ok {
			res.FailedTasks++
		}
		if s.dispatched != 0 {
			created = append(created, time.Duration(s.dispatched-s.created))
			if t, ok := triggered[s.run]; ok {
				queued = append(queued, time.Duration(s.dispatched-t.UnixNano()))
			}
		}
		if s.started != 0 {
			if s.dispatched != 0 {
				running = append(running, time.Duration(s.started-s.dispatched))
			}
			if f, ok := first[s.run]; !ok || s.started < f {
				first[s.run] = s.started
			}
		}
		if s.finished != 0 {
			recorded = append(recorded, time.Duration(s.recorded-s.finished))
		}
	}
	res.Latency.CreatedToDispatched = Summarize(created)
	res.Latency.RunCreatedToDispatched = Summarize(queued)
	res.Latency.DispatchedToRunning = Summarize(running)
	res.Latency.FinishedToRecorded = Summarize(recorded)
	if cfg.Trigger == TriggerSpaced {
		same, other := triggerLatencies(triggered, viaOther, first)
		res.triggerSame = append(res.triggerSame, same...)
		res.triggerOther = append(res.triggerOther, other...)
		res.Latency.TriggerToFirstStart = Summarize(slices.Clone(res.triggerSame))
		res.Latency.TriggerToFirstStartOtherDB = Summarize(slices.Clone(res.triggerOther))
	}
	if cfg.Trigger == TriggerBatch {
		res.Pace = pace(samples, t0)
	}
	if cfg.DAG != nil {
		res.Latency.DAGHop = Summarize(dagHops(samples, cfg.DAG.NodeNames()))
	}
	if res.FailedTasks > 0 {
		return fmt.Errorf("%d of %d tasks failed", res.FailedTasks, cfg.Tasks())
	}
	if mid != nil {
		res.Status = &StatusTiming{}
		mid.report(res.Status)
	}
	st, err := h.statusTiming(ctx, lastRun, cfg.RunTasks())
	if err != nil {
		return err
	}
	if res.Status != nil {
		st.MidRunSeconds, st.MidRunDone = res.Status.MidRunSeconds, res.Status.MidRunDone
	}
	res.Status = st
	return nil
}

// triggerLatencies returns, per run, the time from its trigger to the
// start of its first task, split by the handle that triggered it.
func triggerLatencies(triggered map[string]time.Time, viaOther map[string]bool, first map[string]int64) (same, other []time.Duration) {
	for id, t := range triggered {
		f, ok := first[id]
		if !ok {
			continue
		}
		d := time.Duration(f - t.UnixNano())
		if viaOther[id] {
			other = append(other, d)
		} else {
			same = append(same, d)
		}
	}
	return same, other
}

// dagHops returns, for every run and every node but the first of the
// chain, the time from the end of the node upstream (its last task's
// finished_at) to the start of the node (its first task's started_at).
func dagHops(samples []taskSample, nodes []string) []time.Duration {
	type span struct{ start, end int64 }
	byRun := make(map[string]map[string]*span)
	for _, s := range samples {
		m := byRun[s.run]
		if m == nil {
			m = make(map[string]*span, len(nodes))
			byRun[s.run] = m
		}
		sp := m[s.name]
		if sp == nil {
			sp = &span{}
			m[s.name] = sp
		}
		if s.started != 0 && (sp.start == 0 || s.started < sp.start) {
			sp.start = s.started
		}
		sp.end = max(sp.end, s.finished)
	}
	var out []time.Duration
	for _, m := range byRun {
		for i := 1; i < len(nodes); i++ {
			up, down := m[nodes[i-1]], m[nodes[i]]
			if up == nil || down == nil || up.end == 0 || down.start == 0 {
				continue
			}
			out = append(out, time.Duration(down.start-up.end))
		}
	}
	return out
}

// pace compares the rate at which the first and the last 10% of the tasks
// were recorded finished: a scheduler whose cost grows with history slows
// down towards the end. It also gives the rate of every tenth.
func pace(samples []taskSample, t0 time.Time) *Pace {
	n := len(samples)
	if n < 100 {
		return nil
	}
	ends := make([]int64, n)
	for i, s := range samples {
		ends[i] = s.recorded
	}
	slices.Sort(ends)
	rate := func(from, to int) float64 { // tasks from..to-1 of the sorted ends
		start := t0.UnixNano()
		if from > 0 {
			start = ends[from-1]
		}
		d := time.Duration(ends[to-1] - start)
		if d <= 0 {
			return 0
		}
		return round3(float64(to-from) / d.Seconds())
	}
	k := int(math.Ceil(float64(n) / 10))
	p := &Pace{Tasks: k, FirstTasksPerSec: rate(0, k), LastTasksPerSec: rate(n-k, n)}
	for i := range 10 {
		p.Deciles = append(p.Deciles, rate(i*n/10, (i+1)*n/10))
	}
	if p.FirstTasksPerSec > 0 {
		p.Ratio = round3(p.LastTasksPerSec / p.FirstTasksPerSec)
	}
	return p
}

// midStatus times `ork status RUN` once, when half the tasks of a large run
// have ended.
type midStatus struct {
	mu      sync.Mutex
	seconds float64
	done    int
	err     error
}

func (m *midStatus) watch(ctx context.Context, h *harness, runID string, tasks int) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := h.rec.count()
		if n < tasks/2 {
			continue
		}
		p, err := probeStatus(ctx, h.store, runID)
		m.mu.Lock()
		m.done, m.err = n, err
		if err == nil {
			m.seconds = p.RunSeconds
		}
		m.mu.Unlock()
		return
	}
}

func (m *midStatus) report(st *StatusTiming) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil && m.done > 0 {
		st.MidRunSeconds = m.seconds
		st.MidRunDone = m.done
	}
}

// statusProbeArg makes perf-test time what `ork status` does, in a
// process of its own like the CLI, so that reading a large run does not
// count towards the scheduler's memory: perf-test __status-probe DIR [RUN].
// It prints a statusProbe as JSON.
const statusProbeArg = "__status-probe"

// statusProbe is what a status probe measured.
type statusProbe struct {
	RunSeconds  float64 `json:"run_s"`  // fresh handle, GetRun and TaskCounts of the run
	ListSeconds float64 `json:"list_s"` // fresh handle, ListRuns of every run
	Runs        int     `json:"runs"`
}

// runStatusProbe does the probe's work in this process.
func runStatusProbe(ctx context.Context, dir, runID string, log *slog.Logger) (*statusProbe, error) {
	p := &statusProbe{}
	if runID != "" {
		t0 := time.Now()
		db, err := openStore(ctx, dir, log)
		if err != nil {
			return nil, err
		}
		_, err = db.GetRun(ctx, runID)
		if err == nil {
			_, err = db.TaskCounts(ctx, runID)
		}
		db.Close()
		if err != nil {
			return nil, fmt.Errorf("status of run %s: %w", runID, err)
		}
		p.RunSeconds = round3(time.Since(t0).Seconds())
	}
	t0 := time.Now()
	db, err := openStore(ctx, dir, log)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	runs, err := db.ListRuns(ctx, model.RunFilter{})
	if err != nil {
		return nil, err
	}
	p.ListSeconds = round3(time.Since(t0).Seconds())
	p.Runs = len(runs)
	return p, nil
}

// probeStatus runs a status probe in a new process of this executable.
func probeStatus(ctx context.Context, dir, runID string) (*statusProbe, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := osexec.CommandContext(ctx, exe, statusProbeArg, dir, runID)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("status probe: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var p statusProbe
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("status probe: %v: %q", err, out)
	}
	return &p, nil
}

// statusTiming times `ork status RUN` and `ork status` after the main
// phase.
func (h *harness) statusTiming(ctx context.Context, runID string, tasks int) (*StatusTiming, error) {
	p, err := probeStatus(ctx, h.store, runID)
	if err != nil {
		return nil, err
	}
	return &StatusTiming{RunTasks: tasks, RunSeconds: p.RunSeconds, ListRunsSeconds: p.ListSeconds, Runs: p.Runs}, nil
}

// latencyPhase triggers one-task runs one at a time on the idle scheduler,
// alternating the scheduler's handle and a second one.
func (h *harness) latencyPhase(ctx context.Context, res *Result, w *model.Workflow) error {
	h.rec.take()
	triggered := make(map[string]time.Time, h.cfg.LatencySamples)
	viaOther := make(map[string]bool)
	for i := range h.cfg.LatencySamples {
		db, other := h.handle(HandleAlternate, i)
		r, err := trigger(ctx, db, w)
		if err != nil {
			return err
		}
		triggered[r.ID] = r.CreatedAt
		viaOther[r.ID] = other
		if err := h.wait(ctx, r.ID); err != nil {
			return err
		}
	}
	first := make(map[string]int64)
	samples, repeated := firstEnds(h.rec.take())
	h.repeated(res, repeated)
	for _, s := range samples {
		if f, ok := first[s.run]; s.started != 0 && (!ok || s.started < f) {
			first[s.run] = s.started
		}
	}
	same, other := triggerLatencies(triggered, viaOther, first)
	res.triggerSame = append(res.triggerSame, same...)
	res.triggerOther = append(res.triggerOther, other...)
	res.Latency.TriggerToFirstStart = Summarize(slices.Clone(res.triggerSame))
	res.Latency.TriggerToFirstStartOtherDB = Summarize(slices.Clone(res.triggerOther))
	return nil
}

// xargs runs the same number of tasks of the same script with
// `xargs -P N -n 1`, N being the scheduler's limit on running tasks, and
// returns its wall time and the CPU time of xargs and its processes.
func (h *harness) xargs(ctx context.Context) (time.Duration, CPU, error) {
	n := h.cfg.Tasks()
	var in strings.Builder
	for i := range n {
		in.WriteString(strconv.Itoa(i))
		in.WriteByte('\n')
	}
	cmd := osexec.CommandContext(ctx, "xargs", "-P", strconv.Itoa(h.scfg.MaxRunningTasks), "-n", "1", filepath.Join(h.scripts, scriptName))
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Dir = h.scripts
	var stderr strings.Builder
	cmd.Stderr = &stderr
	meter := startCPU()
	err := cmd.Run()
	_, children, wall := meter.stop()
	if err != nil {
		return 0, CPU{}, fmt.Errorf("baseline xargs: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return wall, children, nil
}

// baseline records the xargs runs made before and after the main phase:
// their mean is the baseline, so that a machine whose load drifts during
// the measurement skews both sides alike.
func (h *harness) baseline(res *Result, before, after time.Duration, cpuBefore, cpuAfter CPU) {
	n := h.cfg.Tasks()
	mean := (before + after) / 2
	b := &Baseline{
		Command:       fmt.Sprintf("seq 0 %d | xargs -P %d -n 1 %s", n-1, h.scfg.MaxRunningTasks, filepath.Join(h.scripts, scriptName)),
		Tasks:         n,
		Parallelism:   h.scfg.MaxRunningTasks,
		Seconds:       round3(mean.Seconds()),
		SecondsBefore: round3(before.Seconds()),
		SecondsAfter:  round3(after.Seconds()),
		TasksPerSec:   round3(float64(n) / mean.Seconds()),
		ChildrenCPU:   CPU{User: round3((cpuBefore.User + cpuAfter.User) / 2), Sys: round3((cpuBefore.Sys + cpuAfter.Sys) / 2)},
	}
	if mean > 0 {
		b.Ratio = round3(res.TotalSeconds / mean.Seconds())
	}
	res.Baseline = b
}

// idlePhase restarts the scheduler on the directory, which now holds the
// finished runs of the main phase, and measures its CPU use while nothing
// happens.
func (h *harness) idlePhase(ctx context.Context, res *Result) error {
	runs, err := countRuns(ctx, h.store, h.log)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := h.start(ctx, 0); err != nil {
		return err
	}
	// The scheduler reads its index and recovers in its first moments;
	// give it a second before measuring.
	settle := time.Second
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return ctx.Err()
	case err := <-h.stopped:
		h.stopped <- err // for halt
		return fmt.Errorf("the scheduler stopped: %v", err)
	}
	d := time.Duration(h.cfg.IdleSeconds * float64(time.Second))
	meter := startCPU()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return ctx.Err()
	}
	self, _, wall := meter.stop()
	res.Idle = &Idle{
		FinishedRuns:      runs,
		Seconds:           round3(wall.Seconds()),
		SettleSeconds:     round3(time.Since(t0).Seconds() - wall.Seconds()),
		CPU:               self,
		CPUPercentOfACore: round3(100 * self.Total() / wall.Seconds()),
		RSSBytes:          currentRSS(),
	}
	return h.halt()
}

// heapProfileAtHalf writes the heap profile once half the tasks have
// ended.
func (h *harness) heapProfileAtHalf(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for h.rec.count() < h.cfg.Tasks()/2 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	if err := writeHeapProfile(h.opts.MemProfile); err != nil {
		fmt.Fprintln(h.opts.Logs, "perf-test: heap profile:", err)
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // up-to-date statistics
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// backgroundWriter starts the workload's background writer, if it has one,
// and returns the function that stops it and notes what it wrote. The
// writer writes 1 MB at a time at the configured rate, to a file it starts
// again every 256 MB.
func (h *harness) backgroundWriter(res *Result) func() {
	rate := h.cfg.BackgroundWriteMBps
	if rate <= 0 {
		return func() {}
	}
	const fileMB = 256
	stop := make(chan struct{})
	done := make(chan int)
	path := filepath.Join(h.root, "background-writer.dat")
	t0 := time.Now()
	go func() {
		buf := make([]byte, 1<<20)
		mb := 0
		var f *os.File
		defer func() {
			if f != nil {
				f.Close()
			}
			os.Remove(path)
			done <- mb
		}()
		for {
			// The next megabyte is due at t0 + mb/rate.
			due := t0.Add(time.Duration(float64(mb) / float64(rate) * float64(time.Second)))
			select {
			case <-stop:
				return
			case <-time.After(time.Until(due)):
			}
			if mb%fileMB == 0 {
				if f != nil {
					f.Close()
				}
				var err error
				if f, err = os.Create(path); err != nil {
					return
				}
			}
			if _, err := f.Write(buf); err != nil {
				return
			}
			mb++
		}
	}()
	return func() {
		close(stop)
		mb := <-done
		d := time.Since(t0)
		res.Notes = append(res.Notes, fmt.Sprintf("a background writer wrote %d MB (%.0f MB/s) next to the ork directory, without syncing, during the main phase",
			mb, float64(mb)/d.Seconds()))
	}
}

// countRuns counts the runs of a store: the run files of a directory, or
// the runs in PostgreSQL.
func countRuns(ctx context.Context, store string, log *slog.Logger) (int, error) {
	if isURL(store) {
		db, err := openStore(ctx, store, log)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		runs, err := db.ListRuns(ctx, model.RunFilter{})
		return len(runs), err
	}
	dir := store
	ents, err := os.ReadDir(filepath.Join(dir, filedb.RunsDir))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n, nil
}
