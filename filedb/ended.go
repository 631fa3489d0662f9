package filedb

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// EndedFile lists the run files that a scheduler's index found to hold
// ended runs, each with what identified the file when it was read: its
// size, its modification time and its inode. A scheduler starting on a
// project with a long history then reads only the run files that are new
// or changed since (a stat(2) of each, from the directory listing),
// instead of reading and decoding every one of them (docs/PERFORMANCE.md).
//
// It is a hint, never a record: it is written without a sync, a line that
// does not match the file as it is now is ignored (the file is read whole,
// as if the line were not there), and a missing or damaged list is only
// slower. A file listed was read whole and found to parse when it was
// listed, and has not changed since, so skipping it reports no less: a
// damaged run file is never listed. Deleting the list is always safe.
const EndedFile = "ended-runs"

// endedHeader is the first line of EndedFile; a list without it is ignored.
const endedHeader = "ork ended runs v1: id size mtime_ns inode"

// endedSettle is how much older than the start of the scan a file's
// modification time must be for the file to be listed. A file system keeps
// times to a granule (a nanosecond on ext4 with large inodes; a second, or
// two, on others), and a spare inode's number comes back to the same run
// file within milliseconds (see commit), so a version written in the same
// granule as the one read, of the same size, would carry its stamp. A file
// last changed before scan start - endedSettle, and changed again after the
// scan began, gets a time at least scan start - endedSettle: another stamp.
// (The rule git uses for its index: a racily clean entry is checked again.)
const endedSettle = 3 * time.Second

// fileStamp is what identifies a version of a file: a rewrite (a new inode,
// by rename) or an edit in place (a new time, most often a new size)
// changes it; and a version listed is settled (endedSettle), so that a
// later one cannot share its time.
type fileStamp struct {
	size  int64
	mtime int64
	ino   uint64
}

// stampOf returns the stamp of a directory entry's file.
func stampOf(e fs.DirEntry) (fileStamp, bool) {
	info, err := e.Info()
	if err != nil {
		return fileStamp{}, false
	}
	return fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano(), ino: inode(info)}, true
}

// readEnded reads the list of ended runs; nil if there is none or it does
// not parse.
func (d *DB) readEnded() map[string]fileStamp {
	data, err := os.ReadFile(filepath.Join(d.root, EndedFile))
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 4096)
	if !sc.Scan() || sc.Text() != endedHeader {
		return nil
	}
	out := make(map[string]fileStamp)
	for sc.Scan() {
		// A line that does not parse names no run: that run is read.
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		mtime, err2 := strconv.ParseInt(f[2], 10, 64)
		ino, err3 := strconv.ParseUint(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out[f[0]] = fileStamp{size: size, mtime: mtime, ino: ino}
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}

// writeEnded replaces the list of ended runs: atomic (a temporary file in
// runs/, renamed), not durable — a crash may lose it, which costs the next
// start a full read of the history, nothing else.
func (d *DB) writeEnded(ended map[string]fileStamp) {
	var b bytes.Buffer
	b.WriteString(endedHeader + "\n")
	for id, st := range ended {
		if strings.ContainsFunc(id, unicode.IsSpace) {
			continue // a name no line can hold (by hand): read each time
		}
		fmt.Fprintf(&b, "%s %d %d %d\n", id, st.size, st.mtime, st.ino)
	}
	tmp, err := writeTemp(filepath.Join(d.root, RunsDir), b.Bytes())
	if err != nil {
		return
	}
	if err := os.Rename(tmp, filepath.Join(d.root, EndedFile)); err != nil {
		os.Remove(tmp)
	}
}
