package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// cmdApply loads hand-written workflow files into the backend in use (on
// the file database: into .ork/workflows/), replacing workflows of the
// same name. Every file is decoded and validated first, as `ork validate`
// does; if one is not valid, nothing is applied.
func cmdApply(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErr(c, "give one or more workflow files to apply")
	}
	var ws []*model.Workflow
	var files []string
	bad := 0
	for _, p := range c.Args().Slice() {
		data, err := os.ReadFile(p)
		var w *model.Workflow
		if err == nil {
			w, err = model.DecodeWorkflow(p, data)
		}
		if err != nil {
			bad++
			fmt.Fprintln(c.App.ErrWriter, "ork: "+oneLine(err.Error()))
			continue
		}
		ws = append(ws, w)
		files = append(files, p)
	}
	if bad > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d files are not valid: nothing applied", bad, c.NArg())}
	}
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	for i, w := range ws {
		if err := putWorkflow(c, db, w); err != nil {
			return fmt.Errorf("%s: %w", files[i], err)
		}
		fmt.Fprintf(c.App.Writer, "applied workflow %s (from %s)\n", w.Name, files[i])
	}
	return nil
}

// cmdMigrate applies the PostgreSQL migrations the database lacks.
func cmdMigrate(c *cli.Context) error {
	if databaseURL(c) == "" {
		fmt.Fprintf(c.App.Writer, "the file database in %s has no schema to migrate (give --database-url for PostgreSQL)\n", orkDir(c))
		return nil
	}
	if err := checkURL(databaseURL(c)); err != nil {
		return err
	}
	db, applied, err := openPostgresMigrating(c.Context, databaseURL(c), nil, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(applied) == 0 {
		fmt.Fprintf(c.App.Writer, "%s is at schema version %d: nothing to migrate\n", storeName(c, db), schemaVersion())
		return nil
	}
	fmt.Fprintf(c.App.Writer, "migrated %s to schema version %d (applied %s)\n", storeName(c, db), schemaVersion(), strings.Join(applied, ", "))
	return nil
}

// initDatabase is `ork init` on PostgreSQL: the migrations, and the
// directory for the logs.
func initDatabase(c *cli.Context) error {
	if err := checkURL(databaseURL(c)); err != nil {
		return err
	}
	db, applied, err := openPostgresMigrating(c.Context, databaseURL(c), nil, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := os.MkdirAll(logDir(c), 0o755); err != nil {
		return fmt.Errorf("init %s: %w", orkDir(c), err)
	}
	did := "nothing to migrate"
	if len(applied) > 0 {
		did = "applied " + strings.Join(applied, ", ")
	}
	fmt.Fprintf(c.App.Writer, "Initialized ork on %s (schema version %d: %s); logs in %s\nPut job scripts in %s, then: ork create-workflow --name NAME --job-name SCRIPT\n",
		storeName(c, db), schemaVersion(), did, logDir(c), scriptDir(c))
	return nil
}

// lockScheduler takes the backend's scheduler lock, when it has one.
func lockScheduler(c *cli.Context, db model.Database) (func(), error) {
	l, ok := db.(model.SchedulerLocker)
	if !ok {
		return nil, errors.New("this database has no scheduler lock")
	}
	return l.LockScheduler(c.Context)
}

// doctorDatabase is `ork doctor` on PostgreSQL: opening checks the
// connection and the schema version; unfinished runs without a scheduler
// are problems.
func doctorDatabase(c *cli.Context) error {
	db, err := openDB(c, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	holder := schedulerHolder(c, db)
	var ps []filedb.Problem
	if holder == "" {
		for _, st := range []model.RunStatus{model.RunPending, model.RunRunning} {
			runs, err := db.ListRuns(c.Context, model.RunFilter{Status: st})
			if err != nil {
				return err
			}
			for _, r := range runs {
				ps = append(ps, filedb.Problem{Kind: "unfinished", Path: storeName(c, db),
					What: fmt.Sprintf("run %s of %s is %s and no scheduler is running", r.ID, r.WorkflowName, r.Status),
					Fix:  "start `ork run`: it resumes the run (tasks left running are retried)"})
			}
		}
	}
	return reportProblems(c, fmt.Sprintf("database: %s, schema version %d", storeName(c, db), schemaVersion()), holder, ps)
}
