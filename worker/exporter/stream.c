/* Audit events to batch rows, the dead-letter queue, and the sealer
 * thread that commits batches to files. */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "event.h"
#include "exporter.h"

#define DLQ_TIMEOUT_MS 10000
#define RETRY_MIN_MS   1000
#define RETRY_MAX_MS   30000

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- jobs ------------------------------------------------------------ */

static void job_clear(struct stream_job *j)
{
        for (size_t i = 0; i < j->ndead; i++) {
                free(j->dead[i].key);
                free(j->dead[i].payload);
        }
        j->ndead = 0;
        for (size_t i = 0; i < j->noffs; i++)
                free(j->offs[i].topic);
        free(j->offs);
        j->offs = NULL;
        j->noffs = 0;
        files_batch_reset(&j->batch);
        j->opened_ms = 0;
        j->rows = 0;
}

static void job_free(struct stream_job *j)
{
        job_clear(j);
        free(j->dead);
        files_batch_free(&j->batch);
        memset(j, 0, sizeof(*j));
}

static bool job_full(const struct stream *s, const struct stream_job *j)
{
        return (long)j->batch.nrows >= s->cfg->exporter_flush_rows ||
               j->batch.text.len >= STREAM_MAX_BATCH_BYTES;
}

/* --- the sealer thread ---------------------------------------------- */

static enum ss_err
send_dead(struct stream *s, struct stream_dead *d, struct ss_error *err)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(5);
        char part[16], off[24];
        snprintf(part, sizeof(part), "%d", (int)d->partition);
        snprintf(off, sizeof(off), "%lld", (long long)d->offset);
        rd_kafka_header_add(h, "error_code", -1, ss_err_name(d->code), -1);
        rd_kafka_header_add(h, "error_message", -1, d->msg, -1);
        rd_kafka_header_add(h, "source_topic", -1, s->cfg->topic_movements, -1);
        rd_kafka_header_add(h, "source_partition", -1, part, -1);
        rd_kafka_header_add(h, "source_offset", -1, off, -1);
        return exporter_produce(s->producer, s->cfg->topic_audit_dlq, d->key,
                                d->klen, d->payload, d->len, h, DLQ_TIMEOUT_MS,
                                err);
}

/* Dead letters first: once the checkpoint moves past an event it is
 * never read again, so it must be on the DLQ by then. */
static enum ss_err seal_job(struct stream *s,
                            struct stream_job *j,
                            size_t *files,
                            struct ss_error *err)
{
        for (size_t i = 0; i < j->ndead; i++) {
                if (j->dead[i].sent)
                        continue;
                enum ss_err rc = send_dead(s, &j->dead[i], err);
                if (rc != SS_OK)
                        return rc;
                j->dead[i].sent = true;
        }
        return files_commit(s->store, &j->batch, j->offs, j->noffs, files, err);
}

static void *sealer_main(void *arg)
{
        struct stream *s = arg;
        pthread_mutex_lock(&s->mu);
        for (;;) {
                while (s->state != SEALER_BUSY && !s->quit)
                        pthread_cond_wait(&s->cv, &s->mu);
                if (s->state != SEALER_BUSY)
                        break;
                struct stream_job *j = &s->jobs[1 - s->cur];
                pthread_mutex_unlock(&s->mu);

                struct ss_error err = { 0 };
                size_t files = 0;
                int64_t t0 = mono_ms();
                enum ss_err rc = seal_job(s, j, &files, &err);

                pthread_mutex_lock(&s->mu);
                s->result = rc;
                s->result_err = err;
                s->result_files = files;
                s->result_ms = mono_ms() - t0;
                s->state = SEALER_DONE;
                pthread_cond_broadcast(&s->cv);
        }
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

enum ss_err stream_init(struct stream *s,
                        const struct config *cfg,
                        struct files_store *store,
                        rd_kafka_t *producer,
                        struct ss_error *err)
{
        memset(s, 0, sizeof(*s));
        s->cfg = cfg;
        s->store = store;
        s->producer = producer;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        if (pthread_create(&s->thread, NULL, sealer_main, s) != 0)
                return ss_error_set(err, SS_ERR_INTERNAL,
                                    "cannot start the sealer thread");
        s->thread_up = true;
        return SS_OK;
}

void stream_free(struct stream *s)
{
        if (s->thread_up) {
                pthread_mutex_lock(&s->mu);
                s->quit = true;
                pthread_cond_broadcast(&s->cv);
                pthread_mutex_unlock(&s->mu);
                pthread_join(s->thread, NULL);
        }
        job_free(&s->jobs[0]);
        job_free(&s->jobs[1]);
        free(s->parts);
        buf_free(&s->scratch);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        memset(s, 0, sizeof(*s));
}

/* --- positions -------------------------------------------------------- */

static struct stream_part *part(struct stream *s, int32_t partition)
{
        if (partition < 0)
                return NULL;
        size_t p = (size_t)partition;
        if (p >= s->nparts) {
                size_t n = p + 16;
                struct stream_part *v = realloc(s->parts, n * sizeof(*v));
                if (v == NULL)
                        return NULL;
                for (size_t i = s->nparts; i < n; i++)
                        v[i] = (struct stream_part){ -1, -1 };
                s->parts = v;
                s->nparts = n;
        }
        return &s->parts[p];
}

int64_t stream_position(struct stream *s, int32_t partition)
{
        struct stream_part *sp = part(s, partition);
        if (sp == NULL)
                return -1;
        /* -1: not asked yet; -2: the checkpoint does not know it. */
        if (sp->next == -1) {
                int64_t n = files_next(s->store, s->cfg->topic_movements,
                                       partition);
                sp->next = n >= 0 ? n : -2;
        }
        return sp->next >= 0 ? sp->next : -1;
}

/* --- adding ----------------------------------------------------------- */

static void *dup_bytes(const void *p, size_t n)
{
        void *c = malloc(n ? n : 1);
        if (c != NULL && n > 0)
                memcpy(c, p, n);
        return c;
}

/* Keeps a copy of an unreadable event for the dead-letter topic. */
static enum ss_err set_aside(struct stream_job *j,
                             const rd_kafka_message_t *msg,
                             const struct ss_error *why)
{
        if (j->ndead == j->deadcap) {
                size_t cap = j->deadcap ? j->deadcap * 2 : 16;
                struct stream_dead *v = realloc(j->dead, cap * sizeof(*v));
                if (v == NULL)
                        return SS_ERR_NOMEM;
                j->dead = v;
                j->deadcap = cap;
        }
        struct stream_dead *d = &j->dead[j->ndead];
        memset(d, 0, sizeof(*d));
        if (msg->key != NULL &&
            (d->key = dup_bytes(msg->key, msg->key_len)) == NULL)
                return SS_ERR_NOMEM;
        if (msg->payload != NULL &&
            (d->payload = dup_bytes(msg->payload, msg->len)) == NULL) {
                free(d->key);
                return SS_ERR_NOMEM;
        }
        d->klen = msg->key ? msg->key_len : 0;
        d->len = msg->payload ? msg->len : 0;
        d->partition = msg->partition;
        d->offset = msg->offset;
        d->code = why->code;
        snprintf(d->msg, sizeof(d->msg), "%s", why->msg);
        j->ndead++;

        struct log_line l;
        log_begin(&l, LOG_WARN, "audit_event_unreadable");
        log_kvi(&l, "partition", msg->partition);
        log_kvi(&l, "offset", msg->offset);
        log_err(&l, why);
        log_end(&l);
        return SS_OK;
}

enum ss_err
stream_add(struct stream *s, const rd_kafka_message_t *msg, int64_t now_ms)
{
        int64_t pos = stream_position(s, msg->partition);
        struct stream_part *sp = part(s, msg->partition);
        if (sp == NULL)
                return SS_ERR_NOMEM;
        if (pos >= 0 && msg->offset < pos)
                return SS_OK; /* already taken */

        struct movement_event ev;
        struct ss_error why = { 0 };
        enum ss_err rc;
        if (msg->payload == NULL)
                rc = ss_error_set(&why, SS_ERR_NOT_JSON, "empty message");
        else if ((long)msg->len > s->cfg->max_message_bytes)
                rc = ss_error_set(&why, SS_ERR_TOO_LARGE,
                                  "event of %zu bytes is over %ld", msg->len,
                                  s->cfg->max_message_bytes);
        else
                rc = event_parse(msg->payload, msg->len, &s->scratch, &ev,
                                 &why);
        if (rc == SS_ERR_NOMEM)
                return rc;

        struct stream_job *j = &s->jobs[s->cur];
        struct files_batch *b = &j->batch;
        size_t mark = b->text.len;
        if (rc != SS_OK) {
                rc = set_aside(j, msg, &why);
        } else {
                event_csv_row(&ev, s->cfg->export_neutralise != 0, &b->text);
                struct files_row row = {
                        ev.client_id,   timefmt_day(ev.occurred_us),
                        ev.occurred_us, ev.movement_id,
                        mark,           b->text.len - mark
                };
                rc = files_batch_push(b, &row);
        }
        if (rc != SS_OK) {
                /* Not taken: the row text must not linger either. */
                b->text.len = b->text.failed ? 0 : mark;
                return SS_ERR_NOMEM;
        }
        sp->next = msg->offset + 1;
        sp->job_next = msg->offset + 1;
        if (j->opened_ms == 0)
                j->opened_ms = now_ms;
        return SS_OK;
}

/* --- sealing (main thread side; s->mu held) ------------------------- */

static void commit_hint(const struct stream_job *j, rd_kafka_t *consumer)
{
        /* Only a hint: the checkpoint is the record, and refused commits
         * (the mock broker refuses them during rebalances) cost nothing. */
        if (consumer == NULL || j->noffs == 0)
                return;
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new((int)j->noffs);
        for (size_t i = 0; i < j->noffs; i++)
                rd_kafka_topic_partition_list_add(l, j->offs[i].topic,
                                                  j->offs[i].partition)
                        ->offset = j->offs[i].next;
        rd_kafka_commit(consumer, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
}

/* Takes a finished seal's result: IDLE after a success, FAILED (with a
 * retry time) after a failure. */
static void collect(struct stream *s, rd_kafka_t *consumer, int64_t now)
{
        struct stream_job *j = &s->jobs[1 - s->cur];
        struct log_line l;
        if (s->result != SS_OK) {
                s->backoff_ms =
                        s->backoff_ms ? s->backoff_ms * 2 : RETRY_MIN_MS;
                if (s->backoff_ms > RETRY_MAX_MS)
                        s->backoff_ms = RETRY_MAX_MS;
                s->retry_at = now + s->backoff_ms;
                s->state = SEALER_FAILED;
                log_begin(&l, LOG_ERROR, "audit_seal_failed");
                log_kvi(&l, "rows", (long long)j->rows);
                log_kvi(&l, "retry_ms", s->backoff_ms);
                log_err(&l, &s->result_err);
                log_end(&l);
                return;
        }
        commit_hint(j, consumer);
        s->files_total += (long long)s->result_files;
        s->dead_total += (long long)j->ndead;
        s->seals++;
        log_begin(&l, LOG_INFO, "audit_sealed");
        log_kvi(&l, "rows", (long long)j->rows);
        log_kvi(&l, "files", (long long)s->result_files);
        log_kvi(&l, "dead_letters", (long long)j->ndead);
        log_kvi(&l, "rows_total", s->rows_total);
        log_kvi(&l, "dead_letters_total", s->dead_total);
        log_kvi(&l, "dur_ms", s->result_ms);
        log_end(&l);
        job_clear(j);
        s->backoff_ms = 0;
        s->state = SEALER_IDLE;
}

/* Hands the filling job to the idle sealer and starts a new one. */
static void submit(struct stream *s)
{
        struct stream_job *j = &s->jobs[s->cur];
        size_t n = 0;
        for (size_t i = 0; i < s->nparts; i++)
                n += s->parts[i].job_next >= 0;
        j->offs = calloc(n + 1, sizeof(*j->offs));
        if (j->offs == NULL)
                return; /* tried again on the next tick */
        for (size_t i = 0; i < s->nparts; i++) {
                if (s->parts[i].job_next < 0)
                        continue;
                struct files_offset *o = &j->offs[j->noffs];
                o->topic = strdup(s->cfg->topic_movements);
                if (o->topic == NULL) {
                        job_clear(j); /* frees offs; rows stay */
                        return;
                }
                o->partition = (int32_t)i;
                o->next = s->parts[i].job_next;
                j->noffs++;
        }
        for (size_t i = 0; i < s->nparts; i++)
                s->parts[i].job_next = -1;
        j->rows = j->batch.nrows;
        s->rows_total += (long long)j->rows;
        s->cur = 1 - s->cur;
        s->state = SEALER_BUSY;
        pthread_cond_broadcast(&s->cv);
}

static bool due(const struct stream *s, const struct stream_job *j, int64_t now)
{
        return j->opened_ms != 0 &&
               (job_full(s, j) ||
                now - j->opened_ms >= s->cfg->exporter_flush_ms);
}

static void wait_not_busy(struct stream *s)
{
        while (s->state == SEALER_BUSY)
                pthread_cond_wait(&s->cv, &s->mu);
}

void stream_tick(struct stream *s, rd_kafka_t *consumer, int64_t now_ms)
{
        pthread_mutex_lock(&s->mu);
        if (s->state == SEALER_DONE)
                collect(s, consumer, now_ms);
        if (s->state == SEALER_FAILED && now_ms >= s->retry_at) {
                s->state = SEALER_BUSY;
                pthread_cond_broadcast(&s->cv);
        }
        struct stream_job *j = &s->jobs[s->cur];
        if (s->state == SEALER_BUSY && job_full(s, j)) {
                /* Both batches full: wait rather than grow. */
                wait_not_busy(s);
                collect(s, consumer, mono_ms());
        }
        if (s->state == SEALER_IDLE && due(s, j, now_ms))
                submit(s);
        pthread_mutex_unlock(&s->mu);
}

bool stream_full(const struct stream *s)
{
        /* jobs[cur] and cur only change on the calling thread. */
        return job_full(s, &s->jobs[s->cur]);
}

bool stream_stalled(struct stream *s)
{
        pthread_mutex_lock(&s->mu);
        bool stalled =
                s->state == SEALER_FAILED && job_full(s, &s->jobs[s->cur]);
        pthread_mutex_unlock(&s->mu);
        return stalled;
}

/* Waits for the sealer and takes its result; err gets a failure. */
static enum ss_err
settle(struct stream *s, rd_kafka_t *consumer, struct ss_error *err)
{
        wait_not_busy(s);
        if (s->state == SEALER_DONE)
                collect(s, consumer, mono_ms());
        if (s->state == SEALER_FAILED) {
                *err = s->result_err;
                return err->code;
        }
        return SS_OK;
}

enum ss_err
stream_flush(struct stream *s, rd_kafka_t *consumer, struct ss_error *err)
{
        pthread_mutex_lock(&s->mu);
        enum ss_err rc = settle(s, consumer, err);
        if (rc != SS_OK) {
                /* One more try, now, for the batch that failed. */
                s->state = SEALER_BUSY;
                pthread_cond_broadcast(&s->cv);
                rc = settle(s, consumer, err);
        }
        if (rc == SS_OK && s->jobs[s->cur].opened_ms != 0) {
                submit(s);
                if (s->state != SEALER_BUSY)
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                else
                        rc = settle(s, consumer, err);
        }
        pthread_mutex_unlock(&s->mu);
        return rc;
}

void stream_drop(struct stream *s)
{
        pthread_mutex_lock(&s->mu);
        wait_not_busy(s);
        if (s->state == SEALER_DONE)
                collect(s, NULL, mono_ms());
        if (s->state == SEALER_FAILED) {
                s->rows_total -= (long long)s->jobs[1 - s->cur].rows;
                job_clear(&s->jobs[1 - s->cur]);
                s->state = SEALER_IDLE;
        }
        job_clear(&s->jobs[s->cur]);
        for (size_t i = 0; i < s->nparts; i++)
                s->parts[i] = (struct stream_part){ -1, -1 };
        s->backoff_ms = 0;
        pthread_mutex_unlock(&s->mu);
}
