package filedb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ork-run/ork/model"
)

// Subdirectories of the database directory.
const (
	WorkflowsDir = "workflows"
	RunsDir      = "runs"
	TasksDir     = "tasks"
	LogsDir      = "logs"
	LockFile     = "scheduler.lock"
)

// Options tune a DB. The zero value is right for most uses.
type Options struct {
	// Logger receives reports of damaged files and watcher trouble.
	// Default: slog.Default().
	Logger *slog.Logger
	// RescanInterval bounds how often the scheduler's index looks at runs/
	// for files whose fsnotify event was lost. Default 1s.
	RescanInterval time.Duration
}

// DB is a Database on JSON files under one directory. It is safe for
// concurrent use.
type DB struct {
	root     string
	rootFile *os.File
	// syncFSMin is the smallest batch synced with one syncfs (see
	// useSyncFS); tests change it to check both ways.
	syncFSMin int
	log       *slog.Logger
	rescan    time.Duration
	ops       sysOps // the system calls of durable writes (a seam for tests)
	hooks     testHooks

	mu      sync.Mutex
	idx     *index // nil until the first scheduler-side call
	watcher *fsnotify.Watcher
	changes chan struct{}
	stop    chan struct{}
	closed  bool
	wg      sync.WaitGroup

	dirtyMu     sync.Mutex
	dirty       map[string]bool // run ids fsnotify reported
	forceRescan bool

	trash   chan []string // old file versions to delete in the background
	spareMu sync.Mutex
	spare   []string // recycled inodes in .spare/ for later writes

	reportMu sync.Mutex
	reported map[string]time.Time // damaged file -> mtime when reported

	schedMu sync.Mutex // serialises this process's schedule state writes (schedule.go)
}

var _ model.Database = (*DB)(nil)
var _ model.Notifier = (*DB)(nil)
var _ model.SchedulerLocker = (*DB)(nil)

// Init creates the directory layout of a database at dir. It is harmless to
// run on an existing one.
func Init(dir string) error { return initWith(dir, realOps) }

func initWith(dir string, ops sysOps) error {
	for _, sub := range []string{"", WorkflowsDir, RunsDir, TasksDir, LogsDir, spareDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	// Durability: the new directories survive a crash.
	for _, d := range []string{filepath.Dir(filepath.Clean(dir)), dir} {
		if err := ops.syncFile(d); err != nil {
			return err
		}
	}
	return nil
}

// checkDir says whether dir is an ork directory, one Init made: it must
// hold workflows/ and runs/. Nothing is created in any other directory, so
// a --dir that names a project (not its .ork) or any other folder is an
// error, not a new, empty database.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no ork directory at %s: run `ork init` first", dir)
		}
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	for _, sub := range []string{WorkflowsDir, RunsDir} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			if st, err := os.Stat(filepath.Join(dir, ".ork")); err == nil && st.IsDir() {
				return fmt.Errorf("%s is not an ork directory (it has no %s/), but %s is: give that one", dir, sub, filepath.Join(dir, ".ork"))
			}
			return fmt.Errorf("%s is not an ork directory (it has no %s/): run `ork init` to make one", dir, sub)
		}
	}
	return nil
}

// Open opens the database at dir, which Init must have created.
func Open(dir string, opts Options) (*DB, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	for _, sub := range []string{WorkflowsDir, RunsDir, TasksDir, LogsDir, spareDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	rf, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	d := &DB{
		root:      dir,
		rootFile:  rf,
		log:       opts.Logger,
		rescan:    opts.RescanInterval,
		ops:       realOps,
		syncFSMin: syncFSMin,
		changes:   make(chan struct{}, 1),
		stop:      make(chan struct{}),
		reported:  make(map[string]time.Time),
		trash:     make(chan []string, 1024),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.rescan <= 0 {
		d.rescan = time.Second
	}
	d.wg.Add(1)
	go d.deleter()
	return d, nil
}

// Dir returns the database directory.
func (d *DB) Dir() string { return d.root }

// LogDir returns the directory where task logs belong.
func (d *DB) LogDir() string { return filepath.Join(d.root, LogsDir) }

// Close stops the watcher and releases the database.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stop)
	w := d.watcher
	d.mu.Unlock()
	if w != nil {
		w.Close()
	}
	d.wg.Wait()
	return d.rootFile.Close()
}

func (d *DB) workflowPath(name string) string {
	return filepath.Join(d.root, WorkflowsDir, name+".json")
}

func (d *DB) runPath(id string) string { return filepath.Join(d.root, RunsDir, id+".json") }

func (d *DB) taskDir(runID string) string { return filepath.Join(d.root, TasksDir, runID) }

func (d *DB) taskPath(t *model.Task) string {
	return filepath.Join(d.taskDir(t.RunID), url.PathEscape(t.Name)+"."+strconv.Itoa(t.TaskIndex)+".json")
}

// checkID refuses ids that are not plain file names.
func checkID(kind, id string) error {
	if id == "" || strings.ContainsAny(id, "/\\\x00") || strings.HasPrefix(id, ".") {
		return fmt.Errorf("invalid %s id %q", kind, id)
	}
	return nil
}

func encode(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// report logs a damaged file once (again only if it changes).
func (d *DB) report(path string, err error) {
	var mt time.Time
	if st, serr := os.Stat(path); serr == nil {
		mt = st.ModTime()
	}
	d.reportMu.Lock()
	prev, seen := d.reported[path]
	d.reported[path] = mt
	d.reportMu.Unlock()
	if !seen || !prev.Equal(mt) {
		d.log.Error("damaged file left as it is; fix or remove it", "err", err.Error())
	}
}

// ---- workflows ----

// CreateWorkflow stores a new workflow as workflows/<name>.json.
func (d *DB) CreateWorkflow(ctx context.Context, w *model.Workflow) error {
	w.Normalize()
	if err := w.Validate(); err != nil {
		return fmt.Errorf("workflow %q: %w", w.Name, err)
	}
	now := time.Now().UTC()
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now
	}
	if w.UpdatedAt.IsZero() {
		w.UpdatedAt = w.CreatedAt
	}
	data, err := encode(w)
	if err != nil {
		return err
	}
	if err := d.createExclusive(d.workflowPath(w.Name), data); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("workflow %q: %w", w.Name, model.ErrExists)
		}
		return fmt.Errorf("create workflow %q: %w", w.Name, err)
	}
	return nil
}

func (d *DB) readWorkflow(path string) (*model.Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return model.DecodeWorkflowFile(path, data)
}

// GetWorkflow reads workflows/<name>.json.
func (d *DB) GetWorkflow(ctx context.Context, name string) (*model.Workflow, error) {
	if err := model.ValidateName(name); err != nil {
		return nil, fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	w, err := d.readWorkflow(d.workflowPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

// ListWorkflows reads every workflow file; damaged ones are in the error.
func (d *DB) ListWorkflows(ctx context.Context) ([]*model.Workflow, error) {
	ents, err := os.ReadDir(filepath.Join(d.root, WorkflowsDir))
	if err != nil {
		return nil, err
	}
	var out []*model.Workflow
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		name := strings.TrimSuffix(n, ".json")
		w, err := d.GetWorkflow(ctx, name)
		if err != nil {
			if errors.Is(err, model.ErrNotFound) && model.ValidateName(name) != nil {
				err = &model.FileError{Path: filepath.Join(d.root, WorkflowsDir, n), Err: model.ValidateName(name)}
			} else if errors.Is(err, model.ErrNotFound) {
				continue // removed while listing
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b *model.Workflow) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

// DeleteWorkflow removes workflows/<name>.json. Its runs stay.
func (d *DB) DeleteWorkflow(ctx context.Context, name string) error {
	if model.ValidateName(name) != nil {
		return fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
	}
	p := d.workflowPath(name)
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("workflow %q: %w", name, model.ErrNotFound)
		}
		return err
	}
	// Durability: the removal survives a crash.
	return d.ops.syncFile(filepath.Dir(p))
}

// ---- runs ----

// CreateRun stores a new run as runs/<id>.json. A running scheduler learns of
// it from fsnotify.
func (d *DB) CreateRun(ctx context.Context, r *model.Run) error {
	if err := checkID("run", r.ID); err != nil {
		return err
	}
	if r.Status == "" {
		r.Status = model.RunPending
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().UTC()
	}
	data, err := encode(r)
	if err != nil {
		return err
	}
	if err := d.createExclusive(d.runPath(r.ID), data); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("run %s: %w", r.ID, model.ErrExists)
		}
		return fmt.Errorf("create run %s: %w", r.ID, err)
	}
	d.indexCreated(r, int64(len(data)))
	d.notify()
	return nil
}

// indexCreated puts a run this DB just created into the scheduler's index.
// The watcher may have brought the new file in already — and the scheduler
// may even have finished the run since: only a run the index has never
// seen is added, or a finished run would start again.
func (d *DB) indexCreated(r *model.Run, size int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idx != nil && !d.idx.known[r.ID] {
		d.idx.known[r.ID] = true
		if !r.Status.Terminal() {
			d.idx.addRun(copyRun(r)).runSize = size
		}
	}
}

func (d *DB) readRun(path string) (*model.Run, error) {
	r, _, err := d.readRunSized(path)
	return r, err
}

// readRunSized reads a run file and returns its size too.
func (d *DB) readRunSized(path string) (*model.Run, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	r, err := model.DecodeRun(path, data)
	return r, int64(len(data)), err
}

func checkRun(path string, data []byte) error {
	_, err := model.DecodeRun(path, data)
	return err
}

func checkTask(path string, data []byte) error {
	_, err := model.DecodeTask(path, data)
	return err
}

// GetRun returns a run by id.
func (d *DB) GetRun(ctx context.Context, id string) (*model.Run, error) {
	if checkID("run", id) != nil {
		return nil, fmt.Errorf("run %q: %w", id, model.ErrNotFound)
	}
	d.mu.Lock()
	if d.idx != nil {
		if e := d.idx.runs[id]; e != nil {
			cp := copyRun(e.run)
			d.mu.Unlock()
			return cp, nil
		}
	}
	d.mu.Unlock()
	r, err := d.readRun(d.runPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("run %q: %w", id, model.ErrNotFound)
	}
	return r, err
}

// ListRuns reads the run files, newest first. Damaged files are reported
// and skipped (ListRunsDamaged returns them).
func (d *DB) ListRuns(ctx context.Context, f model.RunFilter) ([]*model.Run, error) {
	runs, _, err := d.ListRunsDamaged(ctx, f)
	return runs, err
}

// ListRunsDamaged is ListRuns that also returns the run files that do not
// parse (each a *model.FileError when the file is damaged), so that a
// listing can show them as damaged rather than leave them out.
func (d *DB) ListRunsDamaged(ctx context.Context, f model.RunFilter) ([]*model.Run, []error, error) {
	if f.Status != "" && !f.Status.Terminal() {
		// Unfinished runs: the scheduler's index has them all.
		d.mu.Lock()
		if d.idx != nil {
			d.refresh()
			var out []*model.Run
			for i := len(d.idx.order) - 1; i >= 0; i-- {
				r := d.idx.order[i].run
				if r.Status == f.Status && (f.WorkflowName == "" || r.WorkflowName == f.WorkflowName) {
					out = append(out, copyRun(r))
				}
				if f.Limit > 0 && len(out) == f.Limit {
					break
				}
			}
			d.mu.Unlock()
			return out, nil, nil
		}
		d.mu.Unlock()
	}
	dir := filepath.Join(d.root, RunsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var out []*model.Run
	var damaged []error
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		r, err := d.readRun(filepath.Join(dir, n))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				d.report(filepath.Join(dir, n), err)
				damaged = append(damaged, err)
			}
			continue
		}
		if f.WorkflowName != "" && r.WorkflowName != f.WorkflowName || f.Status != "" && r.Status != f.Status {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *model.Run) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, damaged, nil
}

// ---- tasks (reads that need no index) ----

// readTasks reads every task file of a run from disk, sorted by name and
// index. Damaged files are reported and skipped; their errors are returned
// too.
func (d *DB) readTasks(runID string) ([]*model.Task, []error, error) {
	ts, _, bad, err := d.readTasksSized(runID)
	return ts, bad, err
}

// readTasksSized is readTasks that also returns each file's size, by task id.
func (d *DB) readTasksSized(runID string) ([]*model.Task, map[string]int64, []error, error) {
	dir := d.taskDir(runID)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil, nil
		}
		return nil, nil, nil, err
	}
	out := make([]*model.Task, 0, len(ents))
	sizes := make(map[string]int64, len(ents))
	var bad []error
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		t, err := model.DecodeTask(p, data)
		if err != nil {
			d.report(p, err)
			bad = append(bad, err)
			continue
		}
		out = append(out, t)
		sizes[t.ID] = int64(len(data))
	}
	sortTasks(out)
	return out, sizes, bad, nil
}

// DamagedTasks returns the task files of a run that do not parse (each a
// *model.FileError), read from disk.
func (d *DB) DamagedTasks(ctx context.Context, runID string) ([]error, error) {
	if checkID("run", runID) != nil {
		return nil, fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	_, bad, err := d.readTasks(runID)
	return bad, err
}

func sortTasks(ts []*model.Task) {
	slices.SortFunc(ts, func(a, b *model.Task) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.TaskIndex - b.TaskIndex
	})
}

// ListTasks returns the tasks of a run. On the scheduler's handle an
// unfinished run none of whose tasks has finished is listed from the
// index; any other is read from its files, which hold what the index
// holds (the index changes only after the files it describes are in
// place) and the finished tasks the index no longer keeps.
func (d *DB) ListTasks(ctx context.Context, runID string) ([]*model.Task, error) {
	if checkID("run", runID) != nil {
		return nil, fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	if out, ok := d.indexedTasks(runID); ok {
		sortTasks(out)
		return out, nil
	}
	ts, _, err := d.readTasks(runID)
	return ts, err
}

// indexedTasks returns copies of the tasks of run runID from the
// scheduler's index, unsorted, when the index holds them all: an
// unfinished run none of whose tasks has finished (the index drops
// finished tasks). Otherwise the run's files tell.
func (d *DB) indexedTasks(runID string) ([]*model.Task, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idx == nil {
		return nil, false
	}
	e := d.idx.runs[runID]
	if e == nil || len(e.done) > 0 {
		return nil, false
	}
	out := make([]*model.Task, 0, len(e.tasks))
	for _, t := range e.tasks {
		cp := *t
		out = append(out, &cp)
	}
	return out, true
}

// TaskCounts counts the tasks of a run by status.
func (d *DB) TaskCounts(ctx context.Context, runID string) (map[model.TaskStatus]int, error) {
	d.mu.Lock()
	if d.idx != nil {
		if e := d.idx.runs[runID]; e != nil {
			out := make(map[model.TaskStatus]int, len(e.counts))
			for k, v := range e.counts {
				if v != 0 {
					out[k] = v
				}
			}
			d.mu.Unlock()
			return out, nil
		}
	}
	d.mu.Unlock()
	// A finished run carries its counts, and so does a large run while it
	// runs (as of its last task update; tasks not counted yet are pending):
	// one file read, not one per task.
	if r, err := d.readRun(d.runPath(runID)); err == nil && r.TaskCounts != nil {
		out := make(map[model.TaskStatus]int, len(r.TaskCounts))
		for k, v := range r.TaskCounts {
			if v != 0 {
				out[k] = v
			}
		}
		return out, nil
	}
	ts, err := d.ListTasks(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make(map[model.TaskStatus]int)
	for _, t := range ts {
		out[t.Status]++
	}
	return out, nil
}

var _ model.RunTaskCounter = (*DB)(nil)

// RunTaskCounts counts the tasks of each run of ids by status: the
// unfinished runs from the index, under one lock; the others one by one,
// as TaskCounts does.
func (d *DB) RunTaskCounts(ctx context.Context, ids []string) (map[string]map[model.TaskStatus]int, error) {
	out := make(map[string]map[model.TaskStatus]int, len(ids))
	var rest []string
	d.mu.Lock()
	for _, id := range ids {
		var e *runEntry
		if d.idx != nil {
			e = d.idx.runs[id]
		}
		if e == nil {
			rest = append(rest, id)
			continue
		}
		c := make(map[model.TaskStatus]int, len(e.counts))
		for k, v := range e.counts {
			if v != 0 {
				c[k] = v
			}
		}
		out[id] = c
	}
	d.mu.Unlock()
	var first error
	for _, id := range rest {
		c, err := d.TaskCounts(ctx, id)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if c == nil {
			c = map[model.TaskStatus]int{}
		}
		out[id] = c
	}
	return out, first
}
