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
	"syscall"
	"time"

	"github.com/ork-run/ork/model"
)

// testHooks let tests stop an operation at a chosen point, to race another
// against it. Nil outside tests.
type testHooks struct {
	afterPruneList func() // Prune has chosen its runs and not yet locked
	reopenChecked  func() // ReopenRun, under the lock, found the run finished
	lockWait       func() // lockFinished found the lock held
}

// RunsLockFile is locked by `ork retry` and `ork prune` while they change
// finished runs (see lockFinished). It holds nothing.
const RunsLockFile = "runs.lock"

// lockFinished takes the lock under which finished runs are changed —
// reopened by `ork retry`, deleted by `ork prune` — so that two of these,
// in any processes, never act on the same run at once: an flock(2) on
// runs.lock, which the kernel releases if the holder dies. It waits for
// the lock until ctx is done. The scheduler never takes it: it writes
// unfinished runs only, and these operations change finished runs only,
// each re-checking the status under the lock.
func (d *DB) lockFinished(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.root, RunsLockFile), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		err := lockExclusive(f)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !waited && d.hooks.lockWait != nil {
			d.hooks.lockWait()
		}
		waited = true
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return func() {
		unlockFile(f)
		f.Close()
	}, nil
}

// ReopenRun makes a finished run pending again for `ork retry`: the tasks
// in reset go back to pending (their attempts kept), the records of the
// tasks in remove are deleted (the scheduler creates them again when their
// turn comes). A finished run has no writer but the process holding the
// lock of finished runs (lockFinished), which this takes: a second retry,
// or a prune, of the same run waits, then sees it reopened. The scheduler
// learns of the reopened run from fsnotify.
//
// The removals and resets come first and the run record last: a crash in
// between leaves a finished run, which `ork retry` reopens again.
func (d *DB) ReopenRun(ctx context.Context, runID string, reset, remove []string) error {
	if err := checkID("run", runID); err != nil {
		return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	unlock, err := d.lockFinished(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	r, runSize, err := d.readRunSized(d.runPath(runID))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if !r.Status.Terminal() {
		return fmt.Errorf("run %s is %s: only a finished run can be retried", runID, r.Status)
	}
	if d.hooks.reopenChecked != nil {
		d.hooks.reopenChecked()
	}
	ts, sizes, _, err := d.readTasksSized(runID)
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
		if err := d.ops.syncFile(d.taskDir(runID)); err != nil {
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
		ws = append(ws, fileWrite{path: d.taskPath(t), data: data, replace: true, size: sizes[id], check: checkTask})
	}
	if err := d.commitAll(ws, nil); err != nil {
		return fmt.Errorf("retry run %s: %w", runID, err)
	}
	// A cancel request left from before the run ended (a scheduler that
	// was stopping did not apply it) was for that run, not for the retry:
	// removed before the run reopens.
	if err := os.Remove(d.cancelPath(runID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("retry run %s: %w", runID, err)
	}
	if d.idx != nil {
		delete(d.idx.cancels, runID)
	}
	r.Status, r.Error, r.StartedAt, r.FinishedAt, r.TaskCounts = model.RunPending, "", nil, nil, nil
	data, err := encode(r)
	if err != nil {
		return err
	}
	// Last: see above.
	if err := d.commitAll([]fileWrite{{path: d.runPath(runID), data: data, replace: true, size: runSize, check: checkRun}}, nil); err != nil {
		return fmt.Errorf("retry run %s: %w", runID, err)
	}
	if d.idx != nil {
		d.loadRun(runID)
	}
	d.notify()
	return nil
}

// commitAll is commit for callers that need every record written: a
// record that fails alone is an error too.
func (d *DB) commitAll(ws []fileWrite, newDirs []string) error {
	failed, err := d.commit(ws, newDirs)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range failed {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// pruneMarker names a run record while its run is being deleted: renamed
// so, the run has gone for every reader at once, and what is left of it is
// deleted after.
const prunePrefix = ".prune-"

// Prune deletes finished runs — record, tasks and logs — that finished
// before cutoff, keeping the keepLast newest finished runs of each
// workflow whatever their age. It returns the ids it deleted. A prune cut
// short by a crash is finished by the next one.
//
// The runs to delete are chosen from a listing, then each is read again
// under the lock of finished runs (see lockFinished) and deleted only if
// it is still the finished run that was chosen: a run that `ork retry`
// reopened meanwhile is left alone.
func (d *DB) Prune(ctx context.Context, cutoff time.Time, keepLast int) ([]string, error) {
	runsDir := filepath.Join(d.root, RunsDir)
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
	if d.hooks.afterPruneList != nil {
		d.hooks.afterPruneList()
	}
	unlock, err := d.lockFinished(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	out, err := d.finishPrunes()
	if err != nil {
		return out, err
	}
	leftover := len(out)
	for _, r := range doomed {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		// Read again under the lock: only the finished run chosen above
		// goes, not one reopened (or reopened and finished again) since.
		now, err := d.readRun(d.runPath(r.ID))
		if err != nil || !now.Status.Terminal() || !sameEnd(now, r) {
			continue
		}
		// The run disappears at once: its record is renamed out of sight.
		if err := d.ops.rename(d.runPath(r.ID), filepath.Join(runsDir, prunePrefix+r.ID+".json")); err != nil {
			return out, fmt.Errorf("prune run %s: %w", r.ID, err)
		}
		out = append(out, r.ID)
	}
	if len(out) == leftover {
		return out, nil
	}
	// Durability: the renames survive a crash before anything is deleted.
	if err := d.ops.syncFile(runsDir); err != nil {
		return out, err
	}
	_, err = d.finishPrunes()
	return out, err
}

func sameEnd(a, b *model.Run) bool {
	if a.FinishedAt == nil || b.FinishedAt == nil {
		return a.FinishedAt == b.FinishedAt
	}
	return a.FinishedAt.Equal(*b.FinishedAt)
}

// finishPrunes deletes what is left of runs whose record was renamed for
// pruning — tasks, logs, then the record — and returns their ids. Only a
// marker that holds a finished run is finished: one that holds an
// unfinished run (renamed by an older ork that did not re-check) is put
// back, and a damaged one is left for `ork doctor` to name. The caller
// holds the lock of finished runs.
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
	changed := false
	for _, m := range marks {
		id := strings.TrimSuffix(strings.TrimPrefix(m, prunePrefix), ".json")
		if checkID("run", id) != nil {
			continue
		}
		mp := filepath.Join(runsDir, m)
		r, err := d.readRun(mp)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				d.report(mp, err)
			}
			continue
		}
		if !r.Status.Terminal() || r.ID != id {
			// Not a finished run: never deleted. Back under its name,
			// unless that name is taken.
			if err := d.ops.link(mp, d.runPath(id)); err == nil {
				os.Remove(mp)
				changed = true
				d.log.Warn("a prune marker held an unfinished run; it is put back", "run", id)
			}
			continue
		}
		for _, dir := range []string{d.taskDir(id), filepath.Join(d.root, LogsDir, id)} {
			if err := os.RemoveAll(dir); err != nil {
				return ids, fmt.Errorf("prune run %s: %w", id, err)
			}
		}
		if err := os.Remove(mp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ids, err
		}
		ids = append(ids, id)
		changed = true
	}
	if changed {
		// Durability: the deletions survive a crash.
		for _, dir := range []string{runsDir, filepath.Join(d.root, TasksDir), filepath.Join(d.root, LogsDir)} {
			if err := d.ops.syncFile(dir); err != nil {
				return ids, err
			}
		}
	}
	return ids, nil
}
