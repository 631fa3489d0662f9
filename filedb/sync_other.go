//go:build !linux

package filedb

import (
	"errors"
	"os"
)

// syncFS is not available here: callers fsync each file instead.
func syncFS(*os.File) error { return errors.ErrUnsupported }

// fdatasyncPath is an fsync here (F_FULLFSYNC on macOS, by os.File.Sync).
func fdatasyncPath(p string) error { return fsyncPath(p) }
