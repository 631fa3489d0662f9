//go:build postgres

package pgdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ork-run/ork/model"
)

const taskCols = `id, run_id, name, task_index, status, execution_name, params, output, error, attempt, exit_code, dispatched_at, started_at, finished_at, created_at, retry_at, log, attempts, scheduler`

// taskColsT is taskCols qualified by the alias t.
const taskColsT = `t.id, t.run_id, t.name, t.task_index, t.status, t.execution_name, t.params, t.output, t.error, t.attempt, t.exit_code, t.dispatched_at, t.started_at, t.finished_at, t.created_at, t.retry_at, t.log, t.attempts, t.scheduler`

// taskScan scans one task row; extra destinations follow the task's.
func scanTask(row pgx.Row, extra ...any) (*model.Task, error) {
	var t model.Task
	var params, output, attempts []byte
	var exit *int32
	dest := append([]any{&t.ID, &t.RunID, &t.Name, &t.TaskIndex, &t.Status, &t.ExecutionName, &params, &output,
		&t.Error, &t.Attempt, &exit, &t.DispatchedAt, &t.StartedAt, &t.FinishedAt, &t.CreatedAt, &t.RetryAt,
		&t.Log, &attempts, &t.Scheduler}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := unmarshalIf(params, &t.Params); err != nil {
		return nil, fmt.Errorf("task %s params: %w", t.ID, err)
	}
	if len(output) > 0 && string(output) != "null" {
		t.Output = json.RawMessage(output)
	}
	if exit != nil {
		n := int(*exit)
		t.ExitCode = &n
	}
	if len(attempts) > 2 {
		if err := json.Unmarshal(attempts, &t.Attempts); err != nil {
			return nil, fmt.Errorf("task %s attempts: %w", t.ID, err)
		}
		for i := range t.Attempts {
			t.Attempts[i].StartedAt = utc(t.Attempts[i].StartedAt)
			t.Attempts[i].FinishedAt = utc(t.Attempts[i].FinishedAt)
		}
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.DispatchedAt = utc(t.DispatchedAt)
	t.StartedAt = utc(t.StartedAt)
	t.FinishedAt = utc(t.FinishedAt)
	t.RetryAt = utc(t.RetryAt)
	return &t, nil
}

func ts(p *time.Time) pgtype.Timestamptz {
	if p == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *p, Valid: true}
}

func int4(p *int) pgtype.Int4 {
	if p == nil {
		return pgtype.Int4{}
	}
	return pgtype.Int4{Int32: int32(*p), Valid: true}
}

// CreateTasks stores new tasks in one statement, INSERT … SELECT FROM
// unnest(…), one array per column. A task whose id (or run, name and
// index) exists is left as it is.
func (d *DB) CreateTasks(ctx context.Context, tasks []*model.Task) error {
	_, err := again(ctx, func() (struct{}, error) { return struct{}{}, d.createTasks(ctx, tasks) })
	return err
}

// createTasks is CreateTasks, tried once.
func (d *DB) createTasks(ctx context.Context, tasks []*model.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	args, err := createTasksArgs(tasks)
	if err != nil {
		return err
	}
	_, err = d.pool.Exec(ctx, createTasksSQL+` ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" {
			return fmt.Errorf("create tasks: a task's run does not exist: %w", model.ErrNotFound)
		}
		return fmt.Errorf("create tasks: %w", d.connError(err))
	}
	return nil
}

// createTasksSQL inserts the tasks of createTasksArgs ($1 to $19); the
// caller adds its ON CONFLICT clause (and may add a WHERE before it).
const createTasksSQL = `INSERT INTO tasks (` + taskCols + `)
		SELECT u.id, u.run_id, u.name, u.task_index, u.status, u.execution_name, nullif(u.params, '')::jsonb,
			nullif(u.output, '')::jsonb, u.error, u.attempt, u.exit_code, u.dispatched_at, u.started_at,
			u.finished_at, u.created_at, u.retry_at, u.log, coalesce(nullif(u.attempts, '')::jsonb, '[]'::jsonb), u.scheduler
		FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::int4[], $11::int4[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
			$15::timestamptz[], $16::timestamptz[], $17::text[], $18::text[], $19::text[])
			AS u(id, run_id, name, task_index, status, execution_name, params, output, error, attempt, exit_code,
				dispatched_at, started_at, finished_at, created_at, retry_at, log, attempts, scheduler)`

// createTasksArgs encodes tasks as the arrays of createTasksSQL.
func createTasksArgs(tasks []*model.Task) ([]any, error) {
	n := len(tasks)
	var (
		ids, runIDs, names, statuses, execs, params, outputs, errs, logs, attempts, scheds = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		indexes, tries                                                                     = make([]int32, n), make([]int32, n)
		exits                                                                              = make([]pgtype.Int4, n)
		dispatched, started, finished, retry                                               = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		created                                                                            = make([]time.Time, n)
	)
	now := time.Now().UTC()
	var lastParams map[string]any
	var lastParamsJSON string
	for i, t := range tasks {
		ids[i], runIDs[i], names[i], indexes[i] = t.ID, t.RunID, t.Name, int32(t.TaskIndex)
		statuses[i] = string(t.Status)
		if t.Status == "" {
			statuses[i] = string(model.TaskPending)
		}
		execs[i], errs[i], logs[i], tries[i], scheds[i] = t.ExecutionName, t.Error, t.Log, int32(t.Attempt), t.Scheduler
		if len(t.Params) > 0 {
			// The tasks of one node share one params map: encode it once.
			if lastParams == nil || !sameMap(lastParams, t.Params) {
				b, err := json.Marshal(t.Params)
				if err != nil {
					return nil, fmt.Errorf("task %s params: %w", t.ID, err)
				}
				lastParams, lastParamsJSON = t.Params, string(b)
			}
			params[i] = lastParamsJSON
		}
		if len(t.Output) > 0 {
			outputs[i] = string(t.Output)
		}
		if len(t.Attempts) > 0 {
			b, err := json.Marshal(t.Attempts)
			if err != nil {
				return nil, err
			}
			attempts[i] = string(b)
		}
		exits[i] = int4(t.ExitCode)
		dispatched[i], started[i], finished[i], retry[i] = ts(t.DispatchedAt), ts(t.StartedAt), ts(t.FinishedAt), ts(t.RetryAt)
		created[i] = t.CreatedAt
		if t.CreatedAt.IsZero() {
			created[i] = now
		}
	}
	return []any{ids, runIDs, names, indexes, statuses, execs, params, outputs, errs, tries, exits,
		dispatched, started, finished, created, retry, logs, attempts, scheds}, nil
}

// sameMap reports whether a and b are the same map (not equal contents:
// the same one).
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// withWorkflows scans task rows that carry their run's workflow snapshot
// after the task's columns; the snapshot is decoded once per run.
func (d *DB) withWorkflows(ctx context.Context, sql string, args ...any) ([]model.TaskWithWorkflow, error) {
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, d.connError(err)
	}
	out, err := scanWithWorkflows(rows)
	if err != nil {
		return nil, d.connError(err)
	}
	return out, nil
}

// scanWithWorkflows scans what withWorkflows reads, and closes rows.
func scanWithWorkflows(rows pgx.Rows) ([]model.TaskWithWorkflow, error) {
	defer rows.Close()
	var out []model.TaskWithWorkflow
	wfs := map[string]*model.Workflow{}
	for rows.Next() {
		var wf []byte
		t, err := scanTask(rows, &wf)
		if err != nil {
			return nil, err
		}
		w, ok := wfs[t.RunID]
		if !ok && len(wf) > 0 {
			if w, err = decodeWorkflow(wf); err != nil {
				return nil, fmt.Errorf("run %s workflow: %w", t.RunID, err)
			}
			wfs[t.RunID] = w
		}
		out = append(out, model.TaskWithWorkflow{Task: t, Workflow: w})
	}
	return out, rows.Err()
}

// PendingTasks returns up to limit pending tasks whose retry time has come,
// of unfinished runs, oldest run first, then by index. The query walks the
// unfinished runs in order and, for each, its queue in the tasks_pending
// index until it has enough: its cost is what it returns, and its plan
// does not depend on statistics that a burst of new tasks made stale.
func (d *DB) PendingTasks(ctx context.Context, limit int) ([]model.TaskWithWorkflow, error) {
	return again(ctx, func() ([]model.TaskWithWorkflow, error) { return d.pendingTasks(ctx, limit) })
}

// pendingTasks is PendingTasks, tried once.
func (d *DB) pendingTasks(ctx context.Context, limit int) ([]model.TaskWithWorkflow, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	return d.withWorkflows(ctx, `SELECT `+taskColsT+`, r.workflow
		FROM (SELECT id, created_at, workflow FROM runs WHERE status IN ('pending', 'running')
		      ORDER BY created_at, id) r
		CROSS JOIN LATERAL (
			SELECT * FROM tasks t
			WHERE t.run_id = r.id AND t.status = 'pending' AND (t.retry_at IS NULL OR t.retry_at <= now())
			ORDER BY t.task_index, t.name LIMIT $1) t
		LIMIT $1`, lim)
}

// ActiveTasks returns every dispatched or running task.
func (d *DB) ActiveTasks(ctx context.Context) ([]model.TaskWithWorkflow, error) {
	return again(ctx, func() ([]model.TaskWithWorkflow, error) { return d.activeTasks(ctx) })
}

// activeTasks is ActiveTasks, tried once.
func (d *DB) activeTasks(ctx context.Context) ([]model.TaskWithWorkflow, error) {
	return d.withWorkflows(ctx, `SELECT `+taskColsT+`, r.workflow FROM tasks t JOIN runs r ON r.id = t.run_id
		WHERE t.status IN ('dispatched', 'running')
		ORDER BY r.created_at, t.run_id, t.task_index, t.name`)
}

// ListTasks returns the tasks of a run by name and index.
func (d *DB) ListTasks(ctx context.Context, runID string) ([]*model.Task, error) {
	return again(ctx, func() ([]*model.Task, error) { return d.listTasks(ctx, runID) })
}

// listTasks is ListTasks, tried once.
func (d *DB) listTasks(ctx context.Context, runID string) ([]*model.Task, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+taskCols+` FROM tasks WHERE run_id = $1 ORDER BY name COLLATE "C", task_index`, runID)
	if err != nil {
		return nil, d.connError(err)
	}
	defer rows.Close()
	var out []*model.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, d.connError(err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, d.connError(err)
	}
	return out, nil
}

var _ model.TaskGetter = (*DB)(nil)

// GetTask returns task name[index] of a run: one row, by the unique key
// (run_id, name, task_index).
func (d *DB) GetTask(ctx context.Context, runID, name string, index int) (*model.Task, error) {
	return again(ctx, func() (*model.Task, error) { return d.getTask(ctx, runID, name, index) })
}

// getTask is GetTask, tried once.
func (d *DB) getTask(ctx context.Context, runID, name string, index int) (*model.Task, error) {
	t, err := scanTask(d.pool.QueryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE run_id = $1 AND name = $2 AND task_index = $3`, runID, name, index))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, model.TaskNotFound(runID, name, index)
	}
	if err != nil {
		return nil, d.connError(err)
	}
	return t, nil
}

// TaskCounts returns how many tasks of a run are in each status: a few
// rows of task_counts, which triggers keep.
func (d *DB) TaskCounts(ctx context.Context, runID string) (map[model.TaskStatus]int, error) {
	return again(ctx, func() (map[model.TaskStatus]int, error) { return d.taskCounts(ctx, runID) })
}

// taskCounts is TaskCounts, tried once.
func (d *DB) taskCounts(ctx context.Context, runID string) (map[model.TaskStatus]int, error) {
	rows, err := d.pool.Query(ctx, `SELECT status, n FROM task_counts WHERE run_id = $1 AND n <> 0`, runID)
	if err != nil {
		return nil, d.connError(err)
	}
	out := map[model.TaskStatus]int{}
	var st string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		out[model.TaskStatus(st)] = n
		return nil
	})
	if err != nil {
		return nil, d.connError(err)
	}
	return out, nil
}

var _ model.RunTaskCounter = (*DB)(nil)

// RunTaskCounts counts the tasks of the runs ids by status, in one query.
func (d *DB) RunTaskCounts(ctx context.Context, ids []string) (map[string]map[model.TaskStatus]int, error) {
	out, err := again(ctx, func() (map[string]map[model.TaskStatus]int, error) { return d.runTaskCounts(ctx, ids) })
	if err != nil {
		return map[string]map[model.TaskStatus]int{}, err
	}
	return out, nil
}

func (d *DB) runTaskCounts(ctx context.Context, ids []string) (map[string]map[model.TaskStatus]int, error) {
	out := make(map[string]map[model.TaskStatus]int, len(ids))
	for _, id := range ids {
		out[id] = map[model.TaskStatus]int{}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := d.pool.Query(ctx, `SELECT run_id, status, n FROM task_counts WHERE run_id = ANY($1::text[]) AND n <> 0`, ids)
	if err != nil {
		return nil, d.connError(err)
	}
	var id, st string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &st, &n}, func() error {
		if c := out[id]; c != nil {
			c[model.TaskStatus(st)] = n
		}
		return nil
	})
	if err != nil {
		return nil, d.connError(err)
	}
	return out, nil
}

// updateTasksSQL is model.ApplyTaskUpdate as one statement over a batch:
// the WHERE clause holds the rules of what may change (a terminal task
// never changes; an update about another attempt than the task's current
// one is stale; nothing moves backwards), the SET clause what changes.
// Each row of u is one update; a task appears at most once per statement.
// A report that names a scheduler other than the one that dispatched the
// task's attempt is ignored (fencing, as in model.ApplyTaskUpdate); a
// dispatch names the scheduler that claims the attempt.
// withdrawSQL: the update withdraws an attempt that never started (see
// model.TaskUpdate.Unstarted): the task gets its previous attempt number
// back and no attempt record.
const withdrawSQL = `(u.unstarted AND u.status = 'pending' AND t.status = 'dispatched' AND t.started_at IS NULL)`

const updateTasksSQL = `UPDATE tasks t SET
	status = u.status,
	attempt = CASE WHEN u.status = 'dispatched'
		THEN CASE WHEN u.attempt = 0 THEN t.attempt + 1 ELSE u.attempt END
		WHEN ` + withdrawSQL + ` THEN t.attempt - 1 ELSE t.attempt END,
	execution_name = CASE u.status WHEN 'dispatched' THEN u.execution_name WHEN 'pending' THEN ''
		ELSE coalesce(nullif(u.execution_name, ''), t.execution_name) END,
	error = CASE u.status WHEN 'dispatched' THEN '' WHEN 'running' THEN t.error ELSE u.error END,
	exit_code = CASE WHEN u.status = 'dispatched' OR ` + withdrawSQL + ` THEN NULL WHEN u.status = 'running' THEN t.exit_code ELSE u.exit_code END,
	dispatched_at = CASE WHEN u.status = 'dispatched' THEN u.at WHEN ` + withdrawSQL + ` THEN NULL ELSE t.dispatched_at END,
	started_at = CASE u.status WHEN 'dispatched' THEN NULL WHEN 'running' THEN u.at ELSE t.started_at END,
	finished_at = CASE WHEN u.status = 'dispatched' THEN NULL WHEN u.status IN ` + terminalSQL + ` THEN u.at
		ELSE t.finished_at END,
	retry_at = CASE WHEN ` + withdrawSQL + ` THEN NULL WHEN u.status = 'pending' THEN u.retry_at WHEN u.status = 'running' THEN t.retry_at ELSE NULL END,
	log = CASE WHEN u.status = 'dispatched' OR ` + withdrawSQL + ` THEN '' WHEN u.status = 'running' THEN coalesce(nullif(u.log, ''), t.log) ELSE t.log END,
	output = CASE WHEN u.status IN ` + terminalSQL + ` AND u.output <> '' THEN u.output::jsonb ELSE t.output END,
	attempts = CASE
		WHEN ` + withdrawSQL + ` THEN t.attempts
		WHEN u.status = 'pending' OR (u.status IN ` + terminalSQL + ` AND t.attempt > 0 AND t.status IN ('dispatched', 'running'))
		THEN t.attempts || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
			'attempt', t.attempt,
			'status', CASE WHEN u.status = 'pending' THEN coalesce(nullif(u.attempt_status, ''), 'interrupted') ELSE u.status END,
			'started_at', t.started_at, 'finished_at', u.at, 'exit_code', u.exit_code,
			'error', nullif(u.error, ''), 'log', nullif(t.log, ''))))
		ELSE t.attempts END,
	scheduler = CASE WHEN u.status = 'dispatched' THEN u.scheduler ELSE t.scheduler END
FROM unnest($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::text[],
	$8::timestamptz[], $9::text[], $10::timestamptz[], $11::text[], $12::bool[], $13::text[])
	AS u(id, attempt, status, execution_name, error, exit_code, output, at, log, retry_at, attempt_status, unstarted, scheduler)
WHERE t.id = u.id
  AND t.status NOT IN ` + terminalSQL + `
  AND (u.status = 'dispatched' OR u.scheduler = '' OR t.scheduler = '' OR u.scheduler = t.scheduler)
  AND (   (u.status = 'dispatched' AND t.status = 'pending' AND (u.attempt = 0 OR u.attempt > t.attempt))
       OR (u.status = 'running' AND t.status = 'dispatched' AND (u.attempt = 0 OR u.attempt = t.attempt))
       OR (u.status = 'pending' AND t.status IN ('dispatched', 'running') AND (u.attempt = 0 OR u.attempt = t.attempt))
       OR (u.status IN ` + terminalSQL + ` AND (u.attempt = 0 OR (u.attempt = t.attempt AND t.status <> 'pending'))))
RETURNING ` + taskColsT

// UpdateTasks applies task status changes in one statement (see
// updateTasksSQL) and returns the tasks that changed. A task changed more
// than once in a batch takes a round per change, all in one transaction.
//
// A batch whose outcome is unknown — the connection broke after the
// statement was sent, so it may have been applied or not — is sent again
// until the database answers (for up to ambiguousRetryFor), and the tasks
// it finds already in the state the batch describes are returned as
// changed. Without that, a scheduler would never start a task whose
// dispatch was recorded but not acknowledged.
func (d *DB) UpdateTasks(ctx context.Context, us []model.TaskUpdate) ([]*model.Task, error) {
	var valid []model.TaskUpdate
	now := time.Now().UTC()
	for _, u := range us {
		if u.Status.Valid() {
			if u.At.IsZero() {
				u.At = now // the same time in every retry
			}
			valid = append(valid, u)
		}
	}
	rounds := splitRounds(valid, func(u model.TaskUpdate) string { return u.TaskID })
	out, err := d.updateTasks(ctx, rounds, false)
	if err == nil || !ambiguous(err) {
		return out, err
	}
	d.log.Warn("the database did not acknowledge a batch of status changes; sending it again until it answers", "db", d.where, "err", err)
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(ambiguousRetryFor)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
		if out, err = d.updateTasks(ctx, rounds, true); err == nil {
			d.log.Info("the batch of status changes is recorded", "db", d.where, "tasks", len(out))
			return out, nil
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			break
		}
	}
	return nil, err
}

// ambiguousRetryFor bounds how long UpdateTasks keeps sending a batch
// whose outcome is unknown.
var ambiguousRetryFor = time.Minute

// ambiguous reports whether a failed call may have been applied: the
// server did not answer with an error, and the failure was not one that
// happens before anything is sent.
func ambiguous(err error) bool {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case err == nil:
		return false
	case errors.As(err, &pe):
		// The server ended the session (restart, failover): the statement
		// may have been applied before it did.
		return lostConn(err)
	case errors.As(err, &ce), pgconn.SafeToRetry(err),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

func (d *DB) updateTasks(ctx context.Context, rounds [][]model.TaskUpdate, again bool) ([]*model.Task, error) {
	changed := map[string]*model.Task{}
	var order []string
	add := func(ts []*model.Task) {
		for _, t := range ts {
			if changed[t.ID] == nil {
				order = append(order, t.ID)
			}
			changed[t.ID] = t
		}
	}
	err := d.inRounds(ctx, len(rounds), func(ctx context.Context, q querier, i int) error {
		ts, err := updateTasksRound(ctx, q, rounds[i])
		add(ts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update tasks: %w", err)
	}
	if again {
		// The batch sent before may have been applied: the tasks in the
		// state it describes changed.
		var all []model.TaskUpdate
		for _, r := range rounds {
			all = append(all, r...)
		}
		ts, err := appliedTasks(ctx, d.pool, all)
		if err != nil {
			return nil, fmt.Errorf("update tasks: %w", d.connError(err))
		}
		add(ts)
	}
	out := make([]*model.Task, len(order))
	for i, id := range order {
		out[i] = changed[id]
	}
	return out, nil
}

// appliedTasks returns the tasks that are in the state an update of us
// (a dispatch or an end) leaves them in, at the update's time.
func appliedTasks(ctx context.Context, q querier, us []model.TaskUpdate) ([]*model.Task, error) {
	n := len(us)
	ids, sts := make([]string, n), make([]string, n)
	tries := make([]int32, n)
	ats := make([]time.Time, n)
	for i, u := range us {
		ids[i], sts[i], tries[i], ats[i] = u.TaskID, string(u.Status), int32(u.Attempt), u.At.UTC()
	}
	rows, err := q.Query(ctx, `SELECT `+taskColsT+` FROM tasks t
		JOIN unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[]) AS u(id, status, attempt, at) ON t.id = u.id
		WHERE t.status = u.status AND (
			   (u.status = 'dispatched' AND t.dispatched_at = u.at AND (u.attempt = 0 OR t.attempt = u.attempt))
			OR (u.status IN `+terminalSQL+` AND t.finished_at = u.at AND (u.attempt = 0 OR t.attempt = u.attempt)))`,
		ids, sts, tries, ats)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*model.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func updateTasksRound(ctx context.Context, q querier, us []model.TaskUpdate) ([]*model.Task, error) {
	rows, err := q.Query(ctx, updateTasksSQL, updateTasksArgs(us)...)
	if err != nil {
		return nil, err
	}
	return collectTasks(rows)
}

// collectTasks scans task rows and closes them.
func collectTasks(rows pgx.Rows) ([]*model.Task, error) {
	defer rows.Close()
	var out []*model.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// updateTasksArgs are the arguments of updateTasksSQL for one round.
func updateTasksArgs(us []model.TaskUpdate) []any {
	n := len(us)
	ids, sts, execs, errs, outs, logs, astat, scheds := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tries := make([]int32, n)
	unstarted := make([]bool, n)
	exits := make([]pgtype.Int4, n)
	ats := make([]time.Time, n)
	retry := make([]pgtype.Timestamptz, n)
	now := time.Now().UTC()
	for i, u := range us {
		ids[i], tries[i], sts[i], execs[i], errs[i] = u.TaskID, int32(u.Attempt), string(u.Status), u.ExecutionName, u.Error
		exits[i] = int4(u.ExitCode)
		outs[i] = string(u.Output)
		ats[i] = u.At.UTC()
		if u.At.IsZero() {
			ats[i] = now
		}
		logs[i], astat[i], unstarted[i] = u.Log, u.AttemptStatus, u.Unstarted
		retry[i] = ts(u.RetryAt)
		scheds[i] = u.Scheduler
	}
	return []any{ids, tries, sts, execs, errs, exits, outs, ats, logs, retry, astat, unstarted, scheds}
}
