-- Schedules (cron): the tick a scheduled run is for, and the state of each
-- workflow's schedule.

ALTER TABLE runs ADD COLUMN scheduled_at timestamptz;

-- The claim of a tick is its run: the run id is derived from the workflow
-- and the tick (model.ScheduledRunID), so the runs primary key makes a
-- tick one run however often it is claimed. This row only says which ticks
-- need no look again, and whether the schedule is paused.
CREATE TABLE schedules (
    workflow    text PRIMARY KEY,
    through     timestamptz,            -- every tick at or before it is dealt with; NULL: not started
    last_tick   timestamptz,            -- the latest tick that made a run
    last_run_id text NOT NULL DEFAULT '',
    spec        text NOT NULL DEFAULT '',
    paused_at   timestamptz             -- set while paused (by `ork pause`)
);

CREATE TRIGGER schedules_notify AFTER INSERT OR UPDATE OR DELETE ON schedules
    FOR EACH STATEMENT EXECUTE FUNCTION ork_notify();
