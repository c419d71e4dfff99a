/* stocksync-exporter: command line, signals, configuration. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/log.h"
#include "exporter.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
        (void)sig;
        stop_flag = 1;
}

static void usage(FILE *out)
{
        fputs("usage: stocksync-exporter [--help] [--version]\n"
              "Writes the movement audit topic to CSV files per client and "
              "UTC day, and\nanswers movement export requests. Configured "
              "by environment variables.\n\n",
              out);
}

int main(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--help") == 0) {
                        usage(stdout);
                        config_print_help(stdout);
                        return 0;
                }
                if (strcmp(argv[i], "--version") == 0) {
                        printf("stocksync-exporter %s\n", SS_VERSION);
                        return 0;
                }
                usage(stderr);
                return 2;
        }

        struct config cfg;
        struct ss_error err = { 0 };
        enum log_level lvl = LOG_INFO;
        if (config_load(&cfg, &err) != SS_OK) {
                log_init("exporter", LOG_INFO);
                struct log_line l;
                log_begin(&l, LOG_ERROR, "config_invalid");
                log_err(&l, &err);
                log_end(&l);
                return 2;
        }
        log_level_parse(cfg.log_level, &lvl);
        log_init("exporter", lvl);
        config_log_summary(&cfg);

        /* No SA_RESTART: a signal must cut a blocking wait short. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (exporter_run(&cfg, &stop_flag, &err) != SS_OK) {
                struct log_line l;
                log_begin(&l, LOG_ERROR, "exporter_failed");
                log_err(&l, &err);
                log_end(&l);
                return 1;
        }
        log_msg(LOG_INFO, "exporter_stopped", NULL);
        return 0;
}
