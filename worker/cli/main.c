/* stocksync: the command line for people and producers. */
#include <stdio.h>
#include <string.h>

#include "../../common/log.h"
#include "cli.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: stocksync COMMAND [OPTIONS]\n"
                "\n"
                "Commands:\n"
                "  migrate [--dir DIR]      apply schemas/sql migrations in "
                "order (safe to re-run)\n"
                "  enqueue pull|push --integration N [--unit N] [--all] "
                "[--force]\n"
                "          [--bypass-guardrail] [--dry-run] [--requested-by "
                "WHO] [--id ID]\n"
                "                           put a sync request on Kafka; "
                "prints its request id\n"
                "  enqueue export --client N --units 1,2,3 [--from T] [--to "
                "T]\n"
                "                           ask stocksync-exporter for a CSV "
                "of those units' movements\n"
                "  status REQUEST_ID [--timeout SECONDS] [--no-wait] "
                "[--json]\n"
                "                           wait for a request's outcome and "
                "print it\n"
                "                           (exit 0 succeeded, 1 any other "
                "outcome or timeout)\n"
                "  verify                   check the ledger's invariants; "
                "exit 1 with the\n"
                "                           offending rows when one fails\n"
                "\n");
        config_print_help(out);
}

int main(int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
            strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        struct config cfg;
        struct ss_error err = { 0 };
        if (config_load(&cfg, &err) != SS_OK)
                return cli_fail(&err);
        enum log_level lvl = LOG_WARN;
        log_level_parse(cfg.log_level, &lvl);
        log_init("cli", lvl > LOG_WARN ? lvl : LOG_WARN);

        const char *cmd = argv[1];
        if (strcmp(cmd, "migrate") == 0)
                return cli_migrate(&cfg, argc - 1, argv + 1);
        if (strcmp(cmd, "enqueue") == 0)
                return cli_enqueue(&cfg, argc - 1, argv + 1);
        if (strcmp(cmd, "status") == 0)
                return cli_status(&cfg, argc - 1, argv + 1);
        if (strcmp(cmd, "verify") == 0)
                return cli_verify(&cfg, argc - 1, argv + 1);
        fprintf(stderr, "stocksync: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
}

int cli_fail(const struct ss_error *err)
{
        fprintf(stderr, "stocksync: %s: %s\n", ss_err_name(err->code),
                err->msg);
        return 1;
}
