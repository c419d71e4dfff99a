-- Wakes the outbox publishers (stocksync-worker) as soon as a transaction
-- that wrote outbox rows commits, instead of waiting for their poll
-- interval. PostgreSQL delivers a NOTIFY only at commit and folds repeats
-- of one channel and payload within a transaction into one, so a
-- statement-level trigger costs one notification per writing transaction.
-- The channel name is OUTBOX_CHANNEL in worker/outbox.h.

CREATE FUNCTION stocksync_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stocksync_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION stocksync_outbox_notify();
