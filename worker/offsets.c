/* Per-partition in-flight offsets and the commit watermark. */
#include "offsets.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum entry_state {
        ENTRY_RUNNING,
        ENTRY_DONE,
        ENTRY_ABANDONED
};

struct entry {
        int64_t off;
        enum entry_state state;
};

/* The live entries are v[head..len), sorted by offset. Messages arrive in
 * offset order, so a new one is nearly always appended; done ones are
 * popped from the front, which is what moves the watermark. */
struct part {
        char *topic; /* owned */
        int32_t partition;
        struct entry *v; /* owned */
        size_t head, len, cap;
        size_t running;
        int64_t done_next; /* highest offset popped as done + 1, or -1 */
        int64_t committed; /* last offset recorded as committed, or -1 */
        bool cancelled;
};

struct offsets {
        pthread_mutex_t mu;
        pthread_cond_t idle; /* signalled whenever `running` drops */
        struct part **parts; /* owned, each owned */
        size_t n, cap;
};

struct offsets *offsets_new(void)
{
        struct offsets *t = calloc(1, sizeof(*t));
        if (t == NULL)
                return NULL;

        /* Waits are measured on the monotonic clock: a wall clock step must
         * not stretch or cut a revoke's wait. */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int rc = pthread_cond_init(&t->idle, &ca);
        pthread_condattr_destroy(&ca);
        if (rc != 0) {
                free(t);
                return NULL;
        }
        if (pthread_mutex_init(&t->mu, NULL) != 0) {
                pthread_cond_destroy(&t->idle);
                free(t);
                return NULL;
        }
        return t;
}

static void part_free(struct part *p)
{
        free(p->topic);
        free(p->v);
        free(p);
}

void offsets_free(struct offsets *t)
{
        if (t == NULL)
                return;
        for (size_t i = 0; i < t->n; i++)
                part_free(t->parts[i]);
        free(t->parts);
        pthread_cond_destroy(&t->idle);
        pthread_mutex_destroy(&t->mu);
        free(t);
}

/* Partitions per consumer are few (tens), so a linear scan is enough. */
static struct part *
find(struct offsets *t, const char *topic, int32_t partition, size_t *idx)
{
        for (size_t i = 0; i < t->n; i++) {
                struct part *p = t->parts[i];
                if (p->partition == partition && strcmp(p->topic, topic) == 0) {
                        if (idx)
                                *idx = i;
                        return p;
                }
        }
        return NULL;
}

static struct part *
find_or_add(struct offsets *t, const char *topic, int32_t partition)
{
        struct part *p = find(t, topic, partition, NULL);
        if (p != NULL)
                return p;

        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 8;
                struct part **nv = realloc(t->parts, cap * sizeof(*nv));
                if (nv == NULL)
                        return NULL;
                t->parts = nv;
                t->cap = cap;
        }
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return NULL;
        p->topic = strdup(topic);
        if (p->topic == NULL) {
                free(p);
                return NULL;
        }
        p->partition = partition;
        p->done_next = -1;
        p->committed = -1;
        t->parts[t->n++] = p;
        return p;
}

/* Makes room for one more entry at the end. */
static bool reserve(struct part *p)
{
        if (p->head > 0 && p->len == p->cap) {
                memmove(p->v, p->v + p->head,
                        (p->len - p->head) * sizeof(*p->v));
                p->len -= p->head;
                p->head = 0;
        }
        if (p->len < p->cap)
                return true;
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct entry *nv = realloc(p->v, cap * sizeof(*nv));
        if (nv == NULL)
                return false;
        p->v = nv;
        p->cap = cap;
        return true;
}

/* First index in [head, len) whose offset is >= off (or > off when
 * `after`). */
static size_t search(const struct part *p, int64_t off, bool after)
{
        size_t lo = p->head, hi = p->len;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                bool left = after ? p->v[mid].off <= off : p->v[mid].off < off;
                if (left)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

enum ss_err offsets_begin(struct offsets *t,
                          const char *topic,
                          int32_t partition,
                          int64_t offset)
{
        enum ss_err rc = SS_ERR_NOMEM;
        pthread_mutex_lock(&t->mu);
        struct part *p = find_or_add(t, topic, partition);
        if (p == NULL || !reserve(p))
                goto out;

        /* A lower offset than the last one only comes after a seek back;
         * it is kept in order so it still holds the watermark. */
        size_t at = p->len;
        if (p->len > p->head && p->v[p->len - 1].off > offset)
                at = search(p, offset, true);
        memmove(p->v + at + 1, p->v + at, (p->len - at) * sizeof(*p->v));
        p->v[at] = (struct entry){ offset, ENTRY_RUNNING };
        p->len++;
        p->running++;
        rc = SS_OK;
out:
        pthread_mutex_unlock(&t->mu);
        return rc;
}

static void pop_done(struct part *p)
{
        while (p->head < p->len && p->v[p->head].state == ENTRY_DONE) {
                int64_t next = p->v[p->head].off + 1;
                if (next > p->done_next)
                        p->done_next = next;
                p->head++;
        }
        if (p->head == p->len)
                p->head = p->len = 0;
}

static enum ss_err finish(struct offsets *t,
                          const char *topic,
                          int32_t partition,
                          int64_t offset,
                          enum entry_state state)
{
        enum ss_err rc = SS_ERR_NOT_FOUND;
        pthread_mutex_lock(&t->mu);
        struct part *p = find(t, topic, partition, NULL);
        if (p == NULL)
                goto out;
        size_t i = search(p, offset, false);
        while (i < p->len && p->v[i].off == offset &&
               p->v[i].state != ENTRY_RUNNING)
                i++;
        if (i == p->len || p->v[i].off != offset)
                goto out;

        p->v[i].state = state;
        p->running--;
        pop_done(p);
        pthread_cond_broadcast(&t->idle);
        rc = SS_OK;
out:
        pthread_mutex_unlock(&t->mu);
        return rc;
}

enum ss_err offsets_done(struct offsets *t,
                         const char *topic,
                         int32_t partition,
                         int64_t offset)
{
        return finish(t, topic, partition, offset, ENTRY_DONE);
}

enum ss_err offsets_abandon(struct offsets *t,
                            const char *topic,
                            int32_t partition,
                            int64_t offset)
{
        return finish(t, topic, partition, offset, ENTRY_ABANDONED);
}

size_t offsets_running(struct offsets *t, const char *topic, int32_t partition)
{
        pthread_mutex_lock(&t->mu);
        struct part *p = find(t, topic, partition, NULL);
        size_t n = p ? p->running : 0;
        pthread_mutex_unlock(&t->mu);
        return n;
}

bool offsets_wait_idle(struct offsets *t,
                       const char *topic,
                       int32_t partition,
                       int timeout_ms)
{
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }

        pthread_mutex_lock(&t->mu);
        for (;;) {
                /* Looked up on every turn: the partition may be forgotten
                 * while we sleep. */
                struct part *p = find(t, topic, partition, NULL);
                if (p == NULL || p->running == 0)
                        break;
                if (pthread_cond_timedwait(&t->idle, &t->mu, &until) ==
                    ETIMEDOUT)
                        break;
        }
        struct part *p = find(t, topic, partition, NULL);
        bool idle = p == NULL || p->running == 0;
        pthread_mutex_unlock(&t->mu);
        return idle;
}

static bool committable(const struct part *p, int64_t *out)
{
        if (p->head < p->len) {
                *out = p->v[p->head].off;
                return true;
        }
        if (p->done_next >= 0) {
                *out = p->done_next;
                return true;
        }
        return false;
}

bool offsets_committable(struct offsets *t,
                         const char *topic,
                         int32_t partition,
                         int64_t *out)
{
        pthread_mutex_lock(&t->mu);
        struct part *p = find(t, topic, partition, NULL);
        bool ok = p != NULL && committable(p, out);
        pthread_mutex_unlock(&t->mu);
        return ok;
}

void offsets_cancel(struct offsets *t, const char *topic, int32_t partition)
{
        pthread_mutex_lock(&t->mu);
        struct part *p = find(t, topic, partition, NULL);
        if (p != NULL)
                p->cancelled = true;
        pthread_mutex_unlock(&t->mu);
}

bool offsets_cancelled(struct offsets *t, const char *topic, int32_t partition)
{
        pthread_mutex_lock(&t->mu);
        struct part *p = find(t, topic, partition, NULL);
        bool c = p == NULL || p->cancelled;
        pthread_mutex_unlock(&t->mu);
        return c;
}

void offsets_forget(struct offsets *t, const char *topic, int32_t partition)
{
        pthread_mutex_lock(&t->mu);
        size_t i;
        struct part *p = find(t, topic, partition, &i);
        if (p != NULL) {
                part_free(p);
                t->parts[i] = t->parts[--t->n];
                /* Anyone waiting for this partition is done waiting. */
                pthread_cond_broadcast(&t->idle);
        }
        pthread_mutex_unlock(&t->mu);
}

static bool listed(const rd_kafka_topic_partition_list_t *l,
                   const struct part *p)
{
        for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].partition == p->partition &&
                    strcmp(l->elems[i].topic, p->topic) == 0)
                        return true;
        return false;
}

rd_kafka_topic_partition_list_t *
offsets_due(struct offsets *t,
            const rd_kafka_topic_partition_list_t *only,
            bool all)
{
        pthread_mutex_lock(&t->mu);
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new((int)t->n);
        for (size_t i = 0; l != NULL && i < t->n; i++) {
                struct part *p = t->parts[i];
                int64_t off;
                if (only != NULL && !listed(only, p))
                        continue;
                if (!committable(p, &off) || (!all && off == p->committed))
                        continue;
                rd_kafka_topic_partition_t *e =
                        rd_kafka_topic_partition_list_add(l, p->topic,
                                                          p->partition);
                e->offset = off;
        }
        pthread_mutex_unlock(&t->mu);
        return l;
}

void offsets_committed(struct offsets *t,
                       const rd_kafka_topic_partition_list_t *list)
{
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *e = &list->elems[i];
                struct part *p = find(t, e->topic, e->partition, NULL);
                if (p != NULL && e->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    e->offset >= 0)
                        p->committed = e->offset;
        }
        pthread_mutex_unlock(&t->mu);
}

void offsets_commit_failed(struct offsets *t,
                           const rd_kafka_topic_partition_list_t *list)
{
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i < list->cnt; i++) {
                const rd_kafka_topic_partition_t *e = &list->elems[i];
                struct part *p = find(t, e->topic, e->partition, NULL);
                if (p != NULL && e->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                    p->committed == e->offset)
                        p->committed = -1;
        }
        pthread_mutex_unlock(&t->mu);
}
