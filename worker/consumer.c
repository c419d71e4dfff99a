/* Consumer loop, flow control, commits and rebalances. */
#include "consumer.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/kafka.h"
#include "../common/log.h"
#include "dispatch.h"
#include "offsets.h"

/* Messages waiting per dispatch thread. Requests take seconds (store
 * round trips), so a short queue is plenty and keeps a revoke quick. */
#define QUEUE_CAP 16
/* How often finished work is committed while running. */
#define COMMIT_EVERY_MS 200
/* While a revoke waits for running requests, one line this often. */
#define REVOKE_LOG_EVERY_MS 5000

struct consumer {
        const struct config *cfg; /* borrowed */
        struct offsets *t;        /* owned */
        struct dispatch *d;       /* owned */
        rd_kafka_t *rk;           /* owned */
        /* Polled messages that did not fit their dispatch queue, oldest
         * first; their partitions are paused until these are queued. */
        rd_kafka_message_t **held; /* owned, messages owned */
        size_t nheld, capheld;
        rd_kafka_topic_partition_list_t *paused; /* owned */
        int64_t last_commit;
        bool closed;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_parts(enum log_level level,
                      const char *event,
                      const rd_kafka_topic_partition_list_t *parts,
                      bool with_offsets,
                      rd_kafka_resp_err_t e)
{
        struct log_line l;
        log_begin(&l, level, event);
        if (!l.on)
                return;
        struct buf b = BUF_INIT;
        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *p = &parts->elems[i];
                buf_printf(&b, "%s%s[%d]", i ? "," : "", p->topic,
                           (int)p->partition);
                if (with_offsets)
                        buf_printf(&b, "@%lld", (long long)p->offset);
        }
        log_kv(&l, "partitions", buf_str(&b) ? buf_str(&b) : "");
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                log_kv(&l, "code", ss_err_name(SS_ERR_KAFKA));
                log_kv(&l, "msg", rd_kafka_err2str(e));
        }
        log_end(&l);
        buf_free(&b);
}

/* Commits the watermarks of `only` (all partitions when NULL) that moved
 * since the last commit, or every one when `all` is set. Async commits are
 * recorded at once and undone by on_commit() if refused; since that report
 * may not have been served yet, a final commit passes `all`. */
static void commit(struct consumer *c,
                   const rd_kafka_topic_partition_list_t *only,
                   bool sync,
                   bool all)
{
        rd_kafka_topic_partition_list_t *due = offsets_due(c->t, only, all);
        if (due == NULL || due->cnt == 0) {
                if (due)
                        rd_kafka_topic_partition_list_destroy(due);
                return;
        }
        offsets_committed(c->t, due);
        rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, due, sync ? 0 : 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                for (int i = 0; i < due->cnt; i++)
                        due->elems[i].err = e;
                offsets_commit_failed(c->t, due);
                log_parts(LOG_WARN, "commit_failed", due, true, e);
        } else {
                log_parts(sync ? LOG_INFO : LOG_DEBUG, "offsets_committed", due,
                          true, e);
        }
        rd_kafka_topic_partition_list_destroy(due);
}

/* Result of every commit, served by rd_kafka_consumer_poll(). */
static void on_commit(rd_kafka_t *rk,
                      rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *offsets,
                      void *opaque)
{
        (void)rk;
        struct consumer *c = opaque;
        if (e == RD_KAFKA_RESP_ERR__NO_OFFSET || offsets == NULL)
                return;
        bool failed = e != RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; i < offsets->cnt; i++) {
                if (failed && offsets->elems[i].err == 0)
                        offsets->elems[i].err = e;
                if (offsets->elems[i].err != 0) {
                        failed = true;
                        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                                e = offsets->elems[i].err;
                }
        }
        if (!failed)
                return;
        /* Harmless: the watermark is offered again on the next round, and
         * a redelivered request is recognised by its id. */
        offsets_commit_failed(c->t, offsets);
        log_parts(LOG_WARN, "commit_refused", offsets, true, e);
}

static bool
same(const rd_kafka_message_t *msg, const char *topic, int32_t partition)
{
        return msg->partition == partition &&
               strcmp(rd_kafka_topic_name(msg->rkt), topic) == 0;
}

static bool in_list(const rd_kafka_topic_partition_list_t *l,
                    const char *topic,
                    int32_t partition)
{
        return rd_kafka_topic_partition_list_find(l, topic, partition) != NULL;
}

static void
set_paused(struct consumer *c, const char *topic, int32_t partition, bool pause)
{
        if (pause == in_list(c->paused, topic, partition))
                return;
        rd_kafka_topic_partition_list_t *one =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, topic, partition);
        rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(c->rk, one)
                                      : rd_kafka_resume_partitions(c->rk, one);
        log_parts(e ? LOG_WARN : LOG_DEBUG,
                  pause ? "partition_paused" : "partition_resumed", one, false,
                  e);
        rd_kafka_topic_partition_list_destroy(one);
        if (pause)
                rd_kafka_topic_partition_list_add(c->paused, topic, partition);
        else
                rd_kafka_topic_partition_list_del(c->paused, topic, partition);
}

/* Queues msg behind the held ones and pauses its partition. Returns false
 * when out of memory. */
static bool hold(struct consumer *c, rd_kafka_message_t *msg)
{
        if (c->nheld == c->capheld) {
                size_t cap = c->capheld ? c->capheld * 2 : 16;
                rd_kafka_message_t **nv = realloc(c->held, cap * sizeof(*nv));
                if (nv == NULL)
                        return false;
                c->held = nv;
                c->capheld = cap;
        }
        c->held[c->nheld++] = msg;
        set_paused(c, rd_kafka_topic_name(msg->rkt), msg->partition, true);
        return true;
}

/* Queues held messages whose thread has room again, keeping each
 * partition's order, and resumes partitions with nothing left held. Held
 * messages go in only below half a queue, so a partition is not paused
 * and resumed on every message. */
static void flush_held(struct consumer *c)
{
        if (c->nheld == 0 && c->paused->cnt == 0)
                return;
        size_t limit = dispatch_queue_cap(c->d) / 2;
        rd_kafka_topic_partition_list_t *blocked =
                rd_kafka_topic_partition_list_new(4);
        size_t kept = 0;
        for (size_t i = 0; i < c->nheld; i++) {
                rd_kafka_message_t *msg = c->held[i];
                const char *topic = rd_kafka_topic_name(msg->rkt);
                if (in_list(blocked, topic, msg->partition) ||
                    !dispatch_try_submit(c->d, msg, limit ? limit : 1)) {
                        c->held[kept++] = msg;
                        if (!in_list(blocked, topic, msg->partition))
                                rd_kafka_topic_partition_list_add(
                                        blocked, topic, msg->partition);
                }
        }
        c->nheld = kept;

        for (int i = c->paused->cnt - 1; i >= 0; i--) {
                const rd_kafka_topic_partition_t *p = &c->paused->elems[i];
                if (!in_list(blocked, p->topic, p->partition))
                        set_paused(c, p->topic, p->partition, false);
        }
        rd_kafka_topic_partition_list_destroy(blocked);
}

static bool
held_has(const struct consumer *c, const char *topic, int32_t partition)
{
        for (size_t i = 0; i < c->nheld; i++)
                if (same(c->held[i], topic, partition))
                        return true;
        return false;
}

/* Drops held messages of the listed partitions (all when NULL): they were
 * never started, so they are abandoned and come again to the next owner. */
static void drop_held(struct consumer *c,
                      const rd_kafka_topic_partition_list_t *parts)
{
        size_t kept = 0;
        for (size_t i = 0; i < c->nheld; i++) {
                rd_kafka_message_t *msg = c->held[i];
                const char *topic = rd_kafka_topic_name(msg->rkt);
                if (parts != NULL && !in_list(parts, topic, msg->partition)) {
                        c->held[kept++] = msg;
                        continue;
                }
                if (offsets_abandon(c->t, topic, msg->partition, msg->offset) !=
                    SS_OK)
                        log_msg(LOG_DEBUG, "offset_untracked",
                                "partition=%d offset=%lld", (int)msg->partition,
                                (long long)msg->offset);
                rd_kafka_message_destroy(msg);
        }
        c->nheld = kept;
        for (int i = c->paused->cnt - 1; i >= 0; i--) {
                const rd_kafka_topic_partition_t *p = &c->paused->elems[i];
                if (parts == NULL || in_list(parts, p->topic, p->partition))
                        set_paused(c, p->topic, p->partition, false);
        }
}

static void on_error(struct consumer *c, const rd_kafka_message_t *msg)
{
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                return;
        char why[512];
        bool fatal = rd_kafka_fatal_error(c->rk, why, sizeof(why)) !=
                     RD_KAFKA_RESP_ERR_NO_ERROR;
        struct log_line l;
        log_begin(&l, fatal ? LOG_ERROR : LOG_WARN, "consumer_error");
        if (msg->rkt)
                log_kv(&l, "topic", rd_kafka_topic_name(msg->rkt));
        log_kv(&l, "code", ss_err_name(SS_ERR_KAFKA));
        log_kv(&l, "msg", fatal ? why : rd_kafka_message_errstr(msg));
        log_end(&l);
}

/* Records and queues one polled message. */
static void take(struct consumer *c, rd_kafka_message_t *msg)
{
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                on_error(c, msg);
                rd_kafka_message_destroy(msg);
                return;
        }
        const char *topic = rd_kafka_topic_name(msg->rkt);
        if (offsets_begin(c->t, topic, msg->partition, msg->offset) != SS_OK) {
                /* Cannot track it, so it must not run: fetch it again. */
                log_msg(LOG_ERROR, "message_untracked",
                        "code=%s partition=%d offset=%lld",
                        ss_err_name(SS_ERR_NOMEM), (int)msg->partition,
                        (long long)msg->offset);
                rd_kafka_seek(msg->rkt, msg->partition, msg->offset, 1000);
                rd_kafka_message_destroy(msg);
                return;
        }

        /* Behind held messages of its partition it waits its turn. */
        if (!held_has(c, topic, msg->partition) &&
            dispatch_try_submit(c->d, msg, dispatch_queue_cap(c->d)))
                return;
        if (hold(c, msg))
                return;

        /* Out of memory for the held list: wait for room instead. */
        while (!dispatch_try_submit(c->d, msg, dispatch_queue_cap(c->d))) {
                struct timespec ts = { 0, 50 * 1000000L };
                nanosleep(&ts, NULL);
        }
}

static void revoke_parts(struct consumer *c,
                         rd_kafka_topic_partition_list_t *parts,
                         bool lost)
{
        for (int i = 0; i < parts->cnt; i++)
                offsets_cancel(c->t, parts->elems[i].topic,
                               parts->elems[i].partition);
        size_t dropped = 0;
        for (int i = 0; i < parts->cnt; i++)
                dropped += dispatch_cancel(c->d, parts->elems[i].topic,
                                           parts->elems[i].partition);
        drop_held(c, parts);
        if (dropped > 0)
                log_msg(LOG_INFO, "revoke_dropped_queued", "messages=%zu",
                        dropped);

        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *p = &parts->elems[i];
                while (!offsets_wait_idle(c->t, p->topic, p->partition,
                                          REVOKE_LOG_EVERY_MS))
                        log_msg(LOG_INFO, "revoke_waiting",
                                "partition=%d running=%zu", (int)p->partition,
                                offsets_running(c->t, p->topic, p->partition));
        }

        if (lost)
                log_parts(LOG_WARN, "partitions_lost", parts, false, 0);
        else
                /* After consumer_close()'s own final commit, only what
                 * moved since. */
                commit(c, parts, true, !c->closed);
        for (int i = 0; i < parts->cnt; i++)
                offsets_forget(c->t, parts->elems[i].topic,
                               parts->elems[i].partition);
}

static void on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
        struct consumer *c = opaque;
        bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;

        if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                kafka_log_partitions("partitions_assigned", parts);
                /* Anything left from an earlier ownership is stale. */
                for (int i = 0; i < parts->cnt; i++)
                        offsets_forget(c->t, parts->elems[i].topic,
                                       parts->elems[i].partition);
                if (coop)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        ae = rd_kafka_assign(rk, parts);
        } else if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                kafka_log_partitions("partitions_revoked", parts);
                revoke_parts(c, parts, rd_kafka_assignment_lost(rk));
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        ae = rd_kafka_assign(rk, NULL);
        } else {
                log_parts(LOG_ERROR, "rebalance_error", parts, false, e);
                rd_kafka_topic_partition_list_t *mine = NULL;
                if (rd_kafka_assignment(rk, &mine) == 0 && mine != NULL) {
                        revoke_parts(c, mine, true);
                        rd_kafka_topic_partition_list_destroy(mine);
                }
                ae = rd_kafka_assign(rk, NULL);
        }

        if (error != NULL) {
                ae = rd_kafka_error_code(error);
                rd_kafka_error_destroy(error);
        }
        if (ae != RD_KAFKA_RESP_ERR_NO_ERROR)
                log_parts(LOG_ERROR, "assign_failed", parts, false, ae);
}

struct consumer *consumer_new(const struct config *cfg, struct ss_error *err)
{
        struct consumer *c = calloc(1, sizeof(*c));
        if (c == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        c->cfg = cfg;
        c->closed = true; /* nothing to close until the consumer exists */
        c->t = offsets_new();
        c->paused = rd_kafka_topic_partition_list_new(8);
        if (c->t == NULL || c->paused == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto fail;
        }
        c->d = dispatch_new(cfg, c->t, QUEUE_CAP, err);
        if (c->d == NULL)
                goto fail;

        rd_kafka_conf_t *conf = kafka_conf_new(cfg, err);
        if (conf == NULL)
                goto fail;
        rd_kafka_conf_set_opaque(conf, c);
        rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
        c->rk = kafka_consumer_new(conf, cfg->worker_group, on_rebalance, err);
        if (c->rk == NULL)
                goto fail;
        c->closed = false;

        const char *topics[] = { cfg->topic_requests };
        if (kafka_subscribe(c->rk, topics, 1, err) != SS_OK)
                goto fail;
        log_msg(LOG_INFO, "consumer_started", "threads=%ld queue_cap=%d",
                cfg->worker_threads, QUEUE_CAP);
        return c;
fail:
        consumer_free(c);
        return NULL;
}

void consumer_run(struct consumer *c, volatile sig_atomic_t *stop)
{
        c->last_commit = now_ms();
        while (!*stop) {
                flush_held(c);
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, 100);
                if (msg != NULL)
                        take(c, msg);
                if (now_ms() - c->last_commit >= COMMIT_EVERY_MS) {
                        commit(c, NULL, false, false);
                        c->last_commit = now_ms();
                }
        }
}

void consumer_close(struct consumer *c)
{
        if (c->closed)
                return;
        c->closed = true;
        log_msg(LOG_INFO, "consumer_stopping", "held=%zu", c->nheld);

        /* Requests already running finish and are committed; those not
         * started are left for the next owner. */
        drop_held(c, NULL);
        dispatch_stop(c->d);
        commit(c, NULL, true, true);

        /* Leaving the group runs on_rebalance's revoke, which finds
         * nothing left to wait for or commit. */
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
        struct log_line l;
        log_begin(&l, e ? LOG_WARN : LOG_INFO, "consumer_closed");
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                log_kv(&l, "code", ss_err_name(SS_ERR_KAFKA));
                log_kv(&l, "msg", rd_kafka_err2str(e));
        }
        log_end(&l);
}

void consumer_free(struct consumer *c)
{
        if (c == NULL)
                return;
        if (c->rk != NULL) {
                consumer_close(c);
                rd_kafka_destroy(c->rk);
        }
        for (size_t i = 0; i < c->nheld; i++)
                rd_kafka_message_destroy(c->held[i]);
        free(c->held);
        dispatch_free(c->d);
        if (c->paused != NULL)
                rd_kafka_topic_partition_list_destroy(c->paused);
        offsets_free(c->t);
        free(c);
}
