/* The Kafka side of stocksync-worker: a consumer-group member on the
 * requests topic that hands each message to the dispatcher, commits each
 * partition's watermark (offsets.h) every COMMIT_EVERY_MS and whenever it
 * gives partitions up, and pauses partitions whose messages do not fit in
 * the dispatch queues until they drain.
 *
 * Delivery is at-least-once: an offset is committed only after the
 * request's outcome is durable in PostgreSQL, so a crash repeats at most
 * the requests after the last commit, and the request-id record in
 * PostgreSQL makes a repeat change nothing. A commit the broker refuses
 * (for example REBALANCE_IN_PROGRESS during a rebalance) is logged and
 * offered again; nothing is lost by it, only repeated.
 *
 * On revoke: stop taking messages of those partitions, drop their queued
 * ones, wait for their running ones, commit their watermark synchronously,
 * then let them go. */
#ifndef SS_CONSUMER_H
#define SS_CONSUMER_H

#include <signal.h>

#include "../common/config.h"
#include "../common/err.h"

struct consumer;

/* Returns a new consumer subscribed to cfg->topic_requests in group
 * cfg->worker_group, with its dispatch threads running (free with
 * consumer_free), or NULL with err set (SS_ERR_CONFIG, SS_ERR_KAFKA,
 * SS_ERR_NOMEM, SS_ERR_INTERNAL). PostgreSQL being down is not an error
 * here (see dispatch_new). cfg is borrowed and must outlive it. */
struct consumer *consumer_new(const struct config *cfg, struct ss_error *err);

/* Consumes until *stop becomes non-zero (set by a signal handler). */
void consumer_run(struct consumer *c, volatile sig_atomic_t *stop);

/* Ends consumption cleanly: drops messages not yet started, lets the
 * running ones finish, commits the final watermarks synchronously and
 * leaves the group. Safe to call twice. */
void consumer_close(struct consumer *c);

/* Closes (if not yet) and frees c; c may be NULL. */
void consumer_free(struct consumer *c);

#endif
