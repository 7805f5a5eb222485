-- What each scorer hosts, its health and the versions it refused, as its last heartbeat said;
-- watchers are woken when a member joins, leaves, comes back or changes, not by a heartbeat that only
-- extends it.

ALTER TABLE members
    ADD COLUMN health text NOT NULL DEFAULT '',
    ADD COLUMN hosted jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN refused jsonb NOT NULL DEFAULT '[]';

DROP TRIGGER members_notify ON members;
CREATE TRIGGER members_notify_join_leave AFTER INSERT OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION notify_members();
CREATE TRIGGER members_notify_change AFTER UPDATE ON members
    FOR EACH ROW WHEN (OLD.expires_at <= now()
        OR (OLD.health, OLD.hosted, OLD.refused) IS DISTINCT FROM (NEW.health, NEW.hosted, NEW.refused))
    EXECUTE FUNCTION notify_members();
