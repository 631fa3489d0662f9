package cli

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/ork-run/ork/exec"
)

// dirWatchIsCheap says whether fsnotify watches a directory with one
// descriptor (inotify on Linux, Windows), not one per file in it (kqueue).
func dirWatchIsCheap() bool { return runtime.GOOS == "linux" || runtime.GOOS == "windows" }

// watchLog tells when the log files of one task may have changed, from
// fsnotify events on the directory that holds them (logs/<run_id>/, or the
// subdirectory that a task name with '/' makes): grew when one of them is
// written, changed when one is created, removed or renamed (a new attempt
// begins), when a directory on the way to them is made, and when the watch
// lost events. The files are those in dir named prefix<attempt>.log
// (exec.LogPrefix, exec.LogAttempt). Until dir exists, the nearest
// directory above it that does is watched, down to root, and then the next
// one down as each is made; once dir itself is watched, those above it no
// longer are (logs/ would otherwise wake the watch at every new run).
//
// Only where watching a directory costs one descriptor (inotify on Linux,
// Windows): elsewhere fsnotify opens each file of the directory — each log
// of a fan-out — so watchLog returns errors.ErrUnsupported, and the caller
// polls. It returns once it watches; the watch ends with ctx, and wait
// returns once it has ended.
func watchLog(ctx context.Context, root, dir, prefix string, grew, changed func()) (wait func(), err error) {
	if !dirWatchIsCheap() {
		return nil, errors.ErrUnsupported
	}
	root, dir = filepath.Clean(root), filepath.Clean(dir)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	// above holds the directories above dir that are watched.
	var above []string
	// deepest watches dir, or the nearest directory above it that exists,
	// and returns it.
	deepest := func() (string, error) {
		for d := dir; ; d = filepath.Dir(d) {
			err := w.Add(d)
			if err == nil {
				if d != dir {
					above = append(above, d)
				}
				return d, nil
			}
			if !errors.Is(err, fs.ErrNotExist) || d == root || filepath.Dir(d) == d {
				return "", err
			}
		}
	}
	// arm watches dir, or the nearest directory above it that exists, and
	// says whether it watches dir itself; then it stops watching the
	// directories above. The next directory down may have been made before
	// the watch began, and its event never comes: then it goes down again.
	arm := func() (bool, error) {
		for {
			d, err := deepest()
			if err != nil {
				return false, err
			}
			if d == dir {
				for _, a := range above {
					w.Remove(a) // it may be gone already: then it is unwatched
				}
				above = nil
				return true, nil
			}
			rel, err := filepath.Rel(d, dir)
			if err != nil {
				return false, err
			}
			next := filepath.Join(d, strings.Split(rel, string(filepath.Separator))[0])
			if _, err := os.Stat(next); err != nil {
				return false, nil // its making will be told
			}
		}
	}
	atDir, err := arm()
	if err != nil {
		w.Close()
		return nil, err
	}
	isLog := func(name string) bool {
		_, ok := exec.LogAttempt(prefix, name)
		return ok
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				switch {
				case filepath.Dir(ev.Name) == dir && isLog(filepath.Base(ev.Name)):
					if ev.Has(fsnotify.Write) {
						grew()
					}
					if ev.Has(fsnotify.Create | fsnotify.Remove | fsnotify.Rename) {
						changed()
					}
				case !atDir && ev.Has(fsnotify.Create) && (ev.Name == dir || strings.HasPrefix(dir, ev.Name+string(filepath.Separator))):
					// A directory on the way was made: watch further down.
					// Whatever was made in it meanwhile is seen by the look
					// that changed asks for.
					atDir, _ = arm()
					changed()
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				changed() // events were lost: look again
			}
		}
	}()
	return func() { <-done }, nil
}
