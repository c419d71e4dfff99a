-- stocksync-exporter: the record of on-demand movement exports, and the
-- SQL side of the CSV contract (schemas/CSV.md), so a file streamed from
-- the ledger reads exactly like one written from the audit topic.

-- One row per export request id; `stocksync status ID` reads it.
CREATE TABLE export_requests (
    request_id      text PRIMARY KEY,
    client_id       bigint,
    unit_ids        bigint[],
    from_at         timestamptz,
    to_at           timestamptz,
    requested_by    text,
    requested_at    timestamptz,
    state           text NOT NULL CHECK (state IN
                    ('running', 'succeeded', 'failed', 'rejected')),
    path            text,
    rows            bigint,
    bytes           bigint,
    sha256          text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    error_code      text,
    error_message   text,
    attempts        integer NOT NULL DEFAULT 1,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX export_requests_client ON export_requests (client_id);

-- A text cell: empty text becomes NULL (an empty, unquoted CSV cell), and
-- with neutralise a leading = + - @ TAB CR or apostrophe gets one
-- apostrophe in front. Plain SQL, so the planner inlines it.
CREATE FUNCTION stocksync_csv_text(t text, neutralise boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t = '' THEN NULL
        WHEN neutralise AND left(t, 1) IN ('=', '+', '-', '@', E'\t',
                                          E'\r', '''')
            THEN '''' || t
        ELSE t
    END
$$;

-- occurred_at in UTC: 2024-03-31T00:30:00Z, with .ffffff before the Z
-- only when there is a fraction of a second.
CREATE FUNCTION stocksync_csv_time(ts timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN date_trunc('second', ts) = ts
            THEN to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        ELSE to_char(ts AT TIME ZONE 'UTC',
                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    END
$$;
