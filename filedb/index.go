package filedb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ork-run/ork/model"
)

// runEntry is an unfinished run in the index, with its unfinished tasks.
//
// A task that has finished leaves tasks for done, which keeps only its id:
// a finished task never changes again (model.ApplyTaskUpdate refuses it),
// its status is in counts, and a reader that wants its record reads its
// file (ListTasks, StreamTasks). Held whole, the finished tasks of a run
// of 100,000 were most of the scheduler's memory (docs/PERFORMANCE.md).
type runEntry struct {
	run     *model.Run
	tasks   map[string]*model.Task // unfinished tasks, by id
	done    map[string]struct{}    // ids of the finished tasks
	queue   []string               // ids of pending tasks, in dispatch order
	head    int                    // queue[:head] has been dispatched
	queued  map[string]bool        // ids in queue[head:]
	counts  map[model.TaskStatus]int
	dirMade bool            // tasks/<run_id>/ exists
	damaged map[string]bool // task files that do not parse: never written over

	// The sizes of the files as this DB last wrote or read them: a file of
	// another size was changed behind its back, and is checked before it
	// is replaced (see fileWrite.replace).
	runSize int64
	sizes   map[string]int64 // by task id
	// broken says why no task of the run may start or be created: its
	// record or its tasks directory was damaged or removed by hand while
	// the run was unfinished. The run waits for a person.
	broken string
}

// countedRunTasks is the size from which a run's record carries its task
// counts while it runs, rewritten with every batch of its task updates, so
// that `ork status RUN` reads one file instead of every task's. A smaller
// run's tasks are counted from their files, which is fast enough.
const countedRunTasks = 1000

func newRunEntry(r *model.Run) *runEntry {
	return &runEntry{
		run:     r,
		tasks:   make(map[string]*model.Task),
		done:    make(map[string]struct{}),
		queued:  make(map[string]bool),
		counts:  make(map[model.TaskStatus]int),
		runSize: -1,
		sizes:   make(map[string]int64),
	}
}

// size is the known size of a task's file, or -1.
func (e *runEntry) size(id string) int64 {
	if n, ok := e.sizes[id]; ok {
		return n
	}
	return -1
}

// quarantine takes a task whose file could not be written out of the
// entry: it is neither dispatched nor counted, and its file is never
// written again by this DB. The run cannot end without it: it waits.
func (e *runEntry) quarantine(ix *index, t *model.Task, path string) {
	if old := e.tasks[t.ID]; old != nil {
		e.counts[old.Status]--
		delete(e.tasks, t.ID)
	}
	delete(e.sizes, t.ID)
	if ix != nil && ix.taskRun[t.ID] == e {
		delete(ix.taskRun, t.ID)
	}
	if e.damaged == nil {
		e.damaged = make(map[string]bool)
	}
	e.damaged[path] = true
}

// has reports whether the entry knows a task of that id, finished or not.
func (e *runEntry) has(id string) bool {
	if e.tasks[id] != nil {
		return true
	}
	_, ok := e.done[id]
	return ok
}

// put stores t (a fresh copy owned by the index), whose file is size bytes
// long, in the entry. A finished task is kept by its id only (see
// runEntry), and leaves ix.taskRun; an unfinished one of an indexed entry
// is found there. ix is nil for a detached entry.
func (e *runEntry) put(ix *index, t *model.Task, size int64) {
	if old := e.tasks[t.ID]; old != nil {
		e.counts[old.Status]--
	} else if _, ok := e.done[t.ID]; ok {
		return // finished: it never changes again
	}
	e.counts[t.Status]++
	if t.Status.Terminal() {
		delete(e.tasks, t.ID)
		delete(e.sizes, t.ID)
		e.done[t.ID] = struct{}{}
		if ix != nil && ix.taskRun[t.ID] == e {
			delete(ix.taskRun, t.ID)
		}
		return
	}
	e.tasks[t.ID] = t
	e.sizes[t.ID] = size
	if ix != nil && ix.runs[t.RunID] == e {
		ix.taskRun[t.ID] = e
	}
	if t.Status == model.TaskPending && !e.queued[t.ID] {
		e.queue = append(e.queue, t.ID)
		e.queued[t.ID] = true
	}
}

// sortQueue puts the pending queue in task order (after loading from disk).
func (e *runEntry) sortQueue() {
	// Tasks taken out of the entry (quarantined) leave the queue too.
	q := slices.DeleteFunc(e.queue[e.head:], func(id string) bool {
		if e.tasks[id] == nil {
			delete(e.queued, id)
			return true
		}
		return false
	})
	e.queue = e.queue[:e.head+len(q)]
	slices.SortFunc(q, func(a, b string) int {
		ta, tb := e.tasks[a], e.tasks[b]
		if c := strings.Compare(ta.Name, tb.Name); c != 0 {
			return c
		}
		return ta.TaskIndex - tb.TaskIndex
	})
}

// index is the scheduler's in-memory view of unfinished work.
type index struct {
	runs    map[string]*runEntry // unfinished runs by id
	order   []*runEntry          // unfinished runs, oldest first
	taskRun map[string]*runEntry // task id -> its run
	known   map[string]bool      // ids of every run file seen that parsed
	cancels map[string]bool      // runs with a cancel marker

	lastRescan time.Time
	runsMod    time.Time
}

func newIndex() *index {
	return &index{
		runs:    make(map[string]*runEntry),
		taskRun: make(map[string]*runEntry),
		known:   make(map[string]bool),
		cancels: make(map[string]bool),
	}
}

func runLess(a, b *model.Run) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// addRun puts an unfinished run in the index and returns its entry.
func (ix *index) addRun(r *model.Run) *runEntry {
	if e := ix.runs[r.ID]; e != nil {
		return e
	}
	e := newRunEntry(r)
	ix.runs[r.ID] = e
	i, _ := slices.BinarySearchFunc(ix.order, e, func(a, b *runEntry) int { return runLess(a.run, b.run) })
	ix.order = slices.Insert(ix.order, i, e)
	return e
}

func (ix *index) removeRun(id string) {
	e := ix.runs[id]
	if e == nil {
		return
	}
	delete(ix.runs, id)
	for tid := range e.tasks {
		delete(ix.taskRun, tid)
	}
	if i := slices.Index(ix.order, e); i >= 0 {
		ix.order = slices.Delete(ix.order, i, i+1)
	}
}

// copyRun returns a copy of an indexed run that the caller may change.
func copyRun(r *model.Run) *model.Run {
	cp := *r
	cp.Workflow = copyWorkflow(r.Workflow)
	return &cp
}

func copyWorkflow(w *model.Workflow) *model.Workflow {
	if w == nil {
		return nil
	}
	cp := *w
	return &cp
}

// ensureIndex builds the index on first use: every unfinished run and its
// tasks, read once. d.mu must be held.
func (d *DB) ensureIndex() error {
	if d.idx != nil {
		return nil
	}
	if d.closed {
		return errors.New("database is closed")
	}
	// Watch first, so that no file written during the scan goes unseen.
	if err := d.startWatcher(); err != nil {
		d.log.Warn("cannot watch for changes; new runs are seen at the next rescan", "dir", d.root, "err", err)
	}
	ix := newIndex()
	runsDir := filepath.Join(d.root, RunsDir)
	if st, err := os.Stat(runsDir); err == nil {
		ix.runsMod = st.ModTime()
	}
	ix.lastRescan = time.Now()
	ents, err := os.ReadDir(runsDir)
	if err != nil {
		return err
	}
	d.idx = ix
	// Runs that ended are skipped when their file is as it was when a
	// scheduler last read it whole (see EndedFile).
	listed := d.readEnded()
	ended := make(map[string]fileStamp, len(listed))
	settled := ix.lastRescan.Add(-endedSettle).UnixNano()
	for _, e := range ents {
		n := e.Name()
		if isTemp(n) {
			removeDeadTemp(runsDir, n)
			continue
		}
		if id, ok := isCancelMarker(n); ok {
			ix.cancels[id] = true
			continue
		}
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		id := strings.TrimSuffix(n, ".json")
		// The stamp is taken before the read: a file changed in between
		// is listed with its older stamp, so it is read again next time.
		st, stamped := stampOf(e)
		if was, ok := listed[id]; ok && stamped && was == st {
			ix.known[id] = true
			ended[id] = st
			continue
		}
		d.loadRun(id)
		if stamped && st.mtime < settled && ix.known[id] && ix.runs[id] == nil {
			ended[id] = st
		}
	}
	if !maps.Equal(ended, listed) {
		d.writeEnded(ended)
	}
	for _, dir := range []string{WorkflowsDir, TasksDir} {
		cleanDeadTemps(filepath.Join(d.root, dir))
	}
	// Say at start-up which workflow files do not load, so their authors
	// hear of it before a trigger fails.
	if _, err := d.ListWorkflows(context.Background()); err != nil {
		var fe *model.FileError
		for _, e := range unjoin(err) {
			if errors.As(e, &fe) {
				d.report(fe.Path, e)
			} else {
				d.log.Error("workflow does not load", "err", e)
			}
		}
	}
	d.adoptSpares()
	return nil
}

// loadRun reads runs/<id>.json into the index if it is unfinished and not
// there yet, with its tasks. It returns the entry, or nil for a finished,
// missing or damaged run. d.mu must be held.
func (d *DB) loadRun(id string) *runEntry {
	ix := d.idx
	if e := ix.runs[id]; e != nil {
		return e
	}
	p := d.runPath(id)
	r, size, err := d.readRunSized(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.report(p, err)
		}
		return nil
	}
	if r.ID != id {
		d.report(p, &model.FileError{Path: p, Err: fmt.Errorf("file is named %q but its id is %q", id, r.ID)})
		return nil
	}
	ix.known[id] = true
	if r.Status.Terminal() {
		return nil
	}
	if r.Workflow == nil && r.WorkflowName != "" {
		// A run written without a snapshot of its workflow (by hand): use
		// the workflow as it is now.
		if w, err := d.readWorkflow(d.workflowPath(r.WorkflowName)); err == nil {
			r.Workflow = w
		}
	}
	e := ix.addRun(r)
	e.runSize = size
	dir := d.taskDir(id)
	cleanDeadTemps(dir)
	ts, sizes, bad, err := d.readTasksSized(id)
	if err != nil {
		d.log.Error("cannot read tasks of run", "run", id, "err", err)
	}
	for _, b := range bad {
		var fe *model.FileError
		if errors.As(b, &fe) {
			if e.damaged == nil {
				e.damaged = make(map[string]bool)
			}
			e.damaged[fe.Path] = true
		}
	}
	if _, err := os.Stat(dir); err == nil {
		e.dirMade = true
	}
	for _, t := range ts {
		e.put(ix, t, sizes[t.ID])
	}
	e.sortQueue()
	return e
}

// refresh brings in runs other processes wrote: those fsnotify reported,
// and, at most once per rescan interval and only if runs/ changed, any file
// whose event was lost. d.mu must be held.
func (d *DB) refresh() {
	ix := d.idx
	for _, id := range d.takeDirty() {
		if rid, ok := strings.CutPrefix(id, "cancel:"); ok {
			ix.cancels[rid] = true
			continue
		}
		if ix.runs[id] == nil {
			// New, or a finished run that `ork retry` reopened.
			d.loadRun(id)
		}
	}
	if time.Since(ix.lastRescan) < d.rescan && !d.takeRescan() {
		return
	}
	ix.lastRescan = time.Now()
	runsDir := filepath.Join(d.root, RunsDir)
	st, err := os.Stat(runsDir)
	if err != nil || st.ModTime().Equal(ix.runsMod) {
		return
	}
	ix.runsMod = st.ModTime()
	ents, err := os.ReadDir(runsDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if id, ok := isCancelMarker(n); ok {
			ix.cancels[id] = true
			continue
		}
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		if id := strings.TrimSuffix(n, ".json"); ix.runs[id] == nil && !ix.known[id] {
			d.loadRun(id)
		}
	}
}

// entryFor returns the index entry of a run, loading an unfinished run the
// index has not seen yet. For a finished run it returns a detached entry
// read from disk (not kept in the index). d.mu must be held.
func (d *DB) entryFor(runID string) (*runEntry, bool, error) {
	if err := checkID("run", runID); err != nil {
		return nil, false, err
	}
	if e := d.idx.runs[runID]; e != nil {
		return e, true, nil
	}
	if e := d.loadRun(runID); e != nil {
		return e, true, nil
	}
	r, size, err := d.readRunSized(d.runPath(runID))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("run %s: %w", runID, model.ErrNotFound)
		}
		return nil, false, err
	}
	e := newRunEntry(r)
	e.runSize = size
	ts, sizes, _, err := d.readTasksSized(runID)
	if err != nil {
		return nil, false, err
	}
	for _, t := range ts {
		e.put(nil, t, sizes[t.ID])
	}
	e.dirMade = len(ts) > 0
	return e, false, nil
}

// ---- scheduler-side methods ----

// PendingRuns returns up to limit pending runs, oldest first.
func (d *DB) PendingRuns(ctx context.Context, limit int) ([]*model.Run, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureIndex(); err != nil {
		return nil, err
	}
	d.refresh()
	var out []*model.Run
	for _, e := range d.idx.order {
		if limit > 0 && len(out) >= limit {
			break
		}
		if e.run.Status == model.RunPending {
			out = append(out, copyRun(e.run))
		}
	}
	return out, nil
}

// UpdateRuns applies run status changes as one batch. A run whose record
// was damaged or removed behind the DB's back is not written: it fails
// alone, in a *model.PartialError, and starts no more tasks.
func (d *DB) UpdateRuns(ctx context.Context, us []model.RunUpdate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureIndex(); err != nil {
		return err
	}
	changed := make(map[string]*model.Run, len(us))
	sizes := make(map[string]int64, len(us))
	var order []string
	var perr model.PartialError
	refused := map[string]bool{}
	for _, u := range us {
		r := changed[u.RunID]
		if r == nil {
			if refused[u.RunID] {
				continue
			}
			e, _, err := d.entryFor(u.RunID)
			if err != nil {
				if !recordError(err) {
					return err
				}
				// Removed, or damaged: this run's update fails alone.
				refused[u.RunID] = true
				perr.Records = append(perr.Records, &model.RecordError{RunID: u.RunID, Err: err})
				continue
			}
			cp := *e.run
			r = &cp
			sizes[u.RunID] = e.runSize
		}
		if model.ApplyRunUpdate(r, u) {
			if changed[u.RunID] == nil {
				order = append(order, u.RunID)
			}
			changed[u.RunID] = r
		}
	}
	ws := make([]fileWrite, 0, len(order))
	var newDirs []string
	for _, id := range order {
		data, err := encode(changed[id])
		if err != nil {
			return err
		}
		ws = append(ws, fileWrite{path: d.runPath(id), data: data, replace: true, size: sizes[id], check: checkRun})
		// A running run always has its tasks directory, so that one
		// removed by hand is seen (by `ork doctor`) for what it is.
		if e := d.idx.runs[id]; e != nil && changed[id].Status == model.RunRunning && !e.dirMade {
			dir := d.taskDir(id)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			e.dirMade = true
			newDirs = append(newDirs, dir)
		}
	}
	failed, err := d.commit(ws, newDirs)
	if err != nil {
		return err
	}
	for i, id := range order {
		r := changed[id]
		e := d.idx.runs[id]
		if failed != nil && failed[i] != nil {
			perr.Records = append(perr.Records, &model.RecordError{RunID: id, Err: failed[i]})
			if e != nil {
				if errors.Is(failed[i], model.ErrNotFound) {
					// Removed by hand: the run is gone.
					d.idx.removeRun(id)
				} else {
					e.broken = failed[i].Error()
					d.report(d.runPath(id), failed[i])
				}
			}
			continue
		}
		d.idx.known[id] = true
		if r.Status.Terminal() {
			d.idx.removeRun(id)
			if d.idx.cancels[id] {
				delete(d.idx.cancels, id)
				os.Remove(d.cancelPath(id))
			}
		} else if e != nil {
			e.run = r
			e.runSize = int64(len(ws[i].data))
		}
	}
	if len(perr.Records) > 0 {
		return &perr
	}
	return nil
}

// CreateTasks stores new tasks as one batch; existing ids are left alone.
// A task that cannot be created on its own account — its file exists
// damaged, its run's record or tasks directory was damaged or removed —
// fails alone, in a *model.PartialError; the others are created.
func (d *DB) CreateTasks(ctx context.Context, ts []*model.Task) error {
	_, err := d.WriteTasks(ctx, ts, nil)
	return err
}

// WriteTasks creates the tasks create (as CreateTasks) and applies the
// updates (as UpdateTasks, to tasks that existed before the batch) in one
// commit: one sync makes both durable. It returns the tasks the updates
// changed; a record that fails on its own account is in the
// *model.PartialError, the others are written. It implements
// model.TaskBatchWriter.
func (d *DB) WriteTasks(ctx context.Context, create []*model.Task, updates []model.TaskUpdate) ([]*model.Task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureIndex(); err != nil {
		return nil, err
	}
	var perr model.PartialError
	cs, err := d.stageCreates(create, &perr)
	if err != nil {
		return nil, err
	}
	us, err := d.stageUpdates(updates, &perr)
	if err != nil {
		return nil, err
	}
	if len(cs.ws) == 0 && len(cs.newDirs) > 0 {
		for _, nd := range cs.newDirs {
			if err := d.ops.syncFile(filepath.Dir(nd)); err != nil {
				return nil, err
			}
		}
	}
	// The updates are renamed into place before the creates: a batch that
	// ends a task and creates the tasks its end unblocks, cut short between
	// its renames (a kill -9, a failed rename), never leaves a downstream
	// task recorded while the end it depends on is not. (A task missing
	// after such a cut is created again by the scheduler in its turn.)
	ws := append(slices.Clip(us.ws), cs.ws...)
	failed, err := d.commit(ws, cs.newDirs)
	if err != nil {
		return nil, err
	}
	var cf, uf []error
	if failed != nil {
		uf, cf = failed[:len(us.ws)], failed[len(us.ws):]
	}
	d.finishCreates(cs, cf, &perr)
	out := d.finishUpdates(us, uf, &perr)
	if len(perr.Records) > 0 {
		return out, &perr
	}
	return out, nil
}

type createStage struct {
	ws      []fileWrite
	newDirs []string
	add     []stagedCreate
	entries map[string]*runEntry
}

type stagedCreate struct {
	e *runEntry
	t *model.Task
}

// stageCreates prepares the files of new tasks; records refused on their
// own account go into perr. d.mu must be held.
func (d *DB) stageCreates(ts []*model.Task, perr *model.PartialError) (*createStage, error) {
	st := &createStage{}
	refuse := func(t *model.Task, err error) {
		perr.Records = append(perr.Records, &model.RecordError{RunID: t.RunID, TaskID: t.ID, Err: err})
	}
	entries := make(map[string]*runEntry)
	st.entries = entries
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if err := checkID("task", t.ID); err != nil {
			return nil, err
		}
		e := entries[t.RunID]
		if e == nil {
			var err error
			if e, _, err = d.entryFor(t.RunID); err != nil {
				if recordError(err) {
					refuse(t, err)
					continue
				}
				return nil, err
			}
			entries[t.RunID] = e
			if !e.dirMade && e.broken == "" {
				dir := d.taskDir(t.RunID)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, err
				}
				st.newDirs = append(st.newDirs, dir)
			}
		}
		if e.broken != "" {
			refuse(t, fmt.Errorf("%w: %s", model.ErrDamaged, e.broken))
			continue
		}
		if e.damaged[d.taskPath(t)] {
			// Exists damaged: left as it is, and not created again.
			refuse(t, fmt.Errorf("%s does not parse and is left as it is: %w", d.taskPath(t), model.ErrDamaged))
			continue
		}
		if e.has(t.ID) || seen[t.ID] {
			continue // exists: left as it is
		}
		seen[t.ID] = true
		cp := *t
		if cp.Status == "" {
			cp.Status = model.TaskPending
		}
		if cp.CreatedAt.IsZero() {
			cp.CreatedAt = time.Now().UTC()
		}
		data, err := encode(&cp)
		if err != nil {
			return nil, err
		}
		st.ws = append(st.ws, fileWrite{path: d.taskPath(&cp), data: data})
		st.add = append(st.add, stagedCreate{e, &cp})
	}
	return st, nil
}

// finishCreates indexes the tasks created, after the commit; failed is
// the commit's failures of st.ws (nil if none). d.mu must be held.
func (d *DB) finishCreates(st *createStage, failed []error, perr *model.PartialError) {
	for _, e := range st.entries {
		if e.broken == "" {
			e.dirMade = true
		}
	}
	for i, s := range st.add {
		if failed != nil && failed[i] != nil {
			perr.Records = append(perr.Records, &model.RecordError{RunID: s.t.RunID, TaskID: s.t.ID, Err: failed[i]})
			d.markBroken(s.e, failed[i])
			continue
		}
		s.e.put(d.idx, s.t, int64(len(st.ws[i].data)))
	}
	for _, e := range st.entries {
		e.sortQueue()
	}
}

// markBroken marks a run whose tasks directory is gone: none of its tasks
// may start or be created any more. d.mu must be held.
func (d *DB) markBroken(e *runEntry, err error) {
	if e.broken != "" || !gone(err) {
		return
	}
	dir := d.taskDir(e.run.ID)
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
		e.broken = fmt.Sprintf("%s was removed while the run was %s", dir, e.run.Status)
		d.log.Error("the tasks of an unfinished run were removed by hand; the run waits: stop the scheduler, then see `ork doctor`",
			"run", e.run.ID, "dir", dir)
	}
}

// PendingTasks returns up to limit pending tasks, oldest run first.
func (d *DB) PendingTasks(ctx context.Context, limit int) ([]model.TaskWithWorkflow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureIndex(); err != nil {
		return nil, err
	}
	var out []model.TaskWithWorkflow
	now := time.Now()
	for _, e := range d.idx.order {
		if e.broken != "" {
			continue // waits for a person: see runEntry.broken
		}
		var w *model.Workflow // one copy of the snapshot per run and call
		// Drop the dispatched head of the queue.
		for e.head < len(e.queue) {
			t := e.tasks[e.queue[e.head]]
			if t != nil && t.Status == model.TaskPending {
				break
			}
			delete(e.queued, e.queue[e.head])
			e.head++
		}
		if e.head == len(e.queue) && e.head > 0 {
			e.queue, e.head = e.queue[:0], 0
		}
		for _, id := range e.queue[e.head:] {
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
			if t := e.tasks[id]; t != nil && t.Status == model.TaskPending && (t.RetryAt == nil || !t.RetryAt.After(now)) {
				if w == nil {
					w = copyWorkflow(e.run.Workflow)
				}
				cp := *t
				out = append(out, model.TaskWithWorkflow{Task: &cp, Workflow: w})
			}
		}
	}
	return out, nil
}

// ActiveTasks returns every dispatched or running task of unfinished runs.
func (d *DB) ActiveTasks(ctx context.Context) ([]model.TaskWithWorkflow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureIndex(); err != nil {
		return nil, err
	}
	var out []model.TaskWithWorkflow
	for _, e := range d.idx.order {
		if e.counts[model.TaskDispatched]+e.counts[model.TaskRunning] == 0 {
			continue
		}
		w := copyWorkflow(e.run.Workflow)
		for _, t := range e.tasks {
			if t.Status.Active() {
				cp := *t
				out = append(out, model.TaskWithWorkflow{Task: &cp, Workflow: w})
			}
		}
	}
	return out, nil
}

// UpdateTasks applies task status changes as one batch and returns the
// tasks that changed. A task whose file was damaged or removed behind the
// DB's back is not written: it fails alone, in a *model.PartialError, is
// never dispatched again, and its run waits for a person.
func (d *DB) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	return d.WriteTasks(ctx, nil, us)
}

type updateWork struct {
	e *runEntry
	t *model.Task
}

type updateStage struct {
	ws          []fileWrite
	changed     map[string]*updateWork
	order       []string
	nTasks      int
	counted     []*runEntry
	countedRuns []*model.Run
}

// stageUpdates prepares the files of the tasks the updates change, and of
// the large runs' records that count them; records refused on their own
// account go into perr. d.mu must be held.
func (d *DB) stageUpdates(us []model.TaskUpdate, perr *model.PartialError) (*updateStage, error) {
	type work = updateWork
	changed := make(map[string]*work, len(us))
	var order []string
	detached := make(map[string]*runEntry)
	for _, u := range us {
		w := changed[u.TaskID]
		if w == nil {
			e := d.idx.taskRun[u.TaskID]
			if e == nil && u.RunID != "" {
				if e = detached[u.RunID]; e == nil {
					var err error
					e, _, err = d.entryFor(u.RunID)
					if errors.Is(err, model.ErrNotFound) {
						continue
					} else if recordError(err) {
						// The run's file is damaged: its task fails alone.
						perr.Records = append(perr.Records, &model.RecordError{RunID: u.RunID, TaskID: u.TaskID, Err: err})
						continue
					} else if err != nil {
						return nil, err
					}
					detached[u.RunID] = e
				}
			}
			if e == nil || e.tasks[u.TaskID] == nil {
				continue // unknown task: nothing to change
			}
			cp := *e.tasks[u.TaskID]
			w = &work{e: e, t: &cp}
		}
		if model.ApplyTaskUpdate(w.t, u) && changed[u.TaskID] == nil {
			changed[u.TaskID] = w
			order = append(order, u.TaskID)
		}
	}
	ws := make([]fileWrite, 0, len(order))
	for _, id := range order {
		w := changed[id]
		data, err := encode(w.t)
		if err != nil {
			return nil, err
		}
		ws = append(ws, fileWrite{path: d.taskPath(w.t), data: data, replace: true, size: w.e.size(id), check: checkTask})
	}
	// A large run's record carries its counts as they will be after this
	// batch, written in the same commit (see countedRun).
	nTasks := len(ws)
	var counted []*runEntry
	var countedRuns []*model.Run
	seen := map[*runEntry]bool{}
	for _, id := range order {
		e := changed[id].e
		if seen[e] {
			continue
		}
		seen[e] = true
		if d.idx.runs[e.run.ID] != e || e.broken != "" || e.run.Status.Terminal() || e.run.TaskCount() < countedRunTasks {
			continue
		}
		counts := make(map[model.TaskStatus]int, len(e.counts)+1)
		for k, v := range e.counts {
			counts[k] = v
		}
		for _, tid := range order {
			if w := changed[tid]; w.e == e {
				if old := e.tasks[tid]; old != nil {
					counts[old.Status]--
				}
				counts[w.t.Status]++
			}
		}
		for k, v := range counts {
			if v == 0 {
				delete(counts, k)
			}
		}
		r := *e.run
		r.TaskCounts = counts
		data, err := encode(&r)
		if err != nil {
			return nil, err
		}
		ws = append(ws, fileWrite{path: d.runPath(r.ID), data: data, replace: true, size: e.runSize, check: checkRun})
		counted = append(counted, e)
		countedRuns = append(countedRuns, &r)
	}
	return &updateStage{ws: ws, changed: changed, order: order, nTasks: nTasks, counted: counted, countedRuns: countedRuns}, nil
}

// finishUpdates indexes the tasks changed, after the commit, and returns
// them; failed is the commit's failures of st.ws (nil if none). d.mu must
// be held.
func (d *DB) finishUpdates(st *updateStage, failed []error, perr *model.PartialError) []*model.Task {
	ws, changed, order, nTasks := st.ws, st.changed, st.order, st.nTasks
	countedRuns := st.countedRuns
	for j, e := range st.counted {
		i := nTasks + j
		if failed != nil && failed[i] != nil {
			// The record is as it was; the next update of the run (or its
			// end) says what went wrong.
			continue
		}
		e.run = countedRuns[j]
		e.runSize = int64(len(ws[i].data))
	}
	out := make([]*model.Task, 0, len(order))
	for i, id := range order {
		w := changed[id]
		if failed != nil && failed[i] != nil {
			perr.Records = append(perr.Records, &model.RecordError{RunID: w.t.RunID, TaskID: id, Err: failed[i]})
			w.e.quarantine(d.idx, w.t, ws[i].path)
			if !gone(failed[i]) {
				d.report(ws[i].path, failed[i])
			}
			d.markBroken(w.e, failed[i])
			continue
		}
		cp := *w.t
		w.e.put(d.idx, w.t, int64(len(ws[i].data)))
		out = append(out, &cp)
	}
	return out
}

// recordError reports whether err is the failure of one record's file —
// removed, or damaged — rather than of the disk.
func recordError(err error) bool {
	var fe *model.FileError
	return errors.Is(err, model.ErrNotFound) || errors.As(err, &fe)
}

// gone reports whether a record's write failed because the record, or its
// directory, was removed.
func gone(err error) bool {
	return errors.Is(err, model.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
