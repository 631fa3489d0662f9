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
