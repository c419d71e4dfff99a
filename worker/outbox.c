/* The outbox publisher thread. */
#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/db.h"
#include "../common/kafka.h"
#include "../common/log.h"

/* Longest pause between rounds while nothing can be delivered or the
 * database is down. */
#define BACKOFF_MAX_MS 10000

/* One row per outbox row and header (LEFT JOIN), so a row's headers come
 * right after it. jsonb_each_text gives every header value as text; a
 * headers value that is not an object is ignored. */
static const char CLAIM_SQL[] =
        "WITH claimed AS ("
        " SELECT id, kind, msg_key, payload, headers, movement_id,"
        "        request_id, attempts"
        "   FROM outbox WHERE sent_at IS NULL"
        "  ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " SELECT c.id, c.kind, c.msg_key, c.payload, c.movement_id,"
        "        c.request_id, c.attempts, h.key, h.value"
        "   FROM claimed c LEFT JOIN LATERAL jsonb_each_text("
        "        CASE WHEN jsonb_typeof(c.headers) = 'object'"
        "             THEN c.headers END) h ON true"
        "  ORDER BY c.id, h.key";

enum {
        COL_ID,
        COL_KIND,
        COL_KEY,
        COL_PAYLOAD,
        COL_MOVEMENT,
        COL_REQ,
        COL_ATTEMPTS,
        COL_HKEY,
        COL_HVAL
};

struct row {
        long long id;
        const char *kind;  /* borrowed from the claim result */
        const char *topic; /* borrowed from cfg */
        const char *key;   /* borrowed from the claim result, may be NULL */
        const char *movement_id; /* borrowed, may be NULL */
        const char *request_id;  /* borrowed, may be NULL */
        long long attempts;
        unsigned char *payload; /* owned (PQfreemem) */
        size_t len;
        rd_kafka_headers_t *hdrs; /* owned until produced */
        rd_kafka_resp_err_t err;
        bool pending; /* produced, delivery report not yet seen */
};

struct outbox {
        const struct config *cfg; /* borrowed */
        rd_kafka_t *rk;           /* owned */
        PGconn *conn;             /* owned; used by the thread only */
        pthread_t th;
        bool started;
        int wake[2]; /* self-pipe: outbox_stop() wakes the thread */
        atomic_bool stopping;
        _Atomic int64_t drain_until; /* monotonic ms; set before stopping */
        size_t outstanding;          /* delivery reports awaited */
        int64_t last_conn_log;
        pthread_mutex_t mu; /* guards stats */
        struct outbox_stats stats;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
count(struct outbox *o, unsigned long long *field, unsigned long long n)
{
        pthread_mutex_lock(&o->mu);
        *field += n;
        pthread_mutex_unlock(&o->mu);
}

/* Runs inside rd_kafka_poll() on the publisher thread. */
static void
delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        (void)rk;
        struct outbox *o = opaque;
        struct row *r = msg->_private;
        r->err = msg->err;
        r->pending = false;
        o->outstanding--;
}

static rd_kafka_t *producer_new(struct outbox *o, struct ss_error *err)
{
        rd_kafka_conf_t *conf = kafka_conf_new(o->cfg, err);
        if (conf == NULL)
                return NULL;
        rd_kafka_conf_set_dr_msg_cb(conf, delivered);
        rd_kafka_conf_set_opaque(conf, o);
        return kafka_producer_new(conf, err);
}

struct outbox *outbox_new(const struct config *cfg, struct ss_error *err)
{
        struct outbox *o = calloc(1, sizeof(*o));
        if (o == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        o->cfg = cfg;
        o->wake[0] = o->wake[1] = -1;
        atomic_init(&o->stopping, false);
        atomic_init(&o->drain_until, 0);
        if (pthread_mutex_init(&o->mu, NULL) != 0) {
                free(o);
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (pipe2(o->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
                ss_error_set(err, SS_ERR_INTERNAL, "pipe: %s", strerror(errno));
                goto fail;
        }
        o->rk = producer_new(o, err);
        if (o->rk == NULL)
                goto fail;
        return o;
fail:
        outbox_free(o);
        return NULL;
}

static const char *topic_of(const struct config *cfg, const char *kind)
{
        if (strcmp(kind, "movement") == 0)
                return cfg->topic_movements;
        if (strcmp(kind, "status") == 0)
                return cfg->topic_status;
        if (strcmp(kind, "dlq") == 0)
                return cfg->topic_dlq;
        return NULL;
}

static void rows_free(struct row *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                PQfreemem(v[i].payload);
                if (v[i].hdrs)
                        rd_kafka_headers_destroy(v[i].hdrs);
        }
        free(v);
}

/* Turns the claim result into one struct row per outbox row. Returns the
 * number of rows, or (size_t)-1 when out of memory. */
static size_t rows_load(struct outbox *o, const PGresult *res, struct row **out)
{
        int nt = PQntuples(res);
        struct row *v = calloc(nt > 0 ? (size_t)nt : 1, sizeof(*v));
        size_t n = 0;
        if (v == NULL)
                return (size_t)-1;
        for (int i = 0; i < nt; i++) {
                long long id = db_ll(res, i, COL_ID, 0);
                if (n == 0 || v[n - 1].id != id) {
                        struct row *r = &v[n++];
                        r->id = id;
                        r->kind = db_val(res, i, COL_KIND);
                        r->topic = topic_of(o->cfg, r->kind);
                        r->key = db_val(res, i, COL_KEY);
                        r->movement_id = db_val(res, i, COL_MOVEMENT);
                        r->request_id = db_val(res, i, COL_REQ);
                        r->attempts = db_ll(res, i, COL_ATTEMPTS, 0);
                        r->payload = PQunescapeBytea(
                                (const unsigned char *)PQgetvalue(res, i,
                                                                  COL_PAYLOAD),
                                &r->len);
                        if (r->payload == NULL)
                                goto nomem;
                }
                const char *hk = db_val(res, i, COL_HKEY);
                if (hk == NULL)
                        continue;
                struct row *r = &v[n - 1];
                if (r->hdrs == NULL)
                        r->hdrs = rd_kafka_headers_new(4);
                const char *hv = db_val(res, i, COL_HVAL);
                rd_kafka_header_add(r->hdrs, hk, -1, hv, hv ? -1 : 0);
        }
        *out = v;
        return n;
nomem:
        rows_free(v, n);
        return (size_t)-1;
}

static void produce(struct outbox *o, struct row *r)
{
        if (r->topic == NULL) {
                r->err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                return;
        }
        rd_kafka_resp_err_t e;
        for (;;) {
                /* The message owns the headers once producev succeeds. */
                e = rd_kafka_producev(
                        o->rk, RD_KAFKA_V_TOPIC(r->topic),
                        RD_KAFKA_V_KEY(r->key, r->key ? strlen(r->key) : 0),
                        RD_KAFKA_V_VALUE(r->payload, r->len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_HEADERS(r->hdrs), RD_KAFKA_V_OPAQUE(r),
                        RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(o->rk, 100);
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                r->err = e;
                return;
        }
        r->hdrs = NULL;
        r->pending = true;
        o->outstanding++;
}

/* Waits for every delivery report. librdkafka reports each message by
 * message.timeout.ms at the latest; once a stop's drain time is over, what
 * is left is purged so it comes back as failed at once. */
static void await_reports(struct outbox *o)
{
        bool purged = false;
        while (o->outstanding > 0) {
                rd_kafka_poll(o->rk, 100);
                if (!purged && atomic_load(&o->stopping) &&
                    now_ms() >= atomic_load(&o->drain_until)) {
                        rd_kafka_purge(o->rk,
                                       RD_KAFKA_PURGE_F_QUEUE |
                                               RD_KAFKA_PURGE_F_INFLIGHT);
                        purged = true;
                }
        }
}

static void log_failure(const struct row *r)
{
        struct log_line l;
        log_begin(&l, LOG_WARN, "outbox_delivery_failed");
        log_kvi(&l, "outbox_id", r->id);
        log_kv(&l, "kind", r->kind);
        log_kv(&l, "topic", r->topic ? r->topic : "");
        if (r->movement_id)
                log_kv(&l, "movement_id", r->movement_id);
        if (r->request_id)
                log_kv(&l, "request", r->request_id);
        log_kvi(&l, "attempts", r->attempts + 1);
        log_kv(&l, "code", ss_err_name(SS_ERR_KAFKA));
        log_kv(&l, "msg", rd_kafka_err2str(r->err));
        log_end(&l);
}

/* Records the outcome of every row of the batch; the caller commits. */
static enum ss_err mark(struct outbox *o,
                        const struct row *v,
                        size_t n,
                        size_t *sent,
                        size_t *failed,
                        struct ss_error *err)
{
        struct buf ok = BUF_INIT, bad = BUF_INIT, why = BUF_INIT;
        enum ss_err rc = SS_OK;
        *sent = *failed = 0;
        db_array_begin(&ok);
        db_array_begin(&bad);
        db_array_begin(&why);
        for (size_t i = 0; i < n; i++) {
                if (v[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                        db_array_ll(&ok, v[i].id);
                        (*sent)++;
                        continue;
                }
                log_failure(&v[i]);
                db_array_ll(&bad, v[i].id);
                db_array_text(&why, v[i].topic ? rd_kafka_err2str(v[i].err)
                                               : "unknown outbox kind");
                (*failed)++;
        }
        db_array_end(&ok);
        db_array_end(&bad);
        db_array_end(&why);
        if (buf_str(&ok) == NULL || buf_str(&bad) == NULL ||
            buf_str(&why) == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        if (*sent > 0) {
                const char *p[] = { buf_str(&ok) };
                rc = db_exec(o->conn,
                             "UPDATE outbox SET sent_at = now()"
                             " WHERE id = ANY($1::bigint[])",
                             1, p, err);
                if (rc != SS_OK)
                        goto out;
        }
        if (*failed > 0) {
                const char *p[] = { buf_str(&bad), buf_str(&why) };
                rc = db_exec(o->conn,
                             "UPDATE outbox o SET attempts = o.attempts + 1,"
                             " last_error = f.e"
                             " FROM unnest($1::bigint[], $2::text[])"
                             " AS f(id, e) WHERE o.id = f.id",
                             2, p, err);
        }
out:
        buf_free(&ok);
        buf_free(&bad);
        buf_free(&why);
        return rc;
}

/* One claim-produce-mark round. *rows is how many rows were claimed. */
static enum ss_err publish_round(struct outbox *o,
                                 size_t *rows,
                                 size_t *sent,
                                 size_t *failed,
                                 struct ss_error *err)
{
        PGresult *res = NULL;
        struct row *v = NULL;
        size_t n = 0;
        int64_t start = now_ms();
        *rows = *sent = *failed = 0;

        enum ss_err rc = db_begin(o->conn, err);
        if (rc != SS_OK)
                goto out;
        char batch[24];
        snprintf(batch, sizeof(batch), "%ld", o->cfg->outbox_batch);
        const char *p[] = { batch };
        res = db_query(o->conn, CLAIM_SQL, 1, p, err, NULL);
        if (res == NULL) {
                rc = SS_ERR_DB;
                goto out;
        }
        n = rows_load(o, res, &v);
        if (n == (size_t)-1) {
                n = 0;
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        *rows = n;
        if (n == 0)
                goto out;

        for (size_t i = 0; i < n; i++)
                produce(o, &v[i]);
        await_reports(o);

        rc = mark(o, v, n, sent, failed, err);
        if (rc == SS_OK)
                rc = db_commit(o->conn, err);
        if (rc != SS_OK)
                *sent = 0; /* rolled back: they go out again */

        struct log_line l;
        log_begin(&l, LOG_DEBUG, "outbox_batch");
        log_kvi(&l, "rows", (long long)n);
        log_kvi(&l, "sent", (long long)*sent);
        log_kvi(&l, "failed", (long long)*failed);
        log_kvi(&l, "dur_ms", now_ms() - start);
        log_end(&l);
out:
        if (rc != SS_OK)
                db_rollback(o->conn);
        else if (n == 0)
                /* Nothing claimed: end the read-only transaction. */
                rc = db_commit(o->conn, err);
        rows_free(v, n);
        PQclear(res);
        return rc;
}

static bool connected(struct outbox *o)
{
        if (o->conn != NULL && PQstatus(o->conn) == CONNECTION_OK)
                return true;
        if (o->conn != NULL) {
                PQfinish(o->conn);
                o->conn = NULL;
        }

        struct ss_error err = { 0 };
        o->conn = db_connect(o->cfg->database_url, &err);
        if (o->conn != NULL && db_exec(o->conn, "LISTEN " OUTBOX_CHANNEL, 0,
                                       NULL, &err) == SS_OK) {
                log_msg(LOG_INFO, "outbox_connected", "channel=%s",
                        OUTBOX_CHANNEL);
                return true;
        }
        if (o->conn != NULL) {
                PQfinish(o->conn);
                o->conn = NULL;
        }
        /* While the database is down, one line per 30 s is enough. */
        if (now_ms() - o->last_conn_log >= 30000 || o->last_conn_log == 0) {
                struct log_line l;
                log_begin(&l, LOG_WARN, "outbox_db_unavailable");
                log_err(&l, &err);
                log_end(&l);
                o->last_conn_log = now_ms();
        }
        return false;
}

/* Returns true when a notification is already waiting. */
static bool drain_notifies(struct outbox *o)
{
        bool any = false;
        if (o->conn == NULL)
                return false;
        if (!PQconsumeInput(o->conn))
                return false; /* the next connected() notices */
        PGnotify *nt;
        while ((nt = PQnotifies(o->conn)) != NULL) {
                any = true;
                PQfreemem(nt);
        }
        return any;
}

/* Sleeps up to ms, waking on a NOTIFY or on outbox_stop(). */
static void wait_for_work(struct outbox *o, int64_t ms)
{
        if (drain_notifies(o))
                return;
        struct pollfd fds[2] = { { o->wake[0], POLLIN, 0 },
                                 { o->conn ? PQsocket(o->conn) : -1, POLLIN,
                                   0 } };
        if (atomic_load(&o->stopping))
                return;
        int rc = poll(fds, fds[1].fd >= 0 ? 2 : 1, (int)ms);
        if (rc <= 0)
                return;
        if (fds[0].revents) {
                char b[64];
                while (read(o->wake[0], b, sizeof(b)) > 0)
                        ;
        }
        if (fds[1].revents)
                drain_notifies(o);
}

/* A fatal idempotence error leaves the producer unusable; rows of the
 * failed batch are still pending, so a new producer simply resends. */
static void check_fatal(struct outbox *o)
{
        char why[512];
        if (rd_kafka_fatal_error(o->rk, why, sizeof(why)) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
                return;
        struct log_line l;
        log_begin(&l, LOG_ERROR, "outbox_producer_fatal");
        log_kv(&l, "code", ss_err_name(SS_ERR_KAFKA));
        log_kv(&l, "msg", why);
        log_end(&l);

        struct ss_error err = { 0 };
        rd_kafka_t *rk = producer_new(o, &err);
        if (rk == NULL) {
                log_begin(&l, LOG_ERROR, "outbox_producer_recreate_failed");
                log_err(&l, &err);
                log_end(&l);
                return;
        }
        rd_kafka_destroy(o->rk);
        o->rk = rk;
}

/* Runs one round and keeps the counters. Returns the pause before the
 * next round: 0 after a full batch, the poll interval when idle, a
 * growing backoff while nothing can be delivered or the database fails. */
static int64_t step(struct outbox *o, int64_t *backoff)
{
        size_t rows, sent, failed;
        struct ss_error err = { 0 };
        int64_t interval = o->cfg->outbox_interval_ms;

        if (!connected(o))
                goto slow;
        enum ss_err rc = publish_round(o, &rows, &sent, &failed, &err);
        count(o, &o->stats.rounds, 1);
        count(o, &o->stats.published, sent);
        count(o, &o->stats.failed, failed);
        check_fatal(o);
        if (rc != SS_OK) {
                count(o, &o->stats.db_errors, 1);
                struct log_line l;
                log_begin(&l, LOG_WARN, "outbox_round_failed");
                log_err(&l, &err);
                log_end(&l);
                goto slow;
        }
        if (failed > 0 && sent == 0)
                goto slow;
        *backoff = interval;
        return rows >= (size_t)o->cfg->outbox_batch ? 0 : interval;
slow:
        *backoff =
                *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff * 2;
        return *backoff;
}

static void *publisher_main(void *arg)
{
        struct outbox *o = arg;
        pthread_setname_np(pthread_self(), "ss-outbox");
        int64_t backoff = o->cfg->outbox_interval_ms;

        while (!atomic_load(&o->stopping)) {
                int64_t pause = step(o, &backoff);
                if (pause > 0)
                        wait_for_work(o, pause);
        }

        /* Final drain: what the last requests wrote goes out before the
         * process ends, within the time allowed. */
        while (now_ms() < atomic_load(&o->drain_until)) {
                size_t rows, sent, failed;
                struct ss_error err = { 0 };
                if (!connected(o) ||
                    publish_round(o, &rows, &sent, &failed, &err) != SS_OK)
                        break;
                count(o, &o->stats.rounds, 1);
                count(o, &o->stats.published, sent);
                count(o, &o->stats.failed, failed);
                if (rows < (size_t)o->cfg->outbox_batch || failed > 0)
                        break;
        }
        return NULL;
}

enum ss_err outbox_start(struct outbox *o, struct ss_error *err)
{
        int rc = pthread_create(&o->th, NULL, publisher_main, o);
        if (rc != 0)
                return ss_error_set(err, SS_ERR_INTERNAL,
                                    "cannot start outbox thread: %s",
                                    strerror(rc));
        o->started = true;
        return SS_OK;
}

void outbox_stop(struct outbox *o, int drain_ms)
{
        if (!o->started)
                return;
        atomic_store(&o->drain_until, now_ms() + drain_ms);
        atomic_store(&o->stopping, true);
        ssize_t w = write(o->wake[1], "x", 1);
        (void)w; /* a full pipe already wakes the thread */
        pthread_join(o->th, NULL);
        o->started = false;

        /* Every batch waited for its reports; this only serves leftovers
         * such as a purge's callbacks. */
        rd_kafka_flush(o->rk, 1000);
}

void outbox_stats(struct outbox *o, struct outbox_stats *out)
{
        pthread_mutex_lock(&o->mu);
        *out = o->stats;
        pthread_mutex_unlock(&o->mu);
}

void outbox_free(struct outbox *o)
{
        if (o == NULL)
                return;
        outbox_stop(o, 0);
        if (o->rk != NULL) {
                struct outbox_stats s;
                outbox_stats(o, &s);
                log_msg(LOG_INFO, "outbox_stopped",
                        "rounds=%llu published=%llu failed=%llu "
                        "db_errors=%llu",
                        s.rounds, s.published, s.failed, s.db_errors);
                rd_kafka_destroy(o->rk);
        }
        if (o->conn != NULL)
                PQfinish(o->conn);
        for (int i = 0; i < 2; i++)
                if (o->wake[i] >= 0)
                        close(o->wake[i]);
        pthread_mutex_destroy(&o->mu);
        free(o);
}
