/* librdkafka configuration, logging and small helpers. */
#include "kafka.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        (void)rk;
        /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
        enum log_level lvl = level <= 3   ? LOG_ERROR
                             : level == 4 ? LOG_WARN
                             : level <= 6 ? LOG_INFO
                                          : LOG_DEBUG;
        /* STOCKSYNC_KAFKA is shared by consumers and producers, so a
         * producer warns about every consumer-only property (and the
         * other way round). That is expected, not worth a warning. */
        if (lvl == LOG_WARN && strcmp(fac, "CONFWARN") == 0 &&
            strstr(buf, "will be ignored by this") != NULL)
                lvl = LOG_DEBUG;
        /* A broker connection that fails is retried by librdkafka itself;
         * only its fatal errors (reported through the error callback)
         * deserve error level. */
        if (lvl == LOG_ERROR && strcmp(fac, "FAIL") == 0)
                lvl = LOG_WARN;
        struct log_line l;
        log_begin(&l, lvl, "rdkafka");
        log_kv(&l, "fac", fac);
        log_kv(&l, "msg", buf);
        log_end(&l);
}

static enum ss_err set_prop(rd_kafka_conf_t *conf,
                            const char *k,
                            const char *v,
                            struct ss_error *err)
{
        char errstr[512];
        if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                return ss_error_set(err, SS_ERR_CONFIG, "kafka property %s: %s",
                                    k, errstr);
        return SS_OK;
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, struct ss_error *err)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char *props = NULL;
        if (conf == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
        if (set_prop(conf, "bootstrap.servers", cfg->brokers, err) != SS_OK)
                goto fail;

        props = strdup(cfg->kafka_props ? cfg->kafka_props : "");
        if (props == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto fail;
        }
        char *save = NULL;
        for (char *kv = strtok_r(props, ",", &save); kv != NULL;
             kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (eq == NULL || eq == kv) {
                        ss_error_set(err, SS_ERR_CONFIG,
                                     "STOCKSYNC_KAFKA: '%s' is not key=value",
                                     kv);
                        goto fail;
                }
                *eq = '\0';
                if (set_prop(conf, kv, eq + 1, err) != SS_OK)
                        goto fail;
        }
        free(props);
        return conf;
fail:
        free(props);
        rd_kafka_conf_destroy(conf);
        return NULL;
}

rd_kafka_t *kafka_producer_new(rd_kafka_conf_t *conf, struct ss_error *err)
{
        if (set_prop(conf, "enable.idempotence", "true", err) != SS_OK ||
            set_prop(conf, "acks", "all", err) != SS_OK) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        char errstr[512];
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (rk == NULL) {
                rd_kafka_conf_destroy(conf);
                ss_error_set(err, SS_ERR_KAFKA, "producer: %s", errstr);
        }
        return rk;
}

void kafka_log_partitions(const char *event,
                          const rd_kafka_topic_partition_list_t *parts)
{
        struct buf b = BUF_INIT;
        for (int i = 0; parts && i < parts->cnt; i++)
                buf_printf(&b, "%s%s[%d]", i ? "," : "", parts->elems[i].topic,
                           (int)parts->elems[i].partition);
        struct log_line l;
        log_begin(&l, LOG_INFO, event);
        log_kv(&l, "partitions", buf_str(&b) ? buf_str(&b) : "");
        log_end(&l);
        buf_free(&b);
}

static void plain_rebalance(rd_kafka_t *rk,
                            rd_kafka_resp_err_t e,
                            rd_kafka_topic_partition_list_t *parts,
                            void *opaque)
{
        (void)opaque;
        if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                kafka_log_partitions("partitions_assigned", parts);
                rd_kafka_assign(rk, parts);
        } else {
                kafka_log_partitions("partitions_revoked", parts);
                rd_kafka_assign(rk, NULL);
        }
}

rd_kafka_t *kafka_consumer_new(rd_kafka_conf_t *conf,
                               const char *group,
                               void (*rb)(rd_kafka_t *,
                                          rd_kafka_resp_err_t,
                                          rd_kafka_topic_partition_list_t *,
                                          void *),
                               struct ss_error *err)
{
        /* Offsets are stored by hand after the work they stand for is
         * durable; librdkafka must not store or commit on its own. */
        if (set_prop(conf, "group.id", group, err) != SS_OK ||
            set_prop(conf, "enable.auto.commit", "false", err) != SS_OK ||
            set_prop(conf, "enable.auto.offset.store", "false", err) != SS_OK ||
            set_prop(conf, "auto.offset.reset", "earliest", err) != SS_OK) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_rebalance_cb(conf, rb ? rb : plain_rebalance);

        char errstr[512];
        rd_kafka_t *rk =
                rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (rk == NULL) {
                rd_kafka_conf_destroy(conf);
                ss_error_set(err, SS_ERR_KAFKA, "consumer: %s", errstr);
                return NULL;
        }
        rd_kafka_poll_set_consumer(rk);
        return rk;
}

enum ss_err kafka_subscribe(rd_kafka_t *rk,
                            const char *const *topics,
                            size_t n,
                            struct ss_error *err)
{
        rd_kafka_topic_partition_list_t *l =
                rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++)
                rd_kafka_topic_partition_list_add(l, topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e)
                return ss_error_set(err, SS_ERR_KAFKA, "subscribe: %s",
                                    rd_kafka_err2str(e));
        return SS_OK;
}

struct sync_dr {
        rd_kafka_resp_err_t err;
        int done;
};

void kafka_dr_sync_cb(rd_kafka_t *rk,
                      const rd_kafka_message_t *msg,
                      void *opaque)
{
        (void)rk;
        (void)opaque;
        struct sync_dr *dr = msg->_private;
        if (dr != NULL) {
                dr->err = msg->err;
                dr->done = 1;
        }
}

enum ss_err kafka_produce_sync(rd_kafka_t *rk,
                               const char *topic,
                               const char *key,
                               const void *payload,
                               size_t len,
                               int timeout_ms,
                               struct ss_error *err)
{
        struct sync_dr dr = { RD_KAFKA_RESP_ERR_NO_ERROR, 0 };
        rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_OPAQUE(&dr),
                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                RD_KAFKA_V_VALUE((void *)payload, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e)
                return ss_error_set(err, SS_ERR_KAFKA, "produce to %s: %s",
                                    topic, rd_kafka_err2str(e));
        e = rd_kafka_flush(rk, timeout_ms);
        if (e)
                return ss_error_set(err, SS_ERR_KAFKA,
                                    "message to %s not delivered within %d "
                                    "ms: %s",
                                    topic, timeout_ms, rd_kafka_err2str(e));
        if (!dr.done)
                return ss_error_set(err, SS_ERR_KAFKA,
                                    "no delivery report for %s", topic);
        if (dr.err)
                return ss_error_set(err, SS_ERR_KAFKA,
                                    "message to %s not delivered: %s", topic,
                                    rd_kafka_err2str(dr.err));
        return SS_OK;
}
