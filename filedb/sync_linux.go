//go:build linux

package filedb

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS is one syncfs(2) on the file system that holds root: a single
// flush and journal commit for every file written, instead of one fsync
// each.
func syncFS(root *os.File) error { return unix.Syncfs(int(root.Fd())) }

// fdatasyncPath is fdatasync(2) of the file at p: its data, and the
// metadata needed to read it back (its size, its blocks), not its times.
func fdatasyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = unix.Fdatasync(int(f.Fd()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
