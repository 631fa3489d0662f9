//go:build !linux

package filedb

import (
	"errors"
	"os"
)

// syncFS is not available here: callers fsync each file instead.
func syncFS(*os.File) error { return errors.ErrUnsupported }
