/* stocksync-worker: consumes sync requests, carries them out on worker
 * threads and publishes the outbox. Configuration comes from STOCKSYNC_*
 * environment variables (--help lists them). SIGTERM or SIGINT: stop
 * consuming, finish the running requests, commit, leave the group, publish
 * what they wrote, exit 0. */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../common/config.h"
#include "../common/log.h"
#include "consumer.h"
#include "outbox.h"

/* How long a stop may spend publishing what the last requests wrote
 * (rows left over stay pending for the next start). */
#define SHUTDOWN_DRAIN_MS 10000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

static void usage(FILE *out)
{
        fprintf(out, "usage: stocksync-worker [--help]\n\n"
                     "Consumes sync requests from Kafka and carries them "
                     "out; publishes the outbox.\n"
                     "Stops cleanly on SIGTERM or SIGINT.\n\n");
        config_print_help(out);
}

static void fail(const char *event, const struct ss_error *err)
{
        struct log_line l;
        log_begin(&l, LOG_ERROR, event);
        log_err(&l, err);
        log_end(&l);
}

int main(int argc, char **argv)
{
        if (argc > 1) {
                bool help = strcmp(argv[1], "--help") == 0 ||
                            strcmp(argv[1], "-h") == 0;
                usage(help ? stdout : stderr);
                return help ? 0 : 2;
        }

        struct config cfg;
        struct ss_error err = { 0 };
        if (config_load(&cfg, &err) != SS_OK) {
                fprintf(stderr, "stocksync-worker: %s: %s\n",
                        ss_err_name(err.code), err.msg);
                return 2;
        }
        enum log_level lvl = LOG_INFO;
        log_level_parse(cfg.log_level, &lvl);
        log_init("worker", lvl);
        config_log_summary(&cfg);

        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        int rc = 1;
        struct consumer *c = NULL;
        struct outbox *o = outbox_new(&cfg, &err);
        if (o == NULL) {
                fail("outbox_failed", &err);
                goto out;
        }
        if (outbox_start(o, &err) != SS_OK) {
                fail("outbox_failed", &err);
                goto out;
        }
        c = consumer_new(&cfg, &err);
        if (c == NULL) {
                fail("consumer_failed", &err);
                goto out;
        }

        log_msg(LOG_INFO, "worker_started", "version=%s", SS_VERSION);
        consumer_run(c, &stop);
        log_msg(LOG_INFO, "worker_stopping", "signal=1");
        rc = 0;
out:
        /* The consumer goes first, so the final outbox drain sees every
         * row its last requests wrote. */
        consumer_free(c);
        if (o != NULL)
                outbox_stop(o, SHUTDOWN_DRAIN_MS);
        outbox_free(o);
        if (rd_kafka_wait_destroyed(5000) != 0)
                log_msg(LOG_WARN, "kafka_not_destroyed", "wait_ms=%d", 5000);
        log_msg(LOG_INFO, "worker_stopped", "rc=%d", rc);
        return rc;
}
