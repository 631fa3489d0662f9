package exec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultMaxLogBytes is the default bound of one attempt's log.
const DefaultMaxLogBytes = 10 << 20

// TrimLog bounds the log at path to about max bytes: a longer log keeps
// its tail, from the first line start in its last max bytes, after a first
// line that says how much was cut. The log is replaced atomically and
// durably: the trimmed copy is synced before it is renamed over the log,
// and the directory after, so a crash leaves the whole log or the whole
// trimmed one, never an empty file where the log was.
func TrimLog(path string, max int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() <= max {
		return err
	}
	tail := make([]byte, max)
	if _, err := f.ReadAt(tail, st.Size()-max); err != nil && err != io.EOF {
		return err
	}
	if i := bytes.IndexByte(tail, '\n'); i >= 0 && i < len(tail)-1 {
		tail = tail[i+1:]
	}
	cut := st.Size() - int64(len(tail))
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".trim-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600: give it the log's own mode, so that
	// a trimmed log reads like every other.
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	fmt.Fprintf(tmp, "[ork: the first %d bytes of this log were cut; it keeps the last %d]\n", cut, len(tail))
	if _, err := tmp.Write(tail); err != nil {
		tmp.Close()
		return err
	}
	// Durability: the trimmed copy is on disk before it replaces the log.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Durability: the replacement survives a crash.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
