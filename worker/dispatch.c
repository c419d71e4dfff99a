/* Worker threads, their queues and the retry of failed messages. */
#include "dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "process.h"

/* Pause before retrying a message whose outcome could not be stored:
 * doubles from the first to the last value. */
#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS   10000
/* While a message keeps failing, one warning per this many ms. */
#define RETRY_LOG_EVERY_MS 30000

struct lane {
        struct dispatch *d; /* borrowed */
        size_t idx;
        pthread_t th;
        bool started;
        struct processor *proc; /* owned */
        rd_kafka_message_t **q; /* owned ring of d->cap, messages owned */
        size_t head, n;
        pthread_cond_t wake;        /* work queued, stop, or cancel */
        unsigned long long handled; /* under d->mu */
        unsigned long long retries;
        unsigned long long abandoned;
};

struct dispatch {
        const struct config *cfg; /* borrowed */
        struct offsets *t;        /* borrowed */
        size_t cap;
        size_t nlanes;
        struct lane *lanes; /* owned */
        pthread_mutex_t mu; /* guards every lane's queue and counters */
        atomic_bool stopping;
        bool joined;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a: cheap and spreads short decimal keys well. */
static size_t lane_of(const struct dispatch *d, const rd_kafka_message_t *msg)
{
        if (msg->key == NULL || msg->key_len == 0)
                return (size_t)msg->partition % d->nlanes;
        uint32_t h = 2166136261u;
        const unsigned char *k = msg->key;
        for (size_t i = 0; i < msg->key_len; i++) {
                h ^= k[i];
                h *= 16777619u;
        }
        return h % d->nlanes;
}

static void log_msg_event(enum log_level level,
                          const char *event,
                          const rd_kafka_message_t *msg,
                          const struct ss_error *err,
                          long long attempts,
                          long long delay_ms)
{
        struct log_line l;
        log_begin(&l, level, event);
        log_kv(&l, "topic", rd_kafka_topic_name(msg->rkt));
        log_kvi(&l, "partition", msg->partition);
        log_kvi(&l, "offset", msg->offset);
        if (attempts > 0)
                log_kvi(&l, "attempts", attempts);
        if (delay_ms > 0)
                log_kvi(&l, "retry_in_ms", delay_ms);
        if (err != NULL)
                log_err(&l, err);
        log_end(&l);
}

static bool given_up(struct lane *ln, const rd_kafka_message_t *msg)
{
        return atomic_load(&ln->d->stopping) ||
               offsets_cancelled(ln->d->t, rd_kafka_topic_name(msg->rkt),
                                 msg->partition);
}

/* Sleeps ms, waking early when the message is given up. The condition
 * variable is also signalled for new work, hence the loop. */
static void backoff(struct lane *ln, const rd_kafka_message_t *msg, int64_t ms)
{
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        int64_t end = now_ms() + ms;
        while (now_ms() < end && !given_up(ln, msg)) {
                pthread_mutex_lock(&ln->d->mu);
                int rc = 0;
                if (!atomic_load(&ln->d->stopping))
                        rc = pthread_cond_timedwait(&ln->wake, &ln->d->mu,
                                                    &until);
                pthread_mutex_unlock(&ln->d->mu);
                if (rc == ETIMEDOUT)
                        break;
        }
}

/* One try at msg. A lane whose processor could not be made (the database
 * was down) makes it now. */
static enum ss_err
attempt(struct lane *ln, const struct msg_view *view, struct ss_error *err)
{
        if (ln->proc == NULL)
                ln->proc = processor_new(ln->d->cfg, err);
        if (ln->proc == NULL)
                return err->code != SS_OK ? err->code : SS_ERR_DB;
        return processor_handle(ln->proc, view, err);
}

/* Runs msg until its outcome is durable, or until its partition is taken
 * away or the worker stops; then the tracker is told which it was. */
static void run_one(struct lane *ln, rd_kafka_message_t *msg)
{
        const char *topic = rd_kafka_topic_name(msg->rkt);
        struct msg_view view = {
                .topic = topic,
                .partition = msg->partition,
                .offset = msg->offset,
                .key = msg->key,
                .key_len = msg->key_len,
                .payload = msg->payload,
                .len = msg->len,
        };
        long long attempts = 0;
        int64_t delay = RETRY_FIRST_MS, last_log = 0;
        bool done = false;

        while (!given_up(ln, msg)) {
                struct ss_error err = { 0 };
                attempts++;
                enum ss_err rc = attempt(ln, &view, &err);
                if (rc == SS_OK) {
                        done = true;
                        break;
                }

                /* Only SS_ERR_DB is in processor_handle's contract; any
                 * other code is a bug, but skipping the message would lose
                 * it, so it is retried the same way, louder. */
                int64_t now = now_ms();
                if (attempts == 1 || now - last_log >= RETRY_LOG_EVERY_MS) {
                        log_msg_event(rc == SS_ERR_DB ? LOG_WARN : LOG_ERROR,
                                      "request_retry", msg, &err, attempts,
                                      delay);
                        last_log = now;
                }
                pthread_mutex_lock(&ln->d->mu);
                ln->retries++;
                pthread_mutex_unlock(&ln->d->mu);
                backoff(ln, msg, delay);
                delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
        }

        enum ss_err trc;
        if (done) {
                if (attempts > 1)
                        log_msg_event(LOG_INFO, "request_retry_succeeded", msg,
                                      NULL, attempts, 0);
                trc = offsets_done(ln->d->t, topic, msg->partition,
                                   msg->offset);
        } else {
                /* Not committed: the partition's next owner (or this worker
                 * after a restart) gets it again. */
                log_msg_event(LOG_INFO, "request_abandoned", msg, NULL,
                              attempts, 0);
                trc = offsets_abandon(ln->d->t, topic, msg->partition,
                                      msg->offset);
        }
        if (trc != SS_OK)
                log_msg_event(LOG_DEBUG, "offset_untracked", msg, NULL, 0, 0);

        pthread_mutex_lock(&ln->d->mu);
        if (done)
                ln->handled++;
        else
                ln->abandoned++;
        pthread_mutex_unlock(&ln->d->mu);
        rd_kafka_message_destroy(msg);
}

static void *lane_main(void *arg)
{
        struct lane *ln = arg;
        struct dispatch *d = ln->d;
        char name[16];
        snprintf(name, sizeof(name), "ss-worker-%zu", ln->idx);
        pthread_setname_np(pthread_self(), name);

        pthread_mutex_lock(&d->mu);
        for (;;) {
                while (ln->n == 0 && !atomic_load(&d->stopping))
                        pthread_cond_wait(&ln->wake, &d->mu);
                if (ln->n == 0)
                        break;
                rd_kafka_message_t *msg = ln->q[ln->head];
                ln->head = (ln->head + 1) % d->cap;
                ln->n--;
                pthread_mutex_unlock(&d->mu);
                run_one(ln, msg);
                pthread_mutex_lock(&d->mu);
        }
        pthread_mutex_unlock(&d->mu);
        return NULL;
}

struct dispatch *dispatch_new(const struct config *cfg,
                              struct offsets *t,
                              size_t queue_cap,
                              struct ss_error *err)
{
        struct dispatch *d = calloc(1, sizeof(*d));
        if (d == NULL)
                goto nomem;
        d->cfg = cfg;
        d->t = t;
        d->cap = queue_cap ? queue_cap : 1;
        d->nlanes = cfg->worker_threads > 0 ? (size_t)cfg->worker_threads : 1;
        atomic_init(&d->stopping, false);
        d->joined = true; /* nothing to join until a thread starts */
        if (pthread_mutex_init(&d->mu, NULL) != 0) {
                free(d);
                goto nomem;
        }
        d->lanes = calloc(d->nlanes, sizeof(*d->lanes));
        if (d->lanes == NULL) {
                d->nlanes = 0;
                dispatch_free(d);
                goto nomem;
        }

        /* Every lane is built before any thread starts, so a failure
         * leaves nothing running. */
        for (size_t i = 0; i < d->nlanes; i++) {
                struct lane *ln = &d->lanes[i];
                ln->d = d;
                ln->idx = i;
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                int crc = pthread_cond_init(&ln->wake, &ca);
                pthread_condattr_destroy(&ca);
                ln->q = calloc(d->cap, sizeof(*ln->q));
                if (crc != 0 || ln->q == NULL) {
                        if (crc == 0)
                                pthread_cond_destroy(&ln->wake);
                        free(ln->q);
                        ln->q = NULL;
                        d->nlanes = i;
                        dispatch_free(d);
                        goto nomem;
                }
                /* A database that is down now may be up by the first
                 * message: the lane then makes its processor itself. */
                struct ss_error perr = { 0 };
                ln->proc = processor_new(cfg, &perr);
                if (ln->proc == NULL && perr.code == SS_ERR_DB) {
                        struct log_line l;
                        log_begin(&l, LOG_WARN, "processor_deferred");
                        log_kvi(&l, "thread", (long long)i);
                        log_err(&l, &perr);
                        log_end(&l);
                } else if (ln->proc == NULL) {
                        if (err != NULL)
                                *err = perr;
                        d->nlanes = i + 1;
                        dispatch_free(d);
                        return NULL;
                }
        }

        d->joined = false;
        for (size_t i = 0; i < d->nlanes; i++) {
                struct lane *ln = &d->lanes[i];
                int rc = pthread_create(&ln->th, NULL, lane_main, ln);
                if (rc != 0) {
                        ss_error_set(err, SS_ERR_INTERNAL,
                                     "cannot start worker thread: %s",
                                     strerror(rc));
                        dispatch_free(d);
                        return NULL;
                }
                ln->started = true;
        }
        return d;
nomem:
        ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return NULL;
}

size_t dispatch_queue_cap(const struct dispatch *d)
{
        return d->cap;
}

bool dispatch_try_submit(struct dispatch *d,
                         rd_kafka_message_t *msg,
                         size_t limit)
{
        if (limit > d->cap)
                limit = d->cap;
        struct lane *ln = &d->lanes[lane_of(d, msg)];
        bool ok = false;
        pthread_mutex_lock(&d->mu);
        if (!atomic_load(&d->stopping) && ln->n < limit) {
                ln->q[(ln->head + ln->n) % d->cap] = msg;
                ln->n++;
                pthread_cond_signal(&ln->wake);
                ok = true;
        }
        pthread_mutex_unlock(&d->mu);
        return ok;
}

static bool
matches(const rd_kafka_message_t *msg, const char *topic, int32_t partition)
{
        return topic == NULL ||
               (msg->partition == partition &&
                strcmp(rd_kafka_topic_name(msg->rkt), topic) == 0);
}

size_t dispatch_cancel(struct dispatch *d, const char *topic, int32_t partition)
{
        size_t removed = 0;
        pthread_mutex_lock(&d->mu);
        for (size_t i = 0; i < d->nlanes; i++) {
                struct lane *ln = &d->lanes[i];
                size_t kept = 0;
                /* Compact the ring in place, keeping the order of what
                 * stays. */
                for (size_t k = 0; k < ln->n; k++) {
                        rd_kafka_message_t *msg =
                                ln->q[(ln->head + k) % d->cap];
                        if (!matches(msg, topic, partition)) {
                                ln->q[(ln->head + kept) % d->cap] = msg;
                                kept++;
                                continue;
                        }
                        if (offsets_abandon(d->t, rd_kafka_topic_name(msg->rkt),
                                            msg->partition,
                                            msg->offset) != SS_OK)
                                log_msg_event(LOG_DEBUG, "offset_untracked",
                                              msg, NULL, 0, 0);
                        rd_kafka_message_destroy(msg);
                        removed++;
                }
                ln->n = kept;
                /* A thread pausing before a retry re-checks its message. */
                pthread_cond_broadcast(&ln->wake);
        }
        pthread_mutex_unlock(&d->mu);
        return removed;
}

void dispatch_stop(struct dispatch *d)
{
        pthread_mutex_lock(&d->mu);
        atomic_store(&d->stopping, true);
        pthread_mutex_unlock(&d->mu);

        size_t dropped = dispatch_cancel(d, NULL, 0);
        if (dropped > 0)
                log_msg(LOG_INFO, "dispatch_dropped_queued", "messages=%zu",
                        dropped);
        if (d->joined)
                return;
        for (size_t i = 0; i < d->nlanes; i++)
                if (d->lanes[i].started)
                        pthread_join(d->lanes[i].th, NULL);
        d->joined = true;
}

void dispatch_free(struct dispatch *d)
{
        if (d == NULL)
                return;
        dispatch_stop(d);

        unsigned long long handled = 0, retries = 0, abandoned = 0;
        for (size_t i = 0; i < d->nlanes; i++) {
                struct lane *ln = &d->lanes[i];
                handled += ln->handled;
                retries += ln->retries;
                abandoned += ln->abandoned;
                processor_free(ln->proc);
                free(ln->q);
                pthread_cond_destroy(&ln->wake);
        }
        if (d->nlanes > 0)
                log_msg(LOG_INFO, "dispatch_stopped",
                        "handled=%llu retries=%llu abandoned=%llu", handled,
                        retries, abandoned);
        free(d->lanes);
        pthread_mutex_destroy(&d->mu);
        free(d);
}
