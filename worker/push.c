/* Push: the warehouse's availability becomes the store's level.
 *
 * Order of decisions: the integration's gate (sync on, warehouse is the
 * stock master, unless forced); the store read; per unit the rule that may
 * leave it out (discontinued, untracked, unknown level) and the level it
 * may be listed at; the guardrail over the whole run, before anything is
 * written; then the writes, in chunks, each made race-safe against sales
 * the store takes meanwhile. Push makes no movements: push_results is its
 * trail, committed with the final state. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/db.h"
#include "../common/log.h"
#include "rules.h"
#include "status.h"
#include "sync.h"

/* Compare-and-set rounds for items the store reports stale. */
#define PUSH_CAS_ROUNDS 3

/* One unit the push covers. */
struct push_item {
        const struct unit_row *unit;
        const struct store_level *level;
        long long read;   /* the store's level at the first read */
        long long target; /* what the rules say to list */
        bool write;       /* differs, or `all` */
        struct push_row row;
        enum ss_err result; /* the store's verdict on a failed write */
        char reason[160];
};

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A sale the store took after our read is not yet known to the warehouse;
 * taking it off the target keeps the store from being set above what is
 * really left. A rise (a return on the store) is not added: the warehouse
 * decides what comes back into stock. */
static long long
adjust_for_sales(long long target, long long read, long long now)
{
        long long t = target + (now < read ? now - read : 0);
        return t < 0 ? 0 : t;
}

static enum ss_err gate(struct sync_ctx *ctx)
{
        const struct integration *it = ctx->integ;
        struct report *rep = ctx->rep;
        if (it->sync_enabled && !it->store_is_master)
                return SS_OK;
        enum ss_err why = !it->sync_enabled ? SS_ERR_SYNC_DISABLED
                                            : SS_ERR_STORE_IS_MASTER;
        const char *what = why == SS_ERR_SYNC_DISABLED
                                   ? "stock sync is disabled for this "
                                     "integration"
                                   : "the store is the stock master of this "
                                     "integration";
        if (ctx->req->options.force) {
                report_note(rep, "forced: %s; pushed anyway", what);
                return SS_OK;
        }
        rep->state = "skipped";
        ss_error_set(&rep->error, why,
                     "%s; push skipped (use force to push "
                     "anyway)",
                     what);
        return why;
}

static long long unit_buffer(const struct sync_ctx *ctx,
                             const struct unit_row *u)
{
        return u->buffer >= 0 ? u->buffer : ctx->integ->buffer_qty;
}

/* Fills items with every matched unit the rules let through; the rest are
 * counted and listed as skipped. Returns the number of items. */
static size_t plan_push(struct sync_ctx *ctx,
                        const struct unit_rows *units,
                        const struct store_levels *levels,
                        const struct match_result *m,
                        struct push_item *items)
{
        const struct integration *it = ctx->integ;
        struct report *rep = ctx->rep;
        size_t n = 0;
        for (size_t u = 0; u < units->n; u++) {
                long l = m->level_of_unit[u];
                if (l < 0)
                        continue;
                const struct unit_row *ur = &units->v[u];
                const struct store_level *lv = &levels->v[l];
                enum ss_err why = SS_OK;
                if (ur->discontinued && !it->push_discontinued_as_zero)
                        why = SS_ERR_DISCONTINUED;
                else if (!lv->tracked)
                        why = SS_ERR_NOT_TRACKED;
                else if (!lv->qty_known)
                        why = SS_ERR_QTY_UNKNOWN;
                if (why != SS_OK) {
                        rep->skipped++;
                        report_item(rep, RL_SKIPPED, ur->sku, ss_err_name(why),
                                    NULL, lv->qty_known ? lv->qty : LLONG_MIN,
                                    LLONG_MIN, NULL);
                        continue;
                }
                struct push_item *pi = &items[n++];
                memset(pi, 0, sizeof(*pi));
                pi->unit = ur;
                pi->level = lv;
                pi->read = lv->qty;
                /* Delisting a discontinued unit sends 0, never anything
                 * else. */
                pi->target = ur->discontinued
                                     ? 0
                                     : rules_available(ur->onhand_pickable,
                                                       ur->allocated,
                                                       unit_buffer(ctx, ur),
                                                       it->max_list_qty);
                pi->write = ctx->req->options.all || pi->target != pi->read;
                pi->row = (struct push_row){
                        .unit_id = ur->id,
                        .sku = lv->sku,
                        .item_id = lv->item_id,
                        .store_before = lv->qty,
                        .sent = LLONG_MIN,
                        .outcome = pi->write ? "not_attempted" : "unchanged"
                };
        }
        return n;
}

/* The guardrail over every covered item. Returns true when the push may
 * go on (passed, or bypassed and recorded). */
static bool guard(struct sync_ctx *ctx, struct push_item *items, size_t n)
{
        struct report *rep = ctx->rep;
        const struct guard_limits *lim = &ctx->integ->guard;
        struct guard_item *g = calloc(n + 1, sizeof(*g));
        if (g == NULL) {
                rep->state = "failed";
                ss_error_set(&rep->error, SS_ERR_NOMEM, "out of memory");
                return false;
        }
        for (size_t i = 0; i < n; i++)
                g[i] = (struct guard_item){ .sku = items[i].level->sku,
                                            .before = items[i].read,
                                            .after = items[i].target };
        struct guard_verdict v;
        enum guard_rule rule = rules_guardrail(g, n, lim, &v);

        struct buf j = BUF_INIT;
        buf_printf(&j,
                   "{\"rule\":\"%s\",\"zeroed\":%lld,\"total_before\":%lld,"
                   "\"total_after\":%lld,\"drop_pct\":%.1f,"
                   "\"worst_item_drop\":%lld,\"limits\":{\"max_zeroed\":%lld,"
                   "\"max_drop_pct\":%.1f,\"max_item_drop\":%lld}",
                   rules_guard_name(rule), v.zeroed, v.total_before,
                   v.total_after, v.drop_pct, v.worst_item_drop,
                   lim->max_zeroed, lim->max_drop_pct, lim->max_item_drop);
        bool go = true;
        if (rule != GUARD_PASS && ctx->req->options.bypass_guardrail) {
                buf_puts(&j, ",\"bypassed_by\":");
                buf_json_str(&j, ctx->req->requested_by);
                report_note(rep, "safety guardrail bypassed by %s: %s",
                            ctx->req->requested_by, v.message);
                struct log_line l;
                log_begin(&l, LOG_INFO, "guardrail_bypassed");
                log_kv(&l, "rule", rules_guard_name(rule));
                log_kv(&l, "requested_by", ctx->req->requested_by);
                log_end(&l);
        } else if (rule != GUARD_PASS) {
                go = false;
                rep->state = "blocked";
                ss_error_set(&rep->error, SS_ERR_GUARDRAIL,
                             "safety guardrail %s tripped: %s; nothing was "
                             "written",
                             rules_guard_name(rule), v.message);
                for (size_t i = 0; i < n; i++)
                        if (rules_guard_offends(&g[i], rule, lim))
                                report_item(rep, RL_BLOCKED, g[i].sku,
                                            rules_guard_name(rule), NULL,
                                            g[i].before, g[i].after, NULL);
        }
        buf_putc(&j, '}');
        if (buf_str(&j))
                report_extra(rep, "guardrail", buf_str(&j));
        buf_free(&j);
        free(g);
        return go;
}

/* Re-reads the store levels of items[idx[0..k)] and returns them in now[],
 * LLONG_MIN for an item the store no longer lists with a known level. */
static int cmp_level_sku(const void *a, const void *b)
{
        const struct store_level *x = *(const struct store_level *const *)a;
        const struct store_level *y = *(const struct store_level *const *)b;
        return strcmp(x->sku, y->sku);
}

/* The level in sorted[0..n) with want's SKU and, when both have one, its
 * store id (a SKU may sit on several store items); NULL if none. */
static const struct store_level *find_level(const struct store_level **sorted,
                                            size_t n,
                                            const struct store_level *want)
{
        const struct store_level **hit =
                bsearch(&want, sorted, n, sizeof(*sorted), cmp_level_sku);
        if (hit == NULL)
                return NULL;
        while (hit > sorted && strcmp(hit[-1]->sku, want->sku) == 0)
                hit--;
        for (; hit < sorted + n && strcmp((*hit)->sku, want->sku) == 0; hit++) {
                const struct store_level *got = *hit;
                if (!got->qty_known)
                        continue;
                if (want->item_id && got->item_id &&
                    strcmp(want->item_id, got->item_id) != 0)
                        continue;
                return got;
        }
        return NULL;
}

/* Re-reads the store levels of items[idx[0..k)] and returns them in now[],
 * LLONG_MIN for an item the store no longer lists with a known level. */
static enum ss_err reread(struct sync_ctx *ctx,
                          struct push_item *items,
                          const size_t *idx,
                          size_t k,
                          long long *now,
                          struct ss_error *err)
{
        const char **skus = calloc(k + 1, sizeof(*skus));
        if (skus == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < k; i++)
                skus[i] = items[idx[i]].level->sku;
        struct store_levels lv = { 0 };
        const struct store_level **sorted = NULL;
        enum ss_err rc = ctx->ops->list_levels(ctx->adapter, skus, k, &lv, err);
        if (rc == SS_OK) {
                sorted = calloc(lv.n + 1, sizeof(*sorted));
                if (sorted == NULL)
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        if (rc == SS_OK) {
                for (size_t j = 0; j < lv.n; j++)
                        sorted[j] = &lv.v[j];
                qsort(sorted, lv.n, sizeof(*sorted), cmp_level_sku);
        }
        for (size_t i = 0; i < k; i++) {
                const struct store_level *got =
                        rc == SS_OK
                                ? find_level(sorted, lv.n, items[idx[i]].level)
                                : NULL;
                now[i] = got ? got->qty : LLONG_MIN;
        }
        free(sorted);
        store_levels_free(&lv);
        free(skus);
        return rc;
}

static void record_result(struct push_item *pi, const struct store_write *w)
{
        if (w->result == SS_OK) {
                pi->row.outcome = "pushed";
                pi->row.sent = w->qty;
        } else if (w->result == SS_ERR_NOT_ATTEMPTED) {
                pi->row.outcome = "not_attempted";
        } else {
                pi->row.outcome = "failed";
                pi->result = w->result;
                snprintf(pi->reason, sizeof(pi->reason), "%s",
                         w->reason[0] ? w->reason : "refused by the store");
                pi->row.reason = pi->reason;
        }
}

/* Writes items[idx[0..k)] and records each outcome. Returns SS_OK, or the
 * request-level error that stopped the writes. */
static enum ss_err write_chunk(struct sync_ctx *ctx,
                               struct push_item *items,
                               size_t *idx,
                               size_t k,
                               struct ss_error *err)
{
        const bool cas = ctx->ops->compare_and_set;
        struct store_write *w = calloc(k + 1, sizeof(*w));
        long long *now = calloc(k + 1, sizeof(*now));
        enum ss_err rc = SS_OK;
        if (w == NULL || now == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        if (!cas) {
                /* No compare-and-set: read again right before writing, so
                 * the window in which a sale can be overwritten is one
                 * round trip, and take any sale seen since off. */
                long long t0 = now_ms();
                rc = reread(ctx, items, idx, k, now, err);
                if (rc != SS_OK)
                        goto out;
                size_t moved = 0;
                for (size_t i = 0; i < k; i++) {
                        struct push_item *pi = &items[idx[i]];
                        if (now[i] == LLONG_MIN || now[i] == pi->read)
                                continue;
                        moved++;
                        pi->target =
                                adjust_for_sales(pi->target, pi->read, now[i]);
                        pi->read = now[i];
                }
                log_msg(LOG_INFO, "push_window",
                        "items=%zu moved=%zu "
                        "reread_ms=%lld compare_and_set=false",
                        k, moved, now_ms() - t0);
        }

        size_t pending = k;
        for (int round = 0; pending > 0; round++) {
                size_t m = 0;
                for (size_t i = 0; i < pending; i++) {
                        struct push_item *pi = &items[idx[i]];
                        w[m++] = (struct store_write){
                                .sku = pi->level->sku,
                                .item_id = pi->level->item_id,
                                .location_id = pi->level->location_id,
                                .qty = pi->target,
                                .expected = pi->read,
                                .result = SS_ERR_NOT_ATTEMPTED,
                        };
                }
                rc = ctx->ops->set_levels(ctx->adapter, w, m, err);
                size_t stale = 0;
                for (size_t i = 0; i < m; i++) {
                        struct push_item *pi = &items[idx[i]];
                        if (cas && w[i].result == SS_ERR_STALE &&
                            round + 1 < PUSH_CAS_ROUNDS && rc == SS_OK) {
                                idx[stale++] = idx[i];
                                continue;
                        }
                        record_result(pi, &w[i]);
                }
                if (rc != SS_OK || stale == 0)
                        break;
                /* The store moved under us: read the stale items again and
                 * recompute before the next compare-and-set. */
                rc = reread(ctx, items, idx, stale, now, err);
                if (rc != SS_OK)
                        break;
                for (size_t i = 0; i < stale; i++) {
                        struct push_item *pi = &items[idx[i]];
                        if (now[i] == LLONG_MIN)
                                continue;
                        pi->target =
                                adjust_for_sales(pi->target, pi->read, now[i]);
                        pi->read = now[i];
                }
                log_msg(LOG_INFO, "push_stale_retry", "items=%zu round=%d",
                        stale, round + 1);
                pending = stale;
        }
out:
        free(w);
        free(now);
        return rc;
}

static void
tally(struct report *rep, struct push_item *items, size_t n, bool dry_run)
{
        for (size_t i = 0; i < n; i++) {
                struct push_item *pi = &items[i];
                const char *sku = pi->level->sku;
                if (!pi->write) {
                        rep->unchanged++;
                        report_item(rep, RL_UNCHANGED, sku, NULL, NULL,
                                    pi->read, LLONG_MIN, NULL);
                } else if (dry_run) {
                        rep->changed++;
                        report_item(rep, RL_PLANNED, sku, NULL, NULL, pi->read,
                                    pi->target, NULL);
                } else if (strcmp(pi->row.outcome, "pushed") == 0) {
                        rep->changed++;
                        report_item(rep, RL_CHANGED, sku, NULL, NULL,
                                    pi->row.store_before, pi->row.sent, NULL);
                } else {
                        rep->failed++;
                        bool na = strcmp(pi->row.outcome, "not_attempted") == 0;
                        report_item(rep, RL_FAILED, sku,
                                    ss_err_name(na ? SS_ERR_NOT_ATTEMPTED
                                                   : pi->result),
                                    na ? "not written: the push stopped "
                                         "before this item"
                                       : pi->row.reason,
                                    pi->row.store_before, pi->target, NULL);
                }
        }
}

/* Runs the writes in chunks with a progress event after each. */
static enum ss_err run_writes(struct sync_ctx *ctx,
                              struct push_item *items,
                              size_t n,
                              struct ss_error *err)
{
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
                total += items[i].write;
        size_t *idx = calloc(total + 1, sizeof(*idx));
        if (idx == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        size_t chunk = (size_t)ctx->cfg->status_progress_every;
        size_t done = 0, next = 0;
        enum ss_err rc =
                status_progress(ctx->conn, ctx->req, 0, (long long)total, err);
        while (rc == SS_OK && done < total) {
                size_t k = 0;
                while (k < chunk && next < n) {
                        if (items[next].write)
                                idx[k++] = next;
                        next++;
                }
                struct ss_error serr = { 0 };
                if (write_chunk(ctx, items, idx, k, &serr) != SS_OK) {
                        /* The store stopped the request: what is written
                         * stays recorded, the rest is not attempted. */
                        ctx->rep->error = serr;
                        break;
                }
                done += k;
                if (done < total) {
                        rc = status_progress(ctx->conn, ctx->req,
                                             (long long)done, (long long)total,
                                             err);
                        if (rc != SS_OK)
                                break;
                }
        }
        free(idx);
        return rc;
}

static enum ss_err finish(struct sync_ctx *ctx,
                          struct push_item *items,
                          size_t n,
                          struct ss_error *err)
{
        struct push_row *rows = calloc(n + 1, sizeof(*rows));
        if (rows == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                rows[k++] = items[i].row;
        enum ss_err rc = db_begin(ctx->conn, err);
        if (rc == SS_OK && k > 0 && !ctx->req->options.dry_run &&
            strcmp(ctx->rep->state, "blocked") != 0)
                rc = ledger_record_push(ctx->conn, ctx->req->request_id, rows,
                                        k, err);
        if (rc == SS_OK)
                rc = status_finish(ctx->conn, ctx->req, ctx->rep, err);
        if (rc == SS_OK)
                rc = db_commit(ctx->conn, err);
        if (rc != SS_OK)
                db_rollback(ctx->conn);
        free(rows);
        return rc;
}

enum ss_err sync_push(struct sync_ctx *ctx, struct ss_error *err)
{
        const struct sync_request *req = ctx->req;
        struct report *rep = ctx->rep;
        struct unit_rows units = { 0 };
        struct store_levels levels = { 0 };
        struct match_result m = { 0 };
        struct push_item *items = NULL;
        size_t n = 0;
        enum ss_err rc = SS_OK;

        if (gate(ctx) != SS_OK)
                goto finish;
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
        n = plan_push(ctx, &units, &levels, &m, items);
        if (!guard(ctx, items, n)) {
                /* Blocked: the verdict is the outcome; a dry run reports
                 * the same. Nothing was written. */
                for (size_t i = 0; i < n; i++)
                        if (items[i].write)
                                rep->skipped++;
                        else
                                rep->unchanged++;
                goto finish;
        }

        if (req->options.dry_run) {
                report_extra(rep, "dry_run", "true");
        } else {
                rc = run_writes(ctx, items, n, err);
                if (rc != SS_OK)
                        goto out;
        }
        tally(rep, items, n, req->options.dry_run);
        if (rep->error.code != SS_OK)
                rep->state = rep->changed > 0 ? "partial" : "failed";
        else if (rep->failed > 0)
                rep->state = rep->changed + rep->unchanged > 0 ? "partial"
                                                               : "failed";

finish:
        rc = finish(ctx, items, n, err);
out:
        free(items);
        match_result_free(&m);
        store_levels_free(&levels);
        unit_rows_free(&units);
        return rc == SS_OK ? SS_OK : SS_ERR_DB;
}
