/* stocksync-exporter: one consumer on the audit topic (to rolling CSV
 * files, stream.c + files.c) and on the export request topic (one CSV per
 * request from the ledger, export.c), one producer for status events and
 * the audit dead-letter topic. */
#ifndef SS_EXPORTER_H
#define SS_EXPORTER_H

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include "../../common/config.h"
#include "../../common/err.h"

/* Runs until *stop becomes non-zero; then seals what it holds, commits
 * and closes. Returns SS_OK after a clean stop, or the error that made
 * running impossible (configuration, export directory, Kafka client). */
enum ss_err exporter_run(const struct config *cfg,
                         volatile sig_atomic_t *stop,
                         struct ss_error *err) SS_MUSTCHECK;

/* Delivery-report callback exporter_produce() relies on; set on the
 * producer's conf. */
void exporter_dr_cb(rd_kafka_t *rk,
                    const rd_kafka_message_t *msg,
                    void *opaque);

/* Produces one message and waits up to timeout_ms for its delivery
 * report; safe from any thread. hdrs may be NULL; it is consumed either
 * way. Returns SS_ERR_KAFKA (after a timeout the message may still be
 * delivered later: callers treat it as at-least-once) or SS_ERR_NOMEM. */
enum ss_err exporter_produce(rd_kafka_t *rk,
                             const char *topic,
                             const void *key,
                             size_t klen,
                             const void *payload,
                             size_t len,
                             rd_kafka_headers_t *hdrs,
                             int timeout_ms,
                             struct ss_error *err) SS_MUSTCHECK;

#endif
