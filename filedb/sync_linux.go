//go:build linux

package filedb

import (
	"bytes"
	"os"
	"strconv"

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

// dirtyBytes is Dirty plus Writeback of /proc/meminfo: the pages of every
// file system that wait to be written back, or are being written. -1 when
// it cannot be read.
func dirtyBytes() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	var total int64
	found := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.Equal(k, []byte("Dirty")) && !bytes.Equal(k, []byte("Writeback")) {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return -1
		}
		total += n << 10 // kB
		found++
	}
	if found != 2 {
		return -1
	}
	return total
}
