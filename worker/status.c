/* sync_requests rows and status events. */
#include "status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/db.h"

void status_now(char out[48])
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

/* The envelope shared by every status event, without the closing brace. */
static void event_head(struct buf *b,
                       const struct sync_request *req,
                       const char *action,
                       const char *state,
                       bool final)
{
        char at[48];
        status_now(at);
        buf_puts(b, "{\"event\":\"status\",\"request_id\":");
        if (req->request_id[0])
                buf_json_str(b, req->request_id);
        else
                buf_puts(b, "null");
        buf_printf(b, ",\"action\":\"%s\"", action);
        if (req->integration_id)
                buf_printf(b, ",\"integration_id\":%lld", req->integration_id);
        else
                buf_puts(b, ",\"integration_id\":null");
        if (req->unit_id)
                buf_printf(b, ",\"unit_id\":%lld", req->unit_id);
        else
                buf_puts(b, ",\"unit_id\":null");
        buf_printf(b, ",\"state\":\"%s\",\"final\":%s,\"at\":\"%s\"", state,
                   final ? "true" : "false", at);
}

static enum ss_err queue(PGconn *conn,
                         const char *kind,
                         const char *key,
                         const struct buf *payload,
                         const char *headers,
                         const char *request_id,
                         struct ss_error *err)
{
        const char *p[] = { kind, key, buf_str(payload), headers,
                            request_id && request_id[0] ? request_id : NULL };
        if (p[2] == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return db_exec(conn,
                       "INSERT INTO outbox (kind, msg_key, payload, headers, "
                       "request_id) VALUES ($1, $2, convert_to($3, 'UTF8'), "
                       "$4::jsonb, $5)",
                       5, p, err);
}

/* The DLQ copy keeps the original bytes, which may not be UTF-8: they go
 * in as bytea hex. */
static enum ss_err queue_raw(PGconn *conn,
                             const struct msg_view *msg,
                             const char *headers,
                             const char *request_id,
                             struct ss_error *err)
{
        static const char hex[] = "0123456789abcdef";
        struct buf h = BUF_INIT, key = BUF_INIT;
        buf_puts(&h, "\\x");
        const unsigned char *p = msg->payload;
        for (size_t i = 0; i < msg->len; i++) {
                char pair[2] = { hex[p[i] >> 4], hex[p[i] & 15] };
                buf_append(&h, pair, 2);
        }
        if (msg->key)
                buf_append(&key, msg->key, msg->key_len);
        const char *params[] = { msg->key ? buf_str(&key) : NULL, buf_str(&h),
                                 headers,
                                 request_id && request_id[0] ? request_id
                                                             : NULL };
        enum ss_err rc;
        if (params[1] == NULL || (msg->key && params[0] == NULL))
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        else
                rc = db_exec(conn,
                             "INSERT INTO outbox (kind, msg_key, payload, "
                             "headers, request_id) VALUES ('dlq', $1, "
                             "$2::bytea, $3::jsonb, $4)",
                             4, params, err);
        buf_free(&h);
        buf_free(&key);
        return rc;
}

enum ss_err status_begin(PGconn *conn,
                         const struct sync_request *req,
                         const struct msg_view *msg,
                         enum req_seen *seen,
                         struct ss_error *err)
{
        char integ[24], unit[24], part[16], off[24];
        snprintf(integ, sizeof(integ), "%lld", req->integration_id);
        snprintf(unit, sizeof(unit), "%lld", req->unit_id);
        snprintf(part, sizeof(part), "%d", (int)msg->partition);
        snprintf(off, sizeof(off), "%lld", (long long)msg->offset);
        const struct sync_options *o = &req->options;
        char opts[160];
        snprintf(opts, sizeof(opts),
                 "{\"force\":%s,\"bypass_guardrail\":%s,\"all\":%s,"
                 "\"dry_run\":%s}",
                 o->force ? "true" : "false",
                 o->bypass_guardrail ? "true" : "false",
                 o->all ? "true" : "false", o->dry_run ? "true" : "false");

        if (db_begin(conn, err) != SS_OK)
                return SS_ERR_DB;
        const char *idp[] = { req->request_id };
        const char *same[] = { req->request_id,
                               request_action_name(req->action), integ,
                               req->unit_id ? unit : NULL, opts };
        /* A known id must come with the same request: an id reused for
         * another action, integration, unit or options is a conflict, not
         * a duplicate to skip silently. */
        PGresult *res = db_query(
                conn,
                "SELECT state, action = $2 AND integration_id IS NOT "
                "DISTINCT FROM $3::bigint AND unit_id IS NOT DISTINCT FROM "
                "$4::bigint AND options = $5::jsonb FROM sync_requests "
                "WHERE request_id = $1 FOR UPDATE",
                5, same, err, NULL);
        if (res == NULL)
                goto fail;
        if (PQntuples(res) > 0) {
                const char *state = db_val(res, 0, 0);
                bool open = strcmp(state, "accepted") == 0 ||
                            strcmp(state, "running") == 0;
                bool identical = db_bool(res, 0, 1);
                PQclear(res);
                if (!identical) {
                        *seen = REQ_CONFLICT;
                        return db_commit(conn, err);
                }
                *seen = open ? REQ_RESUMED : REQ_DONE;
                if (open && db_exec(conn,
                                    "UPDATE sync_requests SET attempts = "
                                    "attempts + 1, updated_at = now() WHERE "
                                    "request_id = $1",
                                    1, idp, err) != SS_OK)
                        goto fail;
                return db_commit(conn, err);
        }
        PQclear(res);

        const char *p[] = { req->request_id,
                            request_action_name(req->action),
                            integ,
                            req->unit_id ? unit : NULL,
                            opts,
                            req->requested_by,
                            req->requested_at,
                            msg->topic,
                            part,
                            off };
        if (db_exec(conn,
                    "INSERT INTO sync_requests (request_id, action, "
                    "integration_id, unit_id, options, requested_by, "
                    "requested_at, state, kafka_topic, kafka_partition, "
                    "kafka_offset) VALUES ($1, $2, $3, $4, $5::jsonb, $6, "
                    "$7::timestamptz, 'accepted', $8, $9, $10)",
                    10, p, err) != SS_OK)
                goto fail;

        struct buf ev = BUF_INIT;
        event_head(&ev, req, request_action_name(req->action), "accepted",
                   false);
        buf_puts(&ev, ",\"counts\":null,\"error\":null,\"detail\":null}");
        enum ss_err rc = queue(conn, "status", req->request_id, &ev, NULL,
                               req->request_id, err);
        buf_free(&ev);
        if (rc != SS_OK)
                goto fail;
        *seen = REQ_NEW;
        return db_commit(conn, err);
fail:
        db_rollback(conn);
        return SS_ERR_DB;
}

enum ss_err status_progress(PGconn *conn,
                            const struct sync_request *req,
                            long long done,
                            long long total,
                            struct ss_error *err)
{
        struct buf ev = BUF_INIT;
        event_head(&ev, req, request_action_name(req->action), "running",
                   false);
        buf_printf(&ev,
                   ",\"progress\":{\"done\":%lld,\"total\":%lld},"
                   "\"counts\":null,\"error\":null,\"detail\":null}",
                   done, total);
        const char *idp[] = { req->request_id };
        enum ss_err rc = db_begin(conn, err);
        if (rc == SS_OK)
                rc = db_exec(conn,
                             "UPDATE sync_requests SET state = 'running', "
                             "updated_at = now() WHERE request_id = $1",
                             1, idp, err);
        if (rc == SS_OK)
                rc = queue(conn, "status", req->request_id, &ev, NULL,
                           req->request_id, err);
        if (rc == SS_OK)
                rc = db_commit(conn, err);
        else
                db_rollback(conn);
        buf_free(&ev);
        return rc;
}

static void counts_json(struct buf *b, const struct report *rep)
{
        buf_printf(b,
                   "{\"seen\":%lld,\"changed\":%lld,\"unchanged\":%lld,"
                   "\"skipped\":%lld,\"failed\":%lld}",
                   rep->seen, rep->changed, rep->unchanged, rep->skipped,
                   rep->failed);
}

static void error_json(struct buf *b, const struct ss_error *e)
{
        if (e->code == SS_OK) {
                buf_puts(b, "null");
                return;
        }
        buf_printf(b, "{\"code\":\"%s\",\"message\":", ss_err_name(e->code));
        buf_json_str(b, e->msg);
        buf_putc(b, '}');
}

enum ss_err status_finish(PGconn *conn,
                          const struct sync_request *req,
                          const struct report *rep,
                          struct ss_error *err)
{
        struct buf detail = BUF_INIT, ev = BUF_INIT;
        report_detail_json(rep, &detail);

        event_head(&ev, req, request_action_name(req->action), rep->state,
                   true);
        buf_puts(&ev, ",\"counts\":");
        counts_json(&ev, rep);
        buf_puts(&ev, ",\"error\":");
        error_json(&ev, &rep->error);
        buf_puts(&ev, ",\"detail\":");
        buf_puts(&ev, buf_str(&detail) ? buf_str(&detail) : "null");
        buf_putc(&ev, '}');

        char n[5][24];
        long long v[5] = { rep->seen, rep->changed, rep->unchanged,
                           rep->skipped, rep->failed };
        for (int i = 0; i < 5; i++)
                snprintf(n[i], sizeof(n[i]), "%lld", v[i]);
        const char *p[] = { req->request_id,
                            rep->state,
                            n[0],
                            n[1],
                            n[2],
                            n[3],
                            n[4],
                            rep->error.code ? ss_err_name(rep->error.code)
                                            : NULL,
                            rep->error.code ? rep->error.msg : NULL,
                            buf_str(&detail) };
        enum ss_err rc;
        if (p[9] == NULL || buf_str(&ev) == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        rc = db_exec(conn,
                     "UPDATE sync_requests SET state = $2, seen = $3, "
                     "changed = $4, unchanged = $5, skipped = $6, failed = "
                     "$7, error_code = $8, error_message = $9, detail = "
                     "$10::jsonb, updated_at = now(), finished_at = now() "
                     "WHERE request_id = $1",
                     10, p, err);
        if (rc == SS_OK)
                rc = queue(conn, "status", req->request_id, &ev, NULL,
                           req->request_id, err);
out:
        buf_free(&detail);
        buf_free(&ev);
        return rc;
}

enum ss_err status_reject(PGconn *conn,
                          const struct sync_request *req,
                          const struct msg_view *msg,
                          const struct ss_error *why,
                          struct ss_error *err)
{
        char part[16], off[24];
        snprintf(part, sizeof(part), "%d", (int)msg->partition);
        snprintf(off, sizeof(off), "%lld", (long long)msg->offset);
        const char *action = req->integration_id
                                     ? request_action_name(req->action)
                                     : "unknown";
        /* A message rejected before its fields were read carries only the
         * request id; report the rest as unknown. */
        struct sync_request shown = *req;
        if (why->code <= SS_ERR_KEY_MISMATCH) {
                shown.integration_id = 0;
                shown.unit_id = 0;
                action = "unknown";
        }

        struct buf ev = BUF_INIT, hdr = BUF_INIT;
        event_head(&ev, &shown, action, "rejected", true);
        buf_puts(&ev, ",\"counts\":null,\"error\":");
        error_json(&ev, why);
        buf_puts(&ev, ",\"source\":{\"topic\":");
        buf_json_str(&ev, msg->topic ? msg->topic : "");
        buf_printf(&ev, ",\"partition\":%s,\"offset\":%s},\"detail\":null}",
                   part, off);

        buf_printf(&hdr, "{\"error_code\":\"%s\",\"error_message\":",
                   ss_err_name(why->code));
        buf_json_str(&hdr, why->msg);
        buf_puts(&hdr, ",\"source_topic\":");
        buf_json_str(&hdr, msg->topic ? msg->topic : "");
        buf_printf(&hdr,
                   ",\"source_partition\":\"%s\",\"source_offset\":\"%s\"}",
                   part, off);

        char key[160];
        if (req->request_id[0])
                snprintf(key, sizeof(key), "%s", req->request_id);
        else
                snprintf(key, sizeof(key), "%s:%s:%s",
                         msg->topic ? msg->topic : "", part, off);

        enum ss_err rc = db_begin(conn, err);
        if (rc == SS_OK && req->request_id[0]) {
                const char *p[] = { req->request_id,
                                    action,
                                    ss_err_name(why->code),
                                    why->msg,
                                    msg->topic,
                                    part,
                                    off };
                /* A known id keeps its own record: this copy is refused,
                 * the original stands. */
                rc = db_exec(conn,
                             "INSERT INTO sync_requests (request_id, action, "
                             "state, error_code, error_message, kafka_topic, "
                             "kafka_partition, kafka_offset, finished_at) "
                             "VALUES ($1, $2, 'rejected', $3, $4, $5, $6, "
                             "$7, now()) ON CONFLICT (request_id) DO NOTHING",
                             7, p, err);
        }
        if (rc == SS_OK)
                rc = queue(conn, "status", key, &ev, NULL, req->request_id,
                           err);
        if (rc == SS_OK)
                rc = queue_raw(conn, msg, buf_str(&hdr), req->request_id, err);
        if (rc == SS_OK)
                rc = db_commit(conn, err);
        else
                db_rollback(conn);
        buf_free(&ev);
        buf_free(&hdr);
        return rc;
}
