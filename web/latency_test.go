package web

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// A task's change made by another process (another database handle)
// reaches a browser's event stream by itself, with the server's poll out
// of the way: every change of the 30 is pushed. How fast is measured by
// BenchmarkEventLatency (docs/PERFORMANCE.md), not asserted here.
func TestEventLatency(t *testing.T) {
	lat := eventLatencies(t, 30)
	if len(lat) != 30 {
		t.Fatalf("%d of 30 changes reached the event stream", len(lat))
	}
}

// BenchmarkEventLatency reports the median and p90 time from a task's
// change, written durably through another handle, to its event read by an
// /api/events client (the target: within 100 ms).
func BenchmarkEventLatency(b *testing.B) {
	var all []time.Duration
	for b.Loop() {
		all = append(all, eventLatencies(b, 30)...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(all[len(all)*9/10].Microseconds())/1000, "ms-p90")
}

// eventLatencies makes n task changes through a second handle, one at a
// time, and returns how long each took to reach the event stream.
func eventLatencies(t testing.TB, n int) []time.Duration {
	e := newEnv(t, Options{})
	writer, err := filedb.Open(e.db.Dir(), filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ctx := context.Background()
	w, _ := writer.GetWorkflow(ctx, "hello")
	w.TaskCount = n
	r := model.NewRun(w, nil, "test", time.Now())
	if err := writer.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ts := model.NewTasks(r, time.Now())
	if err := writer.CreateTasks(ctx, ts); err != nil {
		t.Fatal(err)
	}
	ch, stop := readEvents(t, e.srv.URL+"/api/events?run="+r.ID)
	defer stop()
	waitEvent(t, ch, "ready", func(string) bool { return true })
	var lat []time.Duration
	for _, tk := range ts {
		time.Sleep(30 * time.Millisecond)
		start := time.Now()
		if _, err := writer.UpdateTasks(ctx, []model.TaskUpdate{{TaskID: tk.ID, RunID: r.ID, Attempt: 1, Status: model.TaskDispatched}}); err != nil {
			t.Fatal(err)
		}
		at := waitEvent(t, ch, "tasks", func(d string) bool { return strings.Contains(d, tk.ID) })
		lat = append(lat, at.Sub(start))
	}
	return lat
}

// A subscriber that does not read its events is dropped once its buffer
// is full, and the others go on.
func TestSlowSubscriberDropped(t *testing.T) {
	e := newEnv(t, Options{})
	h := e.s.hub
	slow, _ := h.subscribe(context.Background(), "", false)
	fast, _ := h.subscribe(context.Background(), "", false)
	defer h.unsubscribe(fast)
	read := make(chan int, subBuffer+10)
	go func() {
		n := 0
		for range fast.ch {
			n++
			read <- n
		}
	}()
	waitRead := func(want int) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case n := <-read:
				if n == want {
					return
				}
			case <-deadline:
				t.Fatalf("the reading subscriber got fewer than %d events", want)
			}
		}
	}
	// A buffer's worth: both hold them; the reader reads them.
	for i := 0; i < subBuffer; i++ {
		h.broadcast(event{name: "run", data: []byte("{}")}, "")
	}
	waitRead(subBuffer)
	select {
	case <-slow.lost:
		t.Fatal("the slow subscriber was dropped before its buffer was full")
	default:
	}
	// One more: the slow one, full, is dropped; the reader gets it.
	h.broadcast(event{name: "run", data: []byte("{}")}, "")
	select {
	case <-slow.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow subscriber was not dropped")
	}
	waitRead(subBuffer + 1)
	h.mu.Lock()
	_, still := h.subs[slow]
	h.mu.Unlock()
	if still {
		t.Error("the dropped subscriber is still subscribed")
	}
}

// countingDB counts the calls of a database that cannot watch changes.
type countingDB struct {
	model.Database
	mu    sync.Mutex
	calls int
}

func (c *countingDB) ListRuns(ctx context.Context, f model.RunFilter) ([]*model.Run, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Database.ListRuns(ctx, f)
}

func (c *countingDB) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// On a database without a watcher the server polls it, but only while
// someone listens to the event stream.
func TestPollOnlyWhileListened(t *testing.T) {
	dir := t.TempDir()
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cdb := &countingDB{Database: db}
	e := newEnvDB(t, db, cdb, Options{})
	time.Sleep(300 * time.Millisecond)
	if n := cdb.n(); n != 0 {
		t.Errorf("%d ListRuns calls with nobody listening; want none", n)
	}
	ch, stop := readEvents(t, e.srv.URL+"/api/events")
	waitEvent(t, ch, "ready", func(string) bool { return true })
	time.Sleep(300 * time.Millisecond)
	if n := cdb.n(); n < 3 {
		t.Errorf("%d ListRuns calls in 300ms with a listener; want the poll (every 50ms)", n)
	}
	stop()
	time.Sleep(200 * time.Millisecond) // the server sees the client go
	before := cdb.n()
	time.Sleep(300 * time.Millisecond)
	if n := cdb.n() - before; n != 0 {
		t.Errorf("%d ListRuns calls after the listener left; want none", n)
	}
}

// slowDB takes 20 ms to list a run's tasks, like a run of thousands of
// tasks on disk, and counts the listings.
type slowDB struct {
	model.Database
	mu    sync.Mutex
	lists int
}

func (s *slowDB) ListTasks(ctx context.Context, id string) ([]*model.Task, error) {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	return s.Database.ListTasks(ctx, id)
}

func (s *slowDB) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// A run that is slow to read is read at most about every three times its
// reading cost however often it changes, and its last change still arrives.
func TestSlowRunReadsThrottled(t *testing.T) {
	dir := t.TempDir()
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	db, err := filedb.Open(dir, filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sdb := &slowDB{Database: db}
	e := newEnvDB(t, db, sdb, Options{})
	r := e.trigger("hello")
	ts := e.play(r, []model.TaskStatus{model.TaskRunning, model.TaskRunning, model.TaskRunning}, "")
	ch, stop := readEvents(t, e.srv.URL+"/api/events?run="+r.ID)
	defer stop()
	waitEvent(t, ch, "ready", func(string) bool { return true })
	before := sdb.n()
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond {
		e.s.hub.changed(r.ID) // the database says the run changed, again and again
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := db.UpdateTasks(context.Background(), []model.TaskUpdate{{TaskID: ts[2].ID, RunID: r.ID, Attempt: 1, Status: model.TaskSuccess}}); err != nil {
		t.Fatal(err)
	}
	e.s.hub.changed(r.ID)
	waitEvent(t, ch, "tasks", func(d string) bool { return strings.Contains(d, ts[2].ID) && strings.Contains(d, `"success"`) })
	took := time.Since(start)
	reads := sdb.n() - before
	// One read costs at least 20 ms and the next waits three times that.
	if max := int(took/(60*time.Millisecond)) + 2; reads > max {
		t.Errorf("%d reads of the slow run in %v; want at most %d", reads, took, max)
	}
	t.Logf("%d reads of a 20 ms run in %v of constant changes", reads, took)
}
