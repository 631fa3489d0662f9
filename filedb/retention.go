package filedb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ork-run/ork/model"
)

// ReopenRun makes a finished run pending again for `ork retry`: the tasks
// in reset go back to pending (their attempts kept), the records of the
// tasks in remove are deleted (the scheduler creates them again when their
// turn comes). A finished run has no writer, so any process may do this;
// the scheduler learns of the reopened run from fsnotify.
//
// The removals come first and the run record last: a crash in between
// leaves a finished run, which `ork retry` reopens again.
func (d *DB) ReopenRun(ctx context.Context, runID string, reset, remove []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.readRun(d.runPath(runID))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if !r.Status.Terminal() {
		return fmt.Errorf("run %s is %s: only a finished run can be retried", runID, r.Status)
	}
	ts, _, err := d.readTasks(runID)
	if err != nil {
		return err
	}
	byID := make(map[string]*model.Task, len(ts))
	for _, t := range ts {
		byID[t.ID] = t
	}
	removed := false
	for _, id := range remove {
		if t := byID[id]; t != nil {
			if err := os.Remove(d.taskPath(t)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		// Durability: the removals are on disk before the run reopens.
		if err := fsyncPath(d.taskDir(runID)); err != nil {
			return err
		}
	}
	var ws []fileWrite
	for _, id := range reset {
		t := byID[id]
		if t == nil {
			continue
		}
		t.Status = model.TaskPending
		t.Error, t.ExecutionName, t.Log = "", "", ""
		t.ExitCode, t.DispatchedAt, t.StartedAt, t.FinishedAt, t.RetryAt = nil, nil, nil, nil, nil
		t.Output = nil
		data, err := encode(t)
		if err != nil {
			return err
		}
		ws = append(ws, fileWrite{path: d.taskPath(t), data: data})
	}
	r.Status, r.Error, r.StartedAt, r.FinishedAt, r.TaskCounts = model.RunPending, "", nil, nil, nil
	data, err := encode(r)
	if err != nil {
		return err
	}
	ws = append(ws, fileWrite{path: d.runPath(runID), data: data}) // last: see above
	if err := d.commit(ws, nil); err != nil {
		return err
	}
	if d.idx != nil {
		d.loadRun(runID)
	}
	d.notify()
	return nil
}

// pruneMarker names a run record while its run is being deleted: renamed
// so, the run has gone for every reader at once, and what is left of it is
// deleted after.
const prunePrefix = ".prune-"

// Prune deletes finished runs — record, tasks and logs — that finished
// before cutoff, keeping the keepLast newest finished runs of each
// workflow whatever their age. It returns the ids it deleted. A prune cut
// short by a crash is finished by the next one.
func (d *DB) Prune(ctx context.Context, cutoff time.Time, keepLast int) ([]string, error) {
	runsDir := filepath.Join(d.root, RunsDir)
	leftover, err := d.finishPrunes()
	if err != nil {
		return leftover, err
	}
	runs, err := d.ListRuns(ctx, model.RunFilter{})
	if err != nil {
		return nil, err
	}
	kept := map[string]int{}
	var doomed []*model.Run
	for _, r := range runs { // newest first
		if !r.Status.Terminal() {
			continue
		}
		if kept[r.WorkflowName] < keepLast {
			kept[r.WorkflowName]++
			continue
		}
		end := r.CreatedAt
		if r.FinishedAt != nil {
			end = *r.FinishedAt
		}
		if end.Before(cutoff) {
			doomed = append(doomed, r)
		}
	}
	out := leftover
	for _, r := range doomed {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		// The run disappears at once: its record is renamed out of sight.
		if err := os.Rename(d.runPath(r.ID), filepath.Join(runsDir, prunePrefix+r.ID+".json")); err != nil {
			return out, fmt.Errorf("prune run %s: %w", r.ID, err)
		}
		out = append(out, r.ID)
	}
	if len(out) == len(leftover) {
		return out, nil
	}
	// Durability: the renames survive a crash before anything is deleted.
	if err := fsyncPath(runsDir); err != nil {
		return out, err
	}
	_, err = d.finishPrunes()
	return out, err
}

// finishPrunes deletes what is left of runs whose record was renamed for
// pruning — tasks, logs, then the record — and returns their ids.
func (d *DB) finishPrunes() ([]string, error) {
	runsDir := filepath.Join(d.root, RunsDir)
	ents, err := os.ReadDir(runsDir)
	if err != nil {
		return nil, err
	}
	var marks []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prunePrefix) {
			marks = append(marks, e.Name())
		}
	}
	slices.Sort(marks)
	var ids []string
	for _, m := range marks {
		id := strings.TrimSuffix(strings.TrimPrefix(m, prunePrefix), ".json")
		if checkID("run", id) != nil {
			continue
		}
		for _, dir := range []string{d.taskDir(id), filepath.Join(d.root, LogsDir, id)} {
			if err := os.RemoveAll(dir); err != nil {
				return ids, fmt.Errorf("prune run %s: %w", id, err)
			}
		}
		if err := os.Remove(filepath.Join(runsDir, m)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ids, err
		}
		ids = append(ids, id)
	}
	if len(marks) > 0 {
		for _, dir := range []string{runsDir, filepath.Join(d.root, TasksDir), filepath.Join(d.root, LogsDir)} {
			if err := fsyncPath(dir); err != nil {
				return ids, err
			}
		}
	}
	return ids, nil
}
