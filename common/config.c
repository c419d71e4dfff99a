/* The configuration table and its loader. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define STR(env, field, def, help)                     \
        {                                              \
                env, CONFIG_STR, def, 0, 0, help,      \
                        offsetof(struct config, field) \
        }
#define NUM(env, field, def, lo, hi, help)             \
        {                                              \
                env, CONFIG_LONG, def, lo, hi, help,   \
                        offsetof(struct config, field) \
        }

const struct config_key config_keys[] = {
        STR("STOCKSYNC_DATABASE_URL",
            database_url,
            "",
            "PostgreSQL conninfo or URI; empty uses libpq's PG* variables"),
        STR("STOCKSYNC_BROKERS",
            brokers,
            "127.0.0.1:9092",
            "Kafka bootstrap servers (host:port,...)"),
        STR("STOCKSYNC_KAFKA",
            kafka_props,
            "",
            "extra librdkafka properties, comma-separated key=value"),
        STR("STOCKSYNC_TOPIC_REQUESTS",
            topic_requests,
            "stock.sync.requests",
            "topic of pull/push requests (key: integration id)"),
        STR("STOCKSYNC_TOPIC_STATUS",
            topic_status,
            "stock.sync.status",
            "topic of request status events (key: request id)"),
        STR("STOCKSYNC_TOPIC_MOVEMENTS",
            topic_movements,
            "stock.movements",
            "audit topic: one event per movement (key: unit id)"),
        STR("STOCKSYNC_TOPIC_DLQ",
            topic_dlq,
            "stock.sync.dlq",
            "dead-letter topic for rejected requests"),
        STR("STOCKSYNC_TOPIC_EXPORT_REQUESTS",
            topic_export_requests,
            "stock.export.requests",
            "topic of movement export requests (key: client id)"),
        STR("STOCKSYNC_TOPIC_AUDIT_DLQ",
            topic_audit_dlq,
            "stock.movements.dlq",
            "dead-letter topic for audit events the exporter cannot read"),
        STR("STOCKSYNC_WORKER_GROUP",
            worker_group,
            "stocksync-worker",
            "consumer group of stocksync-worker"),
        STR("STOCKSYNC_EXPORTER_GROUP",
            exporter_group,
            "stocksync-exporter",
            "consumer group of stocksync-exporter"),
        STR("STOCKSYNC_LOG_LEVEL",
            log_level,
            "info",
            "debug, info, warn or error"),
        STR("STOCKSYNC_EXPORT_DIR",
            export_dir,
            "./exports",
            "directory for CSV files written by stocksync-exporter"),
        NUM("STOCKSYNC_WORKER_THREADS",
            worker_threads,
            "4",
            1,
            64,
            "requests processed in parallel by one worker process"),
        NUM("STOCKSYNC_MAX_MESSAGE_BYTES",
            max_message_bytes,
            "65536",
            256,
            16777216,
            "larger request messages are rejected"),
        NUM("STOCKSYNC_OUTBOX_BATCH",
            outbox_batch,
            "500",
            1,
            100000,
            "outbox rows published per round"),
        NUM("STOCKSYNC_OUTBOX_INTERVAL_MS",
            outbox_interval_ms,
            "200",
            10,
            60000,
            "pause between outbox rounds when it is empty"),
        NUM("STOCKSYNC_HTTP_TIMEOUT_MS",
            http_timeout_ms,
            "60000",
            100,
            600000,
            "timeout of one HTTP exchange with a store"),
        NUM("STOCKSYNC_HTTP_MAX_ATTEMPTS",
            http_max_attempts,
            "6",
            1,
            20,
            "tries per store request, the first included"),
        NUM("STOCKSYNC_EXPORT_BOM",
            export_bom,
            "0",
            0,
            1,
            "1 starts every CSV with a UTF-8 byte-order mark"),
        NUM("STOCKSYNC_EXPORT_MAX_UNITS",
            export_max_units,
            "10000",
            1,
            1000000,
            "most unit ids one export request may name"),
        NUM("STOCKSYNC_EXPORT_NEUTRALISE",
            export_neutralise,
            "1",
            0,
            1,
            "1 neutralises spreadsheet formulas in CSV text cells"),
        NUM("STOCKSYNC_EXPORTER_FLUSH_ROWS",
            exporter_flush_rows,
            "50000",
            1,
            10000000,
            "audit rows buffered before a file is sealed"),
        NUM("STOCKSYNC_EXPORTER_FLUSH_MS",
            exporter_flush_ms,
            "2000",
            10,
            3600000,
            "longest wait before buffered audit rows are sealed"),
        NUM("STOCKSYNC_STATUS_PROGRESS_EVERY",
            status_progress_every,
            "500",
            1,
            1000000,
            "items between two progress status events"),
        { NULL, CONFIG_STR, NULL, 0, 0, NULL, 0 },
};

enum ss_err config_load(struct config *cfg, struct ss_error *err)
{
        memset(cfg, 0, sizeof(*cfg));
        for (const struct config_key *k = config_keys; k->env; k++) {
                const char *v = getenv(k->env);
                if (v == NULL)
                        v = k->def;
                char *field = (char *)cfg + k->offset;
                if (k->type == CONFIG_STR) {
                        memcpy(field, &v, sizeof(v));
                        continue;
                }
                char *end = NULL;
                errno = 0;
                long n = strtol(v, &end, 10);
                if (errno != 0 || end == v || *end != '\0' || n < k->min ||
                    n > k->max)
                        return ss_error_set(err, SS_ERR_CONFIG,
                                            "%s=%s: want a whole number "
                                            "from %ld to %ld",
                                            k->env, v, k->min, k->max);
                memcpy(field, &n, sizeof(n));
        }
        enum log_level lvl;
        if (!log_level_parse(cfg->log_level, &lvl))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "STOCKSYNC_LOG_LEVEL=%s: want debug, "
                                    "info, warn or error",
                                    cfg->log_level);
        return SS_OK;
}

void config_print_help(FILE *out)
{
        fprintf(out, "Environment variables (default in brackets):\n");
        for (const struct config_key *k = config_keys; k->env; k++)
                fprintf(out, "  %-32s %s [%s]\n", k->env, k->help, k->def);
}

void config_log_summary(const struct config *cfg)
{
        char dsn[512];
        log_redact_url(cfg->database_url, dsn, sizeof(dsn));
        struct log_line l;
        log_begin(&l, LOG_INFO, "config");
        log_kv(&l, "version", SS_VERSION);
        log_kv(&l, "database", dsn);
        log_kv(&l, "brokers", cfg->brokers);
        log_kv(&l, "topic_requests", cfg->topic_requests);
        log_kv(&l, "topic_status", cfg->topic_status);
        log_kv(&l, "topic_movements", cfg->topic_movements);
        log_kv(&l, "topic_dlq", cfg->topic_dlq);
        log_kvi(&l, "threads", cfg->worker_threads);
        log_end(&l);
}
