package filedb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ork-run/ork/model"
)

// LockScheduler takes the directory's scheduler lock: an flock(2) on
// scheduler.lock, which the kernel releases when the holder exits or is
// killed, so a crash never leaves a stale lock. The file names the holder
// for the error a second scheduler gets.
func (d *DB) LockScheduler(ctx context.Context) (func(), error) {
	p := filepath.Join(d.root, LockFile)
	// The flock is held on a read-only descriptor: a scheduler keeps no
	// file open for writing between its batches.
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	// A scheduler killed while it was starting a task leaves the lock with
	// the child for the instant before that child execs (or dies by the
	// parent-death signal): when the holder named in the file is gone, try
	// again for a moment before refusing.
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := lockExclusive(f)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		holder := LockHolder(d.root)
		if holderAlive(holder) || time.Now().After(deadline) {
			f.Close()
			return nil, &model.LockedError{Where: d.root, Holder: holder}
		}
		time.Sleep(5 * time.Millisecond)
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	writeHolder(p, info)
	return func() {
		os.Truncate(p, 0)
		unlockFile(f)
		f.Close()
	}, nil
}

// writeHolder writes who holds the lock into the lock file, in place: the
// flock lives on the file's inode, so the file cannot be replaced by a
// rename (that would make a second, unlocked lock file). It is not a
// record and needs no sync: after a crash the kernel releases the flock,
// and readers trust the contents only while the flock is held. The new
// contents are written over the old ones and the file cut to their length
// after, so a reader never finds it empty.
func writeHolder(p, info string) {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(info), 0); err == nil {
		f.Truncate(int64(len(info)))
	}
}

// LockHolder describes who holds the scheduler lock of dir, as written in
// the lock file ("pid 123 on host since ..."), or "" when nobody does.
func LockHolder(dir string) string {
	p := filepath.Join(dir, LockFile)
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := lockShared(f); err == nil {
		unlockFile(f)
		return "" // nobody holds it
	}
	b := make([]byte, 256)
	n, _ := f.Read(b)
	s := strings.TrimSpace(string(b[:n]))
	if s == "" {
		s = "unknown process"
	}
	return s
}

// holderAlive reports whether the process named by a lock holder string
// ("pid 123 on host since ...") exists; true when it cannot tell.
func holderAlive(holder string) bool {
	var pid int
	if _, err := fmt.Sscanf(holder, "pid %d", &pid); err != nil || pid <= 0 {
		return true
	}
	host, _ := os.Hostname()
	if !strings.Contains(holder, " on "+host+" ") {
		return true // another machine's: cannot tell
	}
	return processAlive(pid)
}
