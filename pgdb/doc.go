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
// writes notify nobody.
//
// # One scheduler
//
// LockScheduler takes a session advisory lock on a connection of its own
// (keys: "ork" and a hash of the schema); PostgreSQL releases it when the
// connection ends, so a dead scheduler leaves no stale lock. A scheduler
// whose connection is lost takes the lock again when the database is back.
// The session's application_name ("ork pid N on host") names the holder.
// Several schedulers sharing a database (claims, leases) are not this
// package's business yet; the schema leaves room for them (a scheduler id
// and lease times are columns a later migration adds).
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
