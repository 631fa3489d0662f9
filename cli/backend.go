package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// The backend: the file database in --dir, or PostgreSQL when
// --database-url (ORK_DATABASE_URL) names one. Commands see a
// model.Database and the optional interfaces below; the logs stay in
// --dir's logs/ whatever the backend, and scripts in scripts/ beside it.

// databaseURL returns the --database-url flag, "" for the file database.
func databaseURL(c *cli.Context) string { return c.String("database-url") }

// checkURL refuses a URL that is not PostgreSQL's.
func checkURL(u string) error {
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return fmt.Errorf("--database-url %q: want a PostgreSQL URL, postgres://USER@HOST:PORT/DATABASE", redactURL(u))
	}
	return nil
}

// redactURL hides the password of a URL in messages.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	cred, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	if user, _, hasPw := strings.Cut(cred, ":"); hasPw {
		return scheme + "://" + user + ":***@" + host
	}
	return u
}

// openDB opens the backend the flags name.
func openDB(c *cli.Context, log *slog.Logger) (model.Database, error) {
	if u := databaseURL(c); u != "" {
		if err := checkURL(u); err != nil {
			return nil, err
		}
		return openPostgres(c.Context, u, log, false)
	}
	return filedb.Open(orkDir(c), filedb.Options{Logger: log})
}

// storeName names the backend for people: the directory, or the database.
func storeName(c *cli.Context, db model.Database) string {
	if s, ok := db.(fmt.Stringer); ok && databaseURL(c) != "" {
		return s.String()
	}
	return orkDir(c)
}

// logDir is where task logs go: logs/ in the ork directory.
func logDir(c *cli.Context) string { return filepath.Join(orkDir(c), filedb.LogsDir) }

// schedulerHolder names the scheduler serving db, or returns "" when none
// does.
func schedulerHolder(c *cli.Context, db model.Database) string {
	if cl, ok := db.(model.Cluster); ok {
		ss, err := liveSchedulers(c.Context, cl)
		ss, _ = unexpired(ss, time.Now())
		if err != nil || len(ss) == 0 {
			return ""
		}
		ids := make([]string, len(ss))
		for i, s := range ss {
			ids[i] = s.ID
		}
		if len(ids) == 1 {
			return "scheduler " + ids[0]
		}
		return fmt.Sprintf("%d schedulers: %s", len(ids), strings.Join(ids, ", "))
	}
	if h, ok := db.(interface {
		SchedulerHolder(context.Context) (string, error)
	}); ok {
		ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
		defer cancel()
		s, _ := h.SchedulerHolder(ctx)
		return s
	}
	return filedb.LockHolder(orkDir(c))
}

// pruneRuns deletes finished runs through the backend, then their logs.
func pruneRuns(c *cli.Context, db model.Database, cutoff time.Time, keepLast int) ([]string, error) {
	p, ok := db.(interface {
		Prune(ctx context.Context, cutoff time.Time, keepLast int) ([]string, error)
	})
	if !ok {
		return nil, errors.New("this database cannot prune runs")
	}
	ids, err := p.Prune(c.Context, cutoff, keepLast)
	for _, id := range ids {
		if id != "" && !strings.ContainsAny(id, `/\`) && !strings.HasPrefix(id, ".") {
			os.RemoveAll(filepath.Join(logDir(c), id))
		}
	}
	return ids, err
}

// putWorkflow stores w, replacing the workflow of the same name.
func putWorkflow(c *cli.Context, db model.Database, w *model.Workflow) error {
	p, ok := db.(interface {
		PutWorkflow(context.Context, *model.Workflow) error
	})
	if !ok {
		return errors.New("this database cannot replace workflows")
	}
	return p.PutWorkflow(c.Context, w)
}

// scheduleStore returns db's schedule state; every backend of ork keeps
// one (model.ScheduleStore).
func scheduleStore(db model.Database) model.ScheduleStore {
	if s, ok := db.(model.ScheduleStore); ok {
		return s
	}
	return noSchedules{}
}

// noSchedules is the schedule state of a database without one: every
// call says so.
type noSchedules struct{}

var errNoSchedules = errors.New("this database keeps no schedules")

func (noSchedules) ClaimTick(context.Context, *model.Run) (bool, error) { return false, errNoSchedules }
func (noSchedules) AdvanceSchedule(context.Context, string, time.Time, string) error {
	return errNoSchedules
}
func (noSchedules) ScheduleState(context.Context, string) (model.ScheduleState, error) {
	return model.ScheduleState{}, errNoSchedules
}
func (noSchedules) SetPaused(context.Context, string, bool) error { return errNoSchedules }
