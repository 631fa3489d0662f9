//go:build postgres

package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ork-run/ork/model"
)

var _ model.ScheduleStore = (*DB)(nil)

// ClaimTick stores r, the run of a schedule's tick, unless the tick is
// claimed already (see model.ScheduleStore), in one transaction: the
// schedule's row is locked (claimers take turns), a tick at or before its
// Through is refused, the run is inserted unless its id — derived from the
// workflow and the tick — exists, and the state moves on.
func (d *DB) ClaimTick(ctx context.Context, r *model.Run) (bool, error) {
	if r.ScheduledAt == nil {
		return false, fmt.Errorf("claim tick: run %s has no scheduled_at", r.ID)
	}
	if err := model.ValidateName(r.WorkflowName); err != nil {
		return false, fmt.Errorf("claim tick: %w", err)
	}
	tick := r.ScheduledAt.UTC()
	if want := model.ScheduledRunID(r.WorkflowName, tick); r.ID != want {
		return false, fmt.Errorf("claim tick: run id %s is not the id of the tick %s of %s (%s)", r.ID, tick.Format(time.RFC3339), r.WorkflowName, want)
	}
	claimed := false
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO schedules (workflow) VALUES ($1) ON CONFLICT DO NOTHING`, r.WorkflowName); err != nil {
			return err
		}
		var through *time.Time
		if err := tx.QueryRow(ctx, `SELECT through FROM schedules WHERE workflow = $1 FOR UPDATE`, r.WorkflowName).Scan(&through); err != nil {
			return err
		}
		if through != nil && !tick.After(*through) {
			return nil
		}
		if r.Status == "" {
			r.Status = model.RunPending
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = time.Now().UTC()
		}
		tag, err := insertRun(ctx, tx, r)
		if err != nil {
			return err
		}
		claimed = tag.RowsAffected() == 1
		_, err = tx.Exec(ctx, `UPDATE schedules SET through = $2,
				last_run_id = CASE WHEN last_tick IS NULL OR $2 > last_tick THEN $3 ELSE last_run_id END,
				last_tick = CASE WHEN last_tick IS NULL OR $2 > last_tick THEN $2 ELSE last_tick END
			WHERE workflow = $1`, r.WorkflowName, tick, r.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim the tick %s of %s: %w", tick.Format(time.RFC3339), r.WorkflowName, d.connError(err))
	}
	return claimed, nil
}

// AdvanceSchedule records that the ticks of workflow's schedule up to
// through passed without runs; Through never moves back. A spec that is
// not empty replaces the recorded one.
func (d *DB) AdvanceSchedule(ctx context.Context, workflow string, through time.Time, spec string) error {
	if err := model.ValidateName(workflow); err != nil {
		return err
	}
	th := pgtype.Timestamptz{}
	if !through.IsZero() {
		th = pgtype.Timestamptz{Time: through.UTC(), Valid: true}
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO schedules (workflow, through, spec) VALUES ($1, $2, $3)
		ON CONFLICT (workflow) DO UPDATE SET
			through = CASE WHEN excluded.through IS NOT NULL AND (schedules.through IS NULL OR excluded.through > schedules.through)
				THEN excluded.through ELSE schedules.through END,
			spec = CASE WHEN excluded.spec <> '' THEN excluded.spec ELSE schedules.spec END
		WHERE (excluded.through IS NOT NULL AND (schedules.through IS NULL OR excluded.through > schedules.through))
		   OR (excluded.spec <> '' AND excluded.spec <> schedules.spec)`, workflow, th, spec)
	if err != nil {
		return fmt.Errorf("advance the schedule of %s: %w", workflow, d.connError(err))
	}
	return nil
}

// ScheduleState returns the state of workflow's schedule; the zero state
// for one that never ran and was never paused.
func (d *DB) ScheduleState(ctx context.Context, workflow string) (model.ScheduleState, error) {
	return again(ctx, func() (model.ScheduleState, error) {
		var st model.ScheduleState
		if err := model.ValidateName(workflow); err != nil {
			return st, err
		}
		var through *time.Time
		err := d.pool.QueryRow(ctx, `SELECT through, last_tick, last_run_id, spec, paused_at FROM schedules WHERE workflow = $1`, workflow).
			Scan(&through, &st.LastTick, &st.LastRunID, &st.Spec, &st.PausedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return model.ScheduleState{}, nil
		}
		if err != nil {
			return st, d.connError(err)
		}
		if through != nil {
			st.Through = through.UTC()
		}
		st.LastTick = utc(st.LastTick)
		st.PausedAt = utc(st.PausedAt)
		st.Paused = st.PausedAt != nil
		return st, nil
	})
}

// SetPaused pauses or unpauses the schedule of workflow; a pause keeps the
// time of the first one.
func (d *DB) SetPaused(ctx context.Context, workflow string, paused bool) error {
	if err := model.ValidateName(workflow); err != nil {
		return err
	}
	var err error
	if paused {
		_, err = d.pool.Exec(ctx, `INSERT INTO schedules (workflow, paused_at) VALUES ($1, now())
			ON CONFLICT (workflow) DO UPDATE SET paused_at = coalesce(schedules.paused_at, excluded.paused_at)
			WHERE schedules.paused_at IS NULL`, workflow)
	} else {
		_, err = d.pool.Exec(ctx, `UPDATE schedules SET paused_at = NULL WHERE workflow = $1 AND paused_at IS NOT NULL`, workflow)
	}
	if err != nil {
		return fmt.Errorf("pause the schedule of %s: %w", workflow, d.connError(err))
	}
	return nil
}
