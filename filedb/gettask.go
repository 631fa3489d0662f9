package filedb

import (
	"context"
	"errors"
	"io/fs"

	"github.com/ork-run/ork/model"
)

var _ model.TaskGetter = (*DB)(nil)

// GetTask returns task name[index] of run runID, reading its file alone,
// tasks/<run_id>/<name>.<index>.json — or, for an unfinished task of a run
// in the scheduler's index, from the index, which holds what the file
// holds. A damaged file is reported as ListTasks reports it, and is the
// error.
func (d *DB) GetTask(ctx context.Context, runID, name string, index int) (*model.Task, error) {
	if checkID("run", runID) != nil || name == "" || index < 0 {
		return nil, model.TaskNotFound(runID, name, index)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.idx != nil {
		if e := d.idx.runs[runID]; e != nil {
			if t := e.tasks[model.TaskID(runID, name, index)]; t != nil {
				cp := *t
				d.mu.Unlock()
				return &cp, nil
			}
		}
	}
	d.mu.Unlock()
	t, err := d.readTaskFile(d.taskPath(&model.Task{RunID: runID, Name: name, TaskIndex: index}))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, model.TaskNotFound(runID, name, index) // not created yet
	case err != nil:
		return nil, err
	case t.RunID != runID || t.Name != name || t.TaskIndex != index:
		return nil, model.TaskNotFound(runID, name, index) // the file holds another task (edited by hand)
	}
	return t, nil
}
