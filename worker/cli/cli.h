/* Subcommands of the `stocksync` command line. Each returns the process
 * exit status: 0 success, 1 the operation failed or found a problem, 2 bad
 * usage. */
#ifndef SS_CLI_H
#define SS_CLI_H

#include "../../common/config.h"

int cli_migrate(const struct config *cfg, int argc, char **argv);
int cli_enqueue(const struct config *cfg, int argc, char **argv);
int cli_status(const struct config *cfg, int argc, char **argv);
int cli_verify(const struct config *cfg, int argc, char **argv);

/* Prints "stocksync: <code>: <msg>" to stderr; returns 1. */
int cli_fail(const struct ss_error *err);

#endif
