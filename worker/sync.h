/* What pull and push share: the request being carried out, its
 * integration, an open adapter session, and the report being built. */
#ifndef SS_SYNC_H
#define SS_SYNC_H

#include <libpq-fe.h>

#include "../adapters/adapter.h"
#include "../common/config.h"
#include "integration.h"
#include "ledger.h"
#include "match.h"
#include "report.h"
#include "request.h"

struct sync_ctx {
        PGconn *conn;                    /* borrowed */
        const struct config *cfg;        /* borrowed */
        const struct sync_request *req;  /* borrowed */
        const struct integration *integ; /* borrowed */
        const struct adapter_ops *ops;   /* borrowed */
        struct adapter *adapter;         /* borrowed, open */
        struct report *rep;              /* borrowed, filled in */
};

/* Each runs its request to the end and commits the outcome (state,
 * movements or push results, final status event) in one transaction.
 * Store errors end in rep (failed / partial) and return SS_OK; SS_ERR_DB
 * means nothing was committed and the request may run again. */
enum ss_err sync_pull(struct sync_ctx *ctx, struct ss_error *err) SS_MUSTCHECK;
enum ss_err sync_push(struct sync_ctx *ctx, struct ss_error *err) SS_MUSTCHECK;

/* Reads the store's levels: every item, or only the requested unit's SKU.
 * Shared by pull and push. */
enum ss_err sync_read_store(struct sync_ctx *ctx,
                            const struct unit_rows *units,
                            struct store_levels *levels,
                            struct ss_error *err);

/* Lists unmatched, near-matched and duplicated SKUs of m in the report. */
void sync_report_matching(struct sync_ctx *ctx,
                          const struct unit_rows *units,
                          const struct store_levels *levels,
                          const struct match_result *m);

/* Matches units to levels by the integration's rule. */
enum ss_err sync_match(struct sync_ctx *ctx,
                       const struct unit_rows *units,
                       const struct store_levels *levels,
                       struct match_result *m,
                       struct ss_error *err);

/* Loads the units the request covers, reads their store levels and
 * matches the two, listing what does not match. SS_OK with *store_ok false
 * means the store could not be read: rep holds `failed` and the store's
 * error. Another code means the database failed. */
enum ss_err sync_prepare(struct sync_ctx *ctx,
                         struct unit_rows *units,
                         struct store_levels *levels,
                         struct match_result *m,
                         bool *store_ok,
                         struct ss_error *err) SS_MUSTCHECK;

#endif
