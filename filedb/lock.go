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
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &model.LockedError{Where: d.root, Holder: LockHolder(d.root)}
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(info), 0)
	}
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
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
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
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
