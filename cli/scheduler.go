package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/exec"
	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
	"github.com/ork-run/ork/sched"
)

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
	// A second scheduler is refused before it logs anything: its whole
	// output is the one line that names the one running. (Run takes the
	// lock for good; this only asks early.)
	// Several schedulers may serve a database that is a Cluster: no lock.
	if _, several := db.(model.Cluster); !several {
		if release, err := lockScheduler(c, db); err == nil {
			release()
		} else if le := (*model.LockedError)(nil); errors.As(err, &le) {
			return fmt.Errorf("%w: stop it first, or use a different --dir", err)
		}
	}
	s, err := newScheduler(c, db, log)
	if err != nil {
		return err
	}
	if _, several := db.(model.Cluster); several {
		cfg := s.Config()
		fmt.Fprintf(c.App.ErrWriter, "scheduler %s: several schedulers may serve this database; if this scheduler dies, another takes over its runs within about %s (lease %s, then the leader's next look, every %s)\n",
			s.ID(), cfg.TakeoverBound().Round(time.Second), cfg.Lease, cfg.Lease/3)
	}
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
	if databaseURL(c) != "" {
		return doctorDatabase(c)
	}
	ps, err := filedb.Doctor(orkDir(c))
	if err != nil {
		return err
	}
	return reportProblems(c, "", filedb.LockHolder(orkDir(c)), ps)
}

// reportProblems prints what `ork doctor` found (JSON with --json), after a
// heading line when there is one, and fails when it found anything.
func reportProblems(c *cli.Context, heading, holder string, ps []filedb.Problem) error {
	w := c.App.Writer
	if c.Bool("json") {
		if ps == nil {
			ps = []filedb.Problem{}
		}
		if err := printJSON(w, ps); err != nil {
			return err
		}
	} else {
		if heading != "" {
			fmt.Fprintln(w, heading)
		}
		if holder != "" {
			fmt.Fprintf(w, "scheduler: running (%s)\n", holder)
		} else {
			fmt.Fprintln(w, "scheduler: not running")
		}
		for _, p := range ps {
			fmt.Fprintf(w, "%s: %s\n  %s\n  fix: %s\n", p.Kind, p.Path, p.What, p.Fix)
		}
		if len(ps) == 0 {
			fmt.Fprintln(w, "no problems found")
		}
	}
	if len(ps) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) found", len(ps))}
	}
	return nil
}

// newScheduler makes the scheduler of `ork run` (and `ork serve`) on db,
// configured by the flags of runFlags.
func newScheduler(c *cli.Context, db model.Database, log *slog.Logger) (*sched.Scheduler, error) {
	cfg, err := schedConfig(c, func(msg string) { log.Warn(msg) })
	if err != nil {
		return nil, err
	}
	cfg.Logger = log
	if err := checkSchedConfig(cfg); err != nil {
		return nil, err
	}
	sd := scriptDir(c)
	if st, err := os.Stat(sd); err != nil || !st.IsDir() {
		log.Warn("script directory does not exist; tasks will fail until it does", "script_dir", sd)
	}
	maxLog, err := parseSize(c.String("max-log-size"))
	if err != nil {
		return nil, fmt.Errorf("--max-log-size: %w", err)
	}
	log.Info("task logs", "max-log-size", c.String("max-log-size"))
	if maxLog == 0 {
		maxLog = -1 // no bound
	}
	updates := make(chan exec.StatusUpdate, 4096)
	mgr := exec.NewManager(updates)
	mgr.Register(model.ExecutorProcess, exec.NewProcessExecutor(exec.ProcessConfig{
		ScriptDir: sd, LogDir: logDir(c), Updates: updates, MaxLogBytes: maxLog,
	}))
	if err := registerBuiltExecutors(c, mgr, updates, log); err != nil {
		return nil, err
	}
	return sched.New(db, mgr, cfg), nil
}
