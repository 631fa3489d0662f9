package filedb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ork-run/ork/model"
)

const tmpPrefix = ".tmp-"

// fileWrite is one file of a batch: its final path and its contents.
type fileWrite struct {
	path string
	data []byte
	// replace: the write replaces a record this DB knows. The record must
	// still be there, and be the version the DB last wrote or read — size
	// bytes long — or at least still parse (by check): a record removed or
	// damaged behind the DB's back is never written over.
	replace bool
	size    int64
	check   func(path string, data []byte) error
}

// sysOps are the system calls that make a write durable and visible. They
// are a seam: the tests record their order (the data synced before the
// rename that shows it, the rename before the sync of its directory) and
// make one fail. Production code uses realOps only.
type sysOps struct {
	syncFile func(path string) error   // fsync(2) of a file or a directory
	syncData func(path string) error   // fdatasync(2) of a file (fsync(2) where there is none)
	syncFS   func(root *os.File) error // syncfs(2); errors.ErrUnsupported where there is none
	rename   func(oldpath, newpath string) error
	link     func(oldpath, newpath string) error
}

var realOps = sysOps{syncFile: fsyncPath, syncData: fdatasyncPath, syncFS: syncFS, rename: os.Rename, link: os.Link}

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

// How a batch is made durable. One syncfs(2) is one flush and one journal
// commit for the whole file system; a sync of each file and directory
// costs a journal commit each (several in flight share some). On ext4 a
// journal commit waits for the data of every file other programs have
// growing in it, so neither escapes their writes; measured side by side
// (docs/PERFORMANCE.md), one syncfs was faster for every batch of two
// files or more, quiet or not, and fdatasync for one file. So a batch of
// syncFSMin files or more takes one syncfs, a smaller one (and every batch
// where there is no syncfs) syncs each file and directory.
const (
	syncFSMin = 2
	// syncWorkers bounds the syncs of one batch in flight at once.
	syncWorkers = 16
)

// useSyncFS reports whether a batch of n files is synced with one syncfs.
func (d *DB) useSyncFS(n int) bool { return n >= d.syncFSMin }

// syncAll makes the given (closed) files durable — their data with
// fdatasync, or directories with fsync — each on its own, several at
// once, or with one syncfs for a large batch (see useSyncFS).
func (d *DB) syncAll(paths []string, dirs, bulk bool) error {
	if bulk {
		if err := d.ops.syncFS(d.rootFile); !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	syncOne := d.ops.syncData
	if dirs {
		syncOne = d.ops.syncFile
	}
	if len(paths) == 1 {
		return syncOne(paths[0])
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for range min(len(paths), syncWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(paths) {
					return
				}
				if err := syncOne(paths[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
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

// diskError reports whether err is a failure of the disk as a whole (full,
// read-only, failing), which fails a whole batch, rather than of one
// record's file or directory, which fails only that record.
func diskError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE, syscall.EINTR:
		return true
	}
	return false
}

// current checks that the record a write replaces is still the one the DB
// knows (see fileWrite.replace).
func (d *DB) current(w fileWrite) error {
	st, err := os.Lstat(w.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			dir := filepath.Dir(w.path)
			if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
				return fmt.Errorf("%s: its directory %s was removed: %w", w.path, dir, model.ErrNotFound)
			}
			return fmt.Errorf("%s was removed: %w", w.path, model.ErrNotFound)
		}
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: %w", w.path, model.ErrDamaged)
	}
	if w.size >= 0 && st.Size() == w.size || w.check == nil {
		return nil
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return err
	}
	if err := w.check(w.path, data); err != nil {
		return fmt.Errorf("%w: %w", model.ErrDamaged, err)
	}
	return nil
}

// commit writes a batch of files atomically and durably (see the package
// doc): temporary files, one sync for all of them, renames, one sync per
// directory. When it returns an error nothing of the batch is acknowledged
// (a failure of the disk: the caller writes the batch again later).
//
// A failure that belongs to one record — the record it replaces was
// removed or damaged by hand, its directory is gone — fails only that
// record: its entry in the returned slice (nil, or one entry per write) is
// set, its file is left exactly as it is, and every other record is
// written as if it were not in the batch.
//
// Creating an inode and freeing one are the expensive parts of a small
// write on ext4, far more than the rename. So commit recycles: a replaced
// version is not freed but kept under a name in .spare/, and becomes the
// temporary file of a later write (overwritten, then renamed into place).
// A crash leaves only spare inodes in .spare/, which the next scheduler
// adopts or removes.
func (d *DB) commit(ws []fileWrite, newDirs []string) ([]error, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	var failed []error
	fail := func(i int, err error) {
		if failed == nil {
			failed = make([]error, len(ws))
		}
		failed[i] = err
	}
	tmps := make([]string, len(ws)) // "" for a failed record
	var live []string
	cleanup := func() { d.discard(live) }
	for i, w := range ws {
		if w.replace {
			if err := d.current(w); err != nil {
				if diskError(err) {
					cleanup()
					return nil, fmt.Errorf("read %s: %w", w.path, err)
				}
				fail(i, err)
				continue
			}
		}
		t, err := d.writeSpare(w.data)
		if err != nil {
			t, err = writeTemp(filepath.Dir(w.path), w.data)
		}
		if err != nil {
			err = fmt.Errorf("write %s: %w", w.path, err)
			if diskError(err) {
				cleanup()
				return nil, err
			}
			fail(i, err)
			continue
		}
		tmps[i] = t
		live = append(live, t)
	}
	if len(live) == 0 {
		// Durability: directories made for the batch survive a crash even
		// when none of its records could be written.
		for _, nd := range newDirs {
			if err := d.ops.syncFile(filepath.Dir(nd)); err != nil {
				return nil, fmt.Errorf("sync directory %s: %w", filepath.Dir(nd), err)
			}
		}
		return failed, nil
	}
	// Durability: the contents of every new file reach the disk before any
	// rename can make it visible, so a crash never shows a half-written file.
	bulk := d.useSyncFS(len(live))
	if err := d.syncAll(live, false, bulk); err != nil {
		cleanup()
		return nil, fmt.Errorf("sync %s: %w", d.root, err)
	}
	dirs := make(map[string]struct{}, 2)
	var replaced []string
	for i, w := range ws {
		if tmps[i] == "" {
			continue
		}
		// The version being replaced is kept as a spare inode. Until the
		// rename succeeds it is still the live record: it becomes a spare
		// only then, and is unlinked if the rename fails (a spare is
		// written into, and must never be linked to a record).
		tn := d.trashName()
		linked := d.ops.link(w.path, tn) == nil
		if err := d.ops.rename(tmps[i], w.path); err != nil {
			if linked {
				os.Remove(tn)
			}
			err = fmt.Errorf("rename into %s: %w", w.path, err)
			if diskError(err) {
				for j := i; j < len(ws); j++ {
					if tmps[j] != "" {
						d.discard([]string{tmps[j]})
					}
				}
				d.recycle(replaced)
				return nil, err
			}
			d.discard([]string{tmps[i]})
			fail(i, err)
			continue
		}
		if linked {
			replaced = append(replaced, tn)
		}
		dirs[filepath.Dir(w.path)] = struct{}{}
	}
	d.recycle(replaced)
	for _, nd := range newDirs {
		dirs[filepath.Dir(nd)] = struct{}{}
	}
	// Durability: the renames (the directory entries) survive a crash. After
	// this the batch is acknowledged. The directories are synced as the
	// files were: one syncfs where the files took one, else each on its own.
	if bulk {
		if err := d.ops.syncFS(d.rootFile); !errors.Is(err, errors.ErrUnsupported) {
			if err != nil {
				return nil, fmt.Errorf("sync directories of %s: %w", d.root, err)
			}
			return failed, nil
		}
	}
	paths := make([]string, 0, len(dirs))
	for dir := range dirs {
		paths = append(paths, dir)
	}
	if err := d.syncAll(paths, true, false); err != nil {
		return nil, fmt.Errorf("sync directories of %s: %w", d.root, err)
	}
	return failed, nil
}

// maxSpare bounds the recycled inodes kept for later writes.
const maxSpare = 4096

// writeSpare writes data over a recycled inode and returns its path. A
// spare that is linked anywhere else (a version a failed rename left
// linked to its record) is never written into: it is unlinked instead.
func (d *DB) writeSpare(data []byte) (string, error) {
	for {
		d.spareMu.Lock()
		n := len(d.spare)
		if n == 0 {
			d.spareMu.Unlock()
			return "", os.ErrNotExist
		}
		p := d.spare[n-1]
		d.spare = d.spare[:n-1]
		d.spareMu.Unlock()
		if linkCount(p) != 1 {
			os.Remove(p)
			continue
		}
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
func (d *DB) createExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Durability: the contents are on disk before the name appears.
	if err := d.ops.syncFile(tmp); err != nil {
		return err
	}
	if err := d.ops.link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ErrExist
		}
		return err
	}
	// Durability: the new name survives a crash.
	return d.ops.syncFile(dir)
}
