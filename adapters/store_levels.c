/* The plain-data container adapters fill. */
#include "adapter.h"

#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s, bool *oom)
{
        if (s == NULL)
                return NULL;
        char *d = strdup(s);
        if (d == NULL)
                *oom = true;
        return d;
}

enum ss_err store_levels_add(struct store_levels *l, const char *sku,
                             const char *item_id, const char *location_id,
                             const char *name, long long qty, bool qty_known,
                             bool tracked)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct store_level *v = realloc(l->v, cap * sizeof(*v));
                if (v == NULL)
                        return SS_ERR_NOMEM;
                l->v = v;
                l->cap = cap;
        }
        bool oom = false;
        struct store_level lv = {
                .sku = dup_or_null(sku, &oom),
                .item_id = dup_or_null(item_id, &oom),
                .location_id = dup_or_null(location_id, &oom),
                .name = dup_or_null(name, &oom),
                .qty = qty,
                .qty_known = qty_known,
                .tracked = tracked,
        };
        if (oom) {
                free(lv.sku);
                free(lv.item_id);
                free(lv.location_id);
                free(lv.name);
                return SS_ERR_NOMEM;
        }
        l->v[l->n++] = lv;
        return SS_OK;
}

void store_levels_free(struct store_levels *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].sku);
                free(l->v[i].item_id);
                free(l->v[i].location_id);
                free(l->v[i].name);
        }
        free(l->v);
        l->v = NULL;
        l->n = l->cap = 0;
}
