//go:build !linux

package filedb

import "os"

// syncFiles makes the data of the given (closed) files durable, one fsync
// each where the system has no syncfs.
func syncFiles(_ *os.File, paths []string) error {
	for _, p := range paths {
		if err := fsyncPath(p); err != nil {
			return err
		}
	}
	return nil
}
