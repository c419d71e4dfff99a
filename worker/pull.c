/* Pull: the store's levels become the warehouse's, one `ecommerce_pull`
 * movement per change, at the integration's pull location.
 *
 * The store shows what may be sold, which is what a push sends: pickable
 * on-hand - open allocations - buffer (capped). So when the pull location
 * is pickable, pull sets it to the on-hand that makes that figure equal to
 * the store's level, not to the store's level itself; otherwise stock held
 * in other pickable locations, allocations and the buffer would be added
 * again on every push -> pull cycle and the next push would oversell.
 * Pull then push sends the store the level it already shows. A pull
 * location outside availability (receiving, say) takes the store's level
 * as is. */
#include <limits.h>
#include <stdlib.h>

#include "../common/db.h"
#include "../common/log.h"
#include "rules.h"
#include "status.h"
#include "sync.h"

/* The on-hand at the pull location that makes the unit's availability
 * equal to store (see the top of this file). *clamped counts units whose
 * other pickable locations alone hold more than the store shows. */
static long long pull_target(const struct integration *it,
                             const struct unit_row *ur,
                             long long store,
                             size_t *clamped)
{
        if (!it->pull_location_pickable)
                return store;
        long long buffer = ur->buffer >= 0 ? ur->buffer : it->buffer_qty;
        /* Already in agreement (this also covers a level at the listing
         * cap, which says nothing about the stock behind it). */
        if (rules_available(ur->onhand_pickable, ur->allocated, buffer,
                            it->max_list_qty) == store)
                return ur->at_location;
        long long elsewhere = ur->onhand_pickable - ur->at_location;
        long long target = store + ur->allocated + buffer - elsewhere;
        if (target < 0) {
                (*clamped)++;
                return 0;
        }
        return target;
}

/* Decides, per matched unit, whether its store level can be pulled. */
static size_t plan_pull(struct sync_ctx *ctx,
                        const struct unit_rows *units,
                        const struct store_levels *levels,
                        const struct match_result *m,
                        struct pull_item *items)
{
        struct report *rep = ctx->rep;
        size_t n = 0, clamped = 0;
        for (size_t u = 0; u < units->n; u++) {
                long l = m->level_of_unit[u];
                if (l < 0)
                        continue;
                const struct unit_row *ur = &units->v[u];
                const struct store_level *lv = &levels->v[l];
                enum ss_err why = SS_OK;
                if (ur->discontinued)
                        why = SS_ERR_DISCONTINUED;
                else if (!lv->tracked)
                        why = SS_ERR_NOT_TRACKED;
                else if (!lv->qty_known)
                        why = SS_ERR_QTY_UNKNOWN;
                if (why != SS_OK) {
                        /* Unknown is not zero: such items stay as they are. */
                        rep->skipped++;
                        report_item(rep, RL_SKIPPED, ur->sku, ss_err_name(why),
                                    NULL, ur->at_location, LLONG_MIN, NULL);
                        continue;
                }
                if (lv->qty < 0) {
                        rep->failed++;
                        report_item(rep, RL_FAILED, ur->sku,
                                    ss_err_name(SS_ERR_NEGATIVE_STOCK),
                                    "the store's level is negative (oversold); "
                                    "warehouse stock cannot go below 0",
                                    ur->at_location, lv->qty, NULL);
                        continue;
                }
                items[n++] = (struct pull_item){
                        .unit_id = ur->id,
                        .sku = ur->sku,
                        .target =
                                pull_target(ctx->integ, ur, lv->qty, &clamped),
                };
        }
        if (clamped > 0)
                report_note(rep,
                            "%zu units hold more in other pickable locations "
                            "than the store shows; their pull location was "
                            "set to 0 and the rest left as it is",
                            clamped);
        return n;
}

static void
tally(struct report *rep, const struct pull_item *items, size_t n, bool dry_run)
{
        for (size_t i = 0; i < n; i++) {
                const struct pull_item *it = &items[i];
                if (dry_run) {
                        /* No lock was taken: compare with what was read. */
                        long long before = it->before;
                        if (before == it->target) {
                                rep->unchanged++;
                                report_item(rep, RL_UNCHANGED, it->sku, NULL,
                                            NULL, before, LLONG_MIN, NULL);
                        } else {
                                rep->changed++;
                                report_item(rep, RL_PLANNED, it->sku, NULL,
                                            NULL, before, it->target, NULL);
                        }
                } else if (it->result != SS_OK) {
                        rep->failed++;
                        report_item(rep, RL_FAILED, it->sku,
                                    ss_err_name(it->result),
                                    "tracked serial/batch/lot stock at the "
                                    "pull location exceeds the store level",
                                    it->before, it->target, NULL);
                } else if (it->changed) {
                        rep->changed++;
                        report_item(rep, RL_CHANGED, it->sku, NULL, NULL,
                                    it->before, it->target, NULL);
                } else {
                        rep->unchanged++;
                        report_item(rep, RL_UNCHANGED, it->sku, NULL, NULL,
                                    it->before, LLONG_MIN, NULL);
                }
        }
}

enum ss_err sync_pull(struct sync_ctx *ctx, struct ss_error *err)
{
        const struct sync_request *req = ctx->req;
        const struct integration *it = ctx->integ;
        struct report *rep = ctx->rep;
        struct unit_rows units = { 0 };
        struct store_levels levels = { 0 };
        struct match_result m = { 0 };
        struct pull_item *items = NULL;
        size_t n = 0;
        enum ss_err rc;

        bool store_ok;
        rc = sync_prepare(ctx, &units, &levels, &m, &store_ok, err);
        if (rc != SS_OK)
                goto out;
        if (!store_ok)
                goto finish;

        items = calloc(units.n + 1, sizeof(*items));
        if (items == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        n = plan_pull(ctx, &units, &levels, &m, items);
        rc = status_progress(ctx->conn, req, 0, (long long)n, err);
        if (rc != SS_OK)
                goto out;

finish:
        rc = db_begin(ctx->conn, err);
        if (rc != SS_OK)
                goto out;
        if (items != NULL && !req->options.dry_run)
                rc = ledger_apply_pull(ctx->conn, it->id, it->pull_location_id,
                                       req->request_id, items, n, err);
        if (items != NULL && rc == SS_OK) {
                tally(rep, items, n, req->options.dry_run);
                if (req->options.dry_run)
                        report_extra(rep, "dry_run", "true");
                if (!it->store_is_master && rep->changed > 0)
                        report_note(rep,
                                    "the warehouse is the stock master: "
                                    "this pull %s warehouse levels with the "
                                    "store's",
                                    req->options.dry_run ? "would override"
                                                         : "overrode");
                if (rep->failed > 0)
                        rep->state = rep->changed + rep->unchanged > 0
                                             ? "partial"
                                             : "failed";
        }
        if (rc == SS_OK)
                rc = status_finish(ctx->conn, req, rep, err);
        if (rc == SS_OK)
                rc = db_commit(ctx->conn, err);
        if (rc != SS_OK)
                db_rollback(ctx->conn);
out:
        free(items);
        match_result_free(&m);
        store_levels_free(&levels);
        unit_rows_free(&units);
        return rc == SS_OK ? SS_OK : SS_ERR_DB;
}
