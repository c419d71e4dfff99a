/* Availability and the safety guardrail. */
#include "rules.h"

#include <stdio.h>

long long rules_available(long long onhand_pickable,
                          long long allocated,
                          long long buffer,
                          long long max_list)
{
        long long a = onhand_pickable - allocated - buffer;
        if (max_list >= 0 && a > max_list)
                a = max_list;
        return a < 0 ? 0 : a;
}

enum guard_rule rules_guardrail(const struct guard_item *items,
                                size_t n,
                                const struct guard_limits *lim,
                                struct guard_verdict *v)
{
        *v = (struct guard_verdict){ .rule = GUARD_PASS };
        for (size_t i = 0; i < n; i++) {
                const struct guard_item *it = &items[i];
                long long before = it->before > 0 ? it->before : 0;
                if (before > 0 && it->after == 0)
                        v->zeroed++;
                v->total_before += before;
                v->total_after += it->after;
                if (before - it->after > v->worst_item_drop)
                        v->worst_item_drop = before - it->after;
        }
        if (v->total_before > 0 && v->total_after < v->total_before)
                v->drop_pct = 100.0 *
                              (double)(v->total_before - v->total_after) /
                              (double)v->total_before;

        if (v->zeroed > lim->max_zeroed) {
                v->rule = GUARD_ZEROED;
                snprintf(v->message, sizeof(v->message),
                         "%lld items would go from in stock to 0 (limit "
                         "%lld)",
                         v->zeroed, lim->max_zeroed);
        } else if (n >= GUARD_PCT_MIN_ITEMS &&
                   v->drop_pct > lim->max_drop_pct) {
                v->rule = GUARD_TOTAL_DROP;
                snprintf(v->message, sizeof(v->message),
                         "total available would drop by %.1f%% (%lld to "
                         "%lld; limit %.1f%%)",
                         v->drop_pct, v->total_before, v->total_after,
                         lim->max_drop_pct);
        } else if (v->worst_item_drop > lim->max_item_drop) {
                v->rule = GUARD_ITEM_DROP;
                snprintf(v->message, sizeof(v->message),
                         "an item would drop by %lld units (limit %lld)",
                         v->worst_item_drop, lim->max_item_drop);
        }
        return v->rule;
}

bool rules_guard_offends(const struct guard_item *item,
                         enum guard_rule rule,
                         const struct guard_limits *lim)
{
        long long before = item->before > 0 ? item->before : 0;
        switch (rule) {
        case GUARD_ZEROED:
                return before > 0 && item->after == 0;
        case GUARD_TOTAL_DROP:
                return item->after < before;
        case GUARD_ITEM_DROP:
                return before - item->after > lim->max_item_drop;
        case GUARD_PASS:
                break;
        }
        return false;
}

const char *rules_guard_name(enum guard_rule rule)
{
        switch (rule) {
        case GUARD_ZEROED:
                return "max_zeroed";
        case GUARD_TOTAL_DROP:
                return "max_drop_pct";
        case GUARD_ITEM_DROP:
                return "max_item_drop";
        case GUARD_PASS:
                break;
        }
        return "pass";
}
