/* Carrying out one request message, start to finish: validate it, record
 * its id (a known id is never applied twice), load the integration and its
 * rules, run the pull or push through the adapter, and commit the outcome
 * with its movements and outbox events in one PostgreSQL transaction.
 * Kafka is not touched here: the caller commits the offset once this
 * returns SS_OK. */
#ifndef SS_PROCESS_H
#define SS_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/config.h"
#include "../common/err.h"

/* A consumed message, borrowed for the duration of processor_handle(). */
struct msg_view {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key; /* may be NULL */
        size_t key_len;
        const void *payload; /* may be NULL */
        size_t len;
};

/* Per-thread state: a database connection and an HTTP client. */
struct processor;

/* Returns a new processor (free with processor_free), or NULL with err set.
 * cfg is borrowed and must outlive it. */
struct processor *processor_new(const struct config *cfg, struct ss_error *err);
void processor_free(struct processor *p);

/* Handles msg to completion. Returns SS_OK when its outcome -- applied,
 * refused, rejected (with a status event and a DLQ copy in the outbox) or
 * recognised as a duplicate -- is durable in PostgreSQL, so its offset may
 * be committed. Returns SS_ERR_DB when the database could not be reached or
 * the transaction failed for a reason that may pass: nothing was applied;
 * the caller must not commit the offset and should retry the same message
 * after a pause. */
enum ss_err processor_handle(struct processor *p,
                             const struct msg_view *msg,
                             struct ss_error *err) SS_MUSTCHECK;

#endif
