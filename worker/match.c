/* SKU matching with an open-addressing hash table of normalised keys. */
#include "match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512

bool match_key(const char *s, bool case_insensitive, char *out, size_t outsz)
{
        if (s == NULL)
                return false;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
                         s[n - 1] == '\r' || s[n - 1] == '\n'))
                n--;
        if (n == 0 || n >= outsz)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (case_insensitive && c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                out[i] = c;
        }
        out[n] = '\0';
        return true;
}

/* Table slot: key (owned) -> index; dup marks a key seen twice. */
struct slot {
        char *key;
        long idx;
        bool dup;
};

struct table {
        struct slot *s;
        size_t cap;
};

static uint64_t hash(const char *k)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (; *k; k++)
                h = (h ^ (unsigned char)*k) * 1099511628211ULL;
        return h;
}

static bool table_init(struct table *t, size_t n)
{
        t->cap = 16;
        while (t->cap < n * 2)
                t->cap *= 2;
        t->s = calloc(t->cap, sizeof(*t->s));
        return t->s != NULL;
}

static void table_free(struct table *t)
{
        for (size_t i = 0; t->s && i < t->cap; i++)
                free(t->s[i].key);
        free(t->s);
        t->s = NULL;
}

static struct slot *table_find(struct table *t, const char *k)
{
        size_t i = hash(k) & (t->cap - 1);
        while (t->s[i].key != NULL && strcmp(t->s[i].key, k) != 0)
                i = (i + 1) & (t->cap - 1);
        return &t->s[i];
}

/* Inserts k -> idx, or flags the existing key as duplicated. */
static bool table_put(struct table *t, const char *k, long idx)
{
        struct slot *sl = table_find(t, k);
        if (sl->key != NULL) {
                sl->dup = true;
                return true;
        }
        sl->key = strdup(k);
        if (sl->key == NULL)
                return false;
        sl->idx = idx;
        return true;
}

static const struct slot *table_get(struct table *t, const char *k)
{
        struct slot *sl = table_find(t, k);
        return sl->key ? sl : NULL;
}

static long slot_target(const struct slot *sl)
{
        if (sl == NULL)
                return MATCH_NONE;
        return sl->dup ? MATCH_AMBIGUOUS : sl->idx;
}

enum ss_err match_skus(const char *const *unit_skus,
                       size_t n_units,
                       const struct store_levels *levels,
                       bool case_insensitive,
                       struct match_result *out)
{
        struct table units = { 0 }, folded = { 0 }, store = { 0 };
        char key[KEY_MAX];
        enum ss_err rc = SS_ERR_NOMEM;

        memset(out, 0, sizeof(*out));
        out->n_units = n_units;
        out->n_levels = levels->n;
        out->level_of_unit = malloc((n_units + 1) * sizeof(long));
        out->unit_of_level = malloc((levels->n + 1) * sizeof(long));
        out->near_unit = malloc((levels->n + 1) * sizeof(long));
        if (!out->level_of_unit || !out->unit_of_level || !out->near_unit ||
            !table_init(&units, n_units) || !table_init(&folded, n_units) ||
            !table_init(&store, levels->n))
                goto out;

        for (size_t u = 0; u < n_units; u++) {
                out->level_of_unit[u] = MATCH_NONE;
                if (match_key(unit_skus[u], case_insensitive, key,
                              sizeof(key)) &&
                    !table_put(&units, key, (long)u))
                        goto out;
                if (!case_insensitive &&
                    match_key(unit_skus[u], true, key, sizeof(key)) &&
                    !table_put(&folded, key, (long)u))
                        goto out;
        }
        for (size_t l = 0; l < levels->n; l++)
                if (match_key(levels->v[l].sku, case_insensitive, key,
                              sizeof(key)) &&
                    !table_put(&store, key, (long)l))
                        goto out;

        for (size_t l = 0; l < levels->n; l++) {
                out->unit_of_level[l] = MATCH_NONE;
                out->near_unit[l] = MATCH_NONE;
                if (!match_key(levels->v[l].sku, case_insensitive, key,
                               sizeof(key)))
                        continue;
                const struct slot *ss = table_get(&store, key);
                long u = slot_target(table_get(&units, key));
                if (ss->dup || u == MATCH_AMBIGUOUS) {
                        out->unit_of_level[l] =
                                u == MATCH_NONE ? MATCH_NONE : MATCH_AMBIGUOUS;
                        if (u >= 0)
                                out->level_of_unit[u] = MATCH_AMBIGUOUS;
                        continue;
                }
                if (u >= 0) {
                        out->unit_of_level[l] = u;
                        out->level_of_unit[u] = (long)l;
                        continue;
                }
                if (!case_insensitive &&
                    match_key(levels->v[l].sku, true, key, sizeof(key)))
                        out->near_unit[l] =
                                slot_target(table_get(&folded, key));
        }
        /* Units colliding with each other under the rule match nothing. */
        for (size_t u = 0; u < n_units; u++)
                if (match_key(unit_skus[u], case_insensitive, key,
                              sizeof(key)) &&
                    table_get(&units, key)->dup)
                        out->level_of_unit[u] = MATCH_AMBIGUOUS;
        rc = SS_OK;
out:
        table_free(&units);
        table_free(&folded);
        table_free(&store);
        if (rc != SS_OK)
                match_result_free(out);
        return rc;
}

void match_result_free(struct match_result *r)
{
        free(r->level_of_unit);
        free(r->unit_of_level);
        free(r->near_unit);
        memset(r, 0, sizeof(*r));
}
