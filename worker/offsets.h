/* Which offset of each partition may be committed. Every consumed message
 * is recorded here when it is polled and marked done once its outcome is
 * durable in PostgreSQL; the committable offset of a partition is the
 * lowest offset not yet done, so a commit never passes a message that is
 * still running, waiting in a queue or was given up (case C07).
 *
 * Messages of one partition may finish in any order (they run on several
 * threads); offsets that were never consumed (compacted away, transaction
 * markers) are simply not recorded and never block the watermark.
 *
 * Every function takes the tracker's lock: the consumer thread records and
 * commits, the dispatch threads mark done. */
#ifndef SS_OFFSETS_H
#define SS_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

struct offsets;

/* Returns a new, empty tracker (free with offsets_free), or NULL when out
 * of memory. */
struct offsets *offsets_new(void);

/* Frees t and everything it tracks; t may be NULL. */
void offsets_free(struct offsets *t);

/* Records offset of topic/partition as in flight, creating the partition's
 * state on first use. Returns SS_ERR_NOMEM (nothing recorded) when out of
 * memory. topic is copied. */
enum ss_err offsets_begin(struct offsets *t,
                          const char *topic,
                          int32_t partition,
                          int64_t offset) SS_MUSTCHECK;

/* Marks an in-flight offset done: the watermark may move past it. Returns
 * SS_ERR_NOT_FOUND when the offset is not in flight (its partition was
 * revoked meanwhile, or it was never begun). */
enum ss_err offsets_done(struct offsets *t,
                         const char *topic,
                         int32_t partition,
                         int64_t offset) SS_MUSTCHECK;

/* Gives an in-flight offset up without finishing it: it stops counting as
 * running (offsets_running) but keeps holding the watermark at itself, so
 * the next owner of the partition gets it again. Returns SS_ERR_NOT_FOUND
 * like offsets_done. */
enum ss_err offsets_abandon(struct offsets *t,
                            const char *topic,
                            int32_t partition,
                            int64_t offset) SS_MUSTCHECK;

/* Number of offsets of the partition begun and neither done nor abandoned
 * (0 for an unknown partition). */
size_t offsets_running(struct offsets *t, const char *topic, int32_t partition);

/* Waits until offsets_running() of the partition is 0 or timeout_ms have
 * passed; returns true when it is 0. */
bool offsets_wait_idle(struct offsets *t,
                       const char *topic,
                       int32_t partition,
                       int timeout_ms);

/* Sets *out to the offset to commit for the partition: the lowest offset
 * in flight or abandoned, or else the highest done offset + 1. Returns
 * false (and leaves *out alone) when nothing of the partition was done or
 * is in flight. */
bool offsets_committable(struct offsets *t,
                         const char *topic,
                         int32_t partition,
                         int64_t *out);

/* Marks the partition as being taken away: offsets_cancelled() turns true
 * so work on it that is waiting to retry gives up. Unknown partitions are
 * ignored. */
void offsets_cancel(struct offsets *t, const char *topic, int32_t partition);

/* True when the partition was cancelled or is not tracked at all. */
bool offsets_cancelled(struct offsets *t, const char *topic, int32_t partition);

/* Drops the partition's state (after its final commit on revoke). Later
 * offsets_done/abandon calls for it return SS_ERR_NOT_FOUND. */
void offsets_forget(struct offsets *t, const char *topic, int32_t partition);

/* Returns a new list (destroy with rd_kafka_topic_partition_list_destroy)
 * of the partitions whose committable offset differs from the one last
 * recorded by offsets_committed() -- or of every partition with a
 * committable offset when `all` is set (a final commit must not trust that
 * an earlier asynchronous one went through) -- with that offset set; only
 * partitions named in `only` when it is non-NULL. NULL when out of
 * memory. */
rd_kafka_topic_partition_list_t *
offsets_due(struct offsets *t,
            const rd_kafka_topic_partition_list_t *only,
            bool all);

/* Records the offsets of list elements whose err is 0 as committed, so
 * offsets_due() leaves them out until the watermark moves again. */
void offsets_committed(struct offsets *t,
                       const rd_kafka_topic_partition_list_t *list);

/* Forgets what offsets_committed() recorded for the list's partitions
 * whose err is set, so the next offsets_due() offers them again (a commit
 * refused by the broker). */
void offsets_commit_failed(struct offsets *t,
                           const rd_kafka_topic_partition_list_t *list);

#endif
