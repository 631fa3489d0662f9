package sched

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ork-run/ork/filedb"
	"github.com/ork-run/ork/model"
)

// The tick logic, driven by hand with an injected time: no test here
// sleeps. Each runs on every backend in scheduleBackends that keeps
// schedule state.

// scheduleBackends opens a new, empty database of each backend, and a
// second handle on the same data as a restarted process would open it.
var scheduleBackends = map[string]func(t *testing.T) (open func() model.Database){
	"filedb": func(t *testing.T) func() model.Database {
		dir := filepath.Join(t.TempDir(), ".ork")
		if err := filedb.Init(dir); err != nil {
			t.Fatal(err)
		}
		return func() model.Database {
			db, err := filedb.Open(dir, filedb.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	},
}

func forEachBackend(t *testing.T, test func(t *testing.T, b *tickBench)) {
	for name, mk := range scheduleBackends {
		t.Run(name, func(t *testing.T) {
			open := mk(t)
			b := &tickBench{t: t, open: open, ctx: context.Background(), logs: &lockedBuffer{}}
			b.db = open()
			b.restart()
			test(t, b)
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tickBench is a database and the schedules of one scheduler over it.
type tickBench struct {
	t    *testing.T
	ctx  context.Context
	open func() model.Database
	db   model.Database
	s    *schedules
	logs *lockedBuffer
}

// restart is a new scheduler process: a new handle on the database and
// schedules that know nothing yet.
func (b *tickBench) restart() {
	b.db = b.open()
	b.s = newSchedules(b.db, nil, slog.New(slog.NewTextHandler(b.logs, nil)))
	if b.s == nil {
		b.t.Skip("the backend keeps no schedule state")
	}
}

func (b *tickBench) store() model.ScheduleStore { return b.db.(model.ScheduleStore) }

func (b *tickBench) workflow(name string, s model.Schedule) *model.Workflow {
	b.t.Helper()
	w := &model.Workflow{Name: name, JobName: "job.sh", Schedule: &s}
	if err := b.db.CreateWorkflow(b.ctx, w); err != nil {
		b.t.Fatal(err)
	}
	return w
}

// edit replaces the workflow, as an edit of its file does.
func (b *tickBench) edit(name string, s model.Schedule) {
	b.t.Helper()
	if err := b.db.DeleteWorkflow(b.ctx, name); err != nil {
		b.t.Fatal(err)
	}
	b.workflow(name, s)
}

// at runs the scheduler's steps at now: a load of the workflows when load
// is set (at start, or after a change), then a pass. It returns when the
// schedules want to be woken next.
func (b *tickBench) at(now time.Time, load bool) time.Time {
	b.t.Helper()
	if load {
		b.s.load(b.ctx, now)
	}
	return b.s.pass(b.ctx, now)
}

// ticks returns the scheduled_at of the runs of workflow, oldest first,
// checking each run's fields on the way.
func (b *tickBench) ticks(name string) []time.Time {
	b.t.Helper()
	rs, err := b.db.ListRuns(b.ctx, model.RunFilter{WorkflowName: name})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []time.Time
	for _, r := range rs {
		if r.TriggeredBy != model.TriggeredBySchedule || r.ScheduledAt == nil {
			b.t.Fatalf("run %s: triggered_by %q, scheduled_at %v", r.ID, r.TriggeredBy, r.ScheduledAt)
		}
		if r.CreatedAt.Before(*r.ScheduledAt) {
			b.t.Fatalf("run %s was created at %s, before its tick %s", r.ID, r.CreatedAt, r.ScheduledAt)
		}
		out = append(out, r.ScheduledAt.UTC())
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

func (b *tickBench) wantTicks(name string, want ...time.Time) {
	b.t.Helper()
	got := b.ticks(name)
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		b.t.Fatalf("%s: runs for ticks %s, want %s", name, fmtTimes(got), fmtTimes(want))
	}
}

func (b *tickBench) finish(name string, tick time.Time, status model.RunStatus) {
	b.t.Helper()
	err := b.db.UpdateRuns(b.ctx, []model.RunUpdate{{RunID: model.ScheduledRunID(name, tick), Status: status, At: tick.Add(time.Second)}})
	if err != nil {
		b.t.Fatal(err)
	}
}

func fmtTimes(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.UTC().Format("01-02T15:04:05"))
	}
	return "[" + strings.Join(s, " ") + "]"
}

var day = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func hm(h, m, s int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
}

func TestScheduleFiresOncePerTick(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("hourly", model.Schedule{Cron: "@hourly"})
		// A schedule starts when the scheduler first sees it: the ticks
		// before are not its.
		if next := b.at(hm(10, 0, 30), true); !next.Equal(hm(11, 0, 0)) {
			t.Fatalf("next wake-up = %s, want 11:00", next)
		}
		b.wantTicks("hourly")
		b.at(hm(10, 59, 59), false)
		b.wantTicks("hourly")
		// At the tick: one run, for the tick, and the timer goes to the next.
		if next := b.at(hm(11, 0, 0), false); !next.Equal(hm(12, 0, 0)) {
			t.Fatalf("next wake-up = %s, want 12:00", next)
		}
		b.wantTicks("hourly", hm(11, 0, 0))
		r, err := b.db.GetRun(b.ctx, model.ScheduledRunID("hourly", hm(11, 0, 0)))
		if err != nil || r.Status != model.RunPending || r.Workflow == nil || r.Workflow.Schedule == nil || !r.CreatedAt.Equal(hm(11, 0, 0)) {
			t.Fatalf("the scheduled run: %+v, %v", r, err)
		}
		b.at(hm(11, 0, 0).Add(500*time.Millisecond), false)
		b.at(hm(11, 0, 1), true)
		b.wantTicks("hourly", hm(11, 0, 0))
		// A restarted scheduler does not fire the tick again.
		b.restart()
		b.at(hm(11, 0, 40), true)
		b.wantTicks("hourly", hm(11, 0, 0))
		b.finish("hourly", hm(11, 0, 0), model.RunSuccess)
		b.at(hm(12, 0, 0).Add(200*time.Millisecond), false)
		b.wantTicks("hourly", hm(11, 0, 0), hm(12, 0, 0))
	})
}

// A workflow created a fraction of a second before the scheduler first
// sees it fires at its first tick.
func TestScheduleFirstTickOfNewWorkflow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		for _, cron := range []string{"@hourly", "@every 1s"} {
			name := strings.NewReplacer("@", "", " ", "").Replace(cron)
			created := hm(10, 0, 30).Add(500 * time.Millisecond)
			w := &model.Workflow{Name: name, JobName: "job.sh", Schedule: &model.Schedule{Cron: cron}, CreatedAt: created}
			if err := b.db.CreateWorkflow(b.ctx, w); err != nil {
				t.Fatal(err)
			}
			b.restart()
			first := b.at(created.Add(200*time.Millisecond), true)
			b.at(first, false)
			b.wantTicks(name, first)
		}
	})
}

func TestScheduleAfterDowntimeCatchupFalse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("hourly", model.Schedule{Cron: "0 * * * *"})
		b.at(hm(10, 0, 30), true)
		// Down from 10:00:30 to 13:30: only the latest missed tick fires.
		b.restart()
		if next := b.at(hm(13, 30, 0), true); !next.Equal(hm(14, 0, 0)) {
			t.Fatalf("next wake-up = %s, want 14:00", next)
		}
		b.wantTicks("hourly", hm(13, 0, 0))
		b.finish("hourly", hm(13, 0, 0), model.RunSuccess)
		b.at(hm(14, 0, 0), false)
		b.wantTicks("hourly", hm(13, 0, 0), hm(14, 0, 0))
		if !strings.Contains(b.logs.String(), "missed ticks pass without runs") {
			t.Errorf("the missed ticks were not logged:\n%s", b.logs)
		}
	})
}

func TestScheduleAfterDowntimeCatchupTrue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("hourly", model.Schedule{Cron: "@hourly", Catchup: true})
		b.at(hm(10, 0, 30), true)
		b.restart()
		b.at(hm(13, 30, 0), true)
		// Every missed tick, oldest first: the runs are created in tick
		// order, and all of them — overlap applies to ticks that come
		// while the previous run runs, not to a catch-up.
		b.wantTicks("hourly", hm(11, 0, 0), hm(12, 0, 0), hm(13, 0, 0))
		pend, err := b.db.PendingRuns(b.ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var order []time.Time
		for _, r := range pend {
			order = append(order, *r.ScheduledAt)
		}
		if !slices.IsSortedFunc(order, time.Time.Compare) || len(order) != 3 {
			t.Fatalf("pending runs in the order %s, want the 3 oldest first", fmtTimes(order))
		}

		// The bound: of 300 missed ticks, the latest MaxCatchup fire.
		b.workflow("minutely", model.Schedule{Cron: "@every 1m", Catchup: true})
		b.at(hm(14, 0, 0), true)
		b.restart()
		b.at(hm(19, 0, 30), true)
		got := b.ticks("minutely")
		if len(got) != model.MaxCatchup || !got[0].Equal(hm(19, 0, 0).Add(-(model.MaxCatchup-1)*time.Minute)) || !got[len(got)-1].Equal(hm(19, 0, 0)) {
			t.Fatalf("catch-up of 300 ticks fired %d: %s ... %s; want the latest %d", len(got), got[0], got[len(got)-1], model.MaxCatchup)
		}
	})
}

func TestScheduleOverlapSkip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("slow", model.Schedule{Cron: "@every 1m"})
		b.at(hm(10, 0, 0), true)
		b.at(hm(10, 1, 0), false)
		b.wantTicks("slow", hm(10, 1, 0))
		// The run of 10:01 still runs at 10:02 and 10:03: those ticks pass.
		if err := b.db.UpdateRuns(b.ctx, []model.RunUpdate{{RunID: model.ScheduledRunID("slow", hm(10, 1, 0)), Status: model.RunRunning, At: hm(10, 1, 1)}}); err != nil {
			t.Fatal(err)
		}
		b.at(hm(10, 2, 0), false)
		b.at(hm(10, 3, 0), false)
		b.wantTicks("slow", hm(10, 1, 0))
		st, err := b.store().ScheduleState(b.ctx, "slow")
		if err != nil || !st.Through.Equal(hm(10, 3, 0)) {
			t.Fatalf("state = %+v, %v; want through 10:03", st, err)
		}
		b.finish("slow", hm(10, 1, 0), model.RunFailed)
		b.at(hm(10, 4, 0), false)
		b.wantTicks("slow", hm(10, 1, 0), hm(10, 4, 0))
		// The skipped ticks stay skipped, even for a catch-up after a restart.
		b.edit("slow", model.Schedule{Cron: "@every 1m", Catchup: true})
		b.restart()
		b.at(hm(10, 4, 30), true)
		b.wantTicks("slow", hm(10, 1, 0), hm(10, 4, 0))
	})
}

// overlap skip holds for a catch-up too: while the previous run is
// unfinished, the missed ticks pass; the runs of one catch-up do not block
// each other (TestScheduleAfterDowntimeCatchupTrue).
func TestScheduleOverlapSkipCatchup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("slow", model.Schedule{Cron: "@every 1m", Catchup: true})
		b.at(hm(10, 0, 0), true)
		b.at(hm(10, 1, 0), false)
		b.restart()
		b.at(hm(10, 5, 30), true)
		b.wantTicks("slow", hm(10, 1, 0))
		b.finish("slow", hm(10, 1, 0), model.RunSuccess)
		b.at(hm(10, 6, 0), false)
		b.wantTicks("slow", hm(10, 1, 0), hm(10, 6, 0))
	})
}

func TestScheduleOverlapAllow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("slow", model.Schedule{Cron: "@every 1m", Overlap: model.OverlapAllow})
		b.at(hm(10, 0, 0), true)
		b.at(hm(10, 1, 0), false)
		b.at(hm(10, 2, 0), false)
		b.at(hm(10, 3, 0), false)
		b.wantTicks("slow", hm(10, 1, 0), hm(10, 2, 0), hm(10, 3, 0))
	})
}

func TestSchedulePause(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("nightly", model.Schedule{Cron: "@every 1m", Catchup: true})
		b.at(hm(10, 0, 0), true)
		b.at(hm(10, 1, 0), false)
		b.finish("nightly", hm(10, 1, 0), model.RunSuccess)
		if err := b.store().SetPaused(b.ctx, "nightly", true); err != nil {
			t.Fatal(err)
		}
		b.at(hm(10, 2, 0), false)
		b.at(hm(10, 3, 0), false)
		b.wantTicks("nightly", hm(10, 1, 0))
		if n := strings.Count(b.logs.String(), "the schedule is paused"); n != 1 {
			t.Errorf("two paused ticks were logged %d times, want once:\n%s", n, b.logs)
		}
		// Unpaused (by another process), the next tick fires; those that
		// passed while paused do not, not even with catchup.
		if err := b.open().(model.ScheduleStore).SetPaused(b.ctx, "nightly", false); err != nil {
			t.Fatal(err)
		}
		b.at(hm(10, 3, 30), false)
		b.wantTicks("nightly", hm(10, 1, 0))
		b.at(hm(10, 4, 0), false)
		b.wantTicks("nightly", hm(10, 1, 0), hm(10, 4, 0))
		// Paused across a restart: still paused.
		if err := b.store().SetPaused(b.ctx, "nightly", true); err != nil {
			t.Fatal(err)
		}
		b.restart()
		b.at(hm(10, 9, 0), true)
		b.wantTicks("nightly", hm(10, 1, 0), hm(10, 4, 0))
	})
}

func TestScheduleEditTakesEffect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("report", model.Schedule{Cron: "@hourly"})
		b.at(hm(10, 0, 30), true)
		b.at(hm(11, 0, 0), false)
		b.wantTicks("report", hm(11, 0, 0))
		// Edited at 11:20 to every 15 minutes: it starts afresh at the
		// edit; the quarter-hours before it are not caught up.
		b.edit("report", model.Schedule{Cron: "*/15 * * * *", Catchup: true})
		if next := b.at(hm(11, 20, 0), true); !next.Equal(hm(11, 30, 0)) {
			t.Fatalf("after the edit the next wake-up is %s, want 11:30", next)
		}
		b.finish("report", hm(11, 0, 0), model.RunSuccess)
		b.at(hm(11, 30, 0), false)
		b.wantTicks("report", hm(11, 0, 0), hm(11, 30, 0))
		// An edit that the loop has not loaded yet is loaded before a tick
		// fires: the run is the workflow as it is.
		b.finish("report", hm(11, 30, 0), model.RunSuccess)
		b.edit("report", model.Schedule{Cron: "@daily"})
		b.at(hm(11, 45, 0), false)
		b.wantTicks("report", hm(11, 0, 0), hm(11, 30, 0))
		if next := b.at(hm(11, 45, 1), true); !next.Equal(hm(24, 0, 0)) {
			t.Fatalf("after the second edit the next wake-up is %s, want midnight", next)
		}
		// A workflow deleted stops firing; one added starts at once.
		if err := b.db.DeleteWorkflow(b.ctx, "report"); err != nil {
			t.Fatal(err)
		}
		b.workflow("other", model.Schedule{Cron: "@every 10s"})
		if next := b.at(hm(11, 50, 0), true); !next.Equal(hm(11, 50, 10)) {
			t.Fatalf("next wake-up = %s, want 11:50:10 for the new workflow", next)
		}
		b.at(hm(24, 0, 0), false)
		b.wantTicks("report", hm(11, 0, 0), hm(11, 30, 0))
		b.wantTicks("other", hm(24, 0, 0))
		// Created again under the same name a day later, and found by a
		// restarted scheduler: the old schedule's state is not its own,
		// so it starts afresh rather than catch up.
		w := &model.Workflow{Name: "report", JobName: "job.sh", Schedule: &model.Schedule{Cron: "@hourly", Catchup: true}, CreatedAt: hm(34, 10, 0)}
		if err := b.db.CreateWorkflow(b.ctx, w); err != nil {
			t.Fatal(err)
		}
		b.restart()
		b.at(hm(34, 20, 0), true)
		b.wantTicks("report", hm(11, 0, 0), hm(11, 30, 0))
		b.at(hm(35, 0, 0), false)
		b.wantTicks("report", hm(11, 0, 0), hm(11, 30, 0), hm(35, 0, 0))
	})
}

// A workflow file damaged by hand stops its schedule (the database reports
// the file) and the others go on; fixed, it starts afresh. A damaged state
// file stops it too, reported once; deleted, the schedule starts afresh.
func TestScheduleDamagedFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	open := func() model.Database {
		db, err := filedb.Open(dir, filedb.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	b := &tickBench{t: t, open: open, ctx: context.Background(), logs: &lockedBuffer{}}
	b.restart()
	b.workflow("a", model.Schedule{Cron: "@every 1m", Overlap: model.OverlapAllow})
	b.at(hm(10, 0, 0), true)
	p := filepath.Join(dir, filedb.WorkflowsDir, "a.json")
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"job_name": "job.sh", "schedule": {"cron": "@every 1m"`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.at(hm(10, 0, 30), true)
	b.at(hm(10, 1, 0), false)
	b.at(hm(10, 2, 0), false)
	b.wantTicks("a")
	if strings.Contains(b.logs.String(), "cannot list the workflows") {
		t.Errorf("one damaged file stopped the listing:\n%s", b.logs)
	}
	if err := os.WriteFile(p, good, 0o644); err != nil {
		t.Fatal(err)
	}
	b.at(hm(10, 2, 30), true)
	b.at(hm(10, 3, 0), false)
	b.wantTicks("a")
	b.at(hm(10, 3, 30), false)
	b.wantTicks("a", hm(10, 3, 30))
	// A damaged state file: reported once, and the schedule waits.
	sp := filepath.Join(dir, filedb.SchedulesDir, "a.json")
	state, err := os.ReadFile(sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sp, []byte("{\"through\": 12}"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.at(hm(10, 4, 0), true)
	for s := 1; s < 40; s++ {
		b.at(hm(10, 4, s), false)
	}
	b.wantTicks("a", hm(10, 3, 30))
	if n := strings.Count(b.logs.String(), "cannot read the schedule's state"); n != 1 {
		t.Errorf("a damaged state file was reported %d times, want once:\n%s", n, b.logs)
	}
	if err := os.WriteFile(sp, state, 0o644); err != nil {
		t.Fatal(err)
	}
	// Fixed, it fires the latest tick it missed (catchup false).
	b.at(hm(10, 4, 40), false)
	b.wantTicks("a", hm(10, 3, 30), hm(10, 4, 30))
	if err := os.Remove(sp); err != nil {
		t.Fatal(err)
	}
	b.at(hm(10, 5, 30), false)
	b.wantTicks("a", hm(10, 3, 30), hm(10, 4, 30))
	b.at(hm(10, 6, 30), false)
	b.wantTicks("a", hm(10, 3, 30), hm(10, 4, 30), hm(10, 6, 30))
}

// An expression edited while no scheduler runs starts afresh too: the
// state records what expression it is for, and the ticks of the new one
// since the old state are not caught up.
func TestScheduleEditedWhileDown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("report", model.Schedule{Cron: "@hourly", Catchup: true})
		b.at(hm(10, 0, 30), true)
		b.restart()
		b.edit("report", model.Schedule{Cron: "@every 1m", Catchup: true})
		if next := b.at(hm(11, 30, 0), true); !next.Equal(hm(11, 31, 0)) {
			t.Fatalf("next wake-up = %s, want 11:31", next)
		}
		b.wantTicks("report")
		b.at(hm(11, 31, 0), false)
		b.wantTicks("report", hm(11, 31, 0))
		st, err := b.store().ScheduleState(b.ctx, "report")
		if err != nil || st.Spec != "@every 1m in UTC" {
			t.Fatalf("state = %+v, %v; want the new spec", st, err)
		}
		// Not edited across a restart: it catches up as before.
		b.finish("report", hm(11, 31, 0), model.RunSuccess)
		b.restart()
		b.at(hm(11, 33, 30), true)
		b.wantTicks("report", hm(11, 31, 0), hm(11, 32, 0), hm(11, 33, 0))
	})
}

func TestScheduleTimeZone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("berlin", model.Schedule{Cron: "0 9 * * *", Timezone: "Europe/Berlin"})
		b.at(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), true)
		// 09:00 in Berlin: 08:00 UTC on Saturday the 28th of March; summer
		// time begins in the night, so 07:00 UTC on the 29th.
		b.at(time.Date(2026, 3, 28, 7, 59, 59, 0, time.UTC), false)
		b.wantTicks("berlin")
		next := b.at(time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC), false)
		if want := time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC); !next.Equal(want) {
			t.Fatalf("next = %s, want %s", next, want)
		}
		b.finish("berlin", time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC), model.RunSuccess)
		b.at(time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), false)
		b.wantTicks("berlin", time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC))
	})
}

// fakeClock is a Clock moved by hand. It knows whether the loop is asleep:
// a timer fired (or the test poked the loop) and the loop has not yet set
// its next timer.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []fakeTimer
	awake  bool
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped *bool
}

func newFakeClock(now time.Time) *fakeClock {
	f := &fakeClock{now: now, awake: true}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	stopped := new(bool)
	if d <= 0 {
		c <- f.now
	} else {
		f.timers = append(f.timers, fakeTimer{at: f.now.Add(d), c: c, stopped: stopped})
		f.awake = false // the loop goes to sleep on it
		f.cond.Broadcast()
	}
	return c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		was := !*stopped
		*stopped = true
		return was
	}
}

// Advance moves the time on and fires the timers that are due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	keep := f.timers[:0]
	for _, tm := range f.timers {
		switch {
		case *tm.stopped:
		case !tm.at.After(f.now):
			tm.c <- f.now
			f.awake = true
		default:
			keep = append(keep, tm)
		}
	}
	f.timers = keep
}

// woken says the test woke the loop some other way (a poke).
func (f *fakeClock) woken() {
	f.mu.Lock()
	f.awake = true
	f.mu.Unlock()
}

// idle waits until the loop is asleep on its timer again.
func (f *fakeClock) idle(t *testing.T) {
	t.Helper()
	expired := false
	watchdog := time.AfterFunc(10*time.Second, func() {
		f.mu.Lock()
		expired = true
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer watchdog.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.awake {
		if expired {
			t.Fatal("the schedule loop did not go back to sleep")
		}
		f.cond.Wait()
	}
}

// The loop itself, with an injected clock: it sleeps until the next tick,
// fires it, and reloads the workflows when poked.
func TestScheduleLoopWakesAtTicks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *tickBench) {
		b.workflow("minutely", model.Schedule{Cron: "@every 1m", Overlap: model.OverlapAllow})
		clock := newFakeClock(hm(10, 0, 0))
		s := newSchedules(b.db, clock, slog.New(slog.NewTextHandler(b.logs, nil)))
		ctx, cancel := context.WithCancel(b.ctx)
		defer cancel()
		stop := s.start(ctx)
		defer stop()
		step := func(d time.Duration) {
			clock.Advance(d)
			clock.idle(t)
		}
		clock.idle(t)
		step(59 * time.Second)
		b.wantTicks("minutely")
		step(time.Second)
		b.wantTicks("minutely", hm(10, 1, 0))
		step(time.Minute)
		b.wantTicks("minutely", hm(10, 1, 0), hm(10, 2, 0))

		// Edited to hourly at 10:02:30, and poked as the database's change
		// signal does: after the reload (at most a second later) it starts
		// afresh, and the minutes go by without runs.
		step(30 * time.Second)
		b.edit("minutely", model.Schedule{Cron: "@hourly", Overlap: model.OverlapAllow})
		clock.woken()
		s.poke()
		clock.idle(t)
		step(time.Second)
		for range 5 {
			step(time.Minute)
		}
		b.wantTicks("minutely", hm(10, 1, 0), hm(10, 2, 0))
		step(hm(11, 0, 0).Sub(clock.Now()))
		b.wantTicks("minutely", hm(10, 1, 0), hm(10, 2, 0), hm(11, 0, 0))
		if !strings.Contains(b.logs.String(), "schedule changed") {
			t.Errorf("the edit was not logged:\n%s", b.logs)
		}
	})
}

// listFails is a database whose workflows cannot be listed.
type listFails struct {
	*filedb.DB
	calls atomic.Int32
}

func (l *listFails) ListWorkflows(context.Context) ([]*model.Workflow, error) {
	l.calls.Add(1)
	return nil, errors.New("permission denied")
}

// When the workflows cannot be listed the loop says so and tries again at
// its next reload; it does not spin.
func TestScheduleLoopListFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".ork")
	if err := filedb.Init(dir); err != nil {
		t.Fatal(err)
	}
	fdb, err := filedb.Open(dir, filedb.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	db := &listFails{DB: fdb}
	logs := &lockedBuffer{}
	clock := newFakeClock(hm(10, 0, 0))
	s := newSchedules(db, clock, slog.New(slog.NewTextHandler(logs, nil)))
	stop := s.start(context.Background())
	defer stop()
	clock.idle(t)
	if n := db.calls.Load(); n != 1 {
		t.Fatalf("the workflows were listed %d times before the loop slept, want 1", n)
	}
	clock.Advance(reloadMax)
	clock.idle(t)
	if n := db.calls.Load(); n != 2 {
		t.Fatalf("after %s the workflows were listed %d times, want 2", reloadMax, n)
	}
	if !strings.Contains(logs.String(), "cannot list the workflows") || !strings.Contains(logs.String(), "permission denied") {
		t.Errorf("the failure was not logged:\n%s", logs)
	}
}
