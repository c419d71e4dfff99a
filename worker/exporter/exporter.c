/* The exporter's loop: one consumer for the audit and export request
 * topics, dispatch by topic, sealing on size or age, clean stop. */
#include "exporter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/kafka.h"
#include "../../common/log.h"
#include "export.h"
#include "files.h"
#include "stream.h"

#define POLL_MS       100
#define STALL_POLL_MS 2 /* while audit events flow */
#define FLOWING_MS    2000
#define REWAKE_MS     50 /* between wakes while nothing arrives */
#define RETRY_MS      1000

struct exporter {
        const struct config *cfg; /* borrowed */
        rd_kafka_t *consumer, *producer;
        struct files_store store;
        struct stream stream;
        struct export_ctx export;
        int64_t last_audit_ms; /* when the last audit event arrived */
        int64_t woken_ms;      /* last wake_fetchers(); 0 since a message */
        bool paused;
};

/* Millisecond time for timeouts and batch ages. The coarse clock is read
 * once per message and costs a fraction of the precise one; its few
 * milliseconds of resolution are far below any interval used here. */
#ifdef CLOCK_MONOTONIC_COARSE
#define LOOP_CLOCK CLOCK_MONOTONIC_COARSE
#else
#define LOOP_CLOCK CLOCK_MONOTONIC
#endif

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(LOOP_CLOCK, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- producing with a wait ------------------------------------------ */

/* One wait for a delivery report. The report may come after the waiter
 * has given up (a broker that is down), so the record lives on the heap
 * and whichever side comes last frees it. */
enum {
        DR_WAITING,
        DR_DONE,
        DR_ABANDONED
};

struct delivery {
        atomic_int state;
        rd_kafka_resp_err_t err;
};

void exporter_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
        (void)rk;
        (void)opaque;
        struct delivery *d = msg->_private;
        if (d == NULL)
                return;
        d->err = msg->err;
        if (atomic_exchange(&d->state, DR_DONE) == DR_ABANDONED)
                free(d);
}

enum ss_err exporter_produce(rd_kafka_t *rk,
                             const char *topic,
                             const void *key,
                             size_t klen,
                             const void *payload,
                             size_t len,
                             rd_kafka_headers_t *hdrs,
                             int timeout_ms,
                             struct ss_error *err)
{
        struct delivery *d = malloc(sizeof(*d));
        if (d == NULL) {
                if (hdrs != NULL)
                        rd_kafka_headers_destroy(hdrs);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        atomic_init(&d->state, DR_WAITING);
        d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_resp_err_t e;
        if (hdrs != NULL)
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_OPAQUE(d),
                                      RD_KAFKA_V_KEY(key, klen),
                                      RD_KAFKA_V_VALUE((void *)payload, len),
                                      RD_KAFKA_V_HEADERS(hdrs),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END);
        else
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_OPAQUE(d),
                                      RD_KAFKA_V_KEY(key, klen),
                                      RD_KAFKA_V_VALUE((void *)payload, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END);
        if (e) {
                /* On failure the headers stay ours. */
                if (hdrs != NULL)
                        rd_kafka_headers_destroy(hdrs);
                free(d);
                return ss_error_set(err, SS_ERR_KAFKA, "produce to %s: %s",
                                    topic, rd_kafka_err2str(e));
        }

        /* Reports are served by whichever thread polls the producer. */
        int64_t until = now_ms() + timeout_ms;
        while (atomic_load(&d->state) != DR_DONE && now_ms() < until)
                rd_kafka_poll(rk, 50);
        if (atomic_exchange(&d->state, DR_ABANDONED) != DR_DONE)
                return ss_error_set(err, SS_ERR_KAFKA,
                                    "message to %s not delivered within %d "
                                    "ms",
                                    topic, timeout_ms);
        e = d->err;
        free(d);
        if (e)
                return ss_error_set(err, SS_ERR_KAFKA,
                                    "message to %s not delivered: %s", topic,
                                    rd_kafka_err2str(e));
        return SS_OK;
}

/* --- rebalances -------------------------------------------------------- */

/* Seals what the stream holds, then forgets its positions: whoever gets
 * the partitions resumes from the checkpoint. When sealing fails the rows
 * are read again, as the checkpoint has not moved past them. */
static void seal_now(struct exporter *x, const char *why)
{
        struct ss_error err = { 0 };
        if (stream_flush(&x->stream, x->consumer, &err) != SS_OK) {
                struct log_line l;
                log_begin(&l, LOG_ERROR, "audit_seal_failed");
                log_kv(&l, "when", why);
                log_kv(&l, "rows", "dropped");
                log_err(&l, &err);
                log_end(&l);
        }
        stream_drop(&x->stream);
}

static void rebalance(rd_kafka_t *rk,
                      rd_kafka_resp_err_t e,
                      rd_kafka_topic_partition_list_t *parts,
                      void *opaque)
{
        struct exporter *x = opaque;
        if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                /* Audit partitions resume where the files end. */
                for (int i = 0; i < parts->cnt; i++) {
                        rd_kafka_topic_partition_t *p = &parts->elems[i];
                        if (strcmp(p->topic, x->cfg->topic_movements) != 0)
                                continue;
                        int64_t next =
                                files_next(&x->store, p->topic, p->partition);
                        if (next >= 0)
                                p->offset = next;
                }
                kafka_log_partitions("partitions_assigned", parts);
                rd_kafka_assign(rk, parts);
                x->paused = false;
                return;
        }
        kafka_log_partitions("partitions_revoked", parts);
        seal_now(x, "revoke");
        rd_kafka_assign(rk, NULL);
        x->paused = false;
}

/* Pauses or resumes the audit partitions (while sealing fails and the
 * batch is full, reading on would only grow memory). */
static void audit_pause(struct exporter *x, bool pause)
{
        if (x->paused == pause)
                return;
        rd_kafka_topic_partition_list_t *all = NULL;
        if (rd_kafka_assignment(x->consumer, &all) != 0 || all == NULL)
                return;
        rd_kafka_topic_partition_list_t *mine =
                rd_kafka_topic_partition_list_new(all->cnt);
        for (int i = 0; i < all->cnt; i++)
                if (strcmp(all->elems[i].topic, x->cfg->topic_movements) == 0)
                        rd_kafka_topic_partition_list_add(
                                mine, all->elems[i].topic,
                                all->elems[i].partition);
        if (pause)
                rd_kafka_pause_partitions(x->consumer, mine);
        else
                rd_kafka_resume_partitions(x->consumer, mine);
        rd_kafka_topic_partition_list_destroy(mine);
        rd_kafka_topic_partition_list_destroy(all);
        x->paused = pause;
        log_msg(LOG_WARN, pause ? "audit_paused" : "audit_resumed", NULL);
}

/* librdkafka 2.0 stops fetching when the consumer queue is over
 * queued.min.messages or queued.max.messages.kbytes and only looks again
 * when a broker thread wakes up, at the latest after one second (2.1 made
 * this fetch.queue.backoff.ms). While we write a batch the queue fills,
 * and each fill cost a second of idling. When the queue has run dry while
 * events were flowing, seeking every audit partition to the position we
 * have consumed up to wakes the broker threads at once. Nothing is lost
 * or repeated: the queue is empty, so the positions are exactly the next
 * offsets, and stream_add() skips anything below its own position. */
static void wake_fetchers(struct exporter *x)
{
        rd_kafka_topic_partition_list_t *all = NULL;
        if (rd_kafka_assignment(x->consumer, &all) != 0 || all == NULL)
                return;
        rd_kafka_topic_partition_list_t *mine =
                rd_kafka_topic_partition_list_new(all->cnt);
        for (int i = 0; i < all->cnt; i++)
                if (strcmp(all->elems[i].topic, x->cfg->topic_movements) == 0)
                        rd_kafka_topic_partition_list_add(
                                mine, all->elems[i].topic,
                                all->elems[i].partition);
        rd_kafka_topic_partition_list_destroy(all);
        rd_kafka_topic_partition_list_t *known =
                rd_kafka_topic_partition_list_new(mine->cnt);
        if (rd_kafka_position(x->consumer, mine) == 0)
                for (int i = 0; i < mine->cnt; i++)
                        if (mine->elems[i].offset >= 0)
                                rd_kafka_topic_partition_list_add(
                                        known, mine->elems[i].topic,
                                        mine->elems[i].partition)
                                        ->offset = mine->elems[i].offset;
        if (known->cnt > 0) {
                rd_kafka_error_t *e =
                        rd_kafka_seek_partitions(x->consumer, known, 0);
                if (e != NULL)
                        rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(known);
        rd_kafka_topic_partition_list_destroy(mine);
}

/* --- set-up ------------------------------------------------------------ */

/* Sets k=v unless STOCKSYNC_KAFKA names k (the operator's word wins). */
static enum ss_err conf_default(rd_kafka_conf_t *conf,
                                const struct config *cfg,
                                const char *k,
                                const char *v,
                                struct ss_error *err)
{
        const char *p = cfg->kafka_props ? cfg->kafka_props : "";
        size_t n = strlen(k);
        for (const char *s = strstr(p, k); s; s = strstr(s + 1, k))
                if ((s == p || s[-1] == ',') && s[n] == '=')
                        return SS_OK;
        char errstr[256];
        if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                return ss_error_set(err, SS_ERR_CONFIG, "%s: %s", k, errstr);
        return SS_OK;
}

static enum ss_err clients_new(struct exporter *x, struct ss_error *err)
{
        rd_kafka_conf_t *conf = kafka_conf_new(x->cfg, err);
        if (conf == NULL)
                return err->code;
        rd_kafka_conf_set_dr_msg_cb(conf, exporter_dr_cb);
        x->producer = kafka_producer_new(conf, err);
        if (x->producer == NULL)
                return err->code;

        conf = kafka_conf_new(x->cfg, err);
        if (conf == NULL)
                return err->code;
        /* Prefetch is bounded so the whole process stays small (8 MiB of
         * queue: peak RSS ~54 MiB for a 1M-event backlog, and fewer
         * fetch stalls than 4 MiB); these are defaults that
         * STOCKSYNC_KAFKA may override. */
        enum ss_err rc = conf_default(
                conf, x->cfg, "queued.max.messages.kbytes", "8192", err);
        /* Answers of at most 1 MiB from a few brokers stay below the
         * queue limit, so fetching goes on while we read. With
         * 2 MiB answers three brokers overshot it together, every fetcher
         * stopped once per 6 MiB and reading stalled until
         * wake_fetchers(). */
        if (rc == SS_OK)
                rc = conf_default(conf, x->cfg, "fetch.max.bytes", "1048576",
                                  err);
        if (rc != SS_OK) {
                rd_kafka_conf_destroy(conf);
                return rc;
        }
        rd_kafka_conf_set_opaque(conf, x);
        x->consumer = kafka_consumer_new(conf, x->cfg->exporter_group,
                                         rebalance, err);
        if (x->consumer == NULL)
                return err->code;
        const char *topics[] = { x->cfg->topic_movements,
                                 x->cfg->topic_export_requests };
        return kafka_subscribe(x->consumer, topics, 2, err);
}

/* --- the loop ---------------------------------------------------------- */

static void sleep_ms(volatile sig_atomic_t *stop, int ms)
{
        for (int slept = 0; slept < ms && !*stop; slept += 50)
                nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
}

/* Reads msg again later: the seek rewinds the partition to it. */
static void again(struct exporter *x,
                  const rd_kafka_message_t *msg,
                  volatile sig_atomic_t *stop)
{
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt),
                                          msg->partition)
                ->offset = msg->offset;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(x->consumer, l, 5000);
        if (e != NULL)
                rd_kafka_error_destroy(e);
        rd_kafka_topic_partition_list_destroy(l);
        sleep_ms(stop, RETRY_MS);
}

/* Handles one message; false when it was rewound to be read again. */
static bool handle(struct exporter *x,
                   rd_kafka_message_t *msg,
                   int64_t now,
                   volatile sig_atomic_t *stop)
{
        if (msg->err) {
                if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return true;
                struct log_line l;
                log_begin(&l, LOG_WARN, "kafka_consume_error");
                log_kv(&l, "code", ss_err_name(SS_ERR_KAFKA));
                log_kv(&l, "msg", rd_kafka_message_errstr(msg));
                log_end(&l);
                return true;
        }
        const char *topic = rd_kafka_topic_name(msg->rkt);
        if (strcmp(topic, x->cfg->topic_movements) == 0) {
                x->last_audit_ms = now;
                if (stream_add(&x->stream, msg, now) != SS_OK) {
                        log_msg(LOG_ERROR, "audit_event_dropped",
                                "code=out_of_memory partition=%d",
                                (int)msg->partition);
                        again(x, msg, stop);
                        return false;
                }
                return true;
        }
        if (export_handle(&x->export, msg) == EXPORT_RETRY) {
                again(x, msg, stop);
                return false;
        }
        rd_kafka_commit_message(x->consumer, msg, 1);
        return true;
}

static void maybe_seal(struct exporter *x, int64_t now)
{
        stream_tick(&x->stream, x->consumer, now);
        audit_pause(x, stream_stalled(&x->stream));
}

static void shutdown_clients(struct exporter *x)
{
        if (x->consumer != NULL) {
                /* close() revokes, and the revoke seals what is left. */
                rd_kafka_consumer_close(x->consumer);
                rd_kafka_destroy(x->consumer);
        }
        if (x->producer != NULL) {
                if (rd_kafka_flush(x->producer, 10000) != 0)
                        log_msg(LOG_WARN, "producer_undelivered", "messages=%d",
                                rd_kafka_outq_len(x->producer));
                rd_kafka_destroy(x->producer);
        }
}

enum ss_err exporter_run(const struct config *cfg,
                         volatile sig_atomic_t *stop,
                         struct ss_error *err)
{
        struct exporter x = { .cfg = cfg };
        enum ss_err rc = files_open(&x.store, cfg->export_dir,
                                    cfg->export_bom != 0, stop, err);
        if (rc == SS_OK)
                rc = clients_new(&x, err);
        if (rc == SS_OK)
                rc = export_ctx_init(&x.export, cfg, x.producer, err);
        if (rc == SS_OK)
                rc = stream_init(&x.stream, cfg, &x.store, x.producer, err);
        if (rc != SS_OK)
                goto out;

        struct log_line l;
        log_begin(&l, LOG_INFO, "exporter_started");
        log_kv(&l, "version", SS_VERSION);
        log_kv(&l, "export_dir", x.export.dir);
        log_kv(&l, "topic_movements", cfg->topic_movements);
        log_kv(&l, "topic_export_requests", cfg->topic_export_requests);
        log_kv(&l, "group", cfg->exporter_group);
        log_kvi(&l, "flush_rows", cfg->exporter_flush_rows);
        log_kvi(&l, "flush_ms", cfg->exporter_flush_ms);
        log_end(&l);

        int64_t now = now_ms();
        int64_t ticked = -1;
        while (!*stop) {
                bool flowing = x.last_audit_ms != 0 &&
                               now - x.last_audit_ms < FLOWING_MS;
                rd_kafka_message_t *msg = rd_kafka_consumer_poll(
                        x.consumer, flowing ? STALL_POLL_MS : POLL_MS);
                now = now_ms();
                if (msg != NULL) {
                        handle(&x, msg, now, stop);
                        rd_kafka_message_destroy(msg);
                        x.woken_ms = 0;
                } else if (flowing && !x.paused &&
                           now - x.woken_ms >= REWAKE_MS) {
                        /* Woken fetchers answer within a few ms; waking
                         * them again before that would only discard the
                         * fetch in flight. */
                        wake_fetchers(&x);
                        x.woken_ms = now;
                }
                /* Sealing is looked after once per clock tick, when idle,
                 * and at once when the batch is full: checking it per
                 * message took two mutex round trips each. */
                if (msg == NULL || now != ticked || stream_full(&x.stream)) {
                        maybe_seal(&x, now);
                        ticked = now;
                }
        }
        log_msg(LOG_INFO, "exporter_stopping",
                "rows_total=%lld "
                "dead_letters_total=%lld",
                x.stream.rows_total, x.stream.dead_total);
out:
        shutdown_clients(&x);
        stream_free(&x.stream);
        export_ctx_free(&x.export);
        files_close(&x.store);
        return rc;
}
