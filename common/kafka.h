/* librdkafka set-up shared by the worker, the exporter and the CLI:
 * configuration from struct config (brokers plus STOCKSYNC_KAFKA pass-
 * through), librdkafka's log routed into our key=value log, consumers with
 * manual offset management. */
#ifndef SS_KAFKA_H
#define SS_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"

/* Returns a new conf with bootstrap.servers, the pass-through properties
 * and our log callback set, or NULL with err set (SS_ERR_CONFIG naming the
 * bad property). */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, struct ss_error *err);

/* Returns a new producer (idempotent, acks=all), or NULL with err set. conf
 * may carry callbacks already (dr_msg_cb, opaque); it is consumed either
 * way. */
rd_kafka_t *kafka_producer_new(rd_kafka_conf_t *conf, struct ss_error *err);

/* Returns a new consumer in group with auto commit and auto offset store
 * off, auto.offset.reset=earliest, and the rebalance callback rb (NULL for
 * a plain assign/unassign that logs). conf is consumed either way. */
rd_kafka_t *kafka_consumer_new(rd_kafka_conf_t *conf,
                               const char *group,
                               void (*rb)(rd_kafka_t *,
                                          rd_kafka_resp_err_t,
                                          rd_kafka_topic_partition_list_t *,
                                          void *),
                               struct ss_error *err);

/* Subscribes to topics[0..n). */
enum ss_err kafka_subscribe(rd_kafka_t *rk,
                            const char *const *topics,
                            size_t n,
                            struct ss_error *err) SS_MUSTCHECK;

/* Logs a partition list at info: event=<event> partitions=t[0,1],u[2]. */
void kafka_log_partitions(const char *event,
                          const rd_kafka_topic_partition_list_t *parts);

/* Delivery-report callback kafka_produce_sync() relies on: set it with
 * rd_kafka_conf_set_dr_msg_cb() on the producer's conf. */
void kafka_dr_sync_cb(rd_kafka_t *rk,
                      const rd_kafka_message_t *msg,
                      void *opaque);

/* Produces one message synchronously: waits for its delivery report up to
 * timeout_ms. For the CLI and tests; daemons use the outbox publisher. */
enum ss_err kafka_produce_sync(rd_kafka_t *rk,
                               const char *topic,
                               const char *key,
                               const void *payload,
                               size_t len,
                               int timeout_ms,
                               struct ss_error *err) SS_MUSTCHECK;

#endif
