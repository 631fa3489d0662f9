//go:build linux

package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inotifyWatched says whether an inotify watch of this process watches
// the directory (or file) p, from the inodes in /proc/self/fdinfo.
func inotifyWatched(t *testing.T, p string) bool {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "ino:" + strconv.FormatUint(st.Sys().(*syscall.Stat_t).Ino, 16) + " "
	fds, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Skip(err)
	}
	for _, fd := range fds {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "inotify wd:") && strings.Contains(line, " "+want) {
				return true
			}
		}
	}
	return false
}

// Once the log directory is watched, the directories watched on the way to
// it are not, so that a new run's directory in logs/ does not wake the
// watch; what happens in the log directory is still told.
func TestFollowWatchUnwatchesTheDirectoriesAbove(t *testing.T) {
	root := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "run-1", "sub")
	changed := make(chan struct{}, 100)
	grew := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := watchLog(ctx, root, dir, "fan.sh.0.", notifier(grew), func() { changed <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); wait() }()
	next := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing told after %s", what)
		}
	}
	if !inotifyWatched(t, root) {
		t.Fatal("logs/ is not watched while the log directory is still to be made")
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		next(changed, "mkdir "+d)
	}
	// changed is called once the watch has gone down to dir.
	for _, d := range []string{root, filepath.Dir(dir)} {
		if inotifyWatched(t, d) {
			t.Errorf("%s is watched still, once the log directory is", d)
		}
	}
	if !inotifyWatched(t, dir) {
		t.Error("the log directory is not watched")
	}
	p := filepath.Join(dir, "fan.sh.0.1.log")
	if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	next(changed, "the log was made")
	next(grew, "the log was written")
}
