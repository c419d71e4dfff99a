/* Matching store items to warehouse units by SKU, one rule for pull and
 * push: surrounding whitespace is trimmed on both sides; case is
 * significant unless the integration opts into case-insensitive matching
 * (ASCII letters only). Nothing is matched silently when in doubt: a SKU the
 * store lists twice, or two units that collide under the rule, match
 * nothing and are reported; a store SKU that differs from a unit's only by
 * case is reported as a near match when case is significant. */
#ifndef SS_MATCH_H
#define SS_MATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "../adapters/adapter.h"

#define MATCH_NONE      (-1L)
#define MATCH_AMBIGUOUS (-2L)

struct match_result {
        long *level_of_unit; /* owned, [n_units]: level index, or NONE /
                                AMBIGUOUS (store lists the SKU twice or the
                                unit collides with another unit) */
        long *unit_of_level; /* owned, [n_levels]: unit index, or NONE /
                                AMBIGUOUS */
        long *near_unit;     /* owned, [n_levels]: for an unmatched level,
                                the unit whose SKU differs only by case, or
                                NONE */
        size_t n_units;
        size_t n_levels;
};

/* Matches unit_skus[0..n_units) against levels. Returns SS_OK or
 * SS_ERR_NOMEM; free the result with match_result_free(). */
enum ss_err match_skus(const char *const *unit_skus,
                       size_t n_units,
                       const struct store_levels *levels,
                       bool case_insensitive,
                       struct match_result *out) SS_MUSTCHECK;

void match_result_free(struct match_result *r);

/* Copies s into out (outsz bytes) normalised by the rule; returns false
 * when the normalised key is empty or does not fit. */
bool match_key(const char *s, bool case_insensitive, char *out, size_t outsz);

#endif
