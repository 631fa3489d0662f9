package model_test

import (
	"fmt"
	"time"

	"github.com/ork-run/ork/model"
)

// A schedule's ticks: nine o'clock on weekdays in Berlin, shown in UTC
// (summer time begins on Sunday the 29th of March 2026).
func ExampleSchedule_Parse() {
	s := model.Schedule{Cron: "0 9 * * 1-5", Timezone: "Europe/Berlin"}
	ticks, err := s.Parse()
	if err != nil {
		fmt.Println(err)
		return
	}
	t := time.Date(2026, 3, 26, 12, 0, 0, 0, time.UTC)
	for range 3 {
		t = ticks.Next(t)
		fmt.Println(t.Format(time.RFC3339), t.Weekday())
	}
	_, err = (&model.Schedule{Cron: "0 9 * * 1-5", Timezone: "Europe/Berlinn"}).Parse()
	fmt.Println(err)
	// Output:
	// 2026-03-27T08:00:00Z Friday
	// 2026-03-30T07:00:00Z Monday
	// 2026-03-31T07:00:00Z Tuesday
	// schedule.timezone "Europe/Berlinn": unknown time zone: use an IANA name such as Europe/Berlin or UTC
}

// The run of a tick has an id made from the workflow's name and the tick,
// so that whoever creates it for that tick creates the same one.
func ExampleScheduledRunID() {
	tick := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	a := model.ScheduledRunID("report", tick)
	b := model.ScheduledRunID("report", tick.In(time.FixedZone("CET", 3600)))
	fmt.Println(a == b, a == model.ScheduledRunID("report", tick.Add(time.Hour)))
	// Output: true false
}
