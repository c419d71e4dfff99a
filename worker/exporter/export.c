/* Export requests: validate, stream from the ledger, record, announce. */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/buf.h"
#include "../../common/csv.h"
#include "../../common/db.h"
#include "../../common/json.h"
#include "../../common/log.h"
#include "../../common/sha256.h"
#include "../../common/timefmt.h"
#include "event.h"
#include "exporter.h"
#include "files.h"

#define STATUS_TIMEOUT_MS 15000
#define WRITE_BUF         (256 * 1024)
#define LIST_IN_MESSAGE   10 /* unit ids named in a refusal */

/* --- parsing ------------------------------------------------------- */

static const char *const known_keys[] = { "request_id",   "client_id",
                                          "unit_ids",     "from",
                                          "to",           "requested_by",
                                          "requested_at", NULL };

bool export_id_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > EXPORT_ID_MAX)
                return false;
        /* It becomes part of a file name. */
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                      (c == '.' && i > 0)))
                        return false;
        }
        return true;
}

static int cmp_ll(const void *a, const void *b)
{
        long long x = *(const long long *)a, y = *(const long long *)b;
        return x < y ? -1 : x > y;
}

static enum ss_err parse_units(yajl_val v,
                               const struct config *cfg,
                               struct export_request *req,
                               struct ss_error *err)
{
        if (v == NULL)
                return ss_error_set(err, SS_ERR_MISSING_FIELD,
                                    "unit_ids is missing");
        if (!YAJL_IS_ARRAY(v))
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "unit_ids: want an array of unit ids");
        size_t n = json_len(v);
        if (n == 0)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "unit_ids: the list is empty");
        if ((long)n > cfg->export_max_units)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "unit_ids: %zu units, at most %ld", n,
                                    cfg->export_max_units);
        req->unit_ids = malloc(n * sizeof(*req->unit_ids));
        if (req->unit_ids == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                long long u;
                if (!json_int(json_at(v, i), &u) || u < 1)
                        return ss_error_set(err, SS_ERR_BAD_FIELD,
                                            "unit_ids[%zu]: want a positive "
                                            "integer",
                                            i);
                req->unit_ids[i] = u;
        }
        qsort(req->unit_ids, n, sizeof(*req->unit_ids), cmp_ll);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (k == 0 || req->unit_ids[k - 1] != req->unit_ids[i])
                        req->unit_ids[k++] = req->unit_ids[i];
        req->nunits = k;
        return SS_OK;
}

static enum ss_err parse_time(yajl_val v,
                              const char *name,
                              bool required,
                              bool *has,
                              int64_t *us,
                              struct ss_error *err)
{
        *has = false;
        if (v == NULL || json_is_null(v)) {
                if (required)
                        return ss_error_set(err, SS_ERR_MISSING_FIELD,
                                            "%s is missing", name);
                return SS_OK;
        }
        const char *s = json_str(v);
        if (s == NULL || !timefmt_parse(s, strlen(s), us))
                return ss_error_set(err, SS_ERR_BAD_TIME,
                                    "%s: want an ISO 8601 time with a zone, "
                                    "e.g. 2024-03-31T00:30:00Z",
                                    name);
        *has = true;
        return SS_OK;
}

static enum ss_err parse_tree(yajl_val root,
                              const char *key,
                              size_t klen,
                              const struct config *cfg,
                              struct export_request *req,
                              struct ss_error *err)
{
        if (!YAJL_IS_OBJECT(root))
                return ss_error_set(err, SS_ERR_NOT_JSON, "want a JSON object");
        const char *id = json_str(json_get(root, "request_id"));
        if (id == NULL)
                return ss_error_set(err, SS_ERR_MISSING_FIELD,
                                    "request_id is missing");
        if (!export_id_valid(id))
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "request_id: want 1-64 letters, digits, "
                                    "'-', '_' or '.'");
        snprintf(req->request_id, sizeof(req->request_id), "%s", id);

        for (size_t i = 0; i < root->u.object.len; i++) {
                const char *k = root->u.object.keys[i];
                size_t j = 0;
                while (known_keys[j] && strcmp(known_keys[j], k) != 0)
                        j++;
                if (known_keys[j] == NULL)
                        return ss_error_set(err, SS_ERR_UNKNOWN_FIELD,
                                            "unknown field %.64s", k);
        }

        yajl_val c = json_get(root, "client_id");
        if (c == NULL)
                return ss_error_set(err, SS_ERR_MISSING_FIELD,
                                    "client_id is missing");
        if (!json_int(c, &req->client_id) || req->client_id < 1)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "client_id: want a positive integer");
        if (key != NULL && klen > 0) {
                char want[24];
                int n = snprintf(want, sizeof(want), "%lld", req->client_id);
                if ((size_t)n != klen || memcmp(want, key, klen) != 0)
                        return ss_error_set(err, SS_ERR_KEY_MISMATCH,
                                            "message key is not the "
                                            "client_id");
        }

        enum ss_err rc = parse_units(json_get(root, "unit_ids"), cfg, req, err);
        if (rc != SS_OK)
                return rc;

        yajl_val who = json_get(root, "requested_by");
        if (who == NULL)
                return ss_error_set(err, SS_ERR_MISSING_FIELD,
                                    "requested_by is missing");
        if (json_str(who) == NULL || json_str(who)[0] == '\0' ||
            strlen(json_str(who)) > 200)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "requested_by: want a non-empty string "
                                    "of at most 200 bytes");
        req->requested_by = strdup(json_str(who));
        if (req->requested_by == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        bool has;
        rc = parse_time(json_get(root, "requested_at"), "requested_at", true,
                        &has, &req->requested_us, err);
        if (rc == SS_OK)
                rc = parse_time(json_get(root, "from"), "from", false,
                                &req->has_from, &req->from_us, err);
        if (rc == SS_OK)
                rc = parse_time(json_get(root, "to"), "to", false, &req->has_to,
                                &req->to_us, err);
        if (rc != SS_OK)
                return rc;
        if (req->has_from && req->has_to && req->from_us > req->to_us)
                return ss_error_set(err, SS_ERR_BAD_RANGE, "from is after to");
        return SS_OK;
}

enum ss_err export_parse(const char *payload,
                         size_t len,
                         const char *key,
                         size_t klen,
                         const struct config *cfg,
                         struct export_request *req,
                         struct ss_error *err)
{
        memset(req, 0, sizeof(*req));
        if (payload == NULL || len == 0)
                return ss_error_set(err, SS_ERR_NOT_JSON, "empty message");
        if ((long)len > cfg->max_message_bytes)
                return ss_error_set(err, SS_ERR_TOO_LARGE,
                                    "message of %zu bytes is over %ld", len,
                                    cfg->max_message_bytes);
        yajl_val root = json_parse(payload, len, err);
        if (root == NULL)
                return err->code;
        enum ss_err rc = parse_tree(root, key, klen, cfg, req, err);
        yajl_tree_free(root);
        return rc;
}

void export_request_free(struct export_request *req)
{
        free(req->unit_ids);
        free(req->requested_by);
        memset(req, 0, sizeof(*req));
}

/* --- context ------------------------------------------------------- */

enum ss_err export_ctx_init(struct export_ctx *ctx,
                            const struct config *cfg,
                            rd_kafka_t *producer,
                            struct ss_error *err)
{
        memset(ctx, 0, sizeof(*ctx));
        ctx->cfg = cfg;
        ctx->producer = producer;
        if (mkdir(cfg->export_dir, 0755) != 0 && errno != EEXIST)
                return files_errno(errno, "create directory", cfg->export_dir,
                                   err);
        char *abs = realpath(cfg->export_dir, NULL);
        if (abs == NULL)
                return files_errno(errno, "resolve", cfg->export_dir, err);
        size_t n = strlen(abs) + sizeof("/" EXPORT_SUBDIR);
        ctx->root = abs;
        ctx->dir = malloc(n);
        if (ctx->dir == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        snprintf(ctx->dir, n, "%s/%s", abs, EXPORT_SUBDIR);
        return SS_OK;
}

void export_ctx_free(struct export_ctx *ctx)
{
        if (ctx->conn != NULL)
                PQfinish(ctx->conn);
        free(ctx->root);
        free(ctx->dir);
        memset(ctx, 0, sizeof(*ctx));
}

/* True when the connection works; (re)connects when needed. */
static bool connected(struct export_ctx *ctx, struct ss_error *err)
{
        if (ctx->conn != NULL && db_ensure(ctx->conn))
                return true;
        if (ctx->conn != NULL)
                PQfinish(ctx->conn);
        ctx->conn = db_connect(ctx->cfg->database_url, err);
        if (ctx->conn == NULL)
                return false;
        /* CSV files are UTF-8 whatever the server's encoding, and export
         * rows are parsed expecting ISO dates (the zone is UTC already). */
        if (db_exec(ctx->conn, "SET client_encoding TO 'UTF8'", 0, NULL, err) !=
                    SS_OK ||
            db_exec(ctx->conn, "SET datestyle TO 'ISO'", 0, NULL, err) !=
                    SS_OK) {
                PQfinish(ctx->conn);
                ctx->conn = NULL;
                return false;
        }
        return true;
}

static bool conn_lost(const struct export_ctx *ctx)
{
        return ctx->conn == NULL || PQstatus(ctx->conn) != CONNECTION_OK;
}

/* --- outcome: record and announce --------------------------------- */

struct outcome {
        const char *state; /* running, succeeded, failed, rejected */
        char path[PATH_MAX];
        long long rows, bytes;
        char sha[SHA256_HEX_LEN + 1];
        struct ss_error why;
};

static void status_json(struct buf *b,
                        const struct export_request *req,
                        const rd_kafka_message_t *msg,
                        const struct outcome *o)
{
        char at[TIMEFMT_MAX];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        /* Milliseconds are enough for an event time. */
        timefmt_format(
                (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000000 * 1000, at);
        bool final = strcmp(o->state, "running") != 0;
        bool ok = strcmp(o->state, "succeeded") == 0;

        buf_puts(b, "{\"event\":\"status\",\"action\":\"export\","
                    "\"request_id\":");
        if (req->request_id[0])
                buf_json_str(b, req->request_id);
        else
                buf_puts(b, "null");
        if (req->client_id > 0)
                buf_printf(b, ",\"client_id\":%lld", req->client_id);
        else
                buf_puts(b, ",\"client_id\":null");
        buf_printf(b, ",\"state\":\"%s\",\"final\":%s,\"at\":\"%s\"", o->state,
                   final ? "true" : "false", at);
        if (ok) {
                buf_puts(b, ",\"path\":");
                buf_json_str(b, o->path);
                buf_printf(b, ",\"rows\":%lld,\"bytes\":%lld,\"sha256\":\"%s\"",
                           o->rows, o->bytes, o->sha);
        } else {
                buf_puts(b, ",\"path\":null,\"rows\":null,\"bytes\":null,"
                            "\"sha256\":null");
        }
        if (final && !ok) {
                buf_printf(b, ",\"error\":{\"code\":\"%s\",\"message\":",
                           ss_err_name(o->why.code));
                buf_json_str(b, o->why.msg);
                buf_putc(b, '}');
        } else {
                buf_puts(b, ",\"error\":null");
        }
        buf_puts(b, ",\"source\":{\"topic\":");
        buf_json_str(b, rd_kafka_topic_name(msg->rkt));
        buf_printf(b, ",\"partition\":%d,\"offset\":%lld}}",
                   (int)msg->partition, (long long)msg->offset);
}

static enum ss_err announce(struct export_ctx *ctx,
                            const struct export_request *req,
                            const rd_kafka_message_t *msg,
                            const struct outcome *o,
                            struct ss_error *err)
{
        struct buf b = BUF_INIT;
        status_json(&b, req, msg, o);
        if (buf_str(&b) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        const char *key = req->request_id[0] ? req->request_id : NULL;
        enum ss_err rc = exporter_produce(ctx->producer, ctx->cfg->topic_status,
                                          key, key ? strlen(key) : 0, b.data,
                                          b.len, NULL, STATUS_TIMEOUT_MS, err);
        buf_free(&b);

        struct log_line l;
        log_begin(&l, strcmp(o->state, "succeeded") == 0 ? LOG_INFO : LOG_WARN,
                  "export_done");
        log_kv(&l, "req", req->request_id);
        log_kvi(&l, "client", req->client_id);
        log_kv(&l, "outcome", o->state);
        if (strcmp(o->state, "succeeded") == 0) {
                log_kv(&l, "path", o->path);
                log_kvi(&l, "rows", o->rows);
                log_kvi(&l, "bytes", o->bytes);
        } else {
                log_err(&l, &o->why);
        }
        log_end(&l);
        return rc;
}

static void ll_text(char *out, size_t n, long long v)
{
        snprintf(out, n, "%lld", v);
}

/* Writes the final state of a request that has a row. */
static enum ss_err record_final(struct export_ctx *ctx,
                                const struct export_request *req,
                                const struct outcome *o,
                                struct ss_error *err)
{
        bool ok = strcmp(o->state, "succeeded") == 0;
        char rows[24], bytes[24];
        ll_text(rows, sizeof(rows), o->rows);
        ll_text(bytes, sizeof(bytes), o->bytes);
        const char *p[] = { req->request_id,
                            o->state,
                            ok ? o->path : NULL,
                            ok ? rows : NULL,
                            ok ? bytes : NULL,
                            ok ? o->sha : NULL,
                            ok ? NULL : ss_err_name(o->why.code),
                            ok ? NULL : o->why.msg };
        return db_exec(ctx->conn,
                       "UPDATE export_requests SET state = $2, path = $3, "
                       "rows = $4, bytes = $5, sha256 = $6, error_code = $7, "
                       "error_message = $8, updated_at = now(), "
                       "finished_at = now() WHERE request_id = $1",
                       8, p, err);
}

/* Records the request as running, or finds it already known. *known is
 * filled with the stored outcome when the request was finished before. */
static enum ss_err record_start(struct export_ctx *ctx,
                                const struct export_request *req,
                                const rd_kafka_message_t *msg,
                                bool *done,
                                struct outcome *known,
                                struct ss_error *err)
{
        struct buf units = BUF_INIT;
        db_array_begin(&units);
        for (size_t i = 0; i < req->nunits; i++)
                db_array_ll(&units, req->unit_ids[i]);
        db_array_end(&units);
        char client[24], part[16], off[24];
        char from[TIMEFMT_MAX], to[TIMEFMT_MAX], at[TIMEFMT_MAX];
        ll_text(client, sizeof(client), req->client_id);
        ll_text(part, sizeof(part), msg->partition);
        ll_text(off, sizeof(off), msg->offset);
        timefmt_format(req->from_us, from);
        timefmt_format(req->to_us, to);
        timefmt_format(req->requested_us, at);
        if (buf_str(&units) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        const char *p[] = { req->request_id,
                            client,
                            units.data,
                            req->has_from ? from : NULL,
                            req->has_to ? to : NULL,
                            req->requested_by,
                            at,
                            rd_kafka_topic_name(msg->rkt),
                            part,
                            off };
        PGresult *r = db_query(
                ctx->conn,
                "INSERT INTO export_requests (request_id, client_id, "
                "unit_ids, from_at, to_at, requested_by, requested_at, "
                "state, kafka_topic, kafka_partition, kafka_offset) VALUES "
                "($1, $2, $3::bigint[], $4, $5, $6, $7, 'running', $8, $9, "
                "$10) ON CONFLICT (request_id) DO UPDATE SET attempts = "
                "export_requests.attempts + 1, updated_at = now() "
                "RETURNING state, path, rows, bytes, sha256, error_code, "
                "error_message",
                10, p, err, NULL);
        buf_free(&units);
        if (r == NULL)
                return SS_ERR_DB;

        const char *state = db_val(r, 0, 0);
        *done = strcmp(state, "running") != 0;
        if (*done) {
                static const char *const states[] = { "succeeded", "failed",
                                                      "rejected" };
                known->state = "failed";
                for (size_t i = 0; i < 3; i++)
                        if (strcmp(state, states[i]) == 0)
                                known->state = states[i];
                snprintf(known->path, sizeof(known->path), "%s",
                         db_val(r, 0, 1) ? db_val(r, 0, 1) : "");
                known->rows = db_ll(r, 0, 2, 0);
                known->bytes = db_ll(r, 0, 3, 0);
                snprintf(known->sha, sizeof(known->sha), "%s",
                         db_val(r, 0, 4) ? db_val(r, 0, 4) : "");
                known->why.code = SS_ERR_INTERNAL;
                for (int c = 0; c < SS_ERR__COUNT; c++)
                        if (db_val(r, 0, 5) &&
                            strcmp(ss_err_name((enum ss_err)c),
                                   db_val(r, 0, 5)) == 0)
                                known->why.code = (enum ss_err)c;
                snprintf(known->why.msg, sizeof(known->why.msg), "%s",
                         db_val(r, 0, 6) ? db_val(r, 0, 6) : "");
        }
        PQclear(r);
        return SS_OK;
}

/* A refusal of a message that may have no row yet. A finished request is
 * never overwritten by a later malformed copy. */
static enum ss_err record_reject(struct export_ctx *ctx,
                                 const struct export_request *req,
                                 const struct ss_error *why,
                                 struct ss_error *err)
{
        char client[24];
        ll_text(client, sizeof(client), req->client_id);
        const char *p[] = { req->request_id, req->client_id > 0 ? client : NULL,
                            ss_err_name(why->code), why->msg };
        return db_exec(ctx->conn,
                       "INSERT INTO export_requests AS e (request_id, "
                       "client_id, state, error_code, error_message, "
                       "finished_at) VALUES ($1, $2, 'rejected', $3, $4, "
                       "now()) ON CONFLICT (request_id) DO UPDATE SET "
                       "state = 'rejected', error_code = $3, error_message = "
                       "$4, updated_at = now(), finished_at = now() WHERE "
                       "e.state = 'running'",
                       4, p, err);
}

/* --- checks against the database ---------------------------------- */

/* Refuses units that are not the client's. Unknown ids and ids of
 * another client get the same code and words, so a refusal tells nothing
 * about other clients. */
static enum ss_err check_units(struct export_ctx *ctx,
                               const struct export_request *req,
                               struct ss_error *why,
                               struct ss_error *err)
{
        struct buf units = BUF_INIT;
        db_array_begin(&units);
        for (size_t i = 0; i < req->nunits; i++)
                db_array_ll(&units, req->unit_ids[i]);
        db_array_end(&units);
        char client[24];
        ll_text(client, sizeof(client), req->client_id);
        if (buf_str(&units) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        const char *p[] = { client, units.data };
        PGresult *r = db_query(
                ctx->conn,
                "SELECT EXISTS (SELECT 1 FROM clients WHERE id = $1), "
                "(SELECT count(*) FROM unnest($2::bigint[]) x WHERE NOT "
                "EXISTS (SELECT 1 FROM inventory_units u WHERE u.id = x AND "
                "u.client_id = $1)), (SELECT string_agg(x::text, ', ' ORDER "
                "BY x) FROM (SELECT x FROM unnest($2::bigint[]) x WHERE NOT "
                "EXISTS (SELECT 1 FROM inventory_units u WHERE u.id = x AND "
                "u.client_id = $1) ORDER BY x LIMIT 10) s)",
                2, p, err, NULL);
        buf_free(&units);
        if (r == NULL)
                return SS_ERR_DB;
        if (!db_bool(r, 0, 0))
                ss_error_set(why, SS_ERR_UNKNOWN_CLIENT,
                             "client %lld is "
                             "not known",
                             req->client_id);
        else if (db_ll(r, 0, 1, 0) > 0)
                ss_error_set(why, SS_ERR_UNKNOWN_UNIT,
                             "%lld of the unit ids are not units of client "
                             "%lld: %s%s",
                             db_ll(r, 0, 1, 0), req->client_id, db_val(r, 0, 2),
                             db_ll(r, 0, 1, 0) > LIST_IN_MESSAGE ? ", ..."
                                                                 : "");
        PQclear(r);
        return SS_OK;
}

/* --- streaming the file -------------------------------------------- */

/* The COPY statement. COPY takes no bind parameters, so the values are
 * written in: all are numbers and timestamps we formatted ourselves. The
 * rows come in COPY's text format and are turned into CSV here, by the
 * same code as audit events (event_csv_row), so both kinds of file agree
 * byte for byte, and the server does no more than a plain \\copy. */
static void copy_sql(struct buf *q, const struct export_request *req)
{
        buf_printf(q,
                   "COPY (SELECT m.id, m.occurred_at, m.reason_code, m.note, "
                   "m.qty_before, m.qty_after, m.qty_change, u.sku, u.name, "
                   "l.code, m.serial, m.batch, m.lot, m.order_ref "
                   "FROM movements m "
                   "JOIN inventory_units u ON u.id = m.unit_id "
                   "JOIN locations l ON l.id = m.location_id "
                   "WHERE u.client_id = %lld AND m.unit_id = ANY ('",
                   req->client_id);
        db_array_begin(q);
        for (size_t i = 0; i < req->nunits; i++)
                db_array_ll(q, req->unit_ids[i]);
        db_array_end(q);
        buf_puts(q, "'::bigint[])");
        char t[TIMEFMT_MAX];
        if (req->has_from) {
                timefmt_format(req->from_us, t);
                buf_printf(q, " AND m.occurred_at >= '%s'", t);
        }
        if (req->has_to) {
                timefmt_format(req->to_us, t);
                buf_printf(q, " AND m.occurred_at < '%s'", t);
        }
        buf_puts(q, " ORDER BY m.occurred_at, m.id) TO STDOUT");
}

#define COPY_COLUMNS 14

/* One field of a COPY text row: row[off..off+len) when plain, or
 * dec[off..off+len) when escapes were decoded; null for \N. */
struct field_ref {
        bool null, decoded;
        size_t off, len;
};

static bool copy_escape(char c, char *out)
{
        static const char from[] = "bfnrtv\\";
        static const char to[] = "\b\f\n\r\t\v\\";
        const char *hit = c ? strchr(from, c) : NULL;
        if (hit == NULL)
                return false;
        *out = to[hit - from];
        return true;
}

/* Splits a COPY text-format row (tab separated, backslash escapes, \N
 * for NULL, a final newline) into COPY_COLUMNS fields. */
static bool
copy_split(const char *row, size_t n, struct buf *dec, struct field_ref *f)
{
        if (n == 0 || row[n - 1] != '\n')
                return false;
        n--;
        size_t i = 0;
        for (int col = 0; col < COPY_COLUMNS; col++) {
                size_t start = i;
                bool esc = false;
                while (i < n && row[i] != '\t') {
                        esc |= row[i] == '\\';
                        i++;
                }
                f[col] = (struct field_ref){ false, false, start, i - start };
                if (i - start == 2 && row[start] == '\\' &&
                    row[start + 1] == 'N') {
                        f[col].null = true;
                } else if (esc) {
                        f[col].decoded = true;
                        f[col].off = dec->len;
                        for (size_t k = start; k < i; k++) {
                                char c = row[k];
                                if (c == '\\' &&
                                    (k + 1 >= i || !copy_escape(row[++k], &c)))
                                        return false;
                                buf_putc(dec, c);
                        }
                        f[col].len = dec->len - f[col].off;
                }
                if (col < COPY_COLUMNS - 1) {
                        if (i >= n)
                                return false;
                        i++; /* the tab */
                }
        }
        return i == n && !dec->failed;
}

static bool field_ll(const char *p, size_t len, long long *out)
{
        char tmp[24];
        if (len == 0 || len >= sizeof(tmp))
                return false;
        memcpy(tmp, p, len);
        tmp[len] = '\0';
        char *end = NULL;
        errno = 0;
        *out = strtoll(tmp, &end, 10);
        return errno == 0 && *end == '\0';
}

/* A ledger row as the movement event it was announced with. */
static bool copy_row_event(const char *row,
                           size_t n,
                           struct buf *dec,
                           struct movement_event *ev)
{
        struct field_ref f[COPY_COLUMNS];
        buf_reset(dec);
        if (!copy_split(row, n, dec, f))
                return false;
        const char *v[COPY_COLUMNS];
        for (int i = 0; i < COPY_COLUMNS; i++)
                v[i] = f[i].null      ? NULL
                       : f[i].decoded ? dec->data + f[i].off
                                      : row + f[i].off;
        struct event_str *text[] = { &ev->reason_code,   &ev->note,
                                     &ev->sku,           &ev->item_name,
                                     &ev->location_code, &ev->serial,
                                     &ev->batch,         &ev->lot,
                                     &ev->order_ref };
        static const int text_col[] = { 2, 3, 7, 8, 9, 10, 11, 12, 13 };
        memset(ev, 0, sizeof(*ev));
        for (size_t i = 0; i < sizeof(text_col) / sizeof(text_col[0]); i++)
                *text[i] = (struct event_str){ v[text_col[i]],
                                               f[text_col[i]].len };
        /* The session runs in UTC with ISO dates: 2024-03-01 00:00:00+00. */
        return v[0] && v[1] && v[4] && v[5] && v[6] &&
               field_ll(v[0], f[0].len, &ev->movement_id) &&
               timefmt_parse(v[1], f[1].len, &ev->occurred_us) &&
               field_ll(v[4], f[4].len, &ev->qty_before) &&
               field_ll(v[5], f[5].len, &ev->qty_after) &&
               field_ll(v[6], f[6].len, &ev->qty_change);
}

struct sink {
        int fd;
        char *buf;
        size_t len;
        int e; /* first errno */
        struct sha256 hash;
        long long bytes;
};

static void sink_flush(struct sink *s)
{
        if (s->e == 0 && s->len > 0) {
                sha256_update(&s->hash, s->buf, s->len);
                s->e = files_write_all(s->fd, s->buf, s->len);
                s->bytes += (long long)s->len;
        }
        s->len = 0;
}

static void sink_put(struct sink *s, const char *p, size_t n)
{
        if (s->len + n > WRITE_BUF)
                sink_flush(s);
        if (n > WRITE_BUF) {
                if (s->e == 0) {
                        sha256_update(&s->hash, p, n);
                        s->e = files_write_all(s->fd, p, n);
                        s->bytes += (long long)n;
                }
                return;
        }
        memcpy(s->buf + s->len, p, n);
        s->len += n;
}

/* Stops a COPY we no longer want and reads it to its end. */
static void copy_abandon(PGconn *conn)
{
        PGcancel *c = PQgetCancel(conn);
        if (c != NULL) {
                char e[256];
                PQcancel(c, e, sizeof(e));
                PQfreeCancel(c);
        }
        char *row = NULL;
        while (PQgetCopyData(conn, &row, 0) > 0)
                PQfreemem(row);
        PGresult *r;
        while ((r = PQgetResult(conn)) != NULL)
                PQclear(r);
}

/* Streams the rows into s; *rows counts them. */
static enum ss_err copy_rows(struct export_ctx *ctx,
                             const struct export_request *req,
                             struct sink *s,
                             long long *rows,
                             struct ss_error *err)
{
        struct buf q = BUF_INIT;
        copy_sql(&q, req);
        if (buf_str(&q) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        PGresult *r = PQexec(ctx->conn, q.data);
        buf_free(&q);
        if (PQresultStatus(r) != PGRES_COPY_OUT) {
                const char *m = PQresultErrorMessage(r);
                ss_error_set(err, SS_ERR_DB, "export query: %.*s",
                             (int)strcspn(m, "\n"), m);
                PQclear(r);
                return SS_ERR_DB;
        }
        PQclear(r);

        /* libpq hands COPY OUT data over one row per call. */
        bool neutralise = ctx->cfg->export_neutralise != 0;
        struct buf dec = BUF_INIT, line = BUF_INIT;
        char *row = NULL;
        int n;
        enum ss_err rc = SS_OK;
        *rows = 0;
        while ((n = PQgetCopyData(ctx->conn, &row, 0)) > 0) {
                struct movement_event ev;
                bool ok = copy_row_event(row, (size_t)n, &dec, &ev);
                if (ok) {
                        buf_reset(&line);
                        event_csv_row(&ev, neutralise, &line);
                        ok = buf_str(&line) != NULL;
                }
                PQfreemem(row);
                if (!ok) {
                        rc = ss_error_set(err, SS_ERR_INTERNAL,
                                          "unexpected ledger row %lld",
                                          *rows + 1);
                        break;
                }
                sink_put(s, line.data, line.len);
                (*rows)++;
                if (s->e != 0)
                        break; /* the caller reads s->e */
        }
        buf_free(&dec);
        buf_free(&line);
        if (n > 0) {
                copy_abandon(ctx->conn);
                return rc;
        }
        r = PQgetResult(ctx->conn);
        if (n == -2 || PQresultStatus(r) != PGRES_COMMAND_OK) {
                const char *m =
                        r ? PQresultErrorMessage(r) : PQerrorMessage(ctx->conn);
                rc = ss_error_set(err, SS_ERR_DB, "export query: %.*s",
                                  (int)strcspn(m, "\n"), m);
        }
        PQclear(r);
        while ((r = PQgetResult(ctx->conn)) != NULL)
                PQclear(r);
        return rc;
}

/* Writes the file under a temporary name, then fsync, rename, fsync the
 * directory: the final name never holds a partial file. */
static enum ss_err write_file(struct export_ctx *ctx,
                              const struct export_request *req,
                              struct outcome *o,
                              struct ss_error *err)
{
        char sub[48], dir[PATH_MAX], tmp[PATH_MAX];
        snprintf(sub, sizeof(sub), "client-%lld", req->client_id);
        /* Made on demand, so a directory removed while we run comes back
         * and one we cannot make fails this request only. */
        enum ss_err rc = files_mkdir(ctx->root, EXPORT_SUBDIR, err);
        if (rc == SS_OK)
                rc = files_mkdir(ctx->dir, sub, err);
        if (rc != SS_OK)
                return rc;
        if (snprintf(dir, sizeof(dir), "%s/%s", ctx->dir, sub) >=
                    (int)sizeof(dir) ||
            snprintf(tmp, sizeof(tmp), "%s/.export-%s.csv.tmp", dir,
                     req->request_id) >= (int)sizeof(tmp) ||
            snprintf(o->path, sizeof(o->path), "%s/export-%s.csv", dir,
                     req->request_id) >= (int)sizeof(o->path))
                return ss_error_set(err, SS_ERR_UNWRITABLE,
                                    "export directory path is too long");

        struct sink s = { .fd = -1 };
        s.buf = malloc(WRITE_BUF);
        if (s.buf == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        s.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (s.fd < 0) {
                rc = files_errno(errno, "create", tmp, err);
                goto out;
        }
        sha256_init(&s.hash);
        if (ctx->cfg->export_bom)
                sink_put(&s, "\xEF\xBB\xBF", 3);
        sink_put(&s, event_csv_header, strlen(event_csv_header));

        rc = copy_rows(ctx, req, &s, &o->rows, err);
        if (rc == SS_OK) {
                sink_flush(&s);
                if (s.e == 0 && fsync(s.fd) != 0)
                        s.e = errno;
        }
        if (close(s.fd) != 0 && s.e == 0)
                s.e = errno;
        s.fd = -1;
        if (rc == SS_OK && s.e == 0 && rename(tmp, o->path) != 0)
                s.e = errno;
        if (rc == SS_OK && s.e != 0)
                rc = files_errno(s.e, "write", tmp, err);
        if (rc != SS_OK) {
                unlink(tmp);
                goto out;
        }
        rc = files_sync_dir(dir, err);
        o->bytes = s.bytes;
        sha256_hex(&s.hash, o->sha);
out:
        free(s.buf);
        return rc;
}

/* --- one request ----------------------------------------------------- */

static void log_retry(const struct export_request *req,
                      const struct ss_error *err)
{
        struct log_line l;
        log_begin(&l, LOG_WARN, "export_retry");
        log_kv(&l, "req", req->request_id);
        log_err(&l, err);
        log_end(&l);
}

/* Refusal before any database work; the database is used when it can
 * record the refusal. */
static enum export_next refuse(struct export_ctx *ctx,
                               const struct export_request *req,
                               const rd_kafka_message_t *msg,
                               const struct ss_error *why)
{
        struct outcome o = { .state = "rejected", .why = *why };
        struct ss_error err = { 0 };
        if (req->request_id[0]) {
                if (!connected(ctx, &err) ||
                    record_reject(ctx, req, why, &err) != SS_OK) {
                        log_retry(req, &err);
                        return EXPORT_RETRY;
                }
        }
        if (announce(ctx, req, msg, &o, &err) != SS_OK) {
                log_retry(req, &err);
                return EXPORT_RETRY;
        }
        return EXPORT_DONE;
}

static enum export_next run(struct export_ctx *ctx,
                            const struct export_request *req,
                            const rd_kafka_message_t *msg)
{
        struct ss_error err = { 0 };
        struct outcome o = { .state = "running" };
        bool done = false;
        if (!connected(ctx, &err) ||
            record_start(ctx, req, msg, &done, &o, &err) != SS_OK)
                goto retry;
        if (done) {
                /* A redelivery of a finished request: say it again. */
                if (announce(ctx, req, msg, &o, &err) != SS_OK)
                        goto retry;
                return EXPORT_DONE;
        }

        struct ss_error why = { 0 };
        if (check_units(ctx, req, &why, &err) != SS_OK)
                goto retry;
        if (why.code != SS_OK) {
                o.state = "rejected";
                o.why = why;
        } else if (write_file(ctx, req, &o, &why) == SS_OK) {
                o.state = "succeeded";
        } else if (why.code == SS_ERR_DB && conn_lost(ctx)) {
                err = why;
                goto retry;
        } else {
                o.state = "failed";
                o.why = why;
        }
        if (record_final(ctx, req, &o, &err) != SS_OK ||
            announce(ctx, req, msg, &o, &err) != SS_OK)
                goto retry;
        return EXPORT_DONE;
retry:
        log_retry(req, &err);
        return EXPORT_RETRY;
}

enum export_next export_handle(struct export_ctx *ctx,
                               const rd_kafka_message_t *msg)
{
        struct export_request req;
        struct ss_error why = { 0 };
        enum ss_err rc = export_parse(msg->payload, msg->len, msg->key,
                                      msg->key_len, ctx->cfg, &req, &why);
        enum export_next next;
        if (rc == SS_ERR_NOMEM)
                next = EXPORT_RETRY;
        else if (rc != SS_OK)
                next = refuse(ctx, &req, msg, &why);
        else
                next = run(ctx, &req, msg);
        export_request_free(&req);
        return next;
}
