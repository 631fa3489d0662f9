package model

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func mustTicks(t *testing.T, s Schedule) *Ticks {
	t.Helper()
	k, err := s.Parse()
	if err != nil {
		t.Fatalf("Parse(%+v): %v", s, err)
	}
	return k
}

func TestScheduleParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		cron, tz string
		after    string
		next     string
	}{
		{"*/5 * * * *", "", "2026-01-01T10:02:00Z", "2026-01-01T10:05:00Z"},
		{"0 9 * * 1-5", "", "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z"}, // Friday -> Monday
		{"@hourly", "", "2026-01-01T10:02:00Z", "2026-01-01T11:00:00Z"},
		{"@daily", "", "2026-01-01T10:02:00Z", "2026-01-02T00:00:00Z"},
		{"@every 30s", "", "2026-01-01T10:02:00.5Z", "2026-01-01T10:02:30Z"},
		{"@every 1h30m", "", "2026-01-01T10:00:00Z", "2026-01-01T11:30:00Z"},
		// 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
		{"0 9 * * *", "Europe/Berlin", "2026-01-10T12:00:00Z", "2026-01-11T08:00:00Z"},
		{"0 9 * * *", "Europe/Berlin", "2026-07-10T12:00:00Z", "2026-07-11T07:00:00Z"},
		{"0 9 * * *", "America/New_York", "2026-01-10T12:00:00Z", "2026-01-10T14:00:00Z"},
	} {
		k := mustTicks(t, Schedule{Cron: tc.cron, Timezone: tc.tz})
		if got := k.Next(utc(tc.after)); !got.Equal(utc(tc.next)) {
			t.Errorf("%q in %q: Next(%s) = %s, want %s", tc.cron, tc.tz, tc.after, got, tc.next)
		}
	}
}

func TestScheduleParseRejects(t *testing.T) {
	for _, tc := range []struct {
		s     Schedule
		field string
		says  string
	}{
		{Schedule{Cron: ""}, "cron", "is empty"},
		{Schedule{Cron: "* * *"}, "cron", "expected exactly 5 fields"},
		{Schedule{Cron: "61 * * * *"}, "cron", "above maximum"},
		{Schedule{Cron: "@fortnightly"}, "cron", "unrecognized descriptor"},
		{Schedule{Cron: "@every soon"}, "cron", "@every needs a duration"},
		{Schedule{Cron: "@every 500ms"}, "cron", "shorter than the shortest interval"},
		{Schedule{Cron: "@every 1500ms"}, "cron", "not a whole number of seconds"},
		{Schedule{Cron: "TZ=UTC"}, "cron", "put it in schedule.timezone"},
		{Schedule{Cron: "0 0 30 2 *"}, "cron", "never fires"},
		{Schedule{Cron: "@hourly", Timezone: "Mars/Olympus"}, "timezone", "unknown time zone"},
		{Schedule{Cron: "@hourly", Overlap: "queue"}, "overlap", `use "skip" or "allow"`},
	} {
		_, err := tc.s.Parse()
		if err == nil {
			t.Errorf("Parse(%+v) accepted it", tc.s)
			continue
		}
		if want := "schedule." + tc.field + " "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Parse(%+v) = %q, want it to name %q and say %q", tc.s, err, want, tc.says)
		}
	}
}

func TestDecodeWorkflowScheduleErrorNamesFileAndField(t *testing.T) {
	data := []byte(`{
  "job_name": "a.sh",
  "schedule": {
    "cron": "*/5 * * * *",
    "timezone": "Nowhere/Special"
  }
}`)
	_, err := DecodeWorkflow("wf/nightly.json", data)
	if err == nil {
		t.Fatal("a bad time zone was accepted")
	}
	want := `wf/nightly.json: line 5, column 5: schedule.timezone "Nowhere/Special": unknown time zone`
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %q, want it to start with %q", err, want)
	}
	data = []byte(`{"job_name": "a.sh", "schedule": {"cron": "every day"}}`)
	_, err = DecodeWorkflow("wf/x.json", data)
	if err == nil || !strings.HasPrefix(err.Error(), `wf/x.json: line 1, column 35: schedule.cron "every day"`) {
		t.Fatalf("error = %v, want the file, line 1 column 35 and schedule.cron", err)
	}
	// A good schedule decodes, and the run of a tick carries it.
	w, err := DecodeWorkflow("wf/ok.json", []byte(`{"job_name": "a.sh", "schedule": {"cron": "@hourly", "catchup": true, "overlap": "allow"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if w.Schedule == nil || !w.Schedule.Catchup || w.Schedule.OverlapPolicy() != OverlapAllow || w.Schedule.Location() != "UTC" {
		t.Fatalf("schedule = %+v", w.Schedule)
	}
}

func TestTicksDue(t *testing.T) {
	hourly := mustTicks(t, Schedule{Cron: "@hourly"})
	every := mustTicks(t, Schedule{Cron: "@every 10s"})
	yearly := mustTicks(t, Schedule{Cron: "0 0 1 1 *"})
	list := func(ts []time.Time) string {
		var s []string
		for _, x := range ts {
			s = append(s, x.Format("2006-01-02T15:04:05"))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name      string
		k         *Ticks
		after, to string
		limit     int
		want      string
		more      bool
	}{
		{"none yet", hourly, "2026-01-01T10:00:00Z", "2026-01-01T10:59:59Z", 1, "", false},
		{"the tick itself", hourly, "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", 1, "2026-01-01T11:00:00", false},
		{"latest of three", hourly, "2026-01-01T10:00:00Z", "2026-01-01T13:30:00Z", 1, "2026-01-01T13:00:00", true},
		{"all three", hourly, "2026-01-01T10:00:00Z", "2026-01-01T13:30:00Z", 100, "2026-01-01T11:00:00 2026-01-01T12:00:00 2026-01-01T13:00:00", false},
		{"bounded", hourly, "2025-12-31T10:00:00Z", "2026-01-01T13:30:00Z", 2, "2026-01-01T12:00:00 2026-01-01T13:00:00", true},
		{"a year down, latest", hourly, "2025-01-01T10:00:00Z", "2026-01-01T13:30:00Z", 1, "2026-01-01T13:00:00", true},
		{"every follows on", every, "2026-01-01T10:00:03Z", "2026-01-01T10:00:35Z", 100, "2026-01-01T10:00:13 2026-01-01T10:00:23 2026-01-01T10:00:33", false},
		{"every bounded", every, "2026-01-01T10:00:03Z", "2026-01-01T10:00:35Z", 1, "2026-01-01T10:00:33", true},
		{"rare ticks, years down", yearly, "2020-06-01T00:00:00Z", "2026-03-01T00:00:00Z", 3, "2024-01-01T00:00:00 2025-01-01T00:00:00 2026-01-01T00:00:00", true},
	} {
		got, more := tc.k.Due(utc(tc.after), utc(tc.to), tc.limit)
		if list(got) != tc.want || more != tc.more {
			t.Errorf("%s: Due = [%s] more=%v, want [%s] more=%v", tc.name, list(got), more, tc.want, tc.more)
		}
	}
}

func TestScheduledRun(t *testing.T) {
	w := &Workflow{Name: "nightly", JobName: "a.sh", Schedule: &Schedule{Cron: "@daily"}}
	w.Normalize()
	tick := utc("2026-01-02T00:00:00Z")
	r := NewScheduledRun(w, tick, tick.Add(300*time.Millisecond))
	if r.TriggeredBy != TriggeredBySchedule || r.ScheduledAt == nil || !r.ScheduledAt.Equal(tick) || r.Status != RunPending {
		t.Fatalf("run = %+v", r)
	}
	// The id depends on the workflow and the tick only: whoever makes the
	// run for a tick makes the same id.
	if r.ID != ScheduledRunID("nightly", tick.In(time.FixedZone("x", 3600))) {
		t.Fatal("the id changed with the time zone of the tick")
	}
	if ScheduledRunID("nightly", tick) == ScheduledRunID("nightly", tick.Add(time.Second)) ||
		ScheduledRunID("nightly", tick) == ScheduledRunID("other", tick) {
		t.Fatal("two ticks share an id")
	}
}
