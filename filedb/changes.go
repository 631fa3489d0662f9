package filedb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/ork-run/ork/model"
)

var (
	_ model.ChangeWatcher = (*DB)(nil)
	_ model.RunWatcher    = (*DB)(nil)
	_ model.TaskWatcher   = (*DB)(nil)
)

// WatchRun tells fn when the record of run runID may have changed: a
// watcher of its own (fsnotify) on runs/, apart from the scheduler's,
// that wakes on runs/<runID>.json only, and on a lost event. Linux and
// Windows only (see watchOneRun): elsewhere errors.ErrUnsupported, and the
// caller polls.
func (d *DB) WatchRun(ctx context.Context, runID string, fn func()) error {
	w, err := watchOneRun(runID, filepath.Join(d.root, RunsDir))
	if err != nil {
		return err
	}
	name := runID + ".json"
	d.follow(ctx, w, func(ev fsnotify.Event) {
		if filepath.Base(ev.Name) == name {
			fn()
		}
	}, fn)
	return nil
}

// WatchTask tells fn when the record of task name[index] of run runID, or
// the run's record, may have changed, and on a lost event: a watcher of
// its own on runs/, on tasks/ and on the run's task directory (once it is
// made), that wakes on those two files only. Linux and Windows only, as
// WatchRun.
func (d *DB) WatchTask(ctx context.Context, runID, name string, index int, fn func()) error {
	runsDir, tasksDir, runDir := filepath.Join(d.root, RunsDir), filepath.Join(d.root, TasksDir), d.taskDir(runID)
	w, err := watchOneRun(runID, runsDir, tasksDir)
	if err != nil {
		return err
	}
	w.Add(runDir) // absent until the run's first task: then tasks/ tells
	runFile := runID + ".json"
	taskFile := filepath.Base(d.taskPath(&model.Task{RunID: runID, Name: name, TaskIndex: index}))
	d.follow(ctx, w, func(ev fsnotify.Event) {
		switch dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name); {
		case dir == runsDir && base == runFile, dir == runDir && base == taskFile:
			fn()
		case ev.Name == runDir && ev.Has(fsnotify.Create):
			w.Add(runDir)
			fn() // the task may have been written before this watch began
		}
	}, fn)
	return nil
}

// watchOneRun returns a new watcher of dirs for a watch of run runID
// (WatchRun, WatchTask): only where watching a directory costs one
// descriptor (inotify on Linux, Windows) — elsewhere fsnotify opens one for
// each file in it, each run of the history, so it returns
// errors.ErrUnsupported and the caller polls.
func watchOneRun(runID string, dirs ...string) (*fsnotify.Watcher, error) {
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		return nil, errors.ErrUnsupported
	}
	if err := checkID("run", runID); err != nil {
		return nil, err
	}
	return watchDirs(dirs...)
}

// watchDirs returns a new watcher of dirs.
func watchDirs(dirs ...string) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// follow hands each event of w to event, and calls lost when w loses track
// (the kernel's queue overflowed), in a goroutine of its own until ctx ends
// or the DB closes; then it closes w.
func (d *DB) follow(ctx context.Context, w *fsnotify.Watcher, event func(fsnotify.Event), lost func()) {
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.stop:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				event(ev)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				lost()
			}
		}
	}()
}

// WatchChanges tells fn which runs changed, for observers such as the web
// UI. It has a watcher of its own, apart from the scheduler's (Changes):
// fsnotify on runs/ (run records and cancel markers), on tasks/ (a new
// run's task directory) and on the task directory of every unfinished run
// and of every run whose record changes while it watches — so it sees this
// process's writes and other processes' alike. A lost event (the kernel's
// queue overflowed) calls fn(""). Only runs that are or become active are
// watched, so the number of watches grows with the runs that change, not
// with the history.
func (d *DB) WatchChanges(ctx context.Context, fn func(runID string)) error {
	runsDir := filepath.Join(d.root, RunsDir)
	tasksDir := filepath.Join(d.root, TasksDir)
	w, err := watchDirs(runsDir, tasksDir)
	if err != nil {
		return err
	}
	// The task directories of the runs that are unfinished now.
	for _, st := range []model.RunStatus{model.RunPending, model.RunRunning} {
		rs, err := d.ListRuns(ctx, model.RunFilter{Status: st})
		if err != nil {
			w.Close()
			return err
		}
		for _, r := range rs {
			w.Add(filepath.Join(tasksDir, r.ID)) // absent until its first task: then tasks/ tells
		}
	}
	d.follow(ctx, w, func(ev fsnotify.Event) {
		dir, name := filepath.Dir(ev.Name), filepath.Base(ev.Name)
		if strings.HasPrefix(name, ".") {
			return // temporary files
		}
		switch {
		case dir == runsDir:
			id, ok := isCancelMarker(name)
			if !ok {
				if id, ok = strings.CutSuffix(name, ".json"); !ok {
					return
				}
			}
			if ev.Has(fsnotify.Create | fsnotify.Write) {
				// A run created or reopened: its tasks will change.
				if st, err := os.Stat(filepath.Join(tasksDir, id)); err == nil && st.IsDir() {
					w.Add(filepath.Join(tasksDir, id))
				}
			}
			fn(id)
		case dir == tasksDir:
			if ev.Has(fsnotify.Create) {
				w.Add(ev.Name)
			}
			fn(name)
		case filepath.Dir(dir) == tasksDir && strings.HasSuffix(name, ".json"):
			fn(filepath.Base(dir))
		}
	}, func() { fn("") })
	return nil
}
