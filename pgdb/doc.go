//go:build postgres

// Package pgdb is ork's Database on PostgreSQL (github.com/jackc/pgx/v5),
// built only with the build tag postgres: the default ork contains no pgx.
//
// # Schema
//
// The SQL files of migrations/ are embedded and applied in order by
// (*DB).Migrate (`ork init`, `ork migrate`), each in a transaction together
// with its row in ork_migrations. A session advisory lock serializes ork
// processes migrating the same schema at once. Open refuses a schema that
// is older than this ork (run `ork migrate`) or newer (upgrade ork).
//
// The tables live in the first schema of the connection's search_path, so
// one database can hold several installations (the tests use one schema
// each). Three tables: workflows (the definition as one JSON document),
// runs (with the workflow snapshot, params, task counts and the cancel
// request) and tasks (attempts, outputs, params, retry time), with foreign
// keys, CHECK constraints on statuses, UNIQUE (run_id, name, task_index),
// and partial indexes over unfinished work only, so the hot queries cost
// what is pending, not what is history. Migration 0002 adds schedules: a
// tick's claim is its run, whose id is derived from the workflow and the
// tick, and ClaimTick locks the schedule's row so claimers take turns.
// Migration 0003 adds what several schedulers share (see Several
// schedulers).
//
// # The rules, in SQL
//
// model.ApplyTaskUpdate and model.ApplyRunUpdate are reproduced by the
// UPDATE statements of UpdateTasks and UpdateRuns: their WHERE clauses
// ignore an update about another attempt than the task's current one and
// never move a status backwards. A BEFORE UPDATE trigger drops any update
// of a finished task or run, whatever statement sends it; only ReopenRun
// (`ork retry`) passes it, by setting ork.reopen for its transaction.
//
// # Round trips
//
// A batch is one statement: CreateTasks is one INSERT … SELECT FROM
// unnest(…) with an array per column; UpdateTasks and UpdateRuns are one
// UPDATE … FROM unnest(…) … RETURNING. A task changed twice in one batch
// takes a second statement in the same transaction (statements of one
// batch are all or nothing). PendingTasks walks the unfinished runs, oldest
// first, and each run's queue in the partial index of pending tasks, so its
// plan does not depend on statistics a burst of new tasks made stale.
// TaskCounts reads task_counts, which statement triggers keep from the
// rows each statement changed (transition tables), so it costs a few rows
// whatever the size of the run.
//
// A batch of status changes whose acknowledgement was lost (the connection
// broke after the statement was sent) may or may not have been applied:
// UpdateTasks sends it again until the database answers, and reports the
// tasks it finds already in the state the batch describes as changed — so
// a scheduler starts every task whose dispatch was recorded.
//
// # Wakeups
//
// Triggers notify the schema's channel (ork_ followed by the md5 of the
// schema name) when a run is created, a cancel is requested, a run is
// reopened or a workflow changes. Changes listens on a connection of its
// own, and reconnects with backoff when it is lost, signalling once it is
// back since changes may have been missed. The scheduler's own status
// writes notify nobody, but for one: a run's end notifies a second channel
// (the same name followed by _ended) with the run's id, for WatchRun — a
// process waiting for that run (`ork trigger --wait`) listens to it on a
// connection of its own; schedulers do not.
//
// # One scheduler
//
// LockScheduler takes a session advisory lock on a connection of its own
// (keys: "ork" and a hash of the schema); PostgreSQL releases it when the
// connection ends, so a dead scheduler leaves no stale lock. A scheduler
// whose connection is lost takes the lock again when the database is back.
// The session's application_name ("ork pid N on host") names the holder.
//
// # Several schedulers
//
// DB is a model.Cluster and a model.TaskClaimer (migration 0003). Leases
// are run-granular: runs.scheduler names the scheduler that holds a run
// (NULL: free), and a scheduler's leases last as long as its row in
// schedulers, whose expires its Heartbeat moves on. Every time is the
// database's clock (now()), so hosts need not agree on theirs. The leader
// (the one row of leader, with a term that only grows) deletes the rows
// whose expires has passed: their runs become free, and a tombstone in
// schedulers_gone makes the reaped scheduler's Heartbeat, ClaimRuns and
// ClaimTasks return model.ErrFenced instead of letting it join again.
// tasks.scheduler names the scheduler that dispatched the current
// attempt: updateTasksSQL ignores a report (any status but dispatched) that
// names another, the rule of model.ApplyTaskUpdate. The scheduler "" is the
// single-scheduler path: every method behaves as without a cluster.
//
// ClaimRuns, one round trip: a pipelined batch (one implicit transaction)
// of a lock on each workflow with max_active_runs that has free pending
// runs (pg_advisory_xact_lock, in name order), the claim, and whether the
// claimer is live (a claim that took nothing may be a fenced claimer's).
// The claim, simplified:
//
//	WITH me AS (SELECT id FROM schedulers WHERE id = $1 FOR SHARE),
//	capped AS (  -- free pending runs of workflows with max_active_runs, ranked
//		SELECT id, workflow_name, cap, row_number() OVER (PARTITION BY workflow_name ORDER BY created_at, id) AS k
//		FROM runs WHERE scheduler IS NULL AND status = 'pending' AND cap > 0),
//	active AS (  -- their workflows' runs active anywhere: running, or pending and held
//		SELECT workflow_name, count(*) AS n FROM runs
//		WHERE status = 'running' OR (status = 'pending' AND scheduler IS NOT NULL) ...),
//	room AS (SELECT c.id FROM capped c LEFT JOIN active a USING (workflow_name) WHERE c.k <= c.cap - coalesce(a.n, 0)),
//	free AS (
//		SELECT r.id FROM runs r
//		WHERE r.scheduler IS NULL AND r.status IN ('pending', 'running')
//		  AND EXISTS (SELECT 1 FROM me)
//		  AND (r.status = 'running' OR cap = 0 OR r.id IN (SELECT id FROM room))
//		ORDER BY r.status DESC, r.created_at, r.id   -- running first
//		LIMIT $2
//		FOR UPDATE SKIP LOCKED)
//	UPDATE runs r SET scheduler = $1 FROM free WHERE r.id = free.id RETURNING ...
//
// (cap is the run's copy of its workflow's max_active_runs.) SKIP LOCKED
// passes over runs another claimer is taking, and the re-check of a locked
// row (scheduler IS NULL) drops one that was taken meanwhile: each run
// goes to one scheduler. The claim's snapshot is taken once the workflow
// locks are held, so it counts every claim of a capped workflow committed
// before it: max_active_runs holds across schedulers. The FOR SHARE on the
// claimer's own row makes the leader's DELETE of it wait until the claim
// commits; a claim that comes after the DELETE finds no row and claims
// nothing. Reap and Leave free runs in a later statement of the DELETE's
// transaction (a new snapshot under READ COMMITTED), so a run claimed
// while the DELETE waited is freed too, and notify the schema's channel.
//
// ClaimTasks, one round trip: a pipelined batch (one implicit transaction)
// of a liveness check, the claim's new tasks (Claim.Create: the INSERT of
// CreateTasks, only into runs that exist and the claimer holds, ON
// CONFLICT DO NOTHING; then `SELECT id FROM tasks WHERE id = ANY($1)`,
// whose missing ids are returned as Claimed.Skipped), the status updates
// (updateTasksSQL, one statement per round) and the claim:
//
//	WITH me AS (SELECT id FROM schedulers WHERE id = $1 FOR SHARE),
//	cand AS (
//		SELECT t.id, r.created_at AS run_created, r.id AS run_id, t.task_index, t.name
//		FROM (SELECT id, created_at FROM runs
//		      WHERE scheduler = $1 AND status IN ('pending', 'running')
//		        AND EXISTS (SELECT 1 FROM me)          -- "": every unfinished run
//		      ORDER BY created_at, id) r
//		CROSS JOIN LATERAL (
//			SELECT t.id, t.task_index, t.name FROM tasks t
//			WHERE t.run_id = r.id AND t.status = 'pending'
//			  AND (t.retry_at IS NULL OR t.retry_at <= now())
//			  AND t.id <> ALL($5)                       -- Skip
//			  AND NOT EXISTS (SELECT 1 FROM unnest($6, $7) AS s(run_id, name)
//			                  WHERE s.run_id = t.run_id AND s.name = t.name)  -- SkipNodes
//			ORDER BY t.task_index, t.name
//			LIMIT $2                                    -- limit + len(Last)
//			FOR UPDATE OF t SKIP LOCKED) t
//		LIMIT $2),
//	picked AS (
//		SELECT id FROM cand
//		ORDER BY array_position($4, id) NULLS FIRST,  -- Last after the others
//			run_created, run_id, task_index, name
//		LIMIT $3),
//	upd AS (
//		UPDATE tasks t SET status = 'dispatched', attempt = t.attempt + 1,
//			dispatched_at = $8, scheduler = $1, ... -- what the last attempt left, cleared
//		FROM picked WHERE t.id = picked.id RETURNING t.*)
//	SELECT upd.*, r.workflow FROM upd JOIN runs r ON r.id = upd.run_id ORDER BY ...
//
// The claim walks the claimer's runs oldest first and each run's queue in
// the tasks_pending index, locking each candidate as it reads it: racing
// claimers (the "" path on several hosts, or a task dispatched by
// UpdateTasks at the same moment) each take other tasks, and a task
// claimed meanwhile fails the re-check of its status. The claim sees the
// batch's own updates: a task they put back in the queue may be claimed at
// once (it is then returned once, in Tasks). A claim whose acknowledgement
// was lost is not sent again (it would take other tasks): its updates are
// sent again as UpdateTasks's are, and the tasks it claimed are found by
// what it wrote (dispatched at the claim's time, named for the claimer).
//
// Lead is one INSERT … ON CONFLICT on the leader row: the holder renews its
// running term; an expired term goes to the first to ask, as term + 1 —
// never back to its holder as the same term. Reap runs under a FOR SHARE
// lock of the leader row for the caller's term, so the term cannot pass on
// while its holder reaps.
//
// # Connections
//
// Open connects once, within the connect timeout (5s by default), and
// turns failures into one line: cannot reach the server, or the server
// refused the login. The pool then replaces lost connections on demand,
// and a call whose connection was lost (the server terminated it, or the
// network dropped it) is tried once more on a new one when repeating it is
// safe: reads, and writes that change nothing when applied twice. Otherwise
// a method returns the error of the call, so that the scheduler keeps its
// updates and writes them again when the database is back.
package pgdb
