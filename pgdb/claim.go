//go:build postgres

package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ork-run/ork/model"
)

// claimTasksSQL claims pending tasks in one statement. Its parameters: $1
// the claimer ("" for the single-scheduler path), $2 how many candidates
// to take (the limit plus the tasks of Last), $3 the limit, $4 Last, $5
// Skip, $6 and $7 SkipNodes (run ids, names), $8 the dispatch time.
//
//   - cand walks the unfinished runs the claimer may claim from, oldest
//     first (with a claimer: only the runs it holds, and only while its
//     row exists — FOR SHARE keeps the leader from reaping it meanwhile),
//     and each run's queue in the tasks_pending index, leaving out what
//     Skip and SkipNodes name and what waits for its retry time. Each
//     candidate is locked as it is read, FOR UPDATE SKIP LOCKED: a task
//     another claimer is taking is passed over, not waited for, and one
//     that was claimed meanwhile fails the re-check of its status.
//   - picked puts the tasks of Last after the others, in the order given,
//     and keeps the limit.
//   - upd marks them dispatched, as model.ApplyTaskUpdate does: the next
//     attempt, the dispatch time, the claimer's id, what the previous
//     attempt left cleared.
//   - The result joins each task's run for its workflow snapshot, in the
//     claim order.
const claimTasksSQL = `WITH me AS (SELECT id FROM schedulers WHERE id = $1 FOR SHARE),
cand AS (
	SELECT t.id, r.created_at AS run_created, r.id AS run_id, t.task_index, t.name
	FROM (SELECT id, created_at FROM runs WHERE %s ORDER BY created_at, id) r
	CROSS JOIN LATERAL (
		SELECT t.id, t.task_index, t.name FROM tasks t
		WHERE t.run_id = r.id AND t.status = 'pending' AND (t.retry_at IS NULL OR t.retry_at <= now())
		  AND t.id <> ALL($5::text[])
		  AND NOT EXISTS (SELECT 1 FROM unnest($6::text[], $7::text[]) AS s(run_id, name)
		                  WHERE s.run_id = t.run_id AND s.name = t.name)
		ORDER BY t.task_index, t.name
		LIMIT $2
		FOR UPDATE OF t SKIP LOCKED) t
	LIMIT $2),
picked AS (
	SELECT id FROM cand
	ORDER BY array_position($4::text[], id) NULLS FIRST, run_created, run_id, task_index, name
	LIMIT $3),
upd AS (
	UPDATE tasks t SET status = 'dispatched', attempt = t.attempt + 1, dispatched_at = $8,
		started_at = NULL, finished_at = NULL, exit_code = NULL, retry_at = NULL,
		error = '', log = '', execution_name = '', scheduler = $1
	FROM picked WHERE t.id = picked.id
	RETURNING t.*)
SELECT ` + taskColsT + `, r.workflow FROM upd t JOIN runs r ON r.id = t.run_id
ORDER BY array_position($4::text[], t.id) NULLS FIRST, r.created_at, r.id, t.task_index, t.name`

var (
	// claimAnySQL: the single-scheduler path claims from every
	// unfinished run.
	claimAnySQL = fmt.Sprintf(claimTasksSQL, `status IN ('pending', 'running') AND $1 = ''`)
	// claimHeldSQL: a claimer of a cluster claims from the runs it holds
	// (the runs_held index), while it is live.
	claimHeldSQL = fmt.Sprintf(claimTasksSQL, `scheduler = $1 AND status IN ('pending', 'running') AND EXISTS (SELECT 1 FROM me)`)
)

// ClaimTasks creates c.Create, applies c.Updates and claims up to c.Limit
// pending tasks (see model.ClaimTasks and claimTasksSQL) in one round trip:
// the statements — a check that the claimer is live, the insert of the new
// tasks (createClaimedSQL: only in runs that exist and the claimer holds;
// those it skipped are returned in Skipped), the updates (one statement per round, as UpdateTasks), the claim — go as
// one pipelined batch, which PostgreSQL
// runs as one implicit transaction: all or nothing. A claimer that was
// reaped (or left, or never joined) claims nothing and gets
// model.ErrFenced, with what its updates changed; each update is fenced on
// its own (a report about an attempt another scheduler dispatched is
// ignored). A task that the updates changed and the claim then took is
// returned once, in Tasks, as it is now.
//
// A batch whose outcome is unknown — the connection broke after it was
// sent — is not claimed again (another claim would take other tasks):
// until the database answers (for up to ambiguousRetryFor), the updates
// are sent again as UpdateTasks sends them, and the tasks the lost claim
// took are found by what it wrote — dispatched at the claim's time, named
// for the claimer — and returned as claimed. So a claimer starts every
// task whose claim was recorded. (Two claims by one claimer must not share
// a dispatch time; c.At, when given, is the caller's to keep apart.)
func (d *DB) ClaimTasks(ctx context.Context, c model.Claim) (model.Claimed, error) {
	now := time.Now().UTC()
	var valid []model.TaskUpdate
	for _, u := range c.Updates {
		if u.Status.Valid() {
			if u.At.IsZero() {
				u.At = now
			}
			valid = append(valid, u)
		}
	}
	rounds := splitRounds(valid, func(u model.TaskUpdate) string { return u.TaskID })
	if len(rounds) == 0 && c.Limit <= 0 && len(c.Create) == 0 {
		return model.Claimed{}, nil
	}
	at := c.At.UTC()
	if c.At.IsZero() {
		at = now
	}
	var create []any
	if len(c.Create) > 0 {
		var err error
		if create, err = createTasksArgs(c.Create); err != nil {
			return model.Claimed{}, fmt.Errorf("claim tasks: %w", err)
		}
		create = append(create, c.Scheduler)
	}
	out, live, err := d.claimTasks(ctx, c, create, rounds, at)
	if err != nil && ambiguous(err) {
		d.log.Warn("the database did not acknowledge a claim; looking for what it recorded until it answers", "db", d.where, "err", err)
		out, live, err = d.claimRecorded(ctx, c, create, rounds, at, err)
	}
	if err != nil {
		return model.Claimed{}, fmt.Errorf("claim tasks: %w", d.connError(err))
	}
	if !live {
		return out, fenced(c.Scheduler)
	}
	return out, nil
}

// createClaimedSQL creates a claim's new tasks (c.Create): only those of
// runs that exist and, on a cluster, that the claimer holds ($20); a task
// that exists is left as it is.
const createClaimedSQL = createTasksSQL + `
		WHERE EXISTS (SELECT 1 FROM runs r WHERE r.id = u.run_id AND ($20 = '' OR r.scheduler = $20))
		ON CONFLICT DO NOTHING`

// createdSQL finds which of a claim's new tasks ($1, their ids) have a
// record after the insert: the others were skipped (their run is gone, or
// the claimer does not hold it).
const createdSQL = `SELECT id FROM tasks WHERE id = ANY($1::text[])`

func idsOfTasks(ts []*model.Task) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// notCreated returns the ids of create (in its order) that rows, the ids
// createdSQL found, do not hold.
func notCreated(create []*model.Task, rows pgx.Rows) ([]string, error) {
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(found))
	for _, id := range found {
		have[id] = true
	}
	var out []string
	for _, t := range create {
		if !have[t.ID] {
			out = append(out, t.ID)
		}
	}
	return out, nil
}

// claimTasks sends the claim's batch once; create holds the arguments of
// createClaimedSQL, if there are tasks to create.
func (d *DB) claimTasks(ctx context.Context, c model.Claim, create []any, rounds [][]model.TaskUpdate, at time.Time) (model.Claimed, bool, error) {
	b := &pgx.Batch{}
	if c.Scheduler != "" {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM schedulers WHERE id = $1)`, c.Scheduler)
	}
	if create != nil {
		b.Queue(createClaimedSQL, create...)
		b.Queue(createdSQL, idsOfTasks(c.Create))
	}
	for _, r := range rounds {
		b.Queue(updateTasksSQL, updateTasksArgs(r)...)
	}
	if c.Limit > 0 {
		sql := claimAnySQL
		if c.Scheduler != "" {
			sql = claimHeldSQL
		}
		runs, names := make([]string, len(c.SkipNodes)), make([]string, len(c.SkipNodes))
		for i, n := range c.SkipNodes {
			runs[i], names[i] = n.RunID, n.Name
		}
		b.Queue(sql, c.Scheduler, c.Limit+len(c.Last), c.Limit, nonNil(c.Last), nonNil(c.Skip), runs, names, at)
	}

	br := d.pool.SendBatch(ctx, b)
	var out model.Claimed
	live := true
	err := func() error {
		if c.Scheduler != "" {
			if err := br.QueryRow().Scan(&live); err != nil {
				return err
			}
		}
		if create != nil {
			if _, err := br.Exec(); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			if out.Skipped, err = notCreated(c.Create, rows); err != nil {
				return err
			}
		}
		var changed []*model.Task
		for range rounds {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			ts, err := collectTasks(rows)
			if err != nil {
				return err
			}
			changed = append(changed, ts...)
		}
		if c.Limit > 0 {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			if out.Tasks, err = scanWithWorkflows(rows); err != nil {
				return err
			}
		}
		out.Changed = changedNotClaimed(changed, out.Tasks)
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return out, live, err
}

// changedNotClaimed returns the tasks of changed (several versions of one
// task: the last counts) that claimed does not hold, in their first order.
func changedNotClaimed(changed []*model.Task, claimed []model.TaskWithWorkflow) []*model.Task {
	last := make(map[string]*model.Task, len(changed))
	var order []string
	for _, t := range changed {
		if last[t.ID] == nil {
			order = append(order, t.ID)
		}
		last[t.ID] = t
	}
	for _, p := range claimed {
		delete(last, p.Task.ID)
	}
	var out []*model.Task
	for _, id := range order {
		if t := last[id]; t != nil {
			out = append(out, t)
		}
	}
	return out
}

// claimRecorded finds out what a claim whose outcome is unknown did (see
// ClaimTasks), trying until the database answers or ambiguousRetryFor
// passed; err is the claim's error, returned if it never does.
func (d *DB) claimRecorded(ctx context.Context, c model.Claim, create []any, rounds [][]model.TaskUpdate, at time.Time, err error) (model.Claimed, bool, error) {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(ambiguousRetryFor)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
		var out model.Claimed
		var changed []*model.Task
		live := true
		if create != nil {
			// Sent again: a task the lost batch created is left as it is.
			if _, err = d.pool.Exec(ctx, createClaimedSQL, create...); err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					break
				}
				continue
			}
			rows, qerr := d.pool.Query(ctx, createdSQL, idsOfTasks(c.Create))
			if qerr == nil {
				out.Skipped, qerr = notCreated(c.Create, rows)
			}
			if err = qerr; err != nil {
				continue
			}
		}
		if changed, err = d.updateTasks(ctx, rounds, true); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				break
			}
			continue
		}
		if c.Limit > 0 {
			out.Tasks, err = d.withWorkflows(ctx, `SELECT `+taskColsT+`, r.workflow FROM tasks t JOIN runs r ON r.id = t.run_id
				WHERE t.status IN ('dispatched', 'running') AND t.dispatched_at = $1 AND t.scheduler = $2
				ORDER BY array_position($3::text[], t.id) NULLS FIRST, r.created_at, r.id, t.task_index, t.name`,
				at, c.Scheduler, nonNil(c.Last))
			if err != nil {
				continue
			}
		}
		if c.Scheduler != "" {
			if err = d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schedulers WHERE id = $1)`, c.Scheduler).Scan(&live); err != nil {
				continue
			}
		}
		out.Changed = changedNotClaimed(changed, out.Tasks)
		d.log.Info("found what the claim recorded", "db", d.where, "claimed", len(out.Tasks), "changed", len(out.Changed))
		return out, live, nil
	}
	return model.Claimed{}, false, err
}
