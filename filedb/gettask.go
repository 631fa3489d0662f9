package filedb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ork-run/ork/model"
)

var _ model.TaskGetter = (*DB)(nil)

// taskNamesMax bounds the memory of the file names GetTask has worked out.
const taskNamesMax = 4096

// GetTask returns task taskID of run runID, reading its file alone: an
// unfinished task of a run in the scheduler's index comes from the index
// (which holds what its file holds); any other is read from
// tasks/<run_id>/<name>.<i>.json. A task's id is a hash of its run, name and
// index (model.TaskID), so the file is found from the run's workflow: the
// first GetTask of a task reads the run's record and hashes the workflow's
// (name, index) pairs until one gives the id, and the DB remembers the
// answer. A task the workflow does not have (added by hand) is looked for
// among the run's files by name, reading only those whose name is not a
// task's. A damaged file is reported as ListTasks reports it, and is
// returned as the error.
func (d *DB) GetTask(ctx context.Context, runID, taskID string) (*model.Task, error) {
	notFound := fmt.Errorf("task %q of run %q: %w", taskID, runID, model.ErrNotFound)
	if checkID("run", runID) != nil || checkID("task", taskID) != nil {
		return nil, notFound
	}
	d.mu.Lock()
	if d.idx != nil {
		if e := d.idx.runs[runID]; e != nil {
			if t := e.tasks[taskID]; t != nil {
				cp := *t
				d.mu.Unlock()
				return &cp, nil
			}
		}
	}
	d.mu.Unlock()
	file, err := d.taskFileName(ctx, runID, taskID)
	if err != nil {
		return nil, err
	}
	if file == "" {
		return d.findTaskFile(ctx, runID, taskID, notFound)
	}
	t, err := d.readTaskFile(filepath.Join(d.taskDir(runID), file))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, notFound // not created yet
	case err != nil:
		return nil, err
	case t.ID != taskID:
		return nil, notFound // the file holds another task (edited by hand)
	}
	return t, nil
}

// taskFileName returns the name of the file of task taskID in its run's
// directory, as the run's workflow names it, or "" if the workflow does
// not have it or the run's record cannot be read.
func (d *DB) taskFileName(ctx context.Context, runID, taskID string) (string, error) {
	key := runID + "/" + taskID
	d.taskNamesMu.Lock()
	file, ok := d.taskNames[key]
	d.taskNamesMu.Unlock()
	if ok {
		return file, nil
	}
	r, err := d.GetRun(ctx, runID)
	if err != nil {
		return "", nil // the files alone tell
	}
	w := r.Workflow
	if w == nil && r.WorkflowName != "" {
		// A run written without a snapshot of its workflow (by hand): the
		// workflow as it is now, as the scheduler's index takes it.
		if w, err = d.readWorkflow(d.workflowPath(r.WorkflowName)); err != nil {
			return "", nil
		}
	}
	if w == nil {
		return "", nil
	}
	for _, nd := range w.Nodes() {
		for i := range nd.TaskCount {
			if i%1024 == 1023 {
				if err := ctx.Err(); err != nil {
					return "", err
				}
			}
			if model.TaskID(runID, nd.Name, i) != taskID {
				continue
			}
			file = filepath.Base(d.taskPath(&model.Task{RunID: runID, Name: nd.Name, TaskIndex: i}))
			d.taskNamesMu.Lock()
			if len(d.taskNames) >= taskNamesMax {
				clear(d.taskNames)
			}
			d.taskNames[key] = file
			d.taskNamesMu.Unlock()
			return file, nil
		}
	}
	return "", nil
}

// findTaskFile looks for task taskID among the files of run runID: a file
// named as a task's is read only if its name and index give that id; a
// file named otherwise is read to learn which task it holds, as
// ListTasks (which lists every file) would. notFound is the error when
// none holds it.
func (d *DB) findTaskFile(ctx context.Context, runID, taskID string, notFound error) (*model.Task, error) {
	dir := d.taskDir(runID)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		name, index, canonical := parseTaskFile(n)
		if canonical && model.TaskID(runID, name, index) != taskID {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := d.readTaskFile(filepath.Join(dir, n))
		switch {
		case err != nil && canonical && !errors.Is(err, fs.ErrNotExist):
			return nil, err
		case err != nil:
			continue // gone since, or damaged and not known to be this task's: reported
		case t.ID == taskID:
			return t, nil
		}
	}
	return nil, notFound
}
