-- Several schedulers on one database (model.Cluster): who is alive, who
-- leads, which scheduler holds each unfinished run, and which scheduler
-- dispatched each task's current attempt.

-- A scheduler is alive while its row exists. Its heartbeat moves expires
-- on; the leader deletes the rows whose expires has passed (Reap), which
-- frees their runs. A clean stop deletes its own row (Leave).
CREATE TABLE schedulers (
    id         text PRIMARY KEY,
    host       text NOT NULL DEFAULT '',
    pid        integer NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL,
    heartbeat  timestamptz NOT NULL,
    expires    timestamptz NOT NULL
);

-- The schedulers that were reaped or left: a heartbeat of one of them is
-- refused (model.ErrFenced) instead of joining again as if new. Rows older
-- than 30 days are pruned by Reap.
CREATE TABLE schedulers_gone (
    id      text PRIMARY KEY,
    gone_at timestamptz NOT NULL
);

-- The leader: one row. term only grows: a holder whose term expired gets a
-- new, higher one or none, never the old one back.
CREATE TABLE leader (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    holder  text NOT NULL,
    term    bigint NOT NULL CHECK (term > 0),
    expires timestamptz NOT NULL
);

-- The scheduler that holds the run's lease; NULL while no scheduler
-- does (a new run, or one whose scheduler was reaped or left). A finished
-- run keeps the id of the scheduler that ended it.
ALTER TABLE runs ADD COLUMN scheduler text;
-- The scheduler that dispatched the task's current attempt ('' for the
-- single-scheduler path): reports naming another are ignored.
ALTER TABLE tasks ADD COLUMN scheduler text NOT NULL DEFAULT '';

-- ClaimRuns: the free unfinished runs, running ones first, oldest first.
CREATE INDEX runs_free ON runs (status DESC, created_at, id)
    WHERE scheduler IS NULL AND status IN ('pending', 'running');
-- ClaimTasks and Schedulers: the unfinished runs each scheduler holds, in
-- their order.
CREATE INDEX runs_held ON runs (scheduler, created_at, id)
    WHERE scheduler IS NOT NULL AND status IN ('pending', 'running');
