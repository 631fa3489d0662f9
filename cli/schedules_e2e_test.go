//go:build unix

package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// schedRun is what the schedule tests read of a run.
type schedRun struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	TriggeredBy string     `json:"triggered_by"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

// listRuns returns the runs of workflow, scheduled or not, oldest tick first.
func listRuns(t *testing.T, dir, workflow string) (scheduled, other []schedRun) {
	t.Helper()
	out, _ := mustRun(t, dir, "status", "--workflow", workflow, "--limit", "0", "--json")
	var rs []schedRun
	decodeJSON(t, "status --json", out, &rs)
	for _, r := range rs {
		if r.TriggeredBy == model.TriggeredBySchedule {
			if r.ScheduledAt == nil {
				t.Fatalf("scheduled run %s has no scheduled_at", r.ID)
			}
			scheduled = append(scheduled, r)
		} else {
			other = append(other, r)
		}
	}
	slices.SortFunc(scheduled, func(a, b schedRun) int { return a.ScheduledAt.Compare(*b.ScheduledAt) })
	return scheduled, other
}

func writeScheduled(t *testing.T, dir, name, sched string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, ".ork", "workflows", name+".json"),
		fmt.Sprintf(`{"job_name": "tick.sh", "schedule": %s}`+"\n", sched), 0o644)
}

// TestE2EScheduleEverySecond runs `ork run` with a workflow scheduled
// `@every 1s`: each tick makes one run within a second, an edit of the file
// takes effect without a restart, a pause stops the ticks durably but not
// triggers, and `ork schedules` shows it all.
func TestE2EScheduleEverySecond(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "tick.sh", "#!/bin/sh\necho tick\n")
	writeScheduled(t, dir, "tick", `{"cron": "@every 1h"}`)
	s := startSchedulerLocked(t, dir)

	out, _ := mustRun(t, dir, "schedules")
	if !regexpLine(out, `^tick\s+@every 1h\s+UTC\s+active\s+-\s+\d{4}-`) {
		t.Fatalf("ork schedules:\n%s", out)
	}
	time.Sleep(1500 * time.Millisecond)
	if sr, _ := listRuns(t, dir, "tick"); len(sr) != 0 {
		t.Fatalf("@every 1h fired within 1.5s: %v", sr)
	}

	// Edited by hand to every second: it fires without a restart.
	edited := time.Now()
	writeScheduled(t, dir, "tick", `{"cron": "@every 1s", "overlap": "allow"}`)
	waitFor(t, 10*time.Second, "4 scheduled runs", func() bool {
		sr, _ := listRuns(t, dir, "tick")
		return len(sr) >= 4
	})
	sr, _ := listRuns(t, dir, "tick")
	if first := *sr[0].ScheduledAt; first.Sub(edited) > 3*time.Second {
		t.Errorf("the first tick after the edit at %s was %s", edited.Format(time.StampMilli), first.Format(time.StampMilli))
	}
	for i, r := range sr {
		tick := *r.ScheduledAt
		if tick.Nanosecond() != 0 {
			t.Errorf("run %s: tick %s is not on a second", r.ID, tick)
		}
		if late := r.CreatedAt.Sub(tick); late < 0 || late >= time.Second {
			t.Errorf("run %s for the tick %s was created %s after it, want within a second", r.ID, tick.Format(time.StampMilli), late)
		}
		if i > 0 && !tick.Equal(sr[i-1].ScheduledAt.Add(time.Second)) {
			t.Errorf("ticks %s and %s: want one run per second, no gap, no repeat", sr[i-1].ScheduledAt.Format(time.StampMilli), tick.Format(time.StampMilli))
		}
		if r.ID != model.ScheduledRunID("tick", tick) {
			t.Errorf("run %s: the id of the tick %s is %s", r.ID, tick, model.ScheduledRunID("tick", tick))
		}
	}

	out, _ = mustRun(t, dir, "schedules", "--json")
	var rows []map[string]json.RawMessage
	decodeJSON(t, "schedules --json", out, &rows)
	if len(rows) != 1 {
		t.Fatalf("schedules --json: %s", out)
	}
	wantKeys(t, "schedules --json", rows[0], "workflow", "cron", "timezone", "catchup", "overlap", "paused", "last_tick", "last_run_id", "next")
	if string(rows[0]["cron"]) != `"@every 1s"` {
		t.Errorf("schedules --json shows the cron %s, want the edited one", rows[0]["cron"])
	}

	// Paused: no tick after the pause makes a run; a trigger still does.
	mustRun(t, dir, "pause", "tick")
	paused := time.Now()
	out, _ = mustRun(t, dir, "schedules")
	if !regexpLine(out, `^tick\s+@every 1s\s+UTC\s+paused\s+\d{4}-.*\(paused\)$`) {
		t.Fatalf("ork schedules while paused:\n%s", out)
	}
	tout, _ := mustRun(t, dir, "trigger", "tick", "--wait")
	manual := runID(t, tout)
	time.Sleep(2500 * time.Millisecond)
	sr, other := listRuns(t, dir, "tick")
	for _, r := range sr {
		if r.ScheduledAt.After(paused) {
			t.Errorf("run %s for the tick %s, after the pause at %s", r.ID, r.ScheduledAt.Format(time.StampMilli), paused.Format(time.StampMilli))
		}
	}
	if len(other) != 1 || other[0].ID != manual || other[0].Status != "success" {
		t.Errorf("the manual trigger while paused: %+v, want run %s succeeded", other, manual)
	}

	// Unpaused, it fires again from its next tick.
	mustRun(t, dir, "unpause", "tick")
	unpaused := time.Now()
	waitFor(t, 10*time.Second, "a scheduled run after unpause", func() bool {
		sr, _ := listRuns(t, dir, "tick")
		return sr[len(sr)-1].ScheduledAt.After(unpaused)
	})
	s.stop(t)
	if out := s.output(); !strings.Contains(out, "scheduled run") || !strings.Contains(out, "the schedule is paused") {
		t.Errorf("the scheduler's log does not show the ticks and the pause:\n%s", out)
	}

	// pause and unpause name what is wrong.
	_, stderr, _ := mustFail(t, dir, "pause", "nosuch")
	wantOneLineError(t, "pause nosuch", stderr)
	writeFile(t, filepath.Join(dir, ".ork", "workflows", "plain.json"), `{"job_name": "tick.sh"}`, 0o644)
	_, stderr, _ = mustFail(t, dir, "pause", "plain")
	if !strings.Contains(stderr, `workflow "plain" has no schedule`) {
		t.Errorf("pause of a workflow without a schedule: %s", stderr)
	}
}

// regexpLine reports whether a line of out matches the expression.
func regexpLine(out, expr string) bool {
	re := regexp.MustCompile(expr)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(strings.TrimSpace(l)) {
			return true
		}
	}
	return false
}

// A bad schedule is refused naming the file, line, column and field — the
// example of the README.
func TestE2EScheduleValidation(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	p := filepath.Join(dir, ".ork", "workflows", "report.json")
	writeFile(t, p, `{
  "job_name": "report.sh",
  "schedule": {"cron": "*/5 * * *", "timezone": "Europe/Berlin"}
}
`, 0o644)
	_, stderr, _ := mustFail(t, dir, "validate", p)
	if want := `report.json: line 3, column 16: schedule.cron "*/5 * * *": expected exactly 5 fields, found 4` + "\n"; !strings.Contains(stderr, want) {
		t.Errorf("ork validate: %s\nwant %s", stderr, want)
	}
	writeFile(t, p, `{"job_name": "report.sh", "schedule": {"cron": "@daily", "timezone": "Europe/Berlinn"}}`, 0o644)
	_, stderr, _ = mustFail(t, dir, "trigger", "report")
	if want := `report.json: line 1, column 58: schedule.timezone "Europe/Berlinn": unknown time zone`; !strings.Contains(stderr, want) {
		t.Errorf("ork trigger of a workflow with a bad time zone: %s\nwant %s", stderr, want)
	}
	// ork schedules lists the good ones and names the bad one.
	writeFile(t, filepath.Join(dir, ".ork", "workflows", "ok.json"), `{"job_name": "ok.sh", "schedule": {"cron": "30 6 * * *", "timezone": "Asia/Tokyo"}}`, 0o644)
	stdout, stderr, _ := mustFail(t, dir, "schedules")
	if !regexpLine(stdout, `^ok\s+30 6 \* \* \*\s+Asia/Tokyo\s+active\s+-\s+\d{4}-`) || strings.Contains(stdout, "report") {
		t.Errorf("ork schedules with one bad workflow:\n%s", stdout)
	}
	if !strings.Contains(stderr, `report.json: line 1, column 58: schedule.timezone`) {
		t.Errorf("ork schedules does not name the bad workflow: %s", stderr)
	}
}

// `ork trigger --wait` without `ork run` runs a scheduler in-process for
// its own run only: the workflows' schedules do not fire under it.
func TestE2ETriggerWaitFiresNoSchedules(t *testing.T) {
	t.Parallel()
	dir := newProject(t)
	writeScript(t, dir, "tick.sh", "#!/bin/sh\nsleep 2.5\n")
	writeScheduled(t, dir, "tick", `{"cron": "@every 1s", "overlap": "allow"}`)
	mustRun(t, dir, "trigger", "tick", "--wait")
	sr, other := listRuns(t, dir, "tick")
	if len(sr) != 0 || len(other) != 1 {
		t.Fatalf("after a 2.5s trigger --wait: %d scheduled runs (want none), %d others (want 1)", len(sr), len(other))
	}
}
