//go:build unix

package filedb

import (
	"errors"
	"os"
	"syscall"
)

// lockExclusive takes an exclusive flock(2) on f without waiting; held by
// another, it fails with syscall.EWOULDBLOCK.
func lockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// lockShared takes a shared flock(2) on f without waiting.
func lockShared(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
}

func unlockFile(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
