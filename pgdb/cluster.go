//go:build postgres

package pgdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-run/ork/model"
)

var _ model.Cluster = (*DB)(nil)
var _ model.TaskClaimer = (*DB)(nil)

// micros is d in microseconds, for `$n * interval '1 microsecond'`.
func micros(d time.Duration) int64 { return d.Microseconds() }

// fenced says that scheduler id is not live.
func fenced(id string) error {
	return fmt.Errorf("scheduler %s was reaped or left: %w", id, model.ErrFenced)
}

// Heartbeat records that scheduler s is alive until now + lease (the
// database's clock). The first call joins; a scheduler that was reaped or
// left gets model.ErrFenced and stays out. Its runs' leases are its own
// row's: nothing else to renew.
//
// The renewal is an UPDATE of the scheduler's row: if the leader deletes
// the row at the same moment, the UPDATE waits for it and finds nothing,
// and the next statement (a new snapshot) sees the tombstone. Only a
// scheduler with no row and no tombstone is inserted.
func (d *DB) Heartbeat(ctx context.Context, s model.SchedulerInfo, lease time.Duration) error {
	if s.ID == "" {
		return errors.New("heartbeat: the scheduler has no id")
	}
	tag, err := d.pool.Exec(ctx, `UPDATE schedulers SET heartbeat = now(), expires = now() + $2 * interval '1 microsecond'
		WHERE id = $1`, s.ID, micros(lease))
	if err != nil {
		return fmt.Errorf("heartbeat: %w", d.connError(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	started := s.StartedAt
	if started.IsZero() {
		started = time.Now()
	}
	var joined bool
	err = d.pool.QueryRow(ctx, `WITH j AS (
			INSERT INTO schedulers (id, host, pid, started_at, heartbeat, expires)
			SELECT $1, $2, $3, $4, now(), now() + $5 * interval '1 microsecond'
			WHERE NOT EXISTS (SELECT 1 FROM schedulers_gone WHERE id = $1)
			ON CONFLICT (id) DO UPDATE SET heartbeat = now(), expires = excluded.expires
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM j)`, s.ID, s.Host, s.PID, started.UTC(), micros(lease)).Scan(&joined)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", d.connError(err))
	}
	if !joined {
		return fenced(s.ID)
	}
	return nil
}

// Leave removes scheduler id at once, in one transaction: its row goes
// (a tombstone keeps it from joining again), its unfinished runs become
// free, and its leader term, if it leads, ends now.
func (d *DB) Leave(ctx context.Context, id string) error {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM schedulers WHERE id = $1`, id); err != nil {
			return err
		}
		return d.gone(ctx, tx, []string{id}, `UPDATE leader SET expires = now() WHERE holder = $1 AND expires > now()`, id)
	})
	if err != nil {
		return fmt.Errorf("leave: %w", d.connError(err))
	}
	return nil
}

// gone records the schedulers ids as gone and frees their runs, in the
// transaction that deleted their rows: each statement sees what committed
// before it (READ COMMITTED), so a run claimed by one of them while the
// DELETE waited for its claim is freed too, and a claim that comes after
// the DELETE finds no live scheduler. The schema's channel is notified
// (at commit), so that the other schedulers claim the freed runs at once.
// extra is one more statement.
func (d *DB) gone(ctx context.Context, tx pgx.Tx, ids []string, extra string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO schedulers_gone (id, gone_at) SELECT unnest($1::text[]), now() ON CONFLICT DO NOTHING`, ids)
	b.Queue(`UPDATE runs SET scheduler = NULL
		WHERE scheduler = ANY($1::text[]) AND status IN ('pending', 'running')`, ids)
	b.Queue(`SELECT pg_notify($1, 'schedulers') WHERE cardinality($2::text[]) > 0`, d.channel, ids)
	if extra != "" {
		b.Queue(extra, args...)
	}
	return tx.SendBatch(ctx, b).Close()
}

// Schedulers returns the live schedulers, oldest first, with the number of
// unfinished runs each holds and of tasks dispatched or running under it.
func (d *DB) Schedulers(ctx context.Context) ([]model.SchedulerInfo, error) {
	return again(ctx, func() ([]model.SchedulerInfo, error) { return d.schedulers(ctx) })
}

func (d *DB) schedulers(ctx context.Context) ([]model.SchedulerInfo, error) {
	rows, err := d.pool.Query(ctx, `SELECT s.id, s.host, s.pid, s.started_at, s.heartbeat, s.expires,
			coalesce(l.term, 0),
			(SELECT count(*) FROM runs r WHERE r.scheduler = s.id AND r.status IN ('pending', 'running')),
			(SELECT count(*) FROM runs r JOIN tasks t ON t.run_id = r.id
			 WHERE r.scheduler = s.id AND r.status IN ('pending', 'running')
			   AND t.status IN ('dispatched', 'running') AND t.scheduler = s.id)
		FROM schedulers s LEFT JOIN leader l ON l.holder = s.id AND l.expires > now()
		ORDER BY s.started_at, s.id`)
	if err != nil {
		return nil, d.connError(err)
	}
	var out []model.SchedulerInfo
	var s model.SchedulerInfo
	_, err = pgx.ForEachRow(rows, []any{&s.ID, &s.Host, &s.PID, &s.StartedAt, &s.Heartbeat, &s.Expires, &s.Term, &s.Runs, &s.Tasks}, func() error {
		s.StartedAt, s.Heartbeat, s.Expires = s.StartedAt.UTC(), s.Heartbeat.UTC(), s.Expires.UTC()
		s.Leader = s.Term > 0
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, d.connError(err)
	}
	return out, nil
}

// leadSQL is Lead in one statement on the one row of leader: the first
// contender inserts it (term 1); a holder renews its own running term; an
// expired term goes to whoever asks first, as the next term. Two
// contenders at once: the second waits for the first's row and finds a
// running term that is not its own (no row returned: 0).
const leadSQL = `INSERT INTO leader AS l (one, holder, term, expires)
	VALUES (true, $1, 1, now() + $3 * interval '1 microsecond')
	ON CONFLICT (one) DO UPDATE SET
		holder = excluded.holder,
		term = CASE WHEN l.expires > now() THEN l.term ELSE l.term + 1 END,
		expires = excluded.expires
	WHERE l.expires <= now() OR (l.holder = $1 AND ($2::bigint = 0 OR l.term = $2::bigint))
	RETURNING term`

// Lead makes id the leader, or keeps it leader, until now + lease, and
// returns its term; 0 while another's term runs (see model.Cluster). A
// holder that passes term 0 (it lost track of the answer) gets its running
// term back; one that passes a term that is not the current one gets 0.
func (d *DB) Lead(ctx context.Context, id string, term int64, lease time.Duration) (int64, error) {
	var got int64
	err := d.pool.QueryRow(ctx, leadSQL, id, term, micros(lease)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lead: %w", d.connError(err))
	}
	return got, nil
}

// Reap removes the schedulers whose lease expired and frees their runs, if
// id leads on term; else model.ErrFenced. The leader row is locked (FOR
// SHARE) for the transaction: the term cannot pass to another while its
// holder reaps.
func (d *DB) Reap(ctx context.Context, id string, term int64) ([]string, error) {
	var ids []string
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM leader
			WHERE holder = $1 AND term = $2 AND expires > now() FOR SHARE)`, id, term).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("scheduler %s does not lead on term %d: %w", id, term, model.ErrFenced)
		}
		rows, err := tx.Query(ctx, `DELETE FROM schedulers WHERE expires <= now() RETURNING id`)
		if err != nil {
			return err
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		return d.gone(ctx, tx, nonNil(ids), `DELETE FROM schedulers_gone WHERE gone_at < now() - interval '30 days'`)
	})
	if err != nil {
		if errors.Is(err, model.ErrFenced) {
			return nil, err
		}
		return nil, fmt.Errorf("reap: %w", d.connError(err))
	}
	return ids, nil
}

// claimRunsSQL leases free runs to $1: running runs first (their scheduler
// was reaped or left), then pending ones, oldest first. FOR UPDATE SKIP
// LOCKED takes rows no other claimer has locked, and re-checks that each
// is still free once locked; the FOR SHARE on the claimer's own row keeps
// the leader from reaping it until the claim commits, and a claimer that
// was reaped finds no row and claims nothing.
//
// A pending run whose workflow has max_active_runs (the run's copy of the
// workflow) is claimed only within its workflow's room: max_active_runs
// less the runs of that workflow active anywhere in the cluster — running,
// or pending and held by a scheduler (about to start) — counting the
// workflow's free pending runs oldest first. Claimers of one such workflow
// are serialized by lockCappedSQL, sent before this statement in the same
// transaction: this statement's snapshot is taken once the lock is held,
// so it sees every claim committed before.
const claimRunsSQL = `WITH me AS (SELECT id FROM schedulers WHERE id = $1 FOR SHARE),
capped AS (
	SELECT r.id, r.workflow_name, r.created_at,
		(r.workflow->>'max_active_runs')::int AS cap,
		row_number() OVER (PARTITION BY r.workflow_name ORDER BY r.created_at, r.id) AS k
	FROM runs r
	WHERE r.scheduler IS NULL AND r.status = 'pending' AND (r.workflow->>'max_active_runs')::int > 0),
active AS (
	SELECT a.workflow_name, count(*) AS n FROM runs a
	WHERE a.status IN ('pending', 'running') AND (a.status = 'running' OR a.scheduler IS NOT NULL)
	  AND a.workflow_name IN (SELECT workflow_name FROM capped)
	GROUP BY a.workflow_name),
room AS (
	SELECT c.id FROM capped c LEFT JOIN active a ON a.workflow_name = c.workflow_name
	WHERE c.k <= c.cap - coalesce(a.n, 0)),
free AS (
	SELECT r.id FROM runs r
	WHERE r.scheduler IS NULL AND r.status IN ('pending', 'running') AND EXISTS (SELECT 1 FROM me)
	  AND (r.status = 'running' OR coalesce((r.workflow->>'max_active_runs')::int, 0) <= 0
	       OR r.id IN (SELECT id FROM room))
	ORDER BY r.status DESC, r.created_at, r.id
	LIMIT $2
	FOR UPDATE SKIP LOCKED)
UPDATE runs r SET scheduler = $1 FROM free WHERE r.id = free.id
RETURNING ` + runColsR

// lockCappedSQL takes, until the transaction ends, an advisory lock for
// each workflow with max_active_runs that has free pending runs, in name
// order (so two claimers never wait on each other crosswise).
const lockCappedSQL = `SELECT pg_advisory_xact_lock($1, hashtext('max_active_runs:' || current_schema() || ':' || w))
	FROM (SELECT DISTINCT r.workflow_name AS w FROM runs r
		WHERE r.scheduler IS NULL AND r.status = 'pending' AND (r.workflow->>'max_active_runs')::int > 0
		ORDER BY 1) x`

// runColsR is runCols qualified by the alias r.
const runColsR = `r.id, r.workflow_id, r.workflow_name, r.status, r.triggered_by, r.params, r.started_at, r.finished_at, r.error, r.created_at, r.workflow, r.task_counts, r.scheduled_at, r.scheduler`

// ClaimRuns leases up to limit free runs to scheduler id (see
// claimRunsSQL), running ones first, then oldest first, and no more of a
// workflow than its max_active_runs allows across the cluster. A
// scheduler that is not live gets model.ErrFenced.
func (d *DB) ClaimRuns(ctx context.Context, id string, limit int) ([]*model.Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	runs, live, err := d.claimRuns(ctx, id, limit)
	if err != nil {
		return nil, fmt.Errorf("claim runs: %w", err)
	}
	if len(runs) > 0 {
		return sortRuns(runs), nil
	}
	if !live {
		return nil, fenced(id)
	}
	return nil, nil
}

// claimRuns sends lockCappedSQL, claimRunsSQL and whether id is live (a
// claim that took nothing may be a fenced claimer's) in one batch: one
// round trip, one implicit transaction that holds the locks until the
// claim commits.
func (d *DB) claimRuns(ctx context.Context, id string, limit int) (_ []*model.Run, live bool, _ error) {
	b := &pgx.Batch{}
	b.Queue(lockCappedSQL, lockSpace)
	b.Queue(claimRunsSQL, id, limit)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM schedulers WHERE id = $1)`, id)
	br := d.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, false, d.connError(err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, false, d.connError(err)
	}
	var out []*model.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, false, err
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, d.connError(err)
	}
	if err := br.QueryRow().Scan(&live); err != nil {
		return nil, false, d.connError(err)
	}
	if err := br.Close(); err != nil {
		return nil, false, d.connError(err)
	}
	return out, live, nil
}

// sortRuns orders claimed runs as they were picked (RETURNING keeps no
// order): running first, then oldest first.
func sortRuns(rs []*model.Run) []*model.Run {
	slices.SortFunc(rs, func(a, b *model.Run) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return rs
}

func rank(r *model.Run) int {
	if r.Status == model.RunRunning {
		return 0
	}
	return 1
}
