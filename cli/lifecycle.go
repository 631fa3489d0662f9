package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/runctl"
)

// openRun opens the database and reads the run named by the first
// argument; the caller closes the database.
func openRun(c *cli.Context, what string) (model.Database, *model.Run, error) {
	if c.NArg() < 1 {
		return nil, nil, usageErr(c, "give the id of the run to "+what)
	}
	db, err := openDB(c, nil)
	if err != nil {
		return nil, nil, err
	}
	id, err := resolveRunID(c, c.Args().First())
	if err != nil {
		db.Close()
		return nil, nil, notFoundHint(err, "`ork status` lists the runs")
	}
	r, err := db.GetRun(c.Context, id)
	if err != nil {
		db.Close()
		return nil, nil, notFoundHint(err, "`ork status` lists the runs")
	}
	return db, r, nil
}

// cancelPoll is how often `ork cancel` looks at the run it asked a
// running scheduler to cancel, when nothing tells it the run ended. A
// variable for the test that shows nothing else is needed.
var cancelPoll = 50 * time.Millisecond

// cancelGonePoll is how often `ork cancel`, waiting for a running
// scheduler to apply its request, checks that one still serves the
// database.
var cancelGonePoll = time.Second

// notifier returns a func that puts a token in ch, a channel of one slot,
// without blocking: when a token is there already, the wake-up is asked
// for already, and the call does nothing. It wakes a waiting loop, from
// watches that must never be held up by it.
func notifier(ch chan struct{}) func() {
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func cmdCancel(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageErr(c, "give one run id")
	}
	db, r, err := openRun(c, "cancel")
	if err != nil {
		return err
	}
	defer db.Close()
	id := r.ID
	// cancel cancels the run here where no scheduler runs, or asks the
	// running one; it says whether that is all (the run ended, or no
	// scheduler is live to apply the request: on PostgreSQL, the run's
	// scheduler died and no live one is left to reap it — the next `ork
	// run` takes the run and applies it).
	cancel := func() (bool, error) {
		r, outcome, err := runctl.Cancel(c.Context, db, id)
		if err != nil {
			return true, err
		}
		switch outcome {
		case runctl.AlreadyEnded:
			fmt.Fprintf(c.App.Writer, "run %s already ended (%s): nothing to cancel\n", id, r.Status)
			return true, nil
		case runctl.Cancelled:
			fmt.Fprintf(c.App.Writer, "run %s cancelled\n", id)
			return true, nil
		case runctl.RequestedNoScheduler:
			fmt.Fprintf(c.App.Writer, "cancel of run %s requested; no scheduler is live to apply it (its scheduler stopped): the next `ork run` will\n", id)
			return true, nil
		}
		return false, nil
	}
	if done, err := cancel(); done {
		return err
	}
	// The running scheduler applies the request: wait a while. The run's
	// end is told by a watch of its record where the database has one (as
	// for `ork trigger --wait`); the look every cancelPoll is the safety
	// net. Every cancelGonePoll it checks that a scheduler still serves
	// the database: one that stopped before it applied the request (killed)
	// leaves it to this command, as if none had been running.
	ctx, stop := context.WithTimeout(c.Context, 30*time.Second)
	defer stop()
	ended := make(chan struct{}, 1)
	if rw, ok := db.(model.RunWatcher); ok {
		rw.WatchRun(ctx, id, notifier(ended))
	}
	tick := time.NewTicker(cancelPoll)
	defer tick.Stop()
	gone := time.NewTicker(cancelGonePoll)
	defer gone.Stop()
	for {
		r, err := db.GetRun(ctx, id)
		if err != nil {
			if ctx.Err() != nil && c.Context.Err() == nil {
				// The wait ran out in the middle of a look (a database
				// that does not answer): the request is recorded all the
				// same.
				fmt.Fprintf(c.App.Writer, "cancel of run %s requested; the run could not be read in time (%v): a running scheduler will apply it\n", id, err)
				return nil
			}
			return err
		}
		if r.Status.Terminal() {
			fmt.Fprintf(c.App.Writer, "run %s %s\n", id, r.Status)
			return nil
		}
		select {
		case <-ended:
		case <-tick.C:
		case <-gone.C:
			if schedulerHolder(c, db) == "" {
				if done, err := cancel(); done {
					return err
				}
			}
		case <-ctx.Done():
			if holder := schedulerHolder(c, db); holder != "" {
				fmt.Fprintf(c.App.Writer, "cancel of run %s requested; the scheduler (%s) will apply it\n", id, holder)
				return nil
			}
			done, err := cancel()
			if !done {
				fmt.Fprintf(c.App.Writer, "cancel of run %s requested; the scheduler will apply it\n", id)
			}
			return err
		}
	}
}

func cmdRetry(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageErr(c, "give one run id")
	}
	db, r, err := openRun(c, "retry")
	if err != nil {
		return err
	}
	defer db.Close()
	id := r.ID
	plan, err := runctl.PlanRetry(c.Context, db, id)
	var ce *runctl.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Status == model.RunSuccess:
		fmt.Fprintf(c.App.Writer, "run %s succeeded: nothing to retry\n", id)
		return nil
	case errors.As(err, &ce):
		return fmt.Errorf("run %s is still %s: retry it once it has ended (or `ork cancel %s` first)", id, ce.Status, id)
	case err != nil:
		return err
	}
	start := func(ctx context.Context) error { return plan.Apply(ctx, db) }
	fmt.Fprintf(c.App.ErrWriter, "retrying run %s: %d failed or cancelled task(s) again, %d that never ran\n", id, len(plan.Reset), plan.NeverRan)
	if c.Bool("wait") {
		return waitRun(c, db, r, start)
	}
	if err := start(c.Context); err != nil {
		return err
	}
	if schedulerHolder(c, db) == "" {
		fmt.Fprintln(c.App.ErrWriter, "note: no scheduler is running on "+storeName(c, db)+"; start one with `ork run`, or use --wait")
	}
	fmt.Fprintln(c.App.Writer, id)
	return nil
}

func cmdLogs(c *cli.Context) error {
	if c.NArg() > 2 {
		return usageErr(c, "give a run id and, optionally, a task name")
	}
	db, r, err := openRun(c, "show the logs of")
	if err != nil {
		return err
	}
	defer db.Close()
	id, name := r.ID, c.Args().Get(1)
	selected, err := selectTasks(c, db, r, name)
	if err != nil {
		return err
	}
	if c.Bool("follow") {
		if len(selected) != 1 {
			return fmt.Errorf("--follow streams one task: name it (and --index for a fan-out); %d match", len(selected))
		}
		ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return followLog(ctx, c.App.Writer, db, logDir(c), r, selected[0], c.Int("attempt"))
	}
	w := c.App.Writer
	for i, t := range selected {
		attempt := c.Int("attempt")
		if attempt == 0 {
			attempt = t.Attempt
		}
		if len(selected) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "==> %s attempt %d (%s) <==\n", t.Label(), attempt, t.Status)
		}
		if attempt == 0 {
			fmt.Fprintln(w, "(not started)")
			continue
		}
		if attempt > t.Attempt {
			return fmt.Errorf("task %s has no attempt %d: it is at attempt %d", t.Label(), attempt, t.Attempt)
		}
		p, err := exec.LogPath(logDir(c), id, t.Name, t.TaskIndex, attempt)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(w, noOutputNote(t, attempt))
			continue
		}
		if err != nil {
			return err
		}
		n, err := io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(w, noOutputNote(t, attempt))
		}
	}
	return nil
}

// selectTasks returns the tasks of run r with that name (all if empty) and
// --index, in the workflow's order.
func selectTasks(c *cli.Context, db model.Database, r *model.Run, name string) ([]*model.Task, error) {
	ts, err := db.ListTasks(c.Context, r.ID)
	if err != nil {
		return nil, err
	}
	ts = model.CompleteTasks(r, ts)
	var out []*model.Task
	for _, t := range ts {
		if (name == "" || t.Name == name) && (c.Int("index") < 0 || t.TaskIndex == c.Int("index")) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		what := name
		if i := c.Int("index"); i >= 0 {
			what = strings.TrimSpace(fmt.Sprintf("%s index %d", name, i))
		}
		return nil, fmt.Errorf("run %s has no task %s (`ork tasks %s` lists them)", r.ID, what, r.ID)
	}
	return out, nil
}

// followTick is how often `ork logs --follow` looks at its task and its
// log without being told that either changed: the safety net of the
// watches in followLog. A variable for the tests that show the watches
// need no tick.
var followTick = time.Second

// followPoll is the pace of `ork logs --follow` where the task or its log
// cannot be watched.
var followPoll = 200 * time.Millisecond

// followLog writes to w the log of task t of run r until the task has
// ended (or ctx), following it from attempt to attempt when it is retried,
// or only attempt only if it is not 0; logDir holds the logs.
//
// It looks at the task alone (model.GetTask: one file, one row), when the
// database says it or its run changed (model.TaskWatcher), and
// copies what the log has gained when its directory says it was written
// (fsnotify, see watchLog). Every followTick it looks at both anyway, for
// anything a watch missed; where either cannot be watched, every
// followPoll. Once it has seen the task end, it copies the rest of the
// log and returns.
func followLog(ctx context.Context, w io.Writer, db model.Database, logDir string, r *model.Run, t *model.Task, only int) error {
	a := only
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	// step looks at the task if look, then copies what the log has gained;
	// it says whether the task has ended (for good, or the attempt
	// followed has).
	step := func(look bool) (bool, error) {
		var ended bool
		if look {
			cur, err := currentTask(ctx, db, r, t)
			if err != nil {
				return false, err
			}
			if a == 0 {
				a = max(cur.Attempt, 1)
			}
			if only == 0 && cur.Attempt > a {
				// The task was retried: finish this attempt's log, go on
				// with the next one.
				if f != nil {
					if _, err := io.Copy(w, f); err != nil {
						return false, err
					}
					f.Close()
					f = nil
				}
				a = cur.Attempt
				fmt.Fprintf(w, "--- attempt %d ---\n", a)
			}
			if only == 0 {
				ended = cur.Status.Terminal()
			} else {
				ended = cur.Status.Terminal() || cur.Attempt > a || (cur.Attempt == a && cur.Status == model.TaskPending)
			}
		}
		if f == nil {
			p, err := exec.LogPath(logDir, r.ID, t.Name, t.TaskIndex, a)
			if err != nil {
				return false, err
			}
			if f, err = os.Open(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
		}
		if f != nil {
			// After the task was seen to end, this copies the rest: the
			// executor wrote it all before it reported the end.
			if _, err := io.Copy(w, f); err != nil {
				return false, err
			}
		}
		return ended, nil
	}
	if ended, err := step(true); err != nil || ended {
		return err
	}

	// The task runs (or is still to): watch it and its log. The watches
	// start after the first look, which shows what there is at once; the
	// look that follows sees what changed before they began. They end
	// with wctx, when this returns.
	wctx, stopWatch := context.WithCancel(ctx)
	var logWatched func() // waits for the end of the log's watch
	defer func() {
		stopWatch()
		if logWatched != nil {
			logWatched()
		}
	}()
	look := make(chan struct{}, 1) // the task may have changed
	more := make(chan struct{}, 1) // its log may have grown
	// Where the task cannot be watched, it is looked at every followPoll
	// (one file, one row).
	pace := followTick
	if tw, ok := db.(model.TaskWatcher); !ok || tw.WatchTask(wctx, r.ID, t.Name, t.TaskIndex, notifier(look)) != nil {
		pace = followPoll
	}
	dir, prefix, err := exec.LogPrefix(logDir, r.ID, t.Name, t.TaskIndex)
	if err != nil {
		return err
	}
	logWatched, err = watchLog(wctx, logDir, dir, prefix, notifier(more), notifier(look))
	if err != nil {
		pace = followPoll
	}
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for lookTask := true; ; {
		ended, err := step(lookTask)
		if ctx.Err() != nil {
			return nil // interrupted, maybe in the middle of a look
		}
		if err != nil || ended {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-look:
			lookTask = true
		case <-tick.C:
			lookTask = true
		case <-more:
			lookTask = false
		}
	}
}

// currentTask returns task t of run r as it is now: read alone where the
// database can (model.GetTask); a task not created yet is t as it is, or
// cancelled if the run has ended (it never will be).
func currentTask(ctx context.Context, db model.Database, r *model.Run, t *model.Task) (*model.Task, error) {
	cur, err := model.GetTask(ctx, db, r.ID, t.Name, t.TaskIndex)
	if err == nil {
		return cur, nil
	}
	if !errors.Is(err, model.ErrNotFound) {
		return nil, err
	}
	run, err := db.GetRun(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	cp := *t
	if run.Status.Terminal() {
		cp.Status = model.TaskCancelled // never created, and never will be
	}
	return &cp, nil
}

func cmdPrune(c *cli.Context) error {
	age, err := parseAge(c.String("older-than"))
	if err != nil {
		return fmt.Errorf("--older-than: %w", err)
	}
	if c.Int("keep-last") < 0 {
		return errors.New("--keep-last must be 0 or more")
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ids, err := pruneRuns(c, db, time.Now().Add(-age), c.Int("keep-last"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "pruned %d finished run(s) older than %s\n", len(ids), c.String("older-than"))
	return nil
}

// parseAge reads an age like 30d, 12h, 90m or 45s.
func parseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q: write an age like 30d, 12h or 90m", s)
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: write an age like 30d, 12h or 90m", s)
	}
	return d, nil
}

// parseSize reads a size like 10MiB, 512KiB, 1GiB or a number of bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("%q is not a size like 10MiB", s)
			}
			return int64(v * float64(u.mult)), nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size like 10MiB", s)
	}
	return v, nil
}
