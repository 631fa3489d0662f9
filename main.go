// Command ork is a workflow orchestrator in one binary. See README.md.
//
// This file is the CLI: it parses flags, opens the database, wires the
// scheduler and executors, and prints. The work is done in the packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

// exitError carries a process exit code with a message (which may be empty
// when everything was said already).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	if p := os.Getenv("ORK_CPUPROFILE"); p != "" {
		// For performance work: a CPU profile of the whole command.
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	app := newApp(os.Stdout, os.Stderr)
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "ork: "+oneLine(msg))
		}
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newApp(stdout, stderr io.Writer) *cli.App {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}
	return &cli.App{
		Name:      "ork",
		Usage:     "run workflows of scripts, with state in plain JSON files",
		Version:   version(),
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "ork: unknown command %q: `ork --help` lists the commands\n", name)
			os.Exit(2)
		},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: ".ork", EnvVars: []string{"ORK_DIR"}, Usage: "the ork `DIRECTORY` (made by `ork init`)"},
		},
		Commands: []*cli.Command{
			{
				Name:   "init",
				Usage:  "create the ork directory (.ork) here",
				Action: cmdInit,
			},
			{
				Name:  "create-workflow",
				Usage: "create a workflow (written to .ork/workflows/NAME.json)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Aliases: []string{"n"}, Required: true, Usage: "workflow name: letters, digits, - and _"},
					&cli.StringFlag{Name: "job-name", Aliases: []string{"j"}, Required: true, Usage: "script to run, relative to the script directory"},
					&cli.StringFlag{Name: "executor", Aliases: []string{"e"}, Value: model.ExecutorProcess, Usage: "executor type"},
					&cli.IntFlag{Name: "task-count", Aliases: []string{"t"}, Value: 1, Usage: "number of tasks (ORK_TASK_INDEX 0..N-1)"},
					&cli.StringFlag{Name: "description", Aliases: []string{"d"}, Usage: "what the workflow does"},
					&cli.StringSliceFlag{Name: "param", Usage: "default parameter `KEY=VALUE` (repeatable; VALUE is JSON if it parses, else a string)"},
					&cli.StringFlag{Name: "project", Aliases: []string{"p"}, Usage: "cloud project"},
					&cli.StringFlag{Name: "region", Aliases: []string{"r"}, Usage: "cloud region"},
					&cli.IntFlag{Name: "retries", Usage: "retries of a failed task"},
					&cli.DurationFlag{Name: "retry-backoff", Usage: "wait before the first retry; doubles each time (with jitter)"},
					&cli.DurationFlag{Name: "timeout", Usage: "stop a task running longer than this (0: no limit)"},
					&cli.IntFlag{Name: "max-parallel", Usage: "tasks of the workflow running at once (0: no bound beyond the scheduler's)"},
					&cli.IntFlag{Name: "max-active-runs", Usage: "runs of the workflow running at once; more wait, pending (0: no bound)"},
				},
				Action: cmdCreateWorkflow,
			},
			{
				Name:   "list-workflows",
				Usage:  "list workflows",
				Flags:  []cli.Flag{jsonFlag},
				Action: cmdListWorkflows,
			},
			{
				Name:      "delete-workflow",
				Usage:     "delete a workflow (its runs stay)",
				ArgsUsage: "NAME",
				Action:    cmdDeleteWorkflow,
			},
			{
				Name:      "trigger",
				Usage:     "start a run of a workflow; prints the run id",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "param", Usage: "parameter `KEY=VALUE` for this run (repeatable; overrides the workflow's and --params-file)"},
					&cli.StringFlag{Name: "params-file", Usage: "parameters for this run from a JSON object in `FILE`"},
					&cli.BoolFlag{Name: "wait", Usage: "wait for the run to end; exit 1 if it failed (runs a scheduler in-process if none is running)"},
					&cli.StringFlag{Name: "script-dir", Usage: "script directory for an in-process scheduler (default: scripts/ beside the ork directory)"},
				},
				Action: cmdTrigger,
			},
			{
				Name:      "status",
				Usage:     "list runs, newest first, or show one run",
				ArgsUsage: "[RUN_ID]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "workflow", Aliases: []string{"w"}, Usage: "only runs of this workflow"},
					&cli.IntFlag{Name: "limit", Value: 20, Usage: "show at most this many runs (0: all)"},
					jsonFlag,
				},
				Action: cmdStatus,
			},
			{
				Name:      "tasks",
				Usage:     "list the tasks of a run",
				ArgsUsage: "RUN_ID",
				Flags:     []cli.Flag{jsonFlag},
				Action:    cmdTasks,
			},
			{
				Name:   "run",
				Usage:  "run the scheduler in the foreground (Ctrl-C stops it gracefully)",
				Flags:  runFlags(),
				Action: cmdRun,
			},
			{
				Name:      "cancel",
				Usage:     "cancel a run: stop its running tasks, cancel the rest",
				ArgsUsage: "RUN_ID",
				Action:    cmdCancel,
			},
			{
				Name:      "retry",
				Usage:     "run the failed and never-run tasks of a finished run again",
				ArgsUsage: "RUN_ID",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "wait", Usage: "wait for the run to end; exit 1 if it failed"},
					&cli.StringFlag{Name: "script-dir", Usage: "script directory for an in-process scheduler"},
				},
				Action: cmdRetry,
			},
			{
				Name:      "logs",
				Usage:     "print the output of a run's tasks",
				ArgsUsage: "RUN_ID [TASK_NAME]",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "index", Value: -1, Usage: "only the task with this index"},
					&cli.IntFlag{Name: "attempt", Usage: "this attempt (default: the latest)"},
					&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "stream the log while the task runs; stop when it ends"},
				},
				Action: cmdLogs,
			},
			{
				Name:  "prune",
				Usage: "delete finished runs, with their tasks and logs",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "older-than", Required: true, Usage: "delete runs that finished longer ago than `AGE` (30d, 12h, 90m)"},
					&cli.IntFlag{Name: "keep-last", Usage: "keep the N newest finished runs of each workflow, whatever their age"},
				},
				Action: cmdPrune,
			},
			{
				Name:   "doctor",
				Usage:  "look for damaged files, leftover temporary files and runs left unfinished; says how to fix each",
				Flags:  []cli.Flag{jsonFlag},
				Action: cmdDoctor,
			},
			{
				Name:      "validate",
				Usage:     "check workflow files (and run or task records) without running them",
				ArgsUsage: "FILE...",
				Action:    cmdValidate,
			},
		},
	}
}

func runFlags() []cli.Flag {
	d := sched.Config{}.WithDefaults()
	return []cli.Flag{
		&cli.StringFlag{Name: "script-dir", EnvVars: []string{"ORK_SCRIPT_DIR"}, Usage: "where job scripts live (default: scripts/ beside the ork directory)"},
		&cli.DurationFlag{Name: "poll-interval", Value: d.PollInterval, EnvVars: []string{"ORK_POLL_INTERVAL"}, Usage: "safety-net poll interval (events wake the scheduler at once)"},
		&cli.IntFlag{Name: "max-tasks-per-batch", Value: d.MaxTasksPerBatch, EnvVars: []string{"ORK_MAX_TASKS_PER_BATCH"}, Usage: "pending tasks taken per loop"},
		&cli.IntFlag{Name: "max-concurrent-dispatches", Value: d.MaxConcurrentDispatches, EnvVars: []string{"ORK_MAX_CONCURRENT_DISPATCHES"}, Usage: "executor calls in flight while dispatching"},
		&cli.IntFlag{Name: "max-concurrent-status-checks", Value: d.MaxConcurrentStatusChecks, EnvVars: []string{"ORK_MAX_CONCURRENT_STATUS_CHECKS"}, Usage: "executor status checks in flight (at start-up recovery)"},
		&cli.IntFlag{Name: "max-running-tasks", Value: d.MaxRunningTasks, EnvVars: []string{"ORK_MAX_RUNNING_TASKS"}, Usage: "tasks dispatched or running at once"},
		&cli.DurationFlag{Name: "shutdown-grace", Value: d.ShutdownGrace, EnvVars: []string{"ORK_SHUTDOWN_GRACE"}, Usage: "on SIGINT/SIGTERM, how long to wait for running tasks"},
		&cli.IntFlag{Name: "crash-retries", Value: d.CrashRetries, EnvVars: []string{"ORK_CRASH_RETRIES"}, Usage: "retries of a task whose scheduler died while it ran (-1: none)"},
		&cli.StringFlag{Name: "max-log-size", Value: "10MiB", EnvVars: []string{"ORK_MAX_LOG_SIZE"}, Usage: "keep at most this much of each attempt's log (its tail), e.g. 10MiB, 512KiB; 0: no bound"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, EnvVars: []string{"ORK_VERBOSE"}, Usage: "log every task"},
	}
}

// ---- helpers ----

func orkDir(c *cli.Context) string { return c.String("dir") }

func openDB(c *cli.Context, log *slog.Logger) (*filedb.DB, error) {
	return filedb.Open(orkDir(c), filedb.Options{Logger: log})
}

func scriptDir(c *cli.Context) string {
	if s := c.String("script-dir"); s != "" {
		return s
	}
	abs, err := filepath.Abs(orkDir(c))
	if err != nil {
		abs = orkDir(c)
	}
	return filepath.Join(filepath.Dir(abs), "scripts")
}

// parseParams turns KEY=VALUE flags into a params object. VALUE is JSON
// when it parses as JSON (5, true, {"a":1}, "quoted"), else a string.
func parseParams(kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: write it as KEY=VALUE", kv)
		}
		var j any
		if err := json.Unmarshal([]byte(v), &j); err == nil {
			out[k] = j
		} else {
			out[k] = v
		}
	}
	return out, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func fmtDur(a, b *time.Time) string {
	if a == nil {
		return "-"
	}
	end := time.Now()
	if b != nil {
		end = *b
	}
	d := end.Sub(*a)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func usageErr(c *cli.Context, msg string) error {
	return fmt.Errorf("%s (see `ork %s --help`)", msg, c.Command.Name)
}

func notFoundHint(err error, what string) error {
	if errors.Is(err, model.ErrNotFound) {
		return fmt.Errorf("%w: %s", err, what)
	}
	return err
}

// ---- commands ----

func cmdInit(c *cli.Context) error {
	dir := orkDir(c)
	if err := filedb.Init(dir); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	fmt.Fprintf(c.App.Writer, "Initialized ork in %s\nPut job scripts in %s, then: ork create-workflow --name NAME --job-name SCRIPT\n", dir, scriptDir(c))
	return nil
}

func cmdCreateWorkflow(c *cli.Context) error {
	params, err := parseParams(c.StringSlice("param"))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	w := &model.Workflow{
		Name:         c.String("name"),
		Description:  c.String("description"),
		JobName:      c.String("job-name"),
		ExecutorType: c.String("executor"),
		TaskCount:    c.Int("task-count"),
		Params:       params,
		Project:      c.String("project"),
		Region:       c.String("region"),
		CreatedAt:    now,
		UpdatedAt:    now,

		Retries:       c.Int("retries"),
		RetryBackoff:  model.Duration(c.Duration("retry-backoff")),
		Timeout:       model.Duration(c.Duration("timeout")),
		MaxParallel:   c.Int("max-parallel"),
		MaxActiveRuns: c.Int("max-active-runs"),
	}
	if w.TaskCount < 1 {
		return fmt.Errorf("--task-count %d: must be at least 1", w.TaskCount)
	}
	w.Normalize()
	if err := w.Validate(); err != nil {
		return fmt.Errorf("workflow %q is not valid: %w", w.Name, err)
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CreateWorkflow(c.Context, w); err != nil {
		if errors.Is(err, model.ErrExists) {
			return fmt.Errorf("%w: delete it first with `ork delete-workflow %s`, or edit %s", err, w.Name, filepath.Join(orkDir(c), filedb.WorkflowsDir, w.Name+".json"))
		}
		return err
	}
	if _, err := os.Stat(filepath.Join(scriptDir(c), w.JobName)); err != nil && w.ExecutorType == model.ExecutorProcess {
		fmt.Fprintf(c.App.ErrWriter, "warning: script %s does not exist yet\n", filepath.Join(scriptDir(c), w.JobName))
	}
	fmt.Fprintf(c.App.Writer, "Created workflow %s (%s, %d task(s), executor %s)\n", w.Name, w.JobName, w.TaskCount, w.ExecutorType)
	return nil
}

func cmdListWorkflows(c *cli.Context) error {
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ws, lerr := db.ListWorkflows(c.Context)
	if ws == nil {
		ws = []*model.Workflow{}
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, ws); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tJOB\tEXECUTOR\tTASKS\tDESCRIPTION")
		for _, w := range ws {
			job, count := w.JobName, fmt.Sprint(w.TaskCount)
			if w.IsDAG() {
				nodes := w.Nodes()
				n := 0
				for _, nd := range nodes {
					n += nd.TaskCount
				}
				job, count = fmt.Sprintf("(DAG of %d jobs)", len(nodes)), fmt.Sprint(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.Name, job, w.ExecutorType, count, w.Description)
		}
		tw.Flush()
	}
	if lerr != nil {
		return fmt.Errorf("some workflow files do not load: %w", lerr)
	}
	return nil
}

func cmdDeleteWorkflow(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr(c, "give the name of the workflow to delete")
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	name := c.Args().First()
	if err := db.DeleteWorkflow(c.Context, name); err != nil {
		return notFoundHint(err, "`ork list-workflows` shows the workflows")
	}
	fmt.Fprintf(c.App.Writer, "Deleted workflow %s\n", name)
	return nil
}

func cmdTrigger(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr(c, "give the name of the workflow to trigger")
	}
	params, err := parseParams(c.StringSlice("param"))
	if err != nil {
		return err
	}
	if f := c.String("params-file"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--params-file: %w", err)
		}
		var fromFile map[string]any
		if err := model.DecodeJSON(f, data, &fromFile, false); err != nil {
			return fmt.Errorf("--params-file must hold a JSON object: %w", err)
		}
		params = model.MergeParams(fromFile, params)
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	name := c.Args().First()
	w, err := db.GetWorkflow(c.Context, name)
	if err != nil {
		return notFoundHint(err, "`ork list-workflows` shows the workflows, `ork create-workflow` makes one")
	}
	who := "cli"
	if u := os.Getenv("USER"); u != "" {
		who = "cli:" + u
	}
	r := model.NewRun(w, params, who, time.Now())
	if !c.Bool("wait") {
		if err := db.CreateRun(c.Context, r); err != nil {
			return err
		}
		if filedb.LockHolder(orkDir(c)) == "" {
			fmt.Fprintln(c.App.ErrWriter, "note: no scheduler is running on "+orkDir(c)+"; start one with `ork run`, or use --wait")
		}
		fmt.Fprintln(c.App.Writer, r.ID)
		return nil
	}
	return triggerWait(c, db, r)
}

// triggerWait creates the run and waits for it: on the running scheduler
// if there is one, else on a scheduler started in this process — also when
// the scheduler it was waiting on goes away.
func triggerWait(c *cli.Context, db *filedb.DB, r *model.Run) error {
	return waitRun(c, db, r, func(ctx context.Context) error { return db.CreateRun(ctx, r) })
}

// waitRun makes the run to wait for with start (create it, or reopen it),
// then waits for it as triggerWait says.
func waitRun(c *cli.Context, db *filedb.DB, r *model.Run, start func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errw := c.App.ErrWriter

	// local is the in-process scheduler, when this process runs one.
	var local *sched.Scheduler
	var localErr chan error
	var stopLocal context.CancelFunc
	startLocal := func() {
		if filedb.LockHolder(orkDir(c)) != "" {
			return
		}
		updates := make(chan exec.StatusUpdate, 4096)
		mgr := exec.NewManager(updates)
		mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
			ScriptDir: scriptDir(c), LogDir: db.LogDir(), Updates: updates,
		}))
		log := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelError}))
		local = sched.New(db, mgr, sched.Config{Logger: log, ShutdownGrace: -1})
		localErr = make(chan error, 1)
		var sctx context.Context
		sctx, stopLocal = context.WithCancel(context.WithoutCancel(ctx))
		go func(s *sched.Scheduler, done chan error) { done <- s.Run(sctx) }(local, localErr)
	}
	endLocal := func() {
		if local != nil {
			stopLocal()
			<-localErr
			local = nil
		}
	}
	defer endLocal()
	startLocal()
	if err := start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, r.ID)

	tty := isTerminal(errw)
	total := 0
	if r.Workflow != nil {
		total = r.TaskCount()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastShown := ""
	var final *model.Run
	for final == nil {
		select {
		case <-ctx.Done():
			if tty && lastShown != "" {
				fmt.Fprint(errw, "\r\033[K")
			}
			if local != nil {
				endLocal() // stops the tasks and puts them back in the queue
				return &exitError{code: 130, msg: "interrupted: run " + r.ID + " is stopped, its unfinished tasks back in the queue; `ork run` resumes it"}
			}
			return &exitError{code: 130, msg: "interrupted; run " + r.ID + " goes on under the running scheduler (`ork status " + r.ID + "`)"}
		case err := <-localErr:
			local = nil
			var le *model.LockedError
			if err != nil && !errors.As(err, &le) {
				return fmt.Errorf("scheduler: %w", err)
			}
			// Another process took the directory first: wait on it.
		case <-tick.C:
			if local == nil {
				startLocal() // the scheduler we waited on is gone: take over
			}
		}
		cur, err := db.GetRun(ctx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status.Terminal() {
			final = cur
			break
		}
		if tty {
			counts, _ := db.TaskCounts(ctx, r.ID)
			done := counts[model.TaskSuccess] + counts[model.TaskFailed] + counts[model.TaskCancelled]
			line := fmt.Sprintf("\r%s: %d/%d tasks done (%d running, %d failed)", cur.Status, done, total, counts[model.TaskRunning]+counts[model.TaskDispatched], counts[model.TaskFailed])
			if line != lastShown {
				fmt.Fprint(errw, line)
				lastShown = line
			}
		}
	}
	if tty && lastShown != "" {
		fmt.Fprint(errw, "\r\033[K")
	}
	endLocal()
	summary := fmt.Sprintf("%d tasks", total)
	if final.Status != model.RunSuccess || (r.Workflow != nil && r.Workflow.IsDAG()) {
		// Say how the tasks ended (skipped ones too); a big flat run that
		// succeeded is spared reading every task record.
		counts, _ := db.TaskCounts(context.Background(), r.ID)
		var parts []string
		for _, st := range model.TaskStatuses {
			if n := counts[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, st))
			}
		}
		summary = strings.Join(parts, ", ")
	}
	fmt.Fprintf(errw, "run %s %s in %s: %s\n", final.ID, final.Status, fmtDur(final.StartedAt, final.FinishedAt), summary)
	if final.Status != model.RunSuccess {
		msg := fmt.Sprintf("run %s %s", final.ID, final.Status)
		if final.Error != "" {
			msg += ": " + final.Error
		}
		return &exitError{code: 1, msg: msg + " (logs in " + filepath.Join(orkDir(c), filedb.LogsDir, final.ID) + ")"}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func cmdStatus(c *cli.Context) error {
	db, err := openDB(c, slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer db.Close()
	if c.NArg() > 1 {
		return usageErr(c, "give at most one run id")
	}
	if id := c.Args().First(); id != "" {
		r, err := db.GetRun(c.Context, id)
		if err != nil {
			return notFoundHint(err, "`ork status` lists the runs")
		}
		if c.Bool("json") {
			return printJSON(c.App.Writer, r)
		}
		counts, err := db.TaskCounts(c.Context, id)
		if err != nil {
			return err
		}
		recorded := 0
		for _, n := range counts {
			recorded += n
		}
		if n := r.TaskCount() - recorded; n > 0 {
			if r.Status.Terminal() {
				counts[model.TaskCancelled] += n // never started: the run ended
			} else {
				counts[model.TaskPending] += n // not created yet
			}
		}
		w := c.App.Writer
		fmt.Fprintf(w, "Run:       %s\nWorkflow:  %s\nStatus:    %s\nCreated:   %s\nStarted:   %s\nFinished:  %s\nDuration:  %s\n",
			r.ID, r.WorkflowName, r.Status, fmtTime(&r.CreatedAt), fmtTime(r.StartedAt), fmtTime(r.FinishedAt), fmtDur(r.StartedAt, r.FinishedAt))
		if len(r.Params) > 0 {
			b, _ := json.Marshal(r.Params)
			fmt.Fprintf(w, "Params:    %s\n", b)
		}
		var parts []string
		for _, st := range model.TaskStatuses {
			if n := counts[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, st))
			}
		}
		fmt.Fprintf(w, "Tasks:     %s\n", strings.Join(parts, ", "))
		if r.Error != "" {
			fmt.Fprintf(w, "Error:     %s\n", r.Error)
		}
		return nil
	}
	runs, err := db.ListRuns(c.Context, model.RunFilter{WorkflowName: c.String("workflow"), Limit: c.Int("limit")})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if runs == nil {
			runs = []*model.Run{}
		}
		return printJSON(c.App.Writer, runs)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN ID\tWORKFLOW\tSTATUS\tCREATED\tDURATION\tERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.WorkflowName, r.Status, fmtTime(&r.CreatedAt), fmtDur(r.StartedAt, r.FinishedAt), truncate(r.Error, 60))
	}
	return tw.Flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func cmdTasks(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr(c, "give a run id (`ork status` lists the runs)")
	}
	db, err := openDB(c, slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer db.Close()
	id := c.Args().First()
	r, err := db.GetRun(c.Context, id)
	if err != nil {
		return notFoundHint(err, "`ork status` lists the runs")
	}
	ts, err := db.ListTasks(c.Context, id)
	if err != nil {
		return err
	}
	// The scheduler creates task records as it dispatches them: show the
	// ones still to come as pending.
	ts = model.CompleteTasks(r, ts)
	if c.Bool("json") {
		if ts == nil {
			ts = []*model.Task{}
		}
		return printJSON(c.App.Writer, ts)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINDEX\tSTATUS\tATTEMPT\tEXIT\tDURATION\tERROR")
	for _, t := range ts {
		exit := "-"
		if t.ExitCode != nil {
			exit = fmt.Sprint(*t.ExitCode)
		}
		dur := "-"
		if t.Status == model.TaskRunning || t.Status.Terminal() {
			dur = fmtDur(t.StartedAt, t.FinishedAt)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", t.Name, t.TaskIndex, t.Status, t.Attempt, exit, dur, truncate(t.Error, 60))
		if len(t.Attempts) > 1 || (len(t.Attempts) == 1 && t.Attempt > 1) {
			for _, a := range t.Attempts {
				exit := "-"
				if a.ExitCode != nil {
					exit = fmt.Sprint(*a.ExitCode)
				}
				fmt.Fprintf(tw, "  └\t\t%s\t%d\t%s\t%s\t%s\n", a.Status, a.Attempt, exit, fmtDur(a.StartedAt, a.FinishedAt), truncate(a.Error, 60))
			}
		}
	}
	return tw.Flush()
}

func cmdRun(c *cli.Context) error {
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	db, err := openDB(c, log)
	if err != nil {
		return err
	}
	defer db.Close()
	cfg := sched.Config{
		PollInterval:              c.Duration("poll-interval"),
		MaxTasksPerBatch:          c.Int("max-tasks-per-batch"),
		MaxConcurrentDispatches:   c.Int("max-concurrent-dispatches"),
		MaxConcurrentStatusChecks: c.Int("max-concurrent-status-checks"),
		MaxRunningTasks:           c.Int("max-running-tasks"),
		ShutdownGrace:             c.Duration("shutdown-grace"),
		CrashRetries:              c.Int("crash-retries"),
		Logger:                    log,
	}
	sd := scriptDir(c)
	if st, err := os.Stat(sd); err != nil || !st.IsDir() {
		log.Warn("script directory does not exist; tasks will fail until it does", "script_dir", sd)
	}
	maxLog, err := parseSize(c.String("max-log-size"))
	if err != nil {
		return fmt.Errorf("--max-log-size: %w", err)
	}
	if maxLog == 0 {
		maxLog = -1 // no bound
	}
	updates := make(chan exec.StatusUpdate, 4096)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: sd, LogDir: db.LogDir(), Updates: updates, MaxLogBytes: maxLog,
	}))
	s := sched.New(db, mgr, cfg)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.Run(ctx); err != nil {
		var le *model.LockedError
		if errors.As(err, &le) {
			return fmt.Errorf("%w: stop it first, or use a different --dir", err)
		}
		return err
	}
	return nil
}

func cmdDoctor(c *cli.Context) error {
	ps, err := filedb.Doctor(orkDir(c))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if ps == nil {
			ps = []filedb.Problem{}
		}
		if err := printJSON(c.App.Writer, ps); err != nil {
			return err
		}
	} else {
		if h := filedb.LockHolder(orkDir(c)); h != "" {
			fmt.Fprintf(c.App.Writer, "scheduler: running (%s)\n", h)
		} else {
			fmt.Fprintln(c.App.Writer, "scheduler: not running")
		}
		for _, p := range ps {
			fmt.Fprintf(c.App.Writer, "%s: %s\n  %s\n  fix: %s\n", p.Kind, p.Path, p.What, p.Fix)
		}
		if len(ps) == 0 {
			fmt.Fprintln(c.App.Writer, "no problems found")
		}
	}
	if len(ps) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) found", len(ps))}
	}
	return nil
}

func cmdValidate(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErr(c, "give one or more files to check")
	}
	bad := 0
	for _, p := range c.Args().Slice() {
		data, err := os.ReadFile(p)
		if err == nil {
			err = validateFile(p, data)
		}
		if err != nil {
			bad++
			fmt.Fprintln(c.App.ErrWriter, oneLine(err.Error()))
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s: ok\n", p)
	}
	if bad > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d files are not valid", bad, c.NArg())}
	}
	return nil
}

// validateFile checks a file by where it lives: a run record under runs/,
// a task record under tasks/, else a workflow.
func validateFile(p string, data []byte) error {
	slash := filepath.ToSlash(p)
	switch {
	case strings.Contains(slash, "/"+filedb.RunsDir+"/"):
		_, err := model.DecodeRun(p, data)
		return err
	case strings.Contains(slash, "/"+filedb.TasksDir+"/"):
		_, err := model.DecodeTask(p, data)
		return err
	}
	_, err := model.DecodeWorkflow(p, data)
	return err
}
