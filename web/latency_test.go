package web

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// A task's change made by another process (another database handle)
// reaches a browser's event stream within 100 ms — the median of 30
// changes, on the file database with the default settings.
func TestEventLatency(t *testing.T) {
	e := newEnv(t, Options{})
	writer, err := filedb.Open(e.db.Dir(), filedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ctx := context.Background()
	w, _ := writer.GetWorkflow(ctx, "hello")
	w.TaskCount = 30
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
	slices.Sort(lat)
	med, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
	t.Logf("change -> event: median %v, p90 %v, max %v (%d changes)", med, p90, lat[len(lat)-1], len(lat))
	if med > 100*time.Millisecond {
		t.Errorf("median latency %v; want within 100ms", med)
	}
}

// A subscriber that does not read its events is dropped once its buffer
// is full, and the others go on.
func TestSlowSubscriberDropped(t *testing.T) {
	e := newEnv(t, Options{})
	h := e.s.hub
	slow, _ := h.subscribe(context.Background(), "", false)
	fast, _ := h.subscribe(context.Background(), "", false)
	defer h.unsubscribe(fast)
	done := make(chan int)
	go func() {
		n := 0
		for range fast.ch {
			n++
			if n == subBuffer+10 {
				done <- n
				return
			}
		}
	}()
	for i := 0; i < subBuffer+10; i++ {
		h.broadcast(event{name: "run", data: []byte("{}")}, "")
	}
	select {
	case <-slow.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow subscriber was not dropped")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reading subscriber missed events")
	}
	h.mu.Lock()
	_, still := h.subs[slow]
	h.mu.Unlock()
	if still {
		t.Error("the dropped subscriber is still subscribed")
	}
}
