// Package cli is the `ork` command line: it parses flags, opens the
// database, wires the scheduler and executors, and prints. The work is done
// in the packages below it (model, filedb, exec, sched); this package only
// connects them. One file per group of commands:
//
//	app.go        the command table, global flags and shared helpers
//	workflows.go  init, create-workflow, list-workflows, delete-workflow, validate
//	apply.go      apply, migrate
//	backend.go    the backend the flags name: files in --dir, or PostgreSQL
//	              (db_postgres.go with the build tag postgres, db_nopostgres.go without)
//	runs.go       trigger, status, tasks (and --wait)
//	scheduler.go  run, doctor
//	lifecycle.go  cancel, retry, logs, prune
//	serve.go      serve (the web UI)
//	schedules.go  schedules, pause, unpause
//	args.go       flags after arguments
//	project.go    finding the project's .ork upward, as git finds .git
//	runid.go      run ids given by a unique prefix
//	usage.go      one-line flag errors
//	config_check.go  ork run's settings, checked by sched.Config.Validate
//	logs_note.go  why a task has no output, for ork logs
//	version.go, completion.go  ork version, ork completion bash|zsh|fish
//
// The end-to-end tests beside it build the real binary and run it.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/model"
)

// exitError carries a process exit code with a message (which may be empty
// when everything was said already).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Main runs the ork command line with os.Args and exits with its status.
func Main() {
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
	app := &cli.App{
		Name:      "ork",
		Usage:     "run workflows of scripts, with state in plain JSON files",
		Version:   version(),
		Writer:    stdout,
		ErrWriter: stderr,
		// A repeated flag is one value per flag, commas and all:
		// --param 'msg=hello, world' is one parameter.
		DisableSliceFlagSeparator: true,
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "ork: unknown command %q: `ork --help` lists the commands\n", name)
			os.Exit(2)
		},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: ".ork", EnvVars: []string{"ORK_DIR"}, Usage: "the ork `DIRECTORY` (made by `ork init`; default: the nearest .ork here or above)"},
			&cli.StringFlag{Name: "database-url", EnvVars: []string{"ORK_DATABASE_URL"}, Usage: "keep workflows, runs and tasks in PostgreSQL at `URL` (postgres://USER@HOST:PORT/DB; an ork built with -tags postgres) instead of files in --dir, which still holds the logs"},
		},
		Commands: append([]*cli.Command{
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
				Name:      "apply",
				Usage:     "load workflow JSON files into the database, replacing workflows of the same name",
				ArgsUsage: "FILE...",
				Action:    cmdApply,
			},
			{
				Name:   "migrate",
				Usage:  "bring the PostgreSQL schema up to this ork's version (--database-url)",
				Action: cmdMigrate,
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
			serveCommand(),
			schedulersCommand(jsonFlag),
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
		}, scheduleCommands()...), // schedules.go
	}
	app.Commands = append(app.Commands, versionCommand(), completionCommand())
	// A bad flag is one line, not the whole help.
	app.OnUsageError = onUsageError
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		requireFlags(cmd)
	}
	return app
}

// ---- helpers ----

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
		if j, ok := parseJSONValue(v); ok {
			out[k] = j
		} else {
			out[k] = v
		}
	}
	return out, nil
}

// parseJSONValue reads s as one JSON value, numbers kept as written
// (json.Number): 12345678901234567890 and 1.10 reach the task as given.
func parseJSONValue(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // more after the value: not one JSON value
	}
	return v, true
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
