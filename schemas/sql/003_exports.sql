-- stocksync-exporter: the record of on-demand movement exports
-- (schemas/CSV.md). The CSV itself is written by the exporter, from the
-- ledger rows it streams with COPY.

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
