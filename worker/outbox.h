/* The outbox publisher: a thread that moves rows of the `outbox` table to
 * Kafka and marks a row sent only after the broker acknowledged it.
 *
 * One round claims up to OUTBOX_BATCH pending rows in id order with
 * FOR UPDATE SKIP LOCKED (so several worker processes can publish side by
 * side), produces each to the topic of its kind (status, movement, dlq)
 * with its key and headers, waits for every delivery report of the batch,
 * then in the same transaction sets sent_at on the delivered rows and
 * attempts + 1 and last_error on the others, which stay pending and go out
 * in a later round with the same payload (case C08). A crash between
 * delivery and the marking sends those rows again: the audit topic is
 * at-least-once, and consumers key on movement_id / request_id.
 *
 * Rounds run when a transaction that wrote outbox rows commits (NOTIFY on
 * channel stocksync_outbox, from the trigger in
 * schemas/sql/005_outbox_notify.sql), every OUTBOX_INTERVAL_MS anyway, at
 * once again after a full batch, and with a growing pause while nothing
 * can be delivered. */
#ifndef SS_OUTBOX_H
#define SS_OUTBOX_H

#include <stddef.h>

#include "../common/config.h"
#include "../common/err.h"

#define OUTBOX_CHANNEL "stocksync_outbox"

struct outbox;

/* Counters since outbox_new(). */
struct outbox_stats {
        unsigned long long rounds;
        unsigned long long published; /* rows marked sent */
        unsigned long long failed;    /* failed deliveries (rows retried) */
        unsigned long long db_errors; /* rounds lost to a database error */
};

/* Returns a new publisher with its own producer (free with outbox_free),
 * or NULL with err set (SS_ERR_CONFIG, SS_ERR_KAFKA, SS_ERR_NOMEM). The
 * database is connected by the thread, which keeps trying while it is
 * down. cfg is borrowed and must outlive it. */
struct outbox *outbox_new(const struct config *cfg, struct ss_error *err);

/* Starts the publishing thread. Returns SS_ERR_INTERNAL when it cannot. */
enum ss_err outbox_start(struct outbox *o, struct ss_error *err) SS_MUSTCHECK;

/* Asks the thread to stop after a final drain: it keeps publishing while
 * rows are pending, for at most drain_ms, then gives back what is still
 * undelivered (those rows stay pending) and exits. Waits for the thread.
 * Safe to call when it was never started, and twice. */
void outbox_stop(struct outbox *o, int drain_ms);

/* Copies the counters (safe while the thread runs). */
void outbox_stats(struct outbox *o, struct outbox_stats *out);

/* Stops the thread (with no drain) if it runs, logs the counters and frees
 * everything; o may be NULL. */
void outbox_free(struct outbox *o);

#endif
