package filedb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

const tmpPrefix = ".tmp-"

// fileWrite is one file of a batch: its final path and its contents.
type fileWrite struct {
	path string
	data []byte
}

// tmpSeq numbers this process's temporary files; with the pid in the name,
// two processes never pick the same one, and a scheduler can tell which
// leftovers belong to dead processes.
var tmpSeq atomic.Uint64

func tmpName(dir string) string {
	return filepath.Join(dir, tmpPrefix+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(tmpSeq.Add(1), 10))
}

// isTemp reports whether a directory entry is a temporary file of a write.
func isTemp(name string) bool { return strings.HasPrefix(name, tmpPrefix) }

// tmpOwner returns the pid in a temporary file's name, or 0.
func tmpOwner(name string) int {
	rest, ok := strings.CutPrefix(name, tmpPrefix)
	if !ok {
		return 0
	}
	pid, _, _ := strings.Cut(rest, "-")
	n, _ := strconv.Atoi(pid)
	return n
}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeTemp writes data to a new temporary file in dir and returns its path.
func writeTemp(dir string, data []byte) (string, error) {
	name := tmpName(dir)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// commit writes a batch of files atomically and durably (see the package
// doc): temporary files, one sync for all of them, renames, one sync per
// directory. When it fails before the renames nothing visible has changed.
//
// Creating an inode and freeing one are the expensive parts of a small
// write on ext4, far more than the rename. So commit recycles: a replaced
// version is not freed but kept under a name in .spare/, and becomes the
// temporary file of a later write (overwritten, then renamed into place).
// A crash leaves only spare inodes in .spare/, which the next scheduler
// adopts or removes.
func (d *DB) commit(ws []fileWrite, newDirs []string) error {
	if len(ws) == 0 {
		return nil
	}
	tmps := make([]string, 0, len(ws))
	cleanup := func() { d.discard(tmps) }
	dirs := make(map[string]struct{}, 2)
	for _, w := range ws {
		dir := filepath.Dir(w.path)
		dirs[dir] = struct{}{}
		t, err := d.writeSpare(w.data)
		if err != nil {
			t, err = writeTemp(dir, w.data)
		}
		if err != nil {
			cleanup()
			return fmt.Errorf("write %s: %w", w.path, err)
		}
		tmps = append(tmps, t)
	}
	// Durability: the contents of every new file reach the disk before any
	// rename can make it visible, so a crash never shows a half-written file.
	if err := syncFiles(d.rootFile, tmps); err != nil {
		cleanup()
		return fmt.Errorf("sync %s: %w", d.root, err)
	}
	var replaced []string
	for i, w := range ws {
		tn := d.trashName()
		if err := os.Link(w.path, tn); err == nil {
			replaced = append(replaced, tn)
		}
		if err := os.Rename(tmps[i], w.path); err != nil {
			d.discard(tmps[i:])
			d.recycle(replaced)
			return fmt.Errorf("rename into %s: %w", w.path, err)
		}
	}
	d.recycle(replaced)
	for _, nd := range newDirs {
		dirs[filepath.Dir(nd)] = struct{}{}
	}
	// Durability: the renames (the directory entries) survive a crash. After
	// this the batch is acknowledged. Several directories take one syncfs.
	if len(dirs) > 1 {
		paths := make([]string, 0, len(dirs))
		for dir := range dirs {
			paths = append(paths, dir)
		}
		if err := syncFiles(d.rootFile, paths); err != nil {
			return fmt.Errorf("sync directories of %s: %w", d.root, err)
		}
		return nil
	}
	for dir := range dirs {
		if err := fsyncPath(dir); err != nil {
			return fmt.Errorf("sync directory %s: %w", dir, err)
		}
	}
	return nil
}

// maxSpare bounds the recycled inodes kept for later writes.
const maxSpare = 4096

// writeSpare writes data over a recycled inode and returns its path.
func (d *DB) writeSpare(data []byte) (string, error) {
	d.spareMu.Lock()
	n := len(d.spare)
	if n == 0 {
		d.spareMu.Unlock()
		return "", os.ErrNotExist
	}
	p := d.spare[n-1]
	d.spare = d.spare[:n-1]
	d.spareMu.Unlock()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.discard([]string{p})
		return "", err
	}
	return p, nil
}

// recycle keeps replaced versions for writeSpare, up to maxSpare.
func (d *DB) recycle(paths []string) {
	d.spareMu.Lock()
	keep := min(len(paths), maxSpare-len(d.spare))
	d.spare = append(d.spare, paths[:keep]...)
	d.spareMu.Unlock()
	d.discard(paths[keep:])
}

// spareDir holds replaced versions kept as spare inodes for later writes
// (see commit). Nothing in it is a record; it is safe to empty when no
// scheduler runs.
const spareDir = ".spare"

func (d *DB) trashName() string {
	return filepath.Join(d.root, spareDir, strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(tmpSeq.Add(1), 10))
}

// discard hands old file versions to the background deleter.
func (d *DB) discard(paths []string) {
	if len(paths) == 0 {
		return
	}
	select {
	case d.trash <- paths:
	default: // the deleter is behind: delete here rather than queue without bound
		for _, p := range paths {
			os.Remove(p)
		}
	}
}

// deleter removes discarded old versions until the DB closes.
func (d *DB) deleter() {
	defer d.wg.Done()
	for {
		select {
		case ps := <-d.trash:
			for _, p := range ps {
				os.Remove(p)
			}
		case <-d.stop:
			// Spare inodes stay for the next scheduler to adopt: deleting
			// thousands of files would only slow this process's exit.
			for {
				select {
				case ps := <-d.trash:
					for _, p := range ps {
						os.Remove(p)
					}
				default:
					return
				}
			}
		}
	}
}

// adoptSpares takes over what dead processes left in .spare/: a version
// that nothing else links becomes a spare inode of this DB; anything else
// (a version a crash left linked to a live record) is removed.
func (d *DB) adoptSpares() {
	dir := filepath.Join(d.root, spareDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var drop []string
	d.spareMu.Lock()
	for _, e := range ents {
		pid, _, _ := strings.Cut(e.Name(), "-")
		n, _ := strconv.Atoi(pid)
		if n <= 0 || n == os.Getpid() || processAlive(n) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if len(d.spare) < maxSpare && linkCount(p) == 1 {
			d.spare = append(d.spare, p)
		} else {
			drop = append(drop, p)
		}
	}
	d.spareMu.Unlock()
	d.discard(drop)
}

// createExclusive writes a new file durably, failing with os.ErrExist when
// path exists. The link(2) of a complete temporary file makes the new file
// appear whole, and never replaces another process's file.
func createExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Durability: the contents are on disk before the name appears.
	if err := fsyncPath(tmp); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ErrExist
		}
		return err
	}
	// Durability: the new name survives a crash.
	return fsyncPath(dir)
}
