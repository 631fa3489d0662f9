package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
)

// TriggeredBySchedule is the triggered_by of a run that a schedule made.
const TriggeredBySchedule = "schedule"

// The overlap policies of a schedule.
const (
	// OverlapSkip: no new scheduled run while the schedule's previous run
	// is unfinished; the tick passes without a run. The default.
	OverlapSkip = "skip"
	// OverlapAllow: every tick makes a run, whatever still runs.
	OverlapAllow = "allow"
)

// MaxCatchup bounds the missed ticks that a schedule with catchup: true
// fires after downtime: the latest MaxCatchup of them, oldest first. Older
// missed ticks pass without a run.
const MaxCatchup = 100

// Schedule makes a workflow run by itself on a cron schedule:
//
//	"schedule": {"cron": "*/5 * * * *", "timezone": "Europe/Berlin", "catchup": false, "overlap": "skip"}
type Schedule struct {
	// Cron is a standard five-field cron expression (minute hour
	// day-of-month month day-of-week) or a descriptor: @yearly, @monthly,
	// @weekly, @daily, @hourly, or @every DURATION (at least 1s, whole
	// seconds).
	Cron string `json:"cron"`
	// Timezone is the IANA time zone the expression is read in. Default UTC.
	Timezone string `json:"timezone,omitempty"`
	// Catchup: after downtime, fire every missed tick (up to MaxCatchup),
	// not only the latest one.
	Catchup bool `json:"catchup,omitempty"`
	// Overlap is OverlapSkip (the default) or OverlapAllow.
	Overlap string `json:"overlap,omitempty"`
}

// OverlapPolicy returns the schedule's overlap policy, the default filled in.
func (s *Schedule) OverlapPolicy() string {
	if s.Overlap == "" {
		return OverlapSkip
	}
	return s.Overlap
}

// Spec returns what decides the schedule's ticks: its expression and time
// zone ("@hourly in UTC"). A state recorded for another spec is that of an
// expression since edited.
func (s *Schedule) Spec() string {
	return strings.TrimSpace(s.Cron) + " in " + s.Location()
}

// Location returns the name of the schedule's time zone, the default filled in.
func (s *Schedule) Location() string {
	if s.Timezone == "" {
		return "UTC"
	}
	return s.Timezone
}

// ScheduleError is a problem with one field of a workflow's schedule.
type ScheduleError struct {
	Field string // "cron", "timezone" or "overlap"
	Value string
	Err   error
}

func (e *ScheduleError) Error() string {
	return fmt.Sprintf("schedule.%s %q: %v", e.Field, e.Value, e.Err)
}

func (e *ScheduleError) Unwrap() error { return e.Err }

// ticksProbe is the time from which Parse checks that an expression fires
// at all ("0 0 30 2 *" never does).
var ticksProbe = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Parse checks the schedule and returns its ticks. Errors are
// *ScheduleError naming the field.
func (s *Schedule) Parse() (*Ticks, error) {
	var errs []error
	loc := time.UTC
	if s.Timezone != "" {
		l, err := time.LoadLocation(s.Timezone)
		if err != nil {
			errs = append(errs, &ScheduleError{Field: "timezone", Value: s.Timezone, Err: errors.New("unknown time zone: use an IANA name such as Europe/Berlin or UTC")})
		} else {
			loc = l
		}
	}
	if s.Overlap != "" && s.Overlap != OverlapSkip && s.Overlap != OverlapAllow {
		errs = append(errs, &ScheduleError{Field: "overlap", Value: s.Overlap, Err: fmt.Errorf("unknown: use %q or %q", OverlapSkip, OverlapAllow)})
	}
	k, err := parseCron(s.Cron, loc)
	if err != nil {
		errs = append(errs, &ScheduleError{Field: "cron", Value: s.Cron, Err: err})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k, nil
}

// Validate checks the schedule (see Parse).
func (s *Schedule) Validate() error {
	_, err := s.Parse()
	return err
}

func parseCron(expr string, loc *time.Location) (*Ticks, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, errors.New("is empty: give a cron expression such as \"*/5 * * * *\" or \"@hourly\"")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, errors.New("names a time zone: put it in schedule.timezone instead")
	}
	if rest, ok := strings.CutPrefix(expr, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		switch {
		case err != nil:
			return nil, fmt.Errorf("@every needs a duration such as 30s, 5m or 1h30m: %v", err)
		case d < time.Second:
			return nil, fmt.Errorf("@every %s is shorter than the shortest interval, 1s", d)
		case d%time.Second != 0:
			return nil, fmt.Errorf("@every %s is not a whole number of seconds", d)
		}
		return &Ticks{every: d, loc: loc}, nil
	}
	sch, err := cron.ParseStandard(expr)
	if err != nil {
		// The parser repeats the expression at the end ("…: [*/5 * * *]");
		// the error already names it.
		msg := strings.TrimSuffix(err.Error(), ": ["+expr+"]")
		return nil, errors.New(msg)
	}
	spec, ok := sch.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("unsupported expression")
	}
	spec.Location = loc
	k := &Ticks{spec: spec, loc: loc}
	if k.Next(ticksProbe).IsZero() {
		return nil, errors.New("never fires: no date matches it")
	}
	return k, nil
}

// Ticks are the times a schedule fires. Make them with Schedule.Parse.
type Ticks struct {
	spec  *cron.SpecSchedule // a cron expression or descriptor, or
	every time.Duration      // @every: ticks every this long after the last
	loc   *time.Location
}

// Next returns the first tick after t, in UTC, or the zero time if there is
// none in the next five years. @every ticks follow on from t: t plus the
// interval, t taken to the whole second.
func (k *Ticks) Next(t time.Time) time.Time {
	if k.every > 0 {
		return t.Truncate(time.Second).Add(k.every).UTC()
	}
	n := k.spec.Next(t.In(k.loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// Due returns the ticks in (after, upTo], oldest first: only the latest
// limit of them (limit >= 1), and whether it left earlier ones out. @every
// ticks follow on from after.
func (k *Ticks) Due(after, upTo time.Time, limit int) (ticks []time.Time, more bool) {
	limit = max(limit, 1)
	if !upTo.After(after) {
		return nil, false
	}
	if k.every > 0 {
		start := after.Truncate(time.Second)
		n := int(upTo.Sub(start) / k.every)
		first := max(1, n-limit+1)
		for i := first; i <= n; i++ {
			ticks = append(ticks, start.Add(time.Duration(i)*k.every).UTC())
		}
		return ticks, first > 1
	}
	ticks = nil
	// Walking a cron expression forward from a tick long past takes one
	// step per tick: start instead at the shortest look-back that holds
	// limit ticks.
	for _, back := range []time.Duration{time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		from := upTo.Add(-back)
		if !from.After(after) {
			break
		}
		if ts := k.collect(from, upTo, limit); len(ts) == limit {
			ticks = ts
			break
		}
	}
	if ticks == nil {
		ticks = k.collect(after, upTo, limit)
	}
	if len(ticks) == 0 {
		return nil, false
	}
	return ticks, k.Next(after).Before(ticks[0])
}

// collect walks the ticks in (after, upTo] and returns the latest limit of
// them, oldest first.
func (k *Ticks) collect(after, upTo time.Time, limit int) []time.Time {
	ring := make([]time.Time, 0, limit)
	for t := k.Next(after); !t.IsZero() && !t.After(upTo); t = k.Next(t) {
		if len(ring) < limit {
			ring = append(ring, t)
		} else {
			copy(ring, ring[1:])
			ring[limit-1] = t
		}
	}
	return ring
}

// ScheduledRunID returns the id of the run that the schedule of workflow
// makes for tick. The id is the same whoever computes it, so on the file
// database creating the run file is the claim of the tick: a second
// attempt finds it taken.
func ScheduledRunID(workflow string, tick time.Time) string {
	return uuid.NewSHA1(workflowNamespace, []byte("schedule/"+workflow+"/"+tick.UTC().Format(time.RFC3339Nano))).String()
}

// NewScheduledRun makes the pending run of w for tick: triggered_by
// "schedule", scheduled_at tick, id ScheduledRunID.
func NewScheduledRun(w *Workflow, tick, now time.Time) *Run {
	r := NewRun(w, nil, TriggeredBySchedule, now)
	r.ID = ScheduledRunID(w.Name, tick)
	t := tick.UTC()
	r.ScheduledAt = &t
	return r
}

// ScheduleState is the durable state of a workflow's schedule.
type ScheduleState struct {
	// Paused: ticks pass without runs until it is unpaused. Manual
	// triggers are not affected.
	Paused   bool       `json:"paused"`
	PausedAt *time.Time `json:"paused_at,omitempty"`
	// Through: every tick at or before it has been dealt with — it made a
	// run, or passed without one (missed with catchup false, skipped
	// because of overlap, paused). Zero: the schedule has not started.
	Through time.Time `json:"through"`
	// LastTick and LastRunID: the latest tick that made a run, and its run.
	LastTick  *time.Time `json:"last_tick,omitempty"`
	LastRunID string     `json:"last_run_id,omitempty"`
	// Spec is the Schedule.Spec the state is for, as last recorded by
	// AdvanceSchedule.
	Spec string `json:"spec,omitempty"`
}

// ScheduleStore is implemented by databases that keep the state of
// schedules. The scheduler fires schedules only on a database that
// implements it; every method may be called by several processes at once.
//
// # Exactly once
//
// A tick makes at most one run, whatever the number of schedulers, crashes
// and restarts, because ClaimTick creates the run and claims the tick in
// one atomic step, and refuses a tick that is claimed already. The
// scheduler calls it only for ticks after Through, so a tick is claimed at
// most once on time and never afterwards.
//
//   - The file database: the run's id is ScheduledRunID(workflow, tick), and
//     creating its file — link(2) of a complete, synced temporary file,
//     which fails if the name exists — is the claim. A scheduler killed
//     after the link finds the tick taken after a restart.
//   - PostgreSQL: a unique key on (workflow_name, scheduled_at) of runs (a
//     partial unique index WHERE scheduled_at IS NOT NULL), or the run's
//     primary key with the same ScheduledRunID. ClaimTick runs in one
//     transaction: lock the schedule's state row (INSERT ... ON CONFLICT
//     DO NOTHING, then SELECT ... FOR UPDATE), refuse the tick if it is at
//     or before through, INSERT the run ... ON CONFLICT DO NOTHING
//     (claimed = a row was inserted), and move through, last_tick and
//     last_run_id forward (GREATEST), then COMMIT. Two schedulers that
//     race for a tick: one inserts, the other gets claimed = false.
type ScheduleStore interface {
	// ClaimTick stores r, the run of the schedule of workflow
	// r.WorkflowName for tick *r.ScheduledAt (made by NewScheduledRun),
	// unless the tick is claimed already: a run for it exists, or the tick
	// is at or before the schedule's Through. claimed says whether this
	// call stored r. Either way, when it returns without error the
	// schedule's Through is at or after the tick; when it claimed, its
	// LastTick and LastRunID are the tick and r (unless a later tick's).
	// claimed with an error: r was stored but the state was not moved on;
	// claiming the tick again (refused) brings it up to date.
	ClaimTick(ctx context.Context, r *Run) (claimed bool, err error)
	// AdvanceSchedule records that the ticks of workflow's schedule up to
	// and including through passed without runs. Through never moves back.
	// A spec that is not empty replaces the recorded Spec.
	AdvanceSchedule(ctx context.Context, workflow string, through time.Time, spec string) error
	// ScheduleState returns the state of workflow's schedule; the zero
	// ScheduleState for one that never ran and was never paused.
	ScheduleState(ctx context.Context, workflow string) (ScheduleState, error)
	// SetPaused pauses or unpauses the schedule of workflow, durably. It
	// is idempotent; PausedAt is kept from the first pause.
	SetPaused(ctx context.Context, workflow string, paused bool) error
}

// scheduleFieldOffset returns the offset in data, the JSON of a workflow,
// of the key "field" of its "schedule" object, or of "schedule" itself, or
// -1.
func scheduleFieldOffset(data []byte, field string) int64 {
	found, sched := int64(-1), int64(-1)
	inSched := false
	walkTokens(data, func(tok json.Token, start, end int64, depth int) bool {
		s, ok := tok.(string)
		if depth == 1 && ok && isKey(data, end) {
			inSched = s == "schedule"
			if inSched {
				sched = start
			}
			return true
		}
		if inSched && depth == 2 && ok && s == field && isKey(data, end) {
			found = start
			return false
		}
		return true
	})
	if found >= 0 {
		return found
	}
	return sched
}

// scheduleFileError turns an error of w.Schedule into a *FileError at the
// field it names.
func scheduleFileError(path string, data []byte, err error) error {
	var se *ScheduleError
	if errors.As(err, &se) {
		if off := scheduleFieldOffset(data, se.Field); off >= 0 {
			l, c := lineCol(data, off)
			return &FileError{Path: path, Line: l, Column: c, Err: err}
		}
	}
	return &FileError{Path: path, Err: err}
}
