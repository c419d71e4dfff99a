/* One request message, start to finish. The steps and why they are in
 * this order:
 *   1. validate; a malformed message is rejected (status event + DLQ copy)
 *      in one transaction, so its offset can be committed;
 *   2. take a session advisory lock on the integration, so two workers
 *      (a rebalance hands partitions over while the old owner may still
 *      run) never sync one store at once;
 *   3. record the request id; an id with a final state is a duplicate and
 *      changes nothing;
 *   4. refuse what the database says cannot run (unknown or inactive
 *      integration, a unit of another client, a platform without adapter);
 *   5. run the pull or push, which commits its outcome in one transaction.
 * Every step before 5 writes in its own short transaction; a crash between
 * them leaves a request that the next delivery resumes. */
#include "process.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../adapters/adapter.h"
#include "../common/db.h"
#include "../common/http.h"
#include "../common/json.h"
#include "../common/log.h"
#include "integration.h"
#include "report.h"
#include "request.h"
#include "status.h"
#include "sync.h"

struct processor {
        const struct config *cfg;
        PGconn *conn;
        struct http_client *http;
};

struct processor *processor_new(const struct config *cfg, struct ss_error *err)
{
        struct processor *p = calloc(1, sizeof(*p));
        if (p == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        p->cfg = cfg;
        struct http_policy pol;
        http_policy_default(&pol);
        pol.timeout_ms = (unsigned)cfg->http_timeout_ms;
        pol.max_attempts = (unsigned)cfg->http_max_attempts;
        p->http = http_client_new(&pol);
        if (p->http == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                processor_free(p);
                return NULL;
        }
        p->conn = db_connect(cfg->database_url, err);
        if (p->conn == NULL) {
                processor_free(p);
                return NULL;
        }
        return p;
}

void processor_free(struct processor *p)
{
        if (p == NULL)
                return;
        if (p->conn)
                PQfinish(p->conn);
        http_client_free(p->http);
        free(p);
}

static enum ss_err
advisory(PGconn *conn, long long integration, bool lock, struct ss_error *err)
{
        char id[24];
        snprintf(id, sizeof(id), "%lld", integration);
        const char *p[] = { id };
        /* Two-key form: 7301 keeps stocksync's locks apart from any other
         * user of advisory locks on the same database. */
        return db_exec(conn,
                       lock ? "SELECT pg_advisory_lock(7301, "
                              "($1::bigint % 2147483647)::int)"
                            : "SELECT pg_advisory_unlock(7301, "
                              "($1::bigint % 2147483647)::int)",
                       1, p, err);
}

/* Ends a recorded request before any store access, in state `state`
 * (rejected: the request cannot run; failed: its integration is
 * misconfigured) with why as its error. */
static enum ss_err end_early(struct processor *p,
                             const struct sync_request *req,
                             const char *state,
                             const struct ss_error *why,
                             struct ss_error *err)
{
        struct report rep;
        report_init(&rep);
        rep.state = state;
        rep.error = *why;
        enum ss_err rc = db_begin(p->conn, err);
        if (rc == SS_OK)
                rc = status_finish(p->conn, req, &rep, err);
        if (rc == SS_OK)
                rc = db_commit(p->conn, err);
        if (rc != SS_OK)
                db_rollback(p->conn);
        report_free(&rep);
        return rc;
}

static enum ss_err refuse(struct processor *p,
                          const struct sync_request *req,
                          const struct ss_error *why,
                          struct ss_error *err)
{
        return end_early(p, req, "rejected", why, err);
}

static enum ss_err fail(struct processor *p,
                        const struct sync_request *req,
                        const struct ss_error *why,
                        struct ss_error *err)
{
        return end_early(p, req, "failed", why, err);
}

/* Checks that the unit exists and belongs to the integration's client. */
static enum ss_err check_unit(PGconn *conn,
                              const struct sync_request *req,
                              const struct integration *it,
                              struct ss_error *why,
                              struct ss_error *err)
{
        char id[24];
        snprintf(id, sizeof(id), "%lld", req->unit_id);
        const char *prm[] = { id };
        PGresult *r = db_query(conn,
                               "SELECT client_id FROM inventory_units WHERE "
                               "id = $1",
                               1, prm, err, NULL);
        if (r == NULL)
                return SS_ERR_DB;
        enum ss_err rc = SS_OK;
        if (PQntuples(r) == 0)
                rc = ss_error_set(why, SS_ERR_UNKNOWN_UNIT,
                                  "inventory unit %lld does not exist",
                                  req->unit_id);
        else if (db_ll(r, 0, 0, 0) != it->client_id)
                /* Same words as an unknown unit would not do: the caller
                 * must learn the pairing is wrong, not which client owns
                 * the unit. */
                rc = ss_error_set(why, SS_ERR_UNIT_OTHER_CLIENT,
                                  "inventory unit %lld does not belong to "
                                  "the client of integration %lld",
                                  req->unit_id, it->id);
        PQclear(r);
        return rc;
}

/* Steps 4 and 5 for a recorded request. */
static enum ss_err
run(struct processor *p, const struct sync_request *req, struct ss_error *err)
{
        struct integration it;
        struct ss_error why = { 0 };
        enum ss_err rc =
                integration_load(p->conn, req->integration_id, &it, &why);
        if (rc == SS_ERR_DB) {
                *err = why;
                return SS_ERR_DB;
        }
        if (rc != SS_OK)
                return refuse(p, req, &why, err);

        log_ctx_set(req->request_id, it.platform, it.id);
        const struct adapter_ops *ops = adapter_find(it.platform);
        yajl_val creds = NULL;
        struct adapter *ad = NULL;
        if (!it.active) {
                ss_error_set(&why, SS_ERR_INTEGRATION_INACTIVE,
                             "integration %lld is not active", it.id);
                rc = refuse(p, req, &why, err);
                goto out;
        }
        if (ops == NULL) {
                ss_error_set(&why, SS_ERR_NO_ADAPTER,
                             "no adapter for platform '%s'", it.platform);
                rc = refuse(p, req, &why, err);
                goto out;
        }
        if (req->unit_id != 0) {
                rc = check_unit(p->conn, req, &it, &why, err);
                if (rc == SS_ERR_DB)
                        goto out;
                if (rc != SS_OK) {
                        rc = refuse(p, req, &why, err);
                        goto out;
                }
        }

        creds = json_parse(it.credentials, strlen(it.credentials), &why);
        if (creds == NULL || !YAJL_IS_OBJECT(creds)) {
                /* Never quote the credentials themselves. */
                ss_error_set(&why, SS_ERR_CONFIG,
                             "integration %lld: credentials are not a JSON "
                             "object",
                             it.id);
                rc = fail(p, req, &why, err);
                goto out;
        }
        struct adapter_config acfg = {
                .store_url = it.store_url,
                .credentials = creds,
                .location_id = it.store_location_id,
                .request_id = req->request_id,
                .batch_size = it.batch_size,
                .page_size = it.page_size,
        };
        if (ops->open(&acfg, p->http, &ad, &why) != SS_OK) {
                rc = fail(p, req, &why, err);
                goto out;
        }

        struct report rep;
        report_init(&rep);
        struct sync_ctx ctx = { .conn = p->conn,
                                .cfg = p->cfg,
                                .req = req,
                                .integ = &it,
                                .ops = ops,
                                .adapter = ad,
                                .rep = &rep };
        rc = req->action == ACTION_PULL ? sync_pull(&ctx, err)
                                        : sync_push(&ctx, err);
        if (rc == SS_OK) {
                struct log_line l;
                log_begin(&l, LOG_INFO, "request_done");
                log_kv(&l, "action", request_action_name(req->action));
                log_kv(&l, "outcome", rep.state);
                log_kvi(&l, "seen", rep.seen);
                log_kvi(&l, "changed", rep.changed);
                log_kvi(&l, "unchanged", rep.unchanged);
                log_kvi(&l, "skipped", rep.skipped);
                log_kvi(&l, "failed", rep.failed);
                if (rep.error.code != SS_OK)
                        log_err(&l, &rep.error);
                log_end(&l);
        }
        report_free(&rep);
out:
        if (ad != NULL)
                ops->close(ad);
        if (creds != NULL)
                yajl_tree_free(creds);
        integration_free(&it);
        return rc;
}

enum ss_err processor_handle(struct processor *p,
                             const struct msg_view *msg,
                             struct ss_error *err)
{
        if (!db_ensure(p->conn))
                return ss_error_set(err, SS_ERR_DB, "database unreachable: %s",
                                    PQerrorMessage(p->conn));

        struct sync_request req;
        struct ss_error why = { 0 };
        /* A message without a key is checked as an empty key: it would
         * land on any partition and lose the integration's ordering. */
        if (request_parse(msg->payload, msg->len, msg->key ? msg->key : "",
                          msg->key_len, (size_t)p->cfg->max_message_bytes, &req,
                          &why) != SS_OK) {
                struct log_line l;
                log_begin(&l, LOG_WARN, "request_rejected");
                log_kv(&l, "topic", msg->topic);
                log_kvi(&l, "partition", msg->partition);
                log_kvi(&l, "offset", msg->offset);
                if (req.request_id[0])
                        log_kv(&l, "req", req.request_id);
                log_err(&l, &why);
                log_end(&l);
                return status_reject(p->conn, &req, msg, &why, err) == SS_OK
                               ? SS_OK
                               : SS_ERR_DB;
        }

        log_ctx_set(req.request_id, NULL, req.integration_id);
        enum ss_err rc = advisory(p->conn, req.integration_id, true, err);
        if (rc != SS_OK) {
                log_ctx_clear();
                return SS_ERR_DB;
        }
        enum req_seen seen;
        rc = status_begin(p->conn, &req, msg, &seen, err);
        if (rc == SS_OK && seen == REQ_DONE) {
                log_msg(LOG_INFO, "request_duplicate",
                        "partition=%d offset=%lld", (int)msg->partition,
                        (long long)msg->offset);
        } else if (rc == SS_OK && seen == REQ_CONFLICT) {
                /* The first request with this id keeps its record; this
                 * message is refused to the DLQ with its own event. */
                ss_error_set(&why, SS_ERR_DUPLICATE_REQUEST,
                             "request id %s was already used for a "
                             "different request; request ids must be unique",
                             req.request_id);
                struct log_line l;
                log_begin(&l, LOG_WARN, "request_rejected");
                log_kvi(&l, "partition", msg->partition);
                log_kvi(&l, "offset", msg->offset);
                log_err(&l, &why);
                log_end(&l);
                rc = status_reject(p->conn, &req, msg, &why, err);
        } else if (rc == SS_OK) {
                if (seen == REQ_RESUMED)
                        log_msg(LOG_INFO, "request_resumed",
                                "partition=%d offset=%lld", (int)msg->partition,
                                (long long)msg->offset);
                rc = run(p, &req, err);
        }
        struct ss_error uerr;
        if (advisory(p->conn, req.integration_id, false, &uerr) != SS_OK)
                /* Ending the session releases the lock; a fresh one is
                 * made on the next message. */
                PQreset(p->conn);
        log_ctx_clear();
        return rc == SS_OK ? SS_OK : SS_ERR_DB;
}
