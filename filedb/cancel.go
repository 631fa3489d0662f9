package filedb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A cancel request is a marker file runs/<run_id>.cancel, written by any
// process (`ork cancel`) and applied by the scheduler, which removes it once
// the run has ended: the run record keeps one writer.
const cancelSuffix = ".cancel"

func (d *DB) cancelPath(id string) string {
	return filepath.Join(d.root, RunsDir, id+cancelSuffix)
}

// RequestCancel writes the cancel marker of an unfinished run.
func (d *DB) RequestCancel(ctx context.Context, runID string) error {
	r, err := d.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	if r.Status.Terminal() {
		return nil
	}
	host, _ := os.Hostname()
	data := fmt.Sprintf("cancel requested by pid %d on %s at %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := d.createExclusive(d.cancelPath(runID), []byte(data)); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("request cancel of run %s: %w", runID, err)
	}
	d.mu.Lock()
	if d.idx != nil {
		d.idx.cancels[runID] = true
	}
	d.mu.Unlock()
	d.notify()
	return nil
}

// CancelRequests returns the unfinished runs with a cancel marker. Markers
// of runs that ended are removed. A marker another process removed (`ork
// retry` drops a request left from before the run ended) is forgotten.
func (d *DB) CancelRequests(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureIndex(); err != nil {
		return nil, err
	}
	d.refresh()
	var out []string
	for id := range d.idx.cancels {
		if _, err := os.Lstat(d.cancelPath(id)); errors.Is(err, fs.ErrNotExist) {
			delete(d.idx.cancels, id)
			continue
		}
		if d.idx.runs[id] != nil || d.loadRun(id) != nil {
			out = append(out, id)
			continue
		}
		delete(d.idx.cancels, id)
		os.Remove(d.cancelPath(id))
	}
	return out, nil
}

// isCancelMarker reports whether a runs/ entry is a cancel marker, and for
// which run.
func isCancelMarker(name string) (string, bool) {
	if strings.HasPrefix(name, ".") {
		return "", false
	}
	return strings.CutSuffix(name, cancelSuffix)
}
