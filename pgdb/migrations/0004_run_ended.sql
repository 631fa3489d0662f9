-- A run's end notifies the schema's channel of ended runs with the run's
-- id, so that a process waiting for that run (`ork trigger --wait` while
-- another process's scheduler serves it) learns of it at once (WatchRun).
-- Schedulers do not listen to it: a run's end wakes none of them.
CREATE FUNCTION ork_notify_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ork_' || md5(TG_TABLE_SCHEMA) || '_ended', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_notify_ended AFTER UPDATE ON runs
    FOR EACH ROW
    WHEN (NEW.status IN ('success', 'failed', 'cancelled')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ork_notify_ended();
