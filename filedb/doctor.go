package filedb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ork-run/ork/model"
)

// Problem is one thing Doctor found, with what to do about it.
type Problem struct {
	Kind string `json:"kind"` // damaged, temp, unfinished
	Path string `json:"path"`
	What string `json:"what"`
	Fix  string `json:"fix"`
}

// Doctor inspects the whole database directory, history included, and
// reports damaged files, the tasks directory of a running run removed by
// hand, temporary files left by dead processes, and unfinished runs when
// no scheduler is running. Each fix says when the scheduler must be stopped
// first. It changes nothing.
func Doctor(dir string) ([]Problem, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var ps []Problem
	live := LockHolder(dir) != ""
	add := func(kind, path, what, fix string) {
		ps = append(ps, Problem{Kind: kind, Path: path, What: what, Fix: fix})
	}
	// stopFirst prefixes a fix that edits what a running scheduler owns.
	stopFirst := func(fix string) string {
		if live {
			return "stop the scheduler (" + LockHolder(dir) + ") first, since it owns this file; then " + fix
		}
		return fix + " (stop the scheduler first whenever one runs)"
	}
	runs := map[string]*model.Run{} // the runs that parse, by id
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			add("damaged", p, err.Error(), "check the permissions of the path")
			return nil
		}
		name := e.Name()
		if e.IsDir() {
			if p != dir && name == LogsDir && filepath.Dir(p) == dir {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		switch {
		case parts[0] == RunsDir && strings.HasPrefix(name, prunePrefix):
			add("temp", p, "a prune of this run was cut short", "run `ork prune` again (with any --older-than) to finish it")
		case parts[0] == spareDir:
			// Spare inodes for later writes, not records (see commit).
		case isTemp(name):
			if pid := tmpOwner(name); pid > 0 && processAlive(pid) {
				return nil // its process is using it right now
			}
			add("temp", p, "temporary file left by a process that is gone; it never became a record",
				"delete it (the next `ork run` removes it too)")
		case !strings.HasSuffix(name, ".json"):
		case parts[0] == WorkflowsDir && len(parts) == 2:
			data, err := os.ReadFile(p)
			if err == nil {
				_, err = model.DecodeWorkflowFile(p, data)
			}
			if err != nil {
				add("damaged", p, err.Error(), "fix the file by hand (`ork validate "+p+"` checks it), or delete it")
			}
		case parts[0] == RunsDir && len(parts) == 2:
			data, err := os.ReadFile(p)
			var r *model.Run
			if err == nil {
				r, err = model.DecodeRun(p, data)
			}
			if err != nil {
				add("damaged", p, err.Error(), stopFirst("fix the file by hand, or delete it with its tasks/ and logs/ directories; the scheduler never writes over it"))
				return nil
			}
			runs[strings.TrimSuffix(name, ".json")] = r
			if !live && !r.Status.Terminal() {
				add("unfinished", p, fmt.Sprintf("run %s of %s is %s and no scheduler is running", r.ID, r.WorkflowName, r.Status),
					"start `ork run`: it resumes the run (tasks left running are retried)")
			}
		case parts[0] == SchedulesDir && len(parts) == 2:
			if err := checkScheduleFile(p); err != nil {
				add("damaged", p, err.Error(), "fix the file by hand, or delete it: the schedule then starts afresh at its next tick (schedule.go)")
			}
		case parts[0] == TasksDir && len(parts) == 3:
			data, err := os.ReadFile(p)
			if err == nil {
				_, err = model.DecodeTask(p, data)
			}
			if err != nil {
				if r := runs[parts[1]]; r != nil && r.Status.Terminal() {
					add("damaged", p, err.Error(), "fix the file by hand, or delete it (its run has ended)")
					return nil
				}
				what := err.Error() + fmt.Sprintf("; run %s cannot end until this file is repaired or removed: the scheduler leaves it alone and never runs its task", parts[1])
				add("damaged", p, what, stopFirst("fix the file by hand, or delete it: a deleted task of an unfinished run is created again as pending when the scheduler starts, and runs"))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ps, err
	}
	// A running run always has its tasks directory (UpdateRuns makes it):
	// one that is missing was removed by hand, and the run waits forever.
	for id, r := range runs {
		if r.Status != model.RunRunning {
			continue
		}
		td := filepath.Join(dir, TasksDir, id)
		if _, err := os.Stat(td); errors.Is(err, fs.ErrNotExist) {
			add("damaged", td, fmt.Sprintf("run %s of %s is running but its task records (%s) were removed: it cannot end", id, r.WorkflowName, td),
				"stop the scheduler, then either start it again (the run's tasks are created again and run from the start), or delete "+
					filepath.Join(dir, RunsDir, id+".json")+" and "+filepath.Join(dir, LogsDir, id)+" to drop the run")
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Kind < ps[j].Kind })
	return ps, nil
}
