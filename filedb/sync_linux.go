//go:build linux

package filedb

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles makes the data of the given (closed) files durable. For a batch
// it is one syncfs(2) on the file system that holds the database: a single
// flush and journal commit for every file, instead of one fsync each.
func syncFiles(root *os.File, paths []string) error {
	if len(paths) == 1 {
		return fsyncPath(paths[0])
	}
	return unix.Syncfs(int(root.Fd()))
}
