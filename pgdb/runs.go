//go:build postgres

package pgdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ork-run/ork/model"
)

const runCols = `id, workflow_id, workflow_name, status, triggered_by, params, started_at, finished_at, error, created_at, workflow, task_counts, scheduled_at, scheduler`

// terminalSQL lists the statuses that end a task or a run.
const terminalSQL = `('success', 'failed', 'cancelled', 'skipped')`

func scanRun(row pgx.Row) (*model.Run, error) {
	var r model.Run
	var params, wf, counts []byte
	var sched *string
	if err := row.Scan(&r.ID, &r.WorkflowID, &r.WorkflowName, &r.Status, &r.TriggeredBy, &params,
		&r.StartedAt, &r.FinishedAt, &r.Error, &r.CreatedAt, &wf, &counts, &r.ScheduledAt, &sched); err != nil {
		return nil, err
	}
	if sched != nil {
		r.Scheduler = *sched
	}
	if err := unmarshalIf(params, &r.Params); err != nil {
		return nil, fmt.Errorf("run %s params: %w", r.ID, err)
	}
	if len(wf) > 0 {
		w, err := decodeWorkflow(wf)
		if err != nil {
			return nil, fmt.Errorf("run %s workflow: %w", r.ID, err)
		}
		r.Workflow = w
	}
	if err := unmarshalIf(counts, &r.TaskCounts); err != nil {
		return nil, fmt.Errorf("run %s task counts: %w", r.ID, err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	r.StartedAt = utc(r.StartedAt)
	r.FinishedAt = utc(r.FinishedAt)
	r.ScheduledAt = utc(r.ScheduledAt)
	return &r, nil
}

// unmarshalIf decodes data into v unless it is empty or null. Numbers
// keep every digit (json.Number), as the contract says of params.
func unmarshalIf(data []byte, v any) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	return unmarshal(data, v)
}

func unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func utc(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	u := p.UTC()
	return &u
}

// jsonOrNull encodes v, or returns nil (SQL NULL) for an empty value.
func jsonOrNull[K ~string, V any](m map[K]V) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

func (d *DB) queryRuns(ctx context.Context, sql string, args ...any) ([]*model.Run, error) {
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, d.connError(err)
	}
	defer rows.Close()
	var out []*model.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, d.connError(err)
	}
	return out, nil
}

// CreateRun stores a new run; ErrExists if the id is taken. The insert
// notifies the schema's channel (a trigger), which wakes the scheduler.
func (d *DB) CreateRun(ctx context.Context, r *model.Run) error {
	tag, err := insertRun(ctx, d.pool, r)
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, d.connError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("run %s: %w", r.ID, model.ErrExists)
	}
	return nil
}

// insertRun inserts r unless its id is taken (then it affects no row).
func insertRun(ctx context.Context, q querier, r *model.Run) (pgconn.CommandTag, error) {
	if r.ID == "" {
		return pgconn.CommandTag{}, errors.New("the run has no id")
	}
	if r.Status == "" {
		r.Status = model.RunPending
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().UTC()
	}
	params, err := jsonOrNull(r.Params)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	var wf []byte
	if r.Workflow != nil {
		if wf, err = json.Marshal(r.Workflow); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	counts, err := jsonOrNull(r.TaskCounts)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return q.Exec(ctx, `INSERT INTO runs (`+runCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, nullif($14, '')) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.WorkflowID, r.WorkflowName, r.Status, r.TriggeredBy, params, r.StartedAt, r.FinishedAt,
		r.Error, r.CreatedAt, wf, counts, r.ScheduledAt, r.Scheduler)
}

// GetRun returns a run by id, or ErrNotFound.
func (d *DB) GetRun(ctx context.Context, id string) (*model.Run, error) {
	return again(ctx, func() (*model.Run, error) { return d.getRun(ctx, id) })
}

// getRun is GetRun, tried once.
func (d *DB) getRun(ctx context.Context, id string) (*model.Run, error) {
	r, err := scanRun(d.pool.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("run %q: %w", id, model.ErrNotFound)
	}
	if err != nil {
		return nil, d.connError(err)
	}
	return r, nil
}

// ListRuns returns runs newest first.
func (d *DB) ListRuns(ctx context.Context, f model.RunFilter) ([]*model.Run, error) {
	return again(ctx, func() ([]*model.Run, error) { return d.listRuns(ctx, f) })
}

// listRuns is ListRuns, tried once.
func (d *DB) listRuns(ctx context.Context, f model.RunFilter) ([]*model.Run, error) {
	var where []string
	var args []any
	if f.WorkflowName != "" {
		args = append(args, f.WorkflowName)
		where = append(where, fmt.Sprintf("workflow_name = $%d", len(args)))
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	sql := `SELECT ` + runCols + ` FROM runs`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		sql += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	return d.queryRuns(ctx, sql, args...)
}

// PendingRuns returns up to limit pending runs, oldest first.
func (d *DB) PendingRuns(ctx context.Context, limit int) ([]*model.Run, error) {
	return again(ctx, func() ([]*model.Run, error) { return d.pendingRuns(ctx, limit) })
}

// pendingRuns is PendingRuns, tried once.
func (d *DB) pendingRuns(ctx context.Context, limit int) ([]*model.Run, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	return d.queryRuns(ctx, `SELECT `+runCols+` FROM runs WHERE status = 'pending'
		ORDER BY created_at, id LIMIT $1`, lim)
}

// UpdateRuns applies run status changes in one statement per round (a run
// changed twice in one batch takes two rounds, in one transaction). The
// rules of model.ApplyRunUpdate are in the statement's WHERE: a finished
// run never changes (and the runs_keep_terminal trigger drops any update
// that would), a run never goes back to pending.
func (d *DB) UpdateRuns(ctx context.Context, us []model.RunUpdate) error {
	_, err := again(ctx, func() (struct{}, error) { return struct{}{}, d.updateRuns(ctx, us) })
	return err
}

// updateRuns is UpdateRuns, tried once.
func (d *DB) updateRuns(ctx context.Context, us []model.RunUpdate) error {
	var valid []model.RunUpdate
	for _, u := range us {
		if u.Status.Valid() && u.Status != model.RunPending {
			valid = append(valid, u)
		}
	}
	rounds := splitRounds(valid, func(u model.RunUpdate) string { return u.RunID })
	return d.inRounds(ctx, len(rounds), func(ctx context.Context, q querier, i int) error {
		return d.updateRunsRound(ctx, q, rounds[i])
	})
}

const updateRunsSQL = `UPDATE runs r SET
	status      = u.status,
	started_at  = CASE WHEN u.status = 'running' OR r.started_at IS NULL THEN u.at ELSE r.started_at END,
	finished_at = CASE WHEN u.status IN ` + terminalSQL + ` THEN u.at ELSE r.finished_at END,
	error       = CASE WHEN u.status IN ` + terminalSQL + ` THEN u.error ELSE r.error END,
	task_counts = CASE WHEN u.status IN ` + terminalSQL + ` THEN nullif(u.counts, '')::jsonb ELSE r.task_counts END
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS u(id, status, error, at, counts)
WHERE r.id = u.id
  AND r.status NOT IN ` + terminalSQL + `
  AND u.status IN ('running', 'success', 'failed', 'cancelled')
  AND r.status <> u.status`

func (d *DB) updateRunsRound(ctx context.Context, q querier, us []model.RunUpdate) error {
	ids := make([]string, len(us))
	sts := make([]string, len(us))
	errs := make([]string, len(us))
	ats := make([]time.Time, len(us))
	counts := make([]string, len(us))
	now := time.Now().UTC()
	for i, u := range us {
		ids[i], sts[i], errs[i] = u.RunID, string(u.Status), u.Error
		ats[i] = u.At.UTC()
		if u.At.IsZero() {
			ats[i] = now
		}
		if u.TaskCounts != nil {
			b, err := json.Marshal(u.TaskCounts)
			if err != nil {
				return err
			}
			counts[i] = string(b)
		}
	}
	_, err := q.Exec(ctx, updateRunsSQL, ids, sts, errs, ats, counts)
	return err
}

// RequestCancel marks an unfinished run for cancelling; the update
// notifies the scheduler. ErrNotFound if the run does not exist.
func (d *DB) RequestCancel(ctx context.Context, runID string) error {
	_, err := again(ctx, func() (struct{}, error) { return struct{}{}, d.requestCancel(ctx, runID) })
	return err
}

// requestCancel is RequestCancel, tried once.
func (d *DB) requestCancel(ctx context.Context, runID string) error {
	var exists bool
	err := d.pool.QueryRow(ctx, `WITH u AS (
			UPDATE runs SET cancel_requested_at = now()
			WHERE id = $1 AND cancel_requested_at IS NULL AND status NOT IN `+terminalSQL+`
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1) OR EXISTS (SELECT 1 FROM u)`, runID).Scan(&exists)
	if err != nil {
		return fmt.Errorf("request cancel of run %s: %w", runID, d.connError(err))
	}
	if !exists {
		return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
	}
	return nil
}

// CancelRequests returns the unfinished runs whose cancel was requested.
func (d *DB) CancelRequests(ctx context.Context) ([]string, error) {
	return again(ctx, func() ([]string, error) { return d.cancelRequests(ctx) })
}

// cancelRequests is CancelRequests, tried once.
func (d *DB) cancelRequests(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT id FROM runs
		WHERE cancel_requested_at IS NOT NULL AND status IN ('pending', 'running') ORDER BY id`)
	if err != nil {
		return nil, d.connError(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, d.connError(err)
	}
	return ids, nil
}

// ReopenRun makes a finished run pending again, in one transaction: the
// tasks in reset go back to pending with their attempts kept, those in
// remove are deleted. The transaction sets ork.reopen, the one thing that
// lets the keep-terminal triggers pass.
func (d *DB) ReopenRun(ctx context.Context, runID string, reset, remove []string) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var status model.RunStatus
		err := tx.QueryRow(ctx, `SELECT status FROM runs WHERE id = $1 FOR UPDATE`, runID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("run %q: %w", runID, model.ErrNotFound)
		}
		if err != nil {
			return d.connError(err)
		}
		if !status.Terminal() {
			return fmt.Errorf("run %s is %s: only a finished run can be retried", runID, status)
		}
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('ork.reopen', 'on', true)`)
		b.Queue(`DELETE FROM tasks WHERE run_id = $1 AND id = ANY($2::text[])`, runID, nonNil(remove))
		b.Queue(`UPDATE tasks SET status = 'pending', error = '', execution_name = '', log = '',
				exit_code = NULL, dispatched_at = NULL, started_at = NULL, finished_at = NULL,
				retry_at = NULL, output = NULL
			WHERE run_id = $1 AND id = ANY($2::text[])`, runID, nonNil(reset))
		b.Queue(`UPDATE runs SET status = 'pending', error = '', started_at = NULL, finished_at = NULL,
				task_counts = NULL, cancel_requested_at = NULL, scheduler = NULL WHERE id = $1`, runID)
		b.Queue(`SELECT set_config('ork.reopen', '', true)`)
		return tx.SendBatch(ctx, b).Close()
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// inRounds runs n rounds of a batch: one round as one statement, several
// in one transaction, so that a batch is all or nothing.
func (d *DB) inRounds(ctx context.Context, n int, round func(ctx context.Context, q querier, i int) error) error {
	switch n {
	case 0:
		return nil
	case 1:
		return d.connError(round(ctx, d.pool, 0))
	}
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		for i := range n {
			if err := round(ctx, tx, i); err != nil {
				return err
			}
		}
		return nil
	})
	return d.connError(err)
}

// splitRounds splits a batch into rounds in which each key appears at most
// once, keeping the order of the updates of each key: the k-th update of a
// key goes to round k.
func splitRounds[T any](us []T, key func(T) string) [][]T {
	var rounds [][]T
	seen := make(map[string]int, len(us))
	for _, u := range us {
		k := key(u)
		i := seen[k]
		seen[k] = i + 1
		if i == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[i] = append(rounds[i], u)
	}
	return rounds
}

// Prune deletes finished runs, with their tasks, that finished before
// cutoff, keeping the keepLast newest finished runs of each workflow
// whatever their age; one statement. It returns the ids it deleted. The
// logs of the runs are not the database's: the caller removes them.
func (d *DB) Prune(ctx context.Context, cutoff time.Time, keepLast int) ([]string, error) {
	rows, err := d.pool.Query(ctx, `WITH finished AS (
			SELECT id, coalesce(finished_at, created_at) AS ended,
				row_number() OVER (PARTITION BY workflow_name ORDER BY created_at DESC, id DESC) AS n
			FROM runs WHERE status IN ('success', 'failed', 'cancelled'))
		DELETE FROM runs WHERE id IN (SELECT id FROM finished WHERE n > $2 AND ended < $1)
		RETURNING id`, cutoff, keepLast)
	if err != nil {
		return nil, d.connError(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, d.connError(err)
	}
	return ids, nil
}
