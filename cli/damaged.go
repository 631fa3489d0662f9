package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// RunDamaged is the status `ork status` shows for a run whose file does not
// parse. It is no status a run record can have.
const RunDamaged model.RunStatus = "damaged"

// damagedRuns turns run files that do not parse into entries of a listing:
// the id from the file name, status "damaged", the problem as the error.
func damagedRuns(errs []error) []*model.Run {
	var out []*model.Run
	for _, err := range errs {
		r := &model.Run{Status: RunDamaged, Error: err.Error()}
		var fe *model.FileError
		if errors.As(err, &fe) {
			r.ID = strings.TrimSuffix(filepath.Base(fe.Path), ".json")
			if fe.Line > 0 {
				r.Error = fmt.Sprintf("line %d, column %d: %v (see `ork doctor`)", fe.Line, fe.Column, fe.Err)
			} else {
				r.Error = fmt.Sprintf("%v (see `ork doctor`)", fe.Err)
			}
		}
		out = append(out, r)
	}
	return out
}

// waitsFor says why an unfinished run cannot end, if a file of it was
// damaged or removed by hand: each damaged task file, a tasks directory
// gone while the run was running.
func waitsFor(c *cli.Context, mdb model.Database, r *model.Run) []string {
	db, ok := mdb.(*filedb.DB)
	if !ok {
		return nil // damaged records are a file database's matter
	}
	var out []string
	if r.Status == model.RunRunning {
		dir := filepath.Join(db.Dir(), filedb.TasksDir, r.ID)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			out = append(out, fmt.Sprintf("its task records (%s) were removed while it ran; it cannot end: see `ork doctor`", dir))
		}
	}
	// A large run's record counts its tasks as the scheduler last wrote
	// them (model.Run.TaskCounts): each was a readable record then, and one
	// damaged since stops the run at its next write (`ork doctor` checks
	// them all). Reading 100,000 task files here would take seconds.
	if r.TaskCounts != nil {
		return out
	}
	bad, err := db.DamagedTasks(c.Context, r.ID)
	if err != nil {
		return append(out, err.Error())
	}
	for _, b := range bad {
		out = append(out, fmt.Sprintf("damaged task file, never run until repaired or removed (stop the scheduler first; see `ork doctor`): %v", b))
	}
	return out
}

// listRunsDamaged lists runs, and on the file database also the run files that do
// not parse (each an error naming the file).
func listRunsDamaged(c *cli.Context, db model.Database, f model.RunFilter) ([]*model.Run, []error, error) {
	if fdb, ok := db.(*filedb.DB); ok {
		return fdb.ListRunsDamaged(c.Context, f)
	}
	runs, err := db.ListRuns(c.Context, f)
	return runs, nil, err
}
