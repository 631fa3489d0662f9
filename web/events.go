package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ork-run/ork/model"
)

// The event stream (GET /api/events[?run=ID]) sends:
//
//	event: snapshot with ?run=ID, first: {"run", "tasks"}, the run as the
//	               events that follow start from
//	event: ready   once the subscription is in place (load the state now,
//	               unless a snapshot came)
//	event: run     a run, with its task counts, whenever it changed
//	event: tasks   {"run_id", "tasks": [...]}: the tasks of run ID that
//	               changed (only with ?run=ID)
//
// The hub learns which runs changed from the database (model.ChangeWatcher)
// or, for a database that cannot say, by looking at the unfinished and the
// newest runs every PollInterval while someone listens. It then reads each
// changed run, its counts and — for a run someone watches closely — its
// tasks, and sends what differs from what it sent last. Passes are at least
// minGap apart, so a burst of writes makes one event. A run whose reading
// is slow (thousands of task records on disk) is read at most every three
// times its reading cost, so that reading it takes no more than about a
// third of a core however fast it changes.
//
// A client that falls behind (its buffer of events full) is disconnected;
// its EventSource reconnects and loads the state again.

const (
	minGap     = 20 * time.Millisecond
	subBuffer  = 256
	keepAlive  = 15 * time.Second
	recentRuns = 20
	maxSigs    = 5000 // runs whose last event is remembered
)

type event struct {
	name  string
	data  []byte
	tasks []*model.Task // the changed tasks of a tasks event
}

type subscriber struct {
	run      string // tasks events of this run; "" for none
	ch       chan event
	lost     chan struct{} // closed when the subscriber fell behind
	lostOnce sync.Once
}

func (s *subscriber) drop() { s.lostOnce.Do(func() { close(s.lost) }) }

type hub struct {
	db   model.Database
	log  *slog.Logger
	poll time.Duration // 0: the database tells us
	kick chan struct{}

	mu    sync.Mutex
	dirty map[string]bool
	all   bool
	subs  map[*subscriber]bool

	work   sync.Mutex // held by a pass and by a subscription's first read
	runSig map[string]string
	live   map[string]bool
	tasks  map[string]map[string]string // run -> task id -> signature
	next   map[string]time.Time         // run -> earliest next read (slow runs)
	fresh  map[string]time.Time         // run -> read for a subscriber's snapshot
}

func newHub(ctx context.Context, db model.Database, poll time.Duration, log *slog.Logger) (*hub, error) {
	h := &hub{db: db, log: log, kick: make(chan struct{}, 1), dirty: map[string]bool{}, subs: map[*subscriber]bool{},
		runSig: map[string]string{}, live: map[string]bool{}, tasks: map[string]map[string]string{}, next: map[string]time.Time{}, fresh: map[string]time.Time{}}
	if cw, ok := db.(model.ChangeWatcher); ok {
		if err := cw.WatchChanges(ctx, h.changed); err != nil {
			return nil, fmt.Errorf("watch the database for changes: %w", err)
		}
	} else {
		h.poll = poll
	}
	go h.loop(ctx)
	return h, nil
}

// changed is called by the database's watcher: run id changed ("" for
// "anything may have").
func (h *hub) changed(id string) {
	h.mu.Lock()
	if id == "" {
		h.all = true
	} else {
		h.dirty[id] = true
	}
	h.mu.Unlock()
	h.wake()
}

func (h *hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// snapshot is a run and its tasks as a subscription begins: the stream
// sends it first, so that a client needs no other request, and every change
// after it follows as an event.
type snapshot struct {
	Run   runDetail  `json:"run"`
	Tasks []taskView `json:"tasks"`
}

// subscribe adds a subscriber; with run, it also returns that run's
// snapshot (nil if it could not be read).
func (h *hub) subscribe(ctx context.Context, run string, wantSnap bool) (*subscriber, *snapshot) {
	sub := &subscriber{run: run, ch: make(chan event, subBuffer), lost: make(chan struct{})}
	// Holding work, no pass runs until the subscriber is in place: no
	// change falls between the snapshot and the events.
	h.work.Lock()
	defer h.work.Unlock()
	h.mu.Lock()
	if len(h.subs) == 0 {
		// Nobody listened, so nothing was looked at: look at everything,
		// and send every run afresh.
		h.all = true
		clear(h.runSig)
	}
	h.mu.Unlock()
	var snap *snapshot
	if run != "" && (wantSnap || h.tasks[run] == nil) {
		if r, rec, err := h.readTasks(ctx, run); err == nil {
			ts := model.CompleteTasks(r, rec)
			v := viewRun(r, countTasks(rec))
			snap = &snapshot{Run: runDetail{runView: v, Nodes: nodesOf(r.Workflow)}, Tasks: make([]taskView, len(ts))}
			for i, t := range ts {
				snap.Tasks[i] = viewTask(t)
			}
			if h.tasks[run] == nil {
				// The baseline of the run's task changes. (When another
				// subscriber watches it already, its baseline stays: this
				// snapshot is newer, and events repeat what it holds.)
				sigs := make(map[string]string, len(ts))
				for _, t := range ts {
					sigs[t.ID] = taskSig(t)
				}
				h.tasks[run] = sigs
				if h.runSig[run] == "" {
					data, _ := json.Marshal(v)
					h.runSig[run] = string(data)
				}
				h.fresh[run] = time.Now()
			}
		}
	}
	h.mu.Lock()
	h.subs[sub] = true
	h.mu.Unlock()
	h.wake()
	return sub, snap
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	watched := false
	for o := range h.subs {
		if o.run == sub.run {
			watched = true
		}
	}
	h.mu.Unlock()
	if sub.run != "" && !watched {
		h.work.Lock()
		delete(h.tasks, sub.run)
		h.work.Unlock()
	}
}

// readTasks reads a run and its recorded tasks.
func (h *hub) readTasks(ctx context.Context, id string) (*model.Run, []*model.Task, error) {
	run, err := h.db.GetRun(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ts, err := h.db.ListTasks(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return run, ts, nil
}

func taskSig(t *model.Task) string {
	ts := func(p *time.Time) int64 {
		if p == nil {
			return 0
		}
		return p.UnixNano()
	}
	exit := -1 << 31
	if t.ExitCode != nil {
		exit = *t.ExitCode
	}
	return fmt.Sprint(t.Status, t.Attempt, exit, ts(t.DispatchedAt), ts(t.StartedAt), ts(t.FinishedAt), ts(t.RetryAt), len(t.Attempts), t.Error, len(t.Output))
}

func (h *hub) loop(ctx context.Context) {
	var tick <-chan time.Time
	if h.poll > 0 {
		t := time.NewTicker(h.poll)
		defer t.Stop()
		tick = t.C
	}
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-tick:
			h.mu.Lock()
			h.all = len(h.subs) > 0
			h.mu.Unlock()
		}
		if d := minGap - time.Since(last); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		last = time.Now()
		h.pass(ctx)
	}
}

// pass reads the runs that changed and sends what differs.
func (h *hub) pass(ctx context.Context) {
	h.mu.Lock()
	if len(h.subs) == 0 {
		clear(h.dirty)
		h.all = false
		h.mu.Unlock()
		return
	}
	ids := make(map[string]bool, len(h.dirty))
	for id := range h.dirty {
		ids[id] = true
	}
	clear(h.dirty)
	all := h.all
	h.all = false
	h.mu.Unlock()

	h.work.Lock()
	defer h.work.Unlock()
	now := time.Now()
	if all {
		// Every run that may have changed, but not one a subscriber's
		// snapshot read a moment ago unless it is known to have changed.
		maybe := map[string]bool{}
		for id := range h.live {
			maybe[id] = true
		}
		for id := range h.tasks {
			maybe[id] = true
		}
		for _, f := range []model.RunFilter{{Limit: recentRuns}, {Status: model.RunPending}, {Status: model.RunRunning}} {
			rs, err := h.db.ListRuns(ctx, f)
			if err != nil {
				h.log.Warn("web events: list runs", "err", err)
				continue
			}
			for _, r := range rs {
				maybe[r.ID] = true
			}
		}
		for id := range maybe {
			if f, ok := h.fresh[id]; !ok || now.Sub(f) > time.Second {
				ids[id] = true
			}
		}
	}
	clear(h.fresh)
	var later time.Time
	for id := range ids {
		if ctx.Err() != nil {
			return
		}
		if n := h.next[id]; now.Before(n) {
			// A slow run read a moment ago: read it again a bit later.
			h.mu.Lock()
			h.dirty[id] = true
			h.mu.Unlock()
			if later.IsZero() || n.Before(later) {
				later = n
			}
			continue
		}
		start := time.Now()
		h.readRun(ctx, id)
		if cost := time.Since(start); cost > 5*time.Millisecond {
			h.next[id] = start.Add(3 * cost)
		} else {
			delete(h.next, id)
		}
	}
	if !later.IsZero() {
		time.AfterFunc(time.Until(later), h.wake)
	}
	if len(h.runSig) > maxSigs {
		// Forget what was sent of finished runs: at worst one is sent
		// again.
		for id := range h.runSig {
			if !h.live[id] && h.tasks[id] == nil {
				delete(h.runSig, id)
			}
		}
	}
}

func (h *hub) readRun(ctx context.Context, id string) {
	run, err := h.db.GetRun(ctx, id)
	if errors.Is(err, model.ErrNotFound) {
		delete(h.runSig, id)
		delete(h.live, id)
		return
	}
	if err != nil {
		h.log.Warn("web events: read run", "run", id, "err", err)
		return
	}
	sigs := h.tasks[id]
	var ts []*model.Task
	var v runView
	if sigs != nil {
		// A watched run: one listing gives the counts and the changes.
		if ts, err = h.db.ListTasks(ctx, id); err != nil {
			h.log.Warn("web events: list tasks", "run", id, "err", err)
			return
		}
		v = viewRun(run, countTasks(ts))
	} else if v, err = summarize(ctx, h.db, run); err != nil {
		h.log.Warn("web events: count tasks", "run", id, "err", err)
		return
	}
	data, _ := json.Marshal(v)
	if sig := string(data); sig != h.runSig[id] {
		h.runSig[id] = sig
		h.broadcast(event{name: "run", data: data}, "")
	}
	if run.Status.Terminal() {
		delete(h.live, id)
	} else {
		h.live[id] = true
	}
	if sigs == nil {
		return
	}
	var changed []*model.Task
	for _, t := range model.CompleteTasks(run, ts) {
		if s := taskSig(t); sigs[t.ID] != s {
			sigs[t.ID] = s
			changed = append(changed, t)
		}
	}
	if len(changed) == 0 {
		return
	}
	views := make([]taskView, len(changed))
	for i, t := range changed {
		views[i] = viewTask(t)
	}
	data, _ = json.Marshal(struct {
		RunID string     `json:"run_id"`
		Tasks []taskView `json:"tasks"`
	}{id, views})
	h.broadcast(event{name: "tasks", data: data, tasks: changed}, id)
}

// broadcast sends ev to every subscriber (run == ""), or to those that
// watch run.
func (h *hub) broadcast(ev event, run string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if run != "" && sub.run != run {
			continue
		}
		select {
		case sub.ch <- ev:
		default:
			sub.drop()
			delete(h.subs, sub)
		}
	}
}

// events streams the changes of runs (and, with ?run=ID, of that run's
// tasks) as server-sent events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	run := r.URL.Query().Get("run")
	if run != "" {
		if _, err := s.db.GetRun(r.Context(), run); err != nil {
			s.dbError(w, r, err)
			return
		}
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	sub, snap := s.hub.subscribe(r.Context(), run, true)
	defer s.hub.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n")
	if snap != nil {
		data, _ := json.Marshal(snap)
		fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", data)
	}
	fmt.Fprint(w, "event: ready\ndata: {}\n\n")
	fl.Flush()
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.lost:
			return
		case ev := <-sub.ch:
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
			// Send what else is waiting before flushing once.
			for more := true; more; {
				select {
				case ev := <-sub.ch:
					fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
				default:
					more = false
				}
			}
			fl.Flush()
		case <-ka.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}
