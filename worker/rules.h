/* The push rules that need no database: what a unit may be listed at, and
 * the safety guardrail that blocks suspicious pushes before any write. */
#ifndef SS_RULES_H
#define SS_RULES_H

#include <stdbool.h>
#include <stddef.h>

/* Available to list = on-hand in pickable locations - open allocations -
 * buffer (safety stock), capped at max_list when max_list >= 0, never
 * below zero. */
long long rules_available(long long onhand_pickable,
                          long long allocated,
                          long long buffer,
                          long long max_list);

/* The percentage rule needs a base wide enough to mean something: a push
 * of one or two units that sells out is a drop of 100 % and no sign of a
 * fault. Below this many items only the count and per-item rules apply. */
#define GUARD_PCT_MIN_ITEMS 10

struct guard_limits {
        long long max_zeroed;    /* N: items going from > 0 to 0 */
        double max_drop_pct;     /* P: drop of the run's total, percent */
        long long max_item_drop; /* Q: drop of any one item, units */
};

struct guard_item {
        const char *sku;  /* borrowed */
        long long before; /* the store's level read at push time */
        long long after;  /* the level the push would write */
};

enum guard_rule {
        GUARD_PASS,
        GUARD_ZEROED,
        GUARD_TOTAL_DROP,
        GUARD_ITEM_DROP,
};

struct guard_verdict {
        enum guard_rule rule; /* the first rule that tripped, or PASS */
        long long zeroed;     /* items going from > 0 to 0 */
        long long total_before;
        long long total_after;
        double drop_pct; /* of the total; 0 when total_before is 0 */
        long long worst_item_drop;
        char message[256]; /* says which rule and by how much */
};

/* Evaluates the run items[0..n) (every item the push covers, changed or
 * not) against lim. Fills v and returns v->rule. */
enum guard_rule rules_guardrail(const struct guard_item *items,
                                size_t n,
                                const struct guard_limits *lim,
                                struct guard_verdict *v);

/* True when item contributes to rule tripping (for listing offenders). */
bool rules_guard_offends(const struct guard_item *item,
                         enum guard_rule rule,
                         const struct guard_limits *lim);

const char *rules_guard_name(enum guard_rule rule);

#endif
