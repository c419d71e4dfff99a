/* Loading an integration row. */
#include "integration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/db.h"

static char *dup_val(const PGresult *res, int col)
{
        const char *v = db_val(res, 0, col);
        return v ? strdup(v) : NULL;
}

enum ss_err integration_load(PGconn *conn,
                             long long id,
                             struct integration *out,
                             struct ss_error *err)
{
        memset(out, 0, sizeof(*out));
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", id);
        const char *params[] = { idbuf };
        PGresult *res = db_query(
                conn,
                "SELECT id, client_id, platform, store_url, "
                "credentials::text, store_location_id, active, "
                "stock_sync_enabled, stock_master = 'ecommerce', "
                "pull_location_id, buffer_qty, coalesce(max_list_qty, -1), "
                "push_discontinued_as_zero, sku_case_insensitive, "
                "guard_max_zeroed, guard_max_drop_pct::float8, "
                "guard_max_item_drop, coalesce(batch_size, 0), "
                "coalesce(page_size, 0), "
                "(SELECT pickable FROM locations WHERE id = pull_location_id) "
                "FROM integrations WHERE id = $1",
                1, params, err, NULL);
        if (res == NULL)
                return SS_ERR_DB;
        if (PQntuples(res) == 0) {
                PQclear(res);
                return ss_error_set(err, SS_ERR_UNKNOWN_INTEGRATION,
                                    "integration %lld does not exist", id);
        }
        out->id = db_ll(res, 0, 0, 0);
        out->client_id = db_ll(res, 0, 1, 0);
        snprintf(out->platform, sizeof(out->platform), "%s", db_val(res, 0, 2));
        out->store_url = dup_val(res, 3);
        out->credentials = dup_val(res, 4);
        out->store_location_id = dup_val(res, 5);
        out->active = db_bool(res, 0, 6);
        out->sync_enabled = db_bool(res, 0, 7);
        out->store_is_master = db_bool(res, 0, 8);
        out->pull_location_id = db_ll(res, 0, 9, 0);
        out->buffer_qty = db_ll(res, 0, 10, 0);
        out->max_list_qty = db_ll(res, 0, 11, -1);
        out->push_discontinued_as_zero = db_bool(res, 0, 12);
        out->case_insensitive = db_bool(res, 0, 13);
        out->guard.max_zeroed = db_ll(res, 0, 14, 10);
        out->guard.max_drop_pct = strtod(db_val(res, 0, 15), NULL);
        out->guard.max_item_drop = db_ll(res, 0, 16, 500);
        out->batch_size = (unsigned)db_ll(res, 0, 17, 0);
        out->page_size = (unsigned)db_ll(res, 0, 18, 0);
        out->pull_location_pickable = db_bool(res, 0, 19);
        PQclear(res);
        if (out->store_url == NULL || out->credentials == NULL) {
                integration_free(out);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        return SS_OK;
}

void integration_free(struct integration *it)
{
        free(it->store_url);
        free(it->credentials);
        free(it->store_location_id);
        memset(it, 0, sizeof(*it));
}
