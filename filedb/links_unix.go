//go:build unix

package filedb

import (
	"os"
	"syscall"
)

// linkCount returns the number of hard links of a regular file, or 0.
func linkCount(p string) uint64 {
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 0
}

// inode returns the inode number of a file, or 0.
func inode(info os.FileInfo) uint64 {
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Ino)
	}
	return 0
}
