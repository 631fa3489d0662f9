package filedb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ork-run/ork/model"
)

var _ model.TaskStreamer = (*DB)(nil)

// streamKey is one task file of a run, placed by its name: a task's file
// is named after the task (taskPath), so the order of a run's tasks is
// known from the directory listing alone, before any record is read.
type streamKey struct {
	file  string
	rank  int // of the task's node (model.TaskOrder.Rank)
	name  string
	index int
	task  *model.Task // read already: a file whose name does not say the task
}

// StreamTasks calls fn with each task of a run in the run's task order
// (model.TaskOrder), reading one task file at a time: it lists the run's
// directory, sorts the file names, then reads and hands over each record
// in turn, so that the first comes before the last is read and only the
// names are held. Damaged files are reported and skipped, as ListTasks does.
// On the scheduler's own handle the tasks of an unfinished run none of
// whose tasks has finished come from its index (see ListTasks).
func (d *DB) StreamTasks(ctx context.Context, runID string, fn func(*model.Task) error) error {
	r, err := d.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	order := model.NewTaskOrder(r.Workflow)
	if ts, ok := d.indexedTasks(runID); ok {
		slices.SortFunc(ts, func(a, b *model.Task) int { return order.Compare(a.Name, a.TaskIndex, b.Name, b.TaskIndex) })
		for _, t := range ts {
			if err := fn(t); err != nil {
				return err
			}
		}
		return nil
	}

	dir := d.taskDir(runID)
	keys, err := d.listTaskFiles(ctx, dir)
	if err != nil {
		return err
	}
	for i := range keys {
		keys[i].rank = order.Rank(keys[i].name)
	}
	// The order of order.Compare, on the ranks found once per file.
	slices.SortFunc(keys, func(a, b streamKey) int {
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if a.index != b.index {
			return cmp.Compare(a.index, b.index)
		}
		return strings.Compare(a.file, b.file)
	})
	for i := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := keys[i].task
		keys[i].task = nil
		if t == nil {
			t, err = d.readTaskFile(filepath.Join(dir, keys[i].file))
			if err != nil {
				continue // gone since the listing, or damaged (reported)
			}
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// listTaskFiles lists the task files of a run's directory, a chunk of
// entries at a time. A file whose name is not a task's (name.index.json)
// is read at once to learn which task it holds.
func (d *DB) listTaskFiles(ctx context.Context, dir string) ([]streamKey, error) {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var keys []streamKey
	for {
		ents, err := f.ReadDir(4096)
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
				continue
			}
			k := streamKey{file: n}
			if name, index, ok := parseTaskFile(n); ok {
				k.name, k.index = name, index
			} else {
				t, err := d.readTaskFile(filepath.Join(dir, n))
				if err != nil {
					continue
				}
				k.name, k.index, k.task = t.Name, t.TaskIndex, t
			}
			keys = append(keys, k)
		}
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// parseTaskFile is the inverse of taskPath's file name.
func parseTaskFile(file string) (name string, index int, ok bool) {
	base := strings.TrimSuffix(file, ".json")
	dot := strings.LastIndexByte(base, '.')
	if dot < 0 {
		return "", 0, false
	}
	index, err := strconv.Atoi(base[dot+1:])
	if err != nil || index < 0 || strconv.Itoa(index) != base[dot+1:] {
		return "", 0, false
	}
	name, err = url.PathUnescape(base[:dot])
	if err != nil || url.PathEscape(name) != base[:dot] {
		return "", 0, false
	}
	return name, index, true
}

// readTaskFile reads one task file; a damaged one is reported.
func (d *DB) readTaskFile(p string) (*model.Task, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	t, err := model.DecodeTask(p, data)
	if err != nil {
		d.report(p, err)
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return t, nil
}
