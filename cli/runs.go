package cli

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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/runctl"
	"github.com/ork-run/ork/sched"
)

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
	who := "cli"
	if u := os.Getenv("USER"); u != "" {
		who = "cli:" + u
	}
	r, err := runctl.NewRun(c.Context, db, name, params, who, executorsBuilt)
	var re *runctl.RefusedError
	if errors.As(err, &re) {
		return re.Err
	}
	if err != nil {
		return notFoundHint(err, "`ork list-workflows` shows the workflows, `ork create-workflow` makes one")
	}
	if !c.Bool("wait") {
		if err := db.CreateRun(c.Context, r); err != nil {
			return err
		}
		if schedulerHolder(c, db) == "" {
			fmt.Fprintln(c.App.ErrWriter, "note: no scheduler is running on "+storeName(c, db)+"; start one with `ork run`, or use --wait")
		}
		fmt.Fprintln(c.App.Writer, r.ID)
		return nil
	}
	return triggerWait(c, db, r)
}

// triggerWait creates the run and waits for it: on the running scheduler
// if there is one, else on a scheduler started in this process — also when
// the scheduler it was waiting on goes away.
func triggerWait(c *cli.Context, db model.Database, r *model.Run) error {
	return waitRun(c, db, r, func(ctx context.Context) error { return db.CreateRun(ctx, r) })
}

// waitTick is how often `ork trigger --wait` looks at its run without
// being told that it changed: the safety net of the wake-ups in waitRun,
// and the pace of its progress line. A variable for the tests that show
// the wake-ups need no tick.
var waitTick = 100 * time.Millisecond

// localPoll is the poll interval of the scheduler `ork trigger --wait`
// runs in its process (0: the default). A variable for the tests that
// show its wake-ups need no poll.
var localPoll time.Duration

// waitRun makes the run to wait for with start (create it, or reopen it),
// then waits for it as triggerWait says.
func waitRun(c *cli.Context, db model.Database, r *model.Run, start func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errw := c.App.ErrWriter

	// local is the in-process scheduler, when this process runs one.
	var local *sched.Scheduler
	var localErr chan error
	var stopLocal context.CancelFunc
	startLocal := func() {
		if schedulerHolder(c, db) != "" {
			return
		}
		updates := make(chan exec.StatusUpdate, 4096)
		mgr := exec.NewManager(updates)
		mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
			ScriptDir: scriptDir(c), LogDir: logDir(c), Updates: updates,
		}))
		log := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelError}))
		// A bad setting of a tagged executor (ORK_CLOUDRUN_POLL_INTERVAL)
		// is reported; that executor's tasks then fail, the others run.
		if err := registerBuiltExecutors(c, mgr, updates, log); err != nil {
			fmt.Fprintln(errw, "ork:", err)
		}
		// It serves this run: the workflows' schedules are `ork run`'s.
		local = sched.New(db, mgr, sched.Config{Logger: log, ShutdownGrace: -1, NoSchedules: true, PollInterval: localPoll})
		localErr = make(chan error, 1)
		var sctx context.Context
		sctx, stopLocal = context.WithCancel(context.WithoutCancel(ctx))
		go func(s *sched.Scheduler, done chan error) { done <- s.Run(sctx) }(local, localErr)
	}
	// haltLocal: the in-process scheduler stops what it runs and puts it
	// back in the queue (an interrupt: the user asked).
	haltLocal := func() {
		if local != nil {
			stopLocal()
			<-localErr
			local = nil
		}
	}
	// endLocal: the in-process scheduler ends without stopping anything —
	// it may run the tasks of other runs, whose own `ork trigger --wait`
	// waits on it: it starts nothing more and waits for what runs to end,
	// so that no task runs twice because this process ended. The next
	// scheduler goes on with the rest.
	endLocal := func() {
		if local == nil {
			return
		}
		local.Drain()
		select {
		case <-localErr:
			local = nil
			return
		case <-time.After(200 * time.Millisecond):
		}
		fmt.Fprintln(errw, "waiting for tasks of other runs that this process started to end (interrupt to stop them; `ork run` goes on with the rest)")
		select {
		case <-localErr:
			local = nil
		case <-ctx.Done():
			haltLocal()
		}
	}
	defer endLocal()
	startLocal()
	if err := start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, r.ID)

	// The loop below looks at the run when it may have ended: the
	// in-process scheduler says so the moment it records the end
	// (WaitRun); another process's scheduler is seen through the
	// database's watch of the run's record (RunWatcher). The tick is
	// the safety net, the pace of the progress line, and the check that
	// the scheduler waited on is still there.
	wake := make(chan struct{}, 1)
	poke := notifier(wake)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	follow := func(s *sched.Scheduler) {
		go func() {
			if _, err := s.WaitRun(wctx, r.ID); err == nil {
				poke()
			}
		}()
	}
	// watch: another process serves the run (its scheduler holds the
	// directory, or took it from the in-process one): its record is
	// watched from now on.
	watching := false
	watch := func() {
		if watching {
			return
		}
		watching = true
		if rw, ok := db.(model.RunWatcher); ok {
			if err := rw.WatchRun(wctx, r.ID, poke); err != nil && !errors.Is(err, errors.ErrUnsupported) {
				fmt.Fprintf(errw, "note: cannot watch the run's record (%v); looking every %v\n", err, waitTick)
			}
		}
		poke() // it may have ended before the watch began
	}
	if local != nil {
		follow(local)
	}
	// Where several schedulers share the database, another may take the
	// run from the in-process one (its lease lapsed) and end it.
	if _, several := db.(model.Cluster); local == nil || several {
		watch()
	}

	tty := isTerminal(errw)
	total := 0
	if r.Workflow != nil {
		total = r.TaskCount()
	}
	tick := time.NewTicker(waitTick)
	defer tick.Stop()
	lastShown := ""
	var final *model.Run
	for final == nil {
		progress := false // the progress line is redrawn at the tick's pace
		select {
		case <-ctx.Done():
			if tty && lastShown != "" {
				fmt.Fprint(errw, "\r\033[K")
			}
			if local != nil {
				haltLocal() // stops the tasks and puts them back in the queue
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
			watch()
		case <-wake:
		case <-tick.C:
			progress = true
			if local == nil {
				startLocal() // the scheduler we waited on is gone: take over
				if local != nil {
					follow(local)
				}
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
		if tty && progress {
			counts, _ := db.TaskCounts(ctx, r.ID)
			line := progressLine(cur.Status, counts, total)
			if line != lastShown {
				fmt.Fprint(errw, line)
				lastShown = line
			}
		}
	}
	if tty && lastShown != "" {
		fmt.Fprint(errw, "\r\033[K")
	}
	// The in-process scheduler ends (endLocal, deferred) after the summary.
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
		return &exitError{code: 1, msg: msg + " (logs in " + filepath.Join(logDir(c), final.ID) + ")"}
	}
	return nil
}

// progressLine is the --wait progress on a terminal: it returns to the
// start of the line and clears it, so a shorter line leaves nothing of a
// longer one behind. Running tasks and tasks dispatched (handed to the
// executor, not started yet) are counted apart.
func progressLine(st model.RunStatus, counts map[model.TaskStatus]int, total int) string {
	done := 0
	for s, n := range counts {
		if s.Terminal() {
			done += n
		}
	}
	return fmt.Sprintf("\r\033[K%s: %d/%d tasks done (%d running, %d dispatched, %d failed)",
		st, done, total, counts[model.TaskRunning], counts[model.TaskDispatched], counts[model.TaskFailed])
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
	if arg := c.Args().First(); arg != "" {
		id, err := resolveRunID(c, arg)
		if err != nil {
			return notFoundHint(err, "`ork status` lists the runs")
		}
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
		if !r.Status.Terminal() {
			for _, why := range waitsFor(c, db, r) {
				fmt.Fprintf(w, "Waiting:   %s\n", why)
			}
		}
		return nil
	}
	runs, damaged, err := listRunsDamaged(c, db, model.RunFilter{WorkflowName: c.String("workflow"), Limit: c.Int("limit")})
	if err != nil {
		return err
	}
	if name := c.String("workflow"); name != "" && len(runs) == 0 {
		// No runs: say so if it is because there is no such workflow (a
		// deleted workflow's runs are still listed).
		if _, err := db.GetWorkflow(c.Context, name); errors.Is(err, model.ErrNotFound) {
			return fmt.Errorf("no such workflow %q (`ork list-workflows` shows the workflows)", name)
		}
	}
	// A run file that does not parse is listed as damaged, not left out
	// (unless the listing is of one workflow's runs: its workflow is not
	// known).
	if c.String("workflow") == "" {
		runs = append(damagedRuns(damaged), runs...)
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
		if r.Status == RunDamaged {
			fmt.Fprintf(tw, "%s\t?\t%s\t-\t-\t%s\n", r.ID, r.Status, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.WorkflowName, r.Status, fmtTime(&r.CreatedAt), fmtDur(r.StartedAt, r.FinishedAt), truncate(r.Error, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, schedulersLine(c, db))
	return nil
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
	id, err := resolveRunID(c, c.Args().First())
	if err != nil {
		return notFoundHint(err, "`ork status` lists the runs")
	}
	r, err := db.GetRun(c.Context, id)
	if err != nil {
		return notFoundHint(err, "`ork status` lists the runs")
	}
	if st, ok := db.(model.TaskStreamer); ok {
		// A large run's records are read one at a time as they are
		// printed, not all first.
		out := newTaskPrinter(c.App.Writer, c.Bool("json"))
		if err := model.StreamCompleteTasks(c.Context, st, r, out.print); err != nil {
			return err
		}
		return out.end()
	}
	ts, err := db.ListTasks(c.Context, id)
	if err != nil {
		return err
	}
	// The scheduler creates task records as it dispatches them: show the
	// ones still to come as pending.
	ts = model.CompleteTasks(r, ts)
	out := newTaskPrinter(c.App.Writer, c.Bool("json"))
	for _, t := range ts {
		if err := out.print(t); err != nil {
			return err
		}
	}
	return out.end()
}
