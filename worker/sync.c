/* What pull and push share: reading the store for the units a request
 * covers, and matching the two sides by SKU with everything that does not
 * match listed in the report. */
#include <limits.h>
#include <stdlib.h>

#include "sync.h"

enum ss_err sync_read_store(struct sync_ctx *ctx,
                            const struct unit_rows *units,
                            struct store_levels *levels,
                            struct ss_error *err)
{
        if (ctx->req->unit_id == 0)
                return ctx->ops->list_levels(ctx->adapter, NULL, 0, levels,
                                             err);
        /* One unit: ask for its SKU only (units holds just that unit). */
        const char *sku = units->n ? units->v[0].sku : "";
        return ctx->ops->list_levels(ctx->adapter, &sku, 1, levels, err);
}

enum ss_err sync_match(struct sync_ctx *ctx,
                       const struct unit_rows *units,
                       const struct store_levels *levels,
                       struct match_result *m,
                       struct ss_error *err)
{
        const char **skus = calloc(units->n + 1, sizeof(*skus));
        if (skus == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < units->n; i++)
                skus[i] = units->v[i].sku;
        enum ss_err rc = match_skus(skus, units->n, levels,
                                    ctx->integ->case_insensitive, m);
        free(skus);
        if (rc != SS_OK)
                return ss_error_set(err, rc, "out of memory matching SKUs");
        return SS_OK;
}

void sync_report_matching(struct sync_ctx *ctx,
                          const struct unit_rows *units,
                          const struct store_levels *levels,
                          const struct match_result *m)
{
        struct report *rep = ctx->rep;
        for (size_t l = 0; l < levels->n; l++) {
                const struct store_level *lv = &levels->v[l];
                long u = m->unit_of_level[l];
                if (u == MATCH_AMBIGUOUS) {
                        report_item(rep, RL_DUPLICATED_ON_STORE, lv->sku,
                                    ss_err_name(SS_ERR_AMBIGUOUS_SKU),
                                    "the store lists this SKU on more than "
                                    "one item; none of them is synced",
                                    LLONG_MIN, LLONG_MIN, NULL);
                } else if (u == MATCH_NONE) {
                        long near = m->near_unit[l];
                        report_item(rep, RL_UNMATCHED_STORE, lv->sku,
                                    ss_err_name(SS_ERR_UNMATCHED), NULL,
                                    LLONG_MIN, LLONG_MIN,
                                    near >= 0 ? units->v[near].sku : NULL);
                }
        }
        for (size_t u = 0; u < units->n; u++)
                if (m->level_of_unit[u] == MATCH_NONE)
                        report_item(rep, RL_UNMATCHED_WAREHOUSE,
                                    units->v[u].sku,
                                    ss_err_name(SS_ERR_UNMATCHED), NULL,
                                    LLONG_MIN, LLONG_MIN, NULL);
}

enum ss_err sync_prepare(struct sync_ctx *ctx,
                         struct unit_rows *units,
                         struct store_levels *levels,
                         struct match_result *m,
                         bool *store_ok,
                         struct ss_error *err)
{
        const struct integration *it = ctx->integ;
        *store_ok = false;
        enum ss_err rc =
                ledger_load_units(ctx->conn, it->client_id, ctx->req->unit_id,
                                  it->pull_location_id, units, err);
        if (rc != SS_OK)
                return rc;
        struct ss_error serr = { 0 };
        if (sync_read_store(ctx, units, levels, &serr) != SS_OK) {
                /* The store's failure is the request's outcome, not a
                 * reason to retry the message. */
                ctx->rep->state = "failed";
                ctx->rep->error = serr;
                return SS_OK;
        }
        ctx->rep->seen = (long long)levels->n;
        rc = sync_match(ctx, units, levels, m, err);
        if (rc != SS_OK)
                return rc;
        sync_report_matching(ctx, units, levels, m);
        *store_ok = true;
        return SS_OK;
}
