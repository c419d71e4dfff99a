/* Database side of pull and push. Batches go to the server as arrays in
 * one statement each: a 100,000-unit pull is a handful of round trips. */
#include "ledger.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/db.h"

enum ss_err ledger_load_units(PGconn *conn,
                              long long client_id,
                              long long unit_id,
                              long long location_id,
                              struct unit_rows *out,
                              struct ss_error *err)
{
        char c[24], u[24], l[24];
        snprintf(c, sizeof(c), "%lld", client_id);
        snprintf(u, sizeof(u), "%lld", unit_id);
        snprintf(l, sizeof(l), "%lld", location_id);
        const char *p[] = { c, unit_id ? u : NULL, l };
        memset(out, 0, sizeof(*out));

        PGresult *res = db_query(
                conn,
                /* Per-unit lateral sums: each is an index lookup on the
                 * unit's own rows, so the plan stays linear in the number
                 * of units even when the table statistics are stale (a
                 * freshly loaded catalog once got a quadratic join). */
                "SELECT u.id, u.sku, u.name, u.status = 'discontinued', "
                "coalesce(u.buffer_qty, -1), coalesce(s.pickable, 0), "
                "coalesce(a.allocated, 0), coalesce(s.at_location, 0) "
                "FROM inventory_units u "
                "LEFT JOIN LATERAL (SELECT "
                "  sum(st.qty) FILTER (WHERE lo.pickable) AS pickable, "
                "  sum(st.qty) FILTER (WHERE st.location_id = $3) AS "
                "at_location "
                "  FROM stock st JOIN locations lo ON lo.id = st.location_id "
                "  WHERE st.unit_id = u.id) s ON true "
                "LEFT JOIN LATERAL (SELECT sum(al.qty) AS allocated "
                "  FROM order_allocations al "
                "  WHERE al.unit_id = u.id AND al.status = 'open') a ON true "
                "WHERE u.client_id = $1 AND ($2::bigint IS NULL OR u.id = $2) "
                "ORDER BY u.id",
                3, p, err, NULL);
        if (res == NULL)
                return SS_ERR_DB;
        size_t n = (size_t)PQntuples(res);
        out->v = calloc(n + 1, sizeof(*out->v));
        if (out->v == NULL) {
                PQclear(res);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
                struct unit_row *r = &out->v[i];
                int row = (int)i;
                r->id = db_ll(res, row, 0, 0);
                r->sku = strdup(PQgetvalue(res, row, 1));
                r->name = strdup(PQgetvalue(res, row, 2));
                r->discontinued = db_bool(res, row, 3);
                r->buffer = db_ll(res, row, 4, -1);
                r->onhand_pickable = db_ll(res, row, 5, 0);
                r->allocated = db_ll(res, row, 6, 0);
                r->at_location = db_ll(res, row, 7, 0);
                out->n = i + 1;
                if (r->sku == NULL || r->name == NULL) {
                        PQclear(res);
                        unit_rows_free(out);
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                }
        }
        PQclear(res);
        return SS_OK;
}

void unit_rows_free(struct unit_rows *u)
{
        for (size_t i = 0; i < u->n; i++) {
                free(u->v[i].sku);
                free(u->v[i].name);
        }
        free(u->v);
        u->v = NULL;
        u->n = 0;
}

/* Per-unit stock at the location, read under lock. */
struct held {
        long long unit_id;
        long long total; /* every row at the location */
        long long plain; /* the row without serial/batch/lot */
};

static int cmp_held(const void *a, const void *b)
{
        long long x = ((const struct held *)a)->unit_id;
        long long y = ((const struct held *)b)->unit_id;
        return (x > y) - (x < y);
}

static enum ss_err lock_stock(PGconn *conn,
                              long long location_id,
                              const struct pull_item *items,
                              size_t n,
                              struct held **out,
                              size_t *nout,
                              struct ss_error *err)
{
        struct buf ids = BUF_INIT;
        db_array_begin(&ids);
        for (size_t i = 0; i < n; i++)
                db_array_ll(&ids, items[i].unit_id);
        db_array_end(&ids);
        char loc[24];
        snprintf(loc, sizeof(loc), "%lld", location_id);
        const char *p[] = { loc, buf_str(&ids) };
        if (p[1] == NULL) {
                buf_free(&ids);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        /* Lock first (FOR UPDATE cannot aggregate), then sum in C. Rows are
         * locked in key order to avoid deadlocks with other writers. */
        PGresult *res = db_query(
                conn,
                "SELECT unit_id, qty, (serial = '' AND batch = '' AND lot = "
                "'') FROM stock WHERE location_id = $1 AND unit_id = "
                "ANY($2::bigint[]) ORDER BY unit_id, serial, batch, lot "
                "FOR UPDATE",
                2, p, err, NULL);
        buf_free(&ids);
        if (res == NULL)
                return SS_ERR_DB;
        int rows = PQntuples(res);
        struct held *h = calloc((size_t)rows + 1, sizeof(*h));
        size_t k = 0;
        if (h == NULL) {
                PQclear(res);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        for (int r = 0; r < rows; r++) {
                long long unit = db_ll(res, r, 0, 0);
                if (k == 0 || h[k - 1].unit_id != unit)
                        h[k++].unit_id = unit;
                long long q = db_ll(res, r, 1, 0);
                h[k - 1].total += q;
                if (db_bool(res, r, 2))
                        h[k - 1].plain += q;
        }
        PQclear(res);
        *out = h;
        *nout = k;
        return SS_OK;
}

enum ss_err ledger_apply_pull(PGconn *conn,
                              long long integration_id,
                              long long location_id,
                              const char *request_id,
                              struct pull_item *items,
                              size_t n,
                              struct ss_error *err)
{
        if (n == 0)
                return SS_OK;
        struct held *held = NULL;
        size_t nheld = 0;
        enum ss_err rc =
                lock_stock(conn, location_id, items, n, &held, &nheld, err);
        if (rc != SS_OK)
                return rc;

        struct buf units = BUF_INIT, changes = BUF_INIT, notes = BUF_INIT;
        db_array_begin(&units);
        db_array_begin(&changes);
        db_array_begin(&notes);
        size_t writes = 0;
        for (size_t i = 0; i < n; i++) {
                struct pull_item *it = &items[i];
                struct held key = { .unit_id = it->unit_id };
                struct held *h =
                        bsearch(&key, held, nheld, sizeof(*held), cmp_held);
                long long total = h ? h->total : 0;
                long long plain = h ? h->plain : 0;
                long long change = it->target - total;
                it->before = total;
                it->changed = false;
                it->result = SS_OK;
                if (change == 0)
                        continue;
                if (plain + change < 0) {
                        it->result = SS_ERR_NEGATIVE_STOCK;
                        continue;
                }
                char note[96];
                snprintf(note, sizeof(note), "store level %lld (was %lld)",
                         it->target, total);
                db_array_ll(&units, it->unit_id);
                db_array_ll(&changes, change);
                db_array_text(&notes, note);
                it->changed = true;
                writes++;
        }
        db_array_end(&units);
        db_array_end(&changes);
        db_array_end(&notes);
        free(held);

        if (writes > 0) {
                char loc[24], integ[24];
                snprintf(loc, sizeof(loc), "%lld", location_id);
                snprintf(integ, sizeof(integ), "%lld", integration_id);
                const char *p[] = { buf_str(&units), buf_str(&changes),
                                    buf_str(&notes), loc,
                                    request_id,      integ };
                if (!p[0] || !p[1] || !p[2])
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                else
                        rc = db_exec(
                                conn,
                                "INSERT INTO movements (unit_id, "
                                "location_id, reason_code, note, "
                                "qty_before, qty_after, qty_change, "
                                "request_id, integration_id) "
                                "SELECT t.u, $4, 'ecommerce_pull', t.n, 0, "
                                "0, t.c, $5, $6 FROM unnest($1::bigint[], "
                                "$2::bigint[], $3::text[]) WITH ORDINALITY "
                                "AS t(u, c, n, o) ORDER BY t.o",
                                6, p, err);
        }
        buf_free(&units);
        buf_free(&changes);
        buf_free(&notes);
        return rc;
}

enum ss_err ledger_record_push(PGconn *conn,
                               const char *request_id,
                               const struct push_row *rows,
                               size_t n,
                               struct ss_error *err)
{
        if (n == 0)
                return SS_OK;
        struct buf a[7];
        for (int k = 0; k < 7; k++) {
                a[k] = (struct buf)BUF_INIT;
                db_array_begin(&a[k]);
        }
        for (size_t i = 0; i < n; i++) {
                const struct push_row *r = &rows[i];
                if (r->unit_id)
                        db_array_ll(&a[0], r->unit_id);
                else
                        db_array_text(&a[0], NULL);
                db_array_text(&a[1], r->sku);
                db_array_text(&a[2], r->item_id);
                db_array_ll(&a[3], r->store_before);
                if (r->sent == LLONG_MIN)
                        db_array_text(&a[4], NULL);
                else
                        db_array_ll(&a[4], r->sent);
                db_array_text(&a[5], r->outcome);
                db_array_text(&a[6], r->reason);
        }
        const char *p[8] = { request_id };
        bool ok = true;
        for (int k = 0; k < 7; k++) {
                db_array_end(&a[k]);
                p[k + 1] = buf_str(&a[k]);
                ok = ok && p[k + 1] != NULL;
        }
        enum ss_err rc;
        if (!ok)
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        else
                rc = db_exec(conn,
                             "INSERT INTO push_results (request_id, unit_id, "
                             "sku, store_item_id, store_before, sent_qty, "
                             "outcome, reason) SELECT $1, * FROM "
                             "unnest($2::bigint[], $3::text[], $4::text[], "
                             "$5::bigint[], $6::bigint[], $7::text[], "
                             "$8::text[]) ON CONFLICT DO NOTHING",
                             8, p, err);
        for (int k = 0; k < 7; k++)
                buf_free(&a[k]);
        return rc;
}
