/* Runs consumed request messages on WORKER_THREADS threads, each with its
 * own processor (database connection, HTTP client). A message goes to the
 * thread picked by a hash of its key (the integration id), so one
 * integration's requests run one after another in offset order while
 * other integrations run beside them. Each thread has a bounded queue;
 * when it is full, dispatch_try_submit() says so and the consumer pauses
 * the partition (flow control lives in consumer.c).
 *
 * A message is marked done in the offsets tracker only when
 * processor_handle() returns SS_OK. On SS_ERR_DB (or any other failure)
 * the same message is tried again after a growing pause, and is never
 * skipped; it is given up (abandoned, so its offset is not committed) only
 * when its partition is revoked or the worker stops. */
#ifndef SS_DISPATCH_H
#define SS_DISPATCH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/config.h"
#include "../common/err.h"
#include "offsets.h"

struct dispatch;

/* Returns a new dispatcher with cfg->worker_threads threads running, each
 * queue holding up to queue_cap messages (free with dispatch_free), or
 * NULL with err set: SS_ERR_NOMEM, SS_ERR_INTERNAL when a thread cannot
 * start, or the code of processor_new() other than SS_ERR_DB. A database
 * that cannot be reached is not fatal: the thread makes its processor when
 * its first message comes, retrying like a failed message. cfg and t are
 * borrowed and must outlive it. */
struct dispatch *dispatch_new(const struct config *cfg,
                              struct offsets *t,
                              size_t queue_cap,
                              struct ss_error *err);

/* Hands msg to its thread when that thread's queue holds fewer than limit
 * messages (limit is capped at queue_cap) and returns true: the dispatcher
 * then owns msg and destroys it. Returns false, msg still the caller's,
 * when the queue is that full or the dispatcher is stopping. msg must have
 * been recorded with offsets_begin(). */
bool dispatch_try_submit(struct dispatch *d,
                         rd_kafka_message_t *msg,
                         size_t limit);

/* Queue capacity, as given to dispatch_new(). */
size_t dispatch_queue_cap(const struct dispatch *d);

/* Removes the queued (not yet started) messages of topic/partition, or of
 * every partition when topic is NULL, abandons them in the tracker and
 * destroys them. Returns how many were removed. Messages already running
 * are not touched. */
size_t
dispatch_cancel(struct dispatch *d, const char *topic, int32_t partition);

/* Stops taking messages, drops what is queued (as dispatch_cancel(NULL)),
 * lets each thread finish the message it is running, and joins the
 * threads. A message waiting to retry is abandoned. Safe to call twice. */
void dispatch_stop(struct dispatch *d);

/* Stops (if not yet) and frees d with its processors; d may be NULL. Logs
 * the counters. */
void dispatch_free(struct dispatch *d);

#endif
