package cli

import (
	"testing"
	"time"

	"github.com/ork-run/ork/model"
)

// nextTick is the NEXT column of `ork schedules`: what the scheduler fires
// next, running or not.
func TestNextTick(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hourly, err := (&model.Schedule{Cron: "@hourly"}).Parse()
	if err != nil {
		t.Fatal(err)
	}
	every, err := (&model.Schedule{Cron: "@every 90s"}).Parse()
	if err != nil {
		t.Fatal(err)
	}
	now := at("2026-03-02T10:20:00Z")
	for _, tc := range []struct {
		name    string
		k       *model.Ticks
		through string
		want    string
	}{
		{"not started: the first tick after now", hourly, "", "2026-03-02T11:00:00Z"},
		{"up to date", hourly, "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"},
		{"scheduler down for hours: after the latest missed tick", hourly, "2026-03-02T06:00:00Z", "2026-03-02T11:00:00Z"},
		{"@every follows on from the last tick", every, "2026-03-02T10:19:00Z", "2026-03-02T10:20:30Z"},
		{"@every, ticks missed", every, "2026-03-02T10:10:00Z", "2026-03-02T10:20:30Z"},
	} {
		var st model.ScheduleState
		if tc.through != "" {
			st.Through = at(tc.through)
		}
		if got := nextTick(tc.k, st, now); !got.Equal(at(tc.want)) {
			t.Errorf("%s: next = %s, want %s", tc.name, got.Format(time.RFC3339), tc.want)
		}
	}
}
