/* stocksync enqueue: builds a request message and produces it, waiting for
 * the broker's acknowledgement before printing the request id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/kafka.h"
#include "../../common/uuid.h"
#include "../exporter/export.h"
#include "../request.h"
#include "cli.h"

#define PRODUCE_TIMEOUT_MS 15000

static bool parse_id(const char *s, long long *out)
{
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 1)
                return false;
        *out = v;
        return true;
}

static void now_utc(char out[32])
{
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void default_requester(char *out, size_t outsz)
{
        const char *u = getenv("USER");
        char host[64] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(out, outsz, "cli:%s@%s", u ? u : "unknown", host);
}

static int produce(const struct config *cfg,
                   const char *topic,
                   const char *key,
                   const struct buf *msg)
{
        struct ss_error err = { 0 };
        int rc = 1;
        rd_kafka_conf_t *conf = kafka_conf_new(cfg, &err);
        if (conf == NULL)
                return cli_fail(&err);
        rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_sync_cb);
        rd_kafka_t *rk = kafka_producer_new(conf, &err);
        if (rk == NULL)
                return cli_fail(&err);
        if (buf_str(msg) == NULL) {
                ss_error_set(&err, SS_ERR_NOMEM, "out of memory");
                rc = cli_fail(&err);
        } else if (kafka_produce_sync(rk, topic, key, msg->data, msg->len,
                                      PRODUCE_TIMEOUT_MS, &err) != SS_OK) {
                rc = cli_fail(&err);
        } else {
                rc = 0;
        }
        rd_kafka_destroy(rk);
        return rc;
}

static int usage(void)
{
        fprintf(stderr,
                "usage: stocksync enqueue pull|push --integration N [--unit "
                "N] [--all] [--force]\n"
                "                 [--bypass-guardrail] [--dry-run] "
                "[--requested-by WHO] [--id ID]\n"
                "       stocksync enqueue export --client N --units 1,2,3 "
                "[--from T] [--to T]\n"
                "                 [--requested-by WHO] [--id ID]\n");
        return 2;
}

/* Fields every request carries that the caller may leave out: a fresh
 * request id, who asked, and when. Returns 0, or 1 with a message. */
static int fill_defaults(const char **id,
                         char rid[37],
                         const char **who,
                         char whobuf[160],
                         char at[32])
{
        if (*id == NULL) {
                if (uuid_v4(rid) != SS_OK) {
                        fprintf(stderr, "stocksync: io_error: no random "
                                        "source for a request id\n");
                        return 1;
                }
                *id = rid;
        }
        if (*who == NULL) {
                default_requester(whobuf, 160);
                *who = whobuf;
        }
        now_utc(at);
        return 0;
}

static int enqueue_sync(const struct config *cfg,
                        const char *action,
                        int argc,
                        char **argv)
{
        long long integration = 0, unit = 0;
        bool all = false, force = false, bypass = false, dry = false;
        const char *who = NULL, *id = NULL;
        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                bool has_val = i + 1 < argc;
                if (strcmp(a, "--integration") == 0 && has_val) {
                        if (!parse_id(argv[++i], &integration))
                                return usage();
                } else if (strcmp(a, "--unit") == 0 && has_val) {
                        if (!parse_id(argv[++i], &unit))
                                return usage();
                } else if (strcmp(a, "--all") == 0) {
                        all = true;
                } else if (strcmp(a, "--force") == 0) {
                        force = true;
                } else if (strcmp(a, "--bypass-guardrail") == 0) {
                        bypass = true;
                } else if (strcmp(a, "--dry-run") == 0) {
                        dry = true;
                } else if (strcmp(a, "--requested-by") == 0 && has_val) {
                        who = argv[++i];
                } else if (strcmp(a, "--id") == 0 && has_val) {
                        id = argv[++i];
                } else {
                        return usage();
                }
        }
        if (integration == 0)
                return usage();

        if (id != NULL && !request_id_valid(id)) {
                /* The worker would only reject it to the DLQ, and `status`
                 * would wait for an outcome that never comes. */
                fprintf(stderr,
                        "stocksync: bad_field: --id must be 1 to %d "
                        "characters of A-Z a-z 0-9 . _ : -\n",
                        REQUEST_ID_MAX);
                return 2;
        }
        char rid[37], at[32], whobuf[160], key[24];
        if (fill_defaults(&id, rid, &who, whobuf, at) != 0)
                return 1;
        snprintf(key, sizeof(key), "%lld", integration);

        struct buf msg = BUF_INIT;
        buf_puts(&msg, "{\"request_id\":");
        buf_json_str(&msg, id);
        buf_printf(&msg, ",\"action\":\"%s\",\"integration_id\":%lld", action,
                   integration);
        if (unit)
                buf_printf(&msg, ",\"unit_id\":%lld", unit);
        buf_printf(&msg,
                   ",\"options\":{\"force\":%s,\"bypass_guardrail\":%s,"
                   "\"all\":%s,\"dry_run\":%s},\"requested_by\":",
                   force ? "true" : "false", bypass ? "true" : "false",
                   all ? "true" : "false", dry ? "true" : "false");
        buf_json_str(&msg, who);
        buf_printf(&msg, ",\"requested_at\":\"%s\"}", at);

        int rc = produce(cfg, cfg->topic_requests, key, &msg);
        buf_free(&msg);
        if (rc == 0)
                printf("%s\n", id);
        return rc;
}

static int enqueue_export(const struct config *cfg, int argc, char **argv)
{
        long long client = 0;
        const char *units = NULL, *from = NULL, *to = NULL, *who = NULL,
                   *id = NULL;
        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                bool has_val = i + 1 < argc;
                if (strcmp(a, "--client") == 0 && has_val) {
                        if (!parse_id(argv[++i], &client))
                                return usage();
                } else if (strcmp(a, "--units") == 0 && has_val) {
                        units = argv[++i];
                } else if (strcmp(a, "--from") == 0 && has_val) {
                        from = argv[++i];
                } else if (strcmp(a, "--to") == 0 && has_val) {
                        to = argv[++i];
                } else if (strcmp(a, "--requested-by") == 0 && has_val) {
                        who = argv[++i];
                } else if (strcmp(a, "--id") == 0 && has_val) {
                        id = argv[++i];
                } else {
                        return usage();
                }
        }
        if (client == 0 || units == NULL)
                return usage();

        char rid[37], at[32], whobuf[160], key[24];
        if (id != NULL && !export_id_valid(id)) {
                fprintf(stderr,
                        "stocksync: bad_field: --id must be 1 to %d "
                        "characters of A-Z a-z 0-9 _ - and '.' (not "
                        "first)\n",
                        EXPORT_ID_MAX);
                return 2;
        }
        if (fill_defaults(&id, rid, &who, whobuf, at) != 0)
                return 1;
        snprintf(key, sizeof(key), "%lld", client);

        struct buf msg = BUF_INIT;
        buf_puts(&msg, "{\"request_id\":");
        buf_json_str(&msg, id);
        buf_printf(&msg, ",\"client_id\":%lld,\"unit_ids\":[", client);
        /* The exporter validates the list; here only the syntax. */
        const char *p = units;
        bool first = true;
        while (*p) {
                char *end = NULL;
                errno = 0;
                long long u = strtoll(p, &end, 10);
                if (errno || end == p || u < 1 || (*end && *end != ',')) {
                        buf_free(&msg);
                        fprintf(stderr, "stocksync: bad_field: --units wants "
                                        "positive ids separated by commas\n");
                        return 2;
                }
                buf_printf(&msg, "%s%lld", first ? "" : ",", u);
                first = false;
                p = *end ? end + 1 : end;
        }
        buf_puts(&msg, "]");
        if (from) {
                buf_puts(&msg, ",\"from\":");
                buf_json_str(&msg, from);
        }
        if (to) {
                buf_puts(&msg, ",\"to\":");
                buf_json_str(&msg, to);
        }
        buf_puts(&msg, ",\"requested_by\":");
        buf_json_str(&msg, who);
        buf_printf(&msg, ",\"requested_at\":\"%s\"}", at);

        int rc = produce(cfg, cfg->topic_export_requests, key, &msg);
        buf_free(&msg);
        if (rc == 0)
                printf("%s\n", id);
        return rc;
}

int cli_enqueue(const struct config *cfg, int argc, char **argv)
{
        if (argc < 2)
                return usage();
        const char *what = argv[1];
        if (strcmp(what, "pull") == 0 || strcmp(what, "push") == 0)
                return enqueue_sync(cfg, what, argc - 2, argv + 2);
        if (strcmp(what, "export") == 0)
                return enqueue_export(cfg, argc - 2, argv + 2);
        return usage();
}
