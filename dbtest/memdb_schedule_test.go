package dbtest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ork-run/ork/model"
)

// memDB keeps the ScheduleStore contract the simplest way: one mutex over
// the runs and the schedule states, so that a claim is one step.

var _ model.ScheduleStore = (*memDB)(nil)

func (d *memDB) ClaimTick(_ context.Context, r *model.Run) (bool, error) {
	if r.ScheduledAt == nil {
		return false, fmt.Errorf("run %s has no scheduled_at", r.ID)
	}
	tick := r.ScheduledAt.UTC()
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.schedules[r.WorkflowName]
	if !tick.After(st.Through) {
		return false, nil
	}
	for _, o := range d.runs {
		if o.WorkflowName == r.WorkflowName && o.ScheduledAt != nil && o.ScheduledAt.Equal(tick) {
			st.Through = tick
			d.schedules[r.WorkflowName] = st
			return false, nil
		}
	}
	d.runs[r.ID] = clone(r)
	st.Through = tick
	st.LastTick, st.LastRunID = &tick, r.ID
	d.schedules[r.WorkflowName] = st
	return true, nil
}

func (d *memDB) AdvanceSchedule(_ context.Context, workflow string, through time.Time, spec string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.schedules[workflow]
	if through.After(st.Through) {
		st.Through = through.UTC()
	}
	if spec != "" {
		st.Spec = spec
	}
	d.schedules[workflow] = st
	return nil
}

func (d *memDB) ScheduleState(_ context.Context, workflow string) (model.ScheduleState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.schedules[workflow]
	if st.LastTick != nil {
		t := *st.LastTick
		st.LastTick = &t
	}
	return st, nil
}

func (d *memDB) SetPaused(_ context.Context, workflow string, paused bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.schedules[workflow]
	switch {
	case paused && !st.Paused:
		now := time.Now().UTC()
		st.Paused, st.PausedAt = true, &now
	case !paused:
		st.Paused, st.PausedAt = false, nil
	}
	d.schedules[workflow] = st
	return nil
}
