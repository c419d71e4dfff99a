/* Configuration from environment variables, one table (config.c) with each
 * key's variable, default and meaning. `--help` of every program prints the
 * table; deploy/stocksync.env documents every key (a unit test checks). */
#ifndef SS_CONFIG_H
#define SS_CONFIG_H

#include <stdio.h>

#include "err.h"

struct config {
        const char *database_url; /* libpq conninfo or URI */
        const char *brokers;      /* bootstrap.servers */
        const char *kafka_props;  /* "k=v,k=v" passed to librdkafka */
        const char *topic_requests;
        const char *topic_status;
        const char *topic_movements;
        const char *topic_dlq;
        const char *topic_export_requests;
        const char *topic_audit_dlq;
        const char *worker_group;
        const char *exporter_group;
        const char *log_level;
        const char *export_dir;
        long worker_threads;
        long max_message_bytes;
        long outbox_batch;
        long outbox_interval_ms;
        long http_timeout_ms;
        long http_max_attempts;
        long export_bom;
        long export_max_units;
        long export_neutralise;
        long exporter_flush_rows;
        long exporter_flush_ms;
        long status_progress_every;
};

enum config_type {
        CONFIG_STR,
        CONFIG_LONG
};

struct config_key {
        const char *env; /* STOCKSYNC_... */
        enum config_type type;
        const char *def; /* default, as text */
        long min, max;   /* bounds for CONFIG_LONG */
        const char *help;
        size_t offset; /* into struct config */
};

/* NULL-terminated (env == NULL) table of every key. */
extern const struct config_key config_keys[];

/* Fills cfg from the environment and defaults. Strings point into the
 * environment or static defaults (valid for the process' life). Returns
 * SS_ERR_CONFIG naming the variable when a value is malformed or out of
 * range. */
enum ss_err config_load(struct config *cfg, struct ss_error *err) SS_MUSTCHECK;

/* Prints every key with its default and meaning. */
void config_print_help(FILE *out);

/* Logs one info line with the effective settings, secrets redacted. */
void config_log_summary(const struct config *cfg);

#endif
