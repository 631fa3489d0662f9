-- The tables of ork: workflows, runs, tasks. Every table lives in the
-- schema the connection's search_path names, so that one database can hold
-- several ork installations (and the tests one schema each).

-- A workflow's definition is one JSON document, exactly as `ork apply`
-- or `ork create-workflow` wrote it; name and id are columns to look it up.
CREATE TABLE workflows (
    name        text PRIMARY KEY,
    id          text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- A run keeps a snapshot of its workflow: editing or deleting the workflow
-- later does not change what the run executes. So there is no foreign key
-- to workflows.
CREATE TABLE runs (
    id            text PRIMARY KEY,
    workflow_id   text NOT NULL DEFAULT '',
    workflow_name text NOT NULL DEFAULT '',
    status        text NOT NULL
        CHECK (status IN ('pending', 'running', 'success', 'failed', 'cancelled')),
    triggered_by  text NOT NULL DEFAULT '',
    params        jsonb,
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    workflow      jsonb,
    task_counts   jsonb,
    -- set by `ork cancel` (any process); the scheduler applies it
    cancel_requested_at timestamptz,
    CHECK (finished_at IS NULL OR status IN ('success', 'failed', 'cancelled'))
);

-- ListRuns: newest first, of all runs or of one workflow.
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created ON runs (workflow_name, created_at DESC, id DESC);
-- PendingRuns and the unfinished runs the scheduler recovers: only
-- unfinished work is indexed, so these stay small whatever the history.
CREATE INDEX runs_unfinished ON runs (status, created_at, id)
    WHERE status IN ('pending', 'running');
CREATE INDEX runs_cancel_requested ON runs (id)
    WHERE cancel_requested_at IS NOT NULL AND status IN ('pending', 'running');

CREATE TABLE tasks (
    id             text PRIMARY KEY,
    run_id         text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name           text NOT NULL,
    task_index     integer NOT NULL CHECK (task_index >= 0),
    status         text NOT NULL
        CHECK (status IN ('pending', 'dispatched', 'running', 'success', 'failed', 'cancelled', 'skipped')),
    execution_name text NOT NULL DEFAULT '',
    params         jsonb,
    output         jsonb,
    error          text NOT NULL DEFAULT '',
    attempt        integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    exit_code      integer,
    dispatched_at  timestamptz,
    started_at     timestamptz,
    finished_at    timestamptz,
    created_at     timestamptz NOT NULL,
    retry_at       timestamptz,
    log            text NOT NULL DEFAULT '',
    -- every attempt that ended, oldest first (model.Attempt as JSON)
    attempts       jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(attempts) = 'array'),
    UNIQUE (run_id, name, task_index)
);

-- PendingTasks: each unfinished run's queue, in its order, over pending
-- tasks only (walked run by run, oldest run first).
CREATE INDEX tasks_pending ON tasks (run_id, task_index, name)
    WHERE status = 'pending';
-- ActiveTasks: what executors hold.
CREATE INDEX tasks_active ON tasks (run_id) WHERE status IN ('dispatched', 'running');

-- Terminal statuses are never overwritten: an UPDATE that would change a
-- finished task or run is dropped, whatever statement sends it. Only
-- ReopenRun (`ork retry`), which sets ork.reopen for its transaction, may
-- make a finished run and its tasks pending again.
CREATE FUNCTION ork_keep_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('success', 'failed', 'cancelled', 'skipped')
       AND coalesce(current_setting('ork.reopen', true), '') <> 'on' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_keep_terminal BEFORE UPDATE ON tasks
    FOR EACH ROW WHEN (OLD.status IN ('success', 'failed', 'cancelled', 'skipped'))
    EXECUTE FUNCTION ork_keep_terminal();
CREATE TRIGGER runs_keep_terminal BEFORE UPDATE ON runs
    FOR EACH ROW WHEN (OLD.status IN ('success', 'failed', 'cancelled'))
    EXECUTE FUNCTION ork_keep_terminal();

-- task_counts: how many tasks of each run are in each status, kept by
-- statement triggers from the rows each statement changed, so that
-- TaskCounts (which the scheduler asks after every batch) reads a few rows
-- whatever the size of the run. Rows are upserted in key order, so two
-- writers never wait on each other in a cycle.
CREATE TABLE task_counts (
    run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    status text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (run_id, status)
);

CREATE FUNCTION ork_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_counts (run_id, status, n)
            SELECT run_id, status, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (run_id, status) DO UPDATE SET n = task_counts.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_counts (run_id, status, n)
            SELECT o.run_id, o.status, -count(*) FROM old_rows o
            WHERE EXISTS (SELECT 1 FROM runs r WHERE r.id = o.run_id)
            GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (run_id, status) DO UPDATE SET n = task_counts.n + excluded.n;
    ELSE
        INSERT INTO task_counts (run_id, status, n)
            SELECT run_id, status, sum(d) FROM (
                SELECT run_id, status, 1 AS d FROM new_rows
                UNION ALL
                SELECT run_id, status, -1 FROM old_rows) x
            GROUP BY 1, 2 HAVING sum(d) <> 0 ORDER BY 1, 2
        ON CONFLICT (run_id, status) DO UPDATE SET n = task_counts.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ork_count_tasks();
CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ork_count_tasks();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ork_count_tasks();

-- Wakeups: a new run, a cancel request, a reopened run or a changed
-- workflow notifies the channel of this schema, so that a scheduler on
-- another host starts at once; polling is only the safety net. The
-- scheduler's own status changes notify nobody.
CREATE FUNCTION ork_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ork_' || md5(TG_TABLE_SCHEMA), TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_notify_insert AFTER INSERT ON runs
    FOR EACH STATEMENT EXECUTE FUNCTION ork_notify();
CREATE TRIGGER runs_notify_request AFTER UPDATE ON runs
    FOR EACH ROW
    WHEN (NEW.cancel_requested_at IS DISTINCT FROM OLD.cancel_requested_at
          OR (NEW.status = 'pending' AND OLD.status <> 'pending'))
    EXECUTE FUNCTION ork_notify();
CREATE TRIGGER workflows_notify AFTER INSERT OR UPDATE OR DELETE ON workflows
    FOR EACH STATEMENT EXECUTE FUNCTION ork_notify();
