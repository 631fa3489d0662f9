//go:build postgres

package pgdb

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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

// ClaimTasks applies c.Updates and claims up to c.Limit pending tasks (see
// model.ClaimTasks and claimTasksSQL) in one round trip: the statements —
// a check that the claimer is live, the updates (one statement per round,
// as UpdateTasks), the claim — go as one pipelined batch, which PostgreSQL
// runs as one implicit transaction: all or nothing. A claimer that was
// reaped (or left, or never joined) claims nothing and gets
// model.ErrFenced, with what its updates changed; each update is fenced on
// its own (a report about an attempt another scheduler dispatched is
// ignored). A task that the updates changed and the claim then took is
// returned once, in Tasks, as it is now.
//
// Unlike UpdateTasks, ClaimTasks is not sent again when its outcome is
// unknown (the connection broke after it was sent): the error is returned,
// and tasks it may have claimed are dispatched under the claimer, as the
// claimer finds them among its active tasks.
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
	if len(rounds) == 0 && c.Limit <= 0 {
		return model.Claimed{}, nil
	}
	at := c.At.UTC()
	if c.At.IsZero() {
		at = now
	}
	b := &pgx.Batch{}
	if c.Scheduler != "" {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM schedulers WHERE id = $1)`, c.Scheduler)
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
		changed := map[string]*model.Task{}
		var order []string
		for range rounds {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			ts, err := collectTasks(rows)
			if err != nil {
				return err
			}
			for _, t := range ts {
				if changed[t.ID] == nil {
					order = append(order, t.ID)
				}
				changed[t.ID] = t
			}
		}
		if c.Limit > 0 {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			if out.Tasks, err = scanWithWorkflows(rows); err != nil {
				return err
			}
			for _, p := range out.Tasks {
				delete(changed, p.Task.ID)
			}
		}
		for _, id := range order {
			if t := changed[id]; t != nil {
				out.Changed = append(out.Changed, t)
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return model.Claimed{}, fmt.Errorf("claim tasks: %w", d.connError(err))
	}
	if !live {
		return out, fenced(c.Scheduler)
	}
	return out, nil
}
