/* The dispatcher (worker/dispatch) with a scripted processor in place of
 * the real one: one key's messages run in order on one thread, a database
 * failure is retried and never skipped, a full queue refuses, and a cancel
 * or a stop gives queued and retrying messages up without letting the
 * watermark pass them. Messages are real librdkafka messages from an
 * in-process mock cluster.
 *
 * The scripted processor_* below replace worker/process.c: the linker
 * takes these and never pulls process.o from the archive. A payload says
 * what the processor does:
 *   "ok ..."     succeed
 *   "db N ..."   fail with SS_ERR_DB N times, then succeed
 *   "block ..."  wait until the test releases it, then succeed */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "../../worker/dispatch.h"
#include "../../worker/process.h"

#define TOPIC     "requests"
#define MAX_CALLS 1024

/* ------------------------------------------------ scripted processor */

struct processor {
        int unused;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool released;
static int blocked;               /* processors waiting in "block" */
static char calls[MAX_CALLS][64]; /* payload of every call, in order */
static int ncalls;
static int fails_left[MAX_CALLS]; /* per offset, for "db N" */

struct processor *processor_new(const struct config *cfg, struct ss_error *err)
{
        (void)cfg;
        (void)err;
        return calloc(1, sizeof(struct processor));
}

void processor_free(struct processor *p)
{
        free(p);
}

enum ss_err processor_handle(struct processor *p,
                             const struct msg_view *msg,
                             struct ss_error *err)
{
        (void)p;
        char text[64];
        snprintf(text, sizeof(text), "%.*s", (int)msg->len,
                 (const char *)msg->payload);

        pthread_mutex_lock(&mu);
        if (ncalls < MAX_CALLS)
                snprintf(calls[ncalls++], sizeof(calls[0]), "%s", text);
        enum ss_err rc = SS_OK;
        int n;
        if (sscanf(text, "db %d", &n) == 1 && msg->offset < MAX_CALLS) {
                if (fails_left[msg->offset] < 0)
                        fails_left[msg->offset] = n;
                if (fails_left[msg->offset] > 0) {
                        fails_left[msg->offset]--;
                        rc = ss_error_set(err, SS_ERR_DB, "scripted");
                }
        } else if (strncmp(text, "block", 5) == 0) {
                blocked++;
                pthread_cond_broadcast(&cv);
                while (!released)
                        pthread_cond_wait(&cv, &mu);
                blocked--;
        }
        pthread_mutex_unlock(&mu);
        return rc;
}

static void script_reset(void)
{
        pthread_mutex_lock(&mu);
        released = false;
        blocked = 0;
        ncalls = 0;
        for (int i = 0; i < MAX_CALLS; i++)
                fails_left[i] = -1;
        pthread_mutex_unlock(&mu);
}

static void release(void)
{
        pthread_mutex_lock(&mu);
        released = true;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
}

static void wait_blocked(int n)
{
        pthread_mutex_lock(&mu);
        while (blocked < n)
                pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
}

static int count_calls(const char *payload)
{
        int n = 0;
        pthread_mutex_lock(&mu);
        for (int i = 0; i < ncalls; i++)
                if (strcmp(calls[i], payload) == 0)
                        n++;
        pthread_mutex_unlock(&mu);
        return n;
}

/* ------------------------------------------------ messages from a mock */

struct fixture {
        rd_kafka_t *producer; /* hosts the mock cluster */
        rd_kafka_t *consumer;
        struct offsets *t;
        struct config cfg;
        struct dispatch *d;
        rd_kafka_message_t **v; /* fetched; NULL once handed over */
        int n;
};

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstraps)
{
        char errstr[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (bootstraps == NULL) {
                assert_int_equal(rd_kafka_conf_set(conf,
                                                   "test.mock.num.brokers", "1",
                                                   errstr, sizeof(errstr)),
                                 RD_KAFKA_CONF_OK);
        } else {
                assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                                   bootstraps, errstr,
                                                   sizeof(errstr)),
                                 RD_KAFKA_CONF_OK);
                assert_int_equal(rd_kafka_conf_set(conf, "group.id", "t",
                                                   errstr, sizeof(errstr)),
                                 RD_KAFKA_CONF_OK);
                assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit",
                                                   "false", errstr,
                                                   sizeof(errstr)),
                                 RD_KAFKA_CONF_OK);
        }
        rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
        rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        return rk;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->producer = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->producer);
        assert_non_null(mc);
        assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
        f->consumer =
                client(RD_KAFKA_CONSUMER, rd_kafka_mock_cluster_bootstraps(mc));
        rd_kafka_poll_set_consumer(f->consumer);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, TOPIC, 0)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(f->consumer, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        f->t = offsets_new();
        assert_non_null(f->t);
        f->cfg.worker_threads = 3;
        script_reset();
        *state = f;
        return 0;
}

/* Also after a failed assertion: every thread stops and every message is
 * destroyed, or destroying the consumer would wait for them for ever. */
static int teardown(void **state)
{
        struct fixture *f = *state;
        release();
        dispatch_free(f->d);
        for (int i = 0; i < f->n; i++)
                if (f->v[i] != NULL)
                        rd_kafka_message_destroy(f->v[i]);
        free(f->v);
        rd_kafka_consumer_close(f->consumer);
        rd_kafka_destroy(f->consumer);
        rd_kafka_destroy(f->producer);
        offsets_free(f->t);
        free(f);
        return 0;
}

/* Produces payloads[0..n) with keys[i] and consumes them into f->v, each
 * recorded in the tracker as the consumer does. */
static void fetch(struct fixture *f,
                  const char *const *keys,
                  const char *const *payloads,
                  int n)
{
        for (int i = 0; i < n; i++)
                assert_int_equal(
                        rd_kafka_producev(
                                f->producer, RD_KAFKA_V_TOPIC(TOPIC),
                                RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
                                RD_KAFKA_V_VALUE((void *)payloads[i],
                                                 strlen(payloads[i])),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END),
                        0);
        assert_int_equal(rd_kafka_flush(f->producer, 10000), 0);

        f->v = calloc((size_t)n, sizeof(*f->v));
        assert_non_null(f->v);
        while (f->n < n) {
                rd_kafka_message_t *msg =
                        rd_kafka_consumer_poll(f->consumer, 5000);
                assert_non_null(msg);
                if (msg->err) {
                        rd_kafka_message_destroy(msg);
                        continue;
                }
                f->v[f->n++] = msg;
                assert_int_equal(offsets_begin(f->t, TOPIC, 0, msg->offset),
                                 SS_OK);
        }
}

static void start(struct fixture *f, size_t queue_cap)
{
        struct ss_error err = { 0 };
        f->d = dispatch_new(&f->cfg, f->t, queue_cap, &err);
        assert_non_null(f->d);
}

/* dispatch_try_submit(), handing message i over when it is taken. */
static bool submit(struct fixture *f, int i, size_t limit)
{
        bool taken = dispatch_try_submit(f->d, f->v[i], limit);
        if (taken)
                f->v[i] = NULL;
        return taken;
}

static void wait_watermark(struct fixture *f, int64_t want)
{
        int64_t off = -1;
        for (int i = 0; i < 1000; i++) {
                if (offsets_committable(f->t, TOPIC, 0, &off) && off == want)
                        return;
                struct timespec ts = { 0, 10 * 1000000L };
                nanosleep(&ts, NULL);
        }
        assert_int_equal(off, want);
}

static int64_t watermark(struct fixture *f)
{
        int64_t off = -1;
        assert_true(offsets_committable(f->t, TOPIC, 0, &off));
        return off;
}

/* ------------------------------------------------ tests */

static void one_key_in_order_all_done(void **state)
{
        struct fixture *f = *state;

        enum {
                N = 60
        };

        const char *keys[N], *payloads[N];
        static char pbuf[N][32];
        static const char *const names[] = { "11", "12", "13", "14", "15" };
        for (int i = 0; i < N; i++) {
                keys[i] = names[i % 5];
                snprintf(pbuf[i], sizeof(pbuf[i]), "ok %s %03d", keys[i], i);
                payloads[i] = pbuf[i];
        }
        fetch(f, keys, payloads, N);
        start(f, N);
        for (int i = 0; i < N; i++)
                assert_true(submit(f, i, N));
        assert_true(offsets_wait_idle(f->t, TOPIC, 0, 10000));
        assert_int_equal(watermark(f), N);

        /* Each key's messages ran in offset order. */
        pthread_mutex_lock(&mu);
        assert_int_equal(ncalls, N);
        for (int k = 0; k < 5; k++) {
                int last = -1;
                for (int i = 0; i < ncalls; i++) {
                        char key[8];
                        int seq;
                        assert_int_equal(
                                sscanf(calls[i], "ok %7s %d", key, &seq), 2);
                        if (strcmp(key, names[k]) != 0)
                                continue;
                        assert_true(seq > last);
                        last = seq;
                }
        }
        pthread_mutex_unlock(&mu);
}

static void database_failure_is_retried(void **state)
{
        struct fixture *f = *state;
        const char *keys[] = { "7", "8" };
        const char *payloads[] = { "db 2 first", "ok second" };
        fetch(f, keys, payloads, 2);
        start(f, 8);
        assert_true(submit(f, 0, 8));
        assert_true(submit(f, 1, 8));

        /* The second finishes at once; the first holds the watermark
         * through its two failures (250 + 500 ms of pauses). */
        struct timespec ts = { 0, 150 * 1000000L };
        nanosleep(&ts, NULL);
        assert_int_equal(count_calls("ok second"), 1);
        assert_int_equal(watermark(f), 0);
        assert_true(offsets_wait_idle(f->t, TOPIC, 0, 10000));
        assert_int_equal(count_calls("db 2 first"), 3);
        assert_int_equal(watermark(f), 2);
}

static void full_queue_refuses(void **state)
{
        struct fixture *f = *state;
        f->cfg.worker_threads = 1;
        const char *keys[] = { "1", "1", "1", "1" };
        const char *payloads[] = { "block a", "ok b", "ok c", "ok d" };
        fetch(f, keys, payloads, 4);
        start(f, 2);
        assert_int_equal(dispatch_queue_cap(f->d), 2);

        assert_true(submit(f, 0, 2));
        wait_blocked(1);
        assert_false(submit(f, 1, 0)); /* limit 0 */
        assert_true(submit(f, 1, 2));
        assert_false(submit(f, 2, 1)); /* half full */
        assert_true(submit(f, 2, 99)); /* capped at 2 */
        assert_false(submit(f, 3, 2));

        release();
        wait_watermark(f, 3); /* d was never taken */
        assert_int_equal(offsets_running(f->t, TOPIC, 0), 1);
        assert_true(submit(f, 3, 2));
        assert_true(offsets_wait_idle(f->t, TOPIC, 0, 10000));
        assert_int_equal(watermark(f), 4);
}

/* Revoke: queued messages are dropped and abandoned; the running one
 * finishes; the watermark stops at the first dropped one. */
static void cancel_drops_queued(void **state)
{
        struct fixture *f = *state;
        f->cfg.worker_threads = 1;
        const char *keys[] = { "1", "1", "1", "1" };
        const char *payloads[] = { "block a", "ok b", "ok c", "ok d" };
        fetch(f, keys, payloads, 4);
        start(f, 8);
        for (int i = 0; i < 4; i++)
                assert_true(submit(f, i, 8));
        wait_blocked(1);

        offsets_cancel(f->t, TOPIC, 0);
        assert_int_equal(dispatch_cancel(f->d, "other", 0), 0);
        assert_int_equal(dispatch_cancel(f->d, TOPIC, 0), 3);
        assert_int_equal(offsets_running(f->t, TOPIC, 0), 1);
        release();
        assert_true(offsets_wait_idle(f->t, TOPIC, 0, 10000));
        assert_int_equal(watermark(f), 1);
        assert_int_equal(count_calls("ok b"), 0);
}

/* A stop gives up a message that keeps failing, without committing it,
 * and takes nothing new. */
static void stop_abandons_retrying(void **state)
{
        struct fixture *f = *state;
        const char *keys[] = { "1", "2", "3" };
        const char *payloads[] = { "ok a", "db 1000 b", "ok c" };
        fetch(f, keys, payloads, 3);
        start(f, 8);
        assert_true(submit(f, 0, 8));
        assert_true(submit(f, 1, 8));
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
        assert_int_equal(offsets_running(f->t, TOPIC, 0), 2); /* b, c */

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dispatch_stop(f->d);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 2);
        assert_int_equal(offsets_running(f->t, TOPIC, 0), 1); /* c */
        assert_int_equal(watermark(f), 1);

        assert_false(submit(f, 2, 8));
        assert_int_equal(offsets_abandon(f->t, TOPIC, 0, f->v[2]->offset),
                         SS_OK);
        assert_int_equal(watermark(f), 1);
        dispatch_stop(f->d); /* twice is fine */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(one_key_in_order_all_done,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(database_failure_is_retried,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(full_queue_refuses, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(cancel_drops_queued, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(stop_abandons_retrying, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
