package filedb

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// Changes returns a channel that receives when another process changed the
// database: a new run file, a workflow file written or edited.
func (d *DB) Changes() <-chan struct{} { return d.changes }

func (d *DB) notify() {
	select {
	case d.changes <- struct{}{}:
	default:
	}
}

// dirty run ids and the rescan flag are set by the watcher goroutine and
// taken by refresh; they have their own lock so the watcher never waits for
// a commit.
func (d *DB) markDirty(id string) {
	d.dirtyMu.Lock()
	if d.dirty == nil {
		d.dirty = make(map[string]bool)
	}
	d.dirty[id] = true
	d.dirtyMu.Unlock()
}

func (d *DB) takeDirty() []string {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	if len(d.dirty) == 0 {
		return nil
	}
	out := make([]string, 0, len(d.dirty))
	for id := range d.dirty {
		out = append(out, id)
	}
	clear(d.dirty)
	return out
}

func (d *DB) takeRescan() bool {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	r := d.forceRescan
	d.forceRescan = false
	return r
}

// startWatcher watches runs/ and workflows/. d.mu must be held.
func (d *DB) startWatcher() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	runsDir := filepath.Join(d.root, RunsDir)
	wfDir := filepath.Join(d.root, WorkflowsDir)
	for _, dir := range []string{runsDir, wfDir} {
		if err := w.Add(dir); err != nil {
			w.Close()
			return err
		}
	}
	d.watcher = w
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-d.stop:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Base(ev.Name)
				if !ev.Has(fsnotify.Create | fsnotify.Write) {
					continue
				}
				if id, ok := isCancelMarker(name); ok && filepath.Dir(ev.Name) == runsDir {
					d.markDirty("cancel:" + id)
					d.notify()
					continue
				}
				if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
					continue
				}
				switch filepath.Dir(ev.Name) {
				case runsDir:
					d.markDirty(strings.TrimSuffix(name, ".json"))
					d.notify()
				case wfDir:
					// A workflow written or edited by hand: say at once if
					// it does not load, so the author need not wait for a
					// trigger to find out.
					if _, err := d.readWorkflow(ev.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
						d.report(ev.Name, err)
					}
					d.notify()
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.Warn("file watcher", "err", err)
				d.dirtyMu.Lock()
				d.forceRescan = true
				d.dirtyMu.Unlock()
				d.notify()
			}
		}
	}()
	return nil
}

// removeDeadTemp removes a temporary file left by a process that is gone:
// its write never completed, so nothing refers to it.
func removeDeadTemp(dir, name string) {
	pid := tmpOwner(name)
	if pid <= 0 || pid == os.Getpid() {
		return
	}
	if processAlive(pid) {
		return
	}
	os.Remove(filepath.Join(dir, name))
}

// cleanDeadTemps removes dead writers' temporary files in dir and, for
// tasks/, in each run's subdirectory.
func cleanDeadTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if isTemp(e.Name()) {
			removeDeadTemp(dir, e.Name())
		}
	}
}
