/* The outcome of one request as it is built: counts, lists of SKUs per
 * kind (bounded, with full counts), notes, and the final state. It becomes
 * the `detail` of the sync_requests row and of the final status event. */
#ifndef SS_REPORT_H
#define SS_REPORT_H

#include <stdbool.h>

#include "../common/buf.h"
#include "../common/err.h"

/* At most this many entries are listed per kind; counts stay exact. */
#define REPORT_LIST_MAX 100

enum report_list {
        RL_CHANGED,             /* pulled into the warehouse / pushed */
        RL_SKIPPED,             /* left alone by a rule, with its reason */
        RL_FAILED,              /* the store or the database refused it */
        RL_BLOCKED,             /* offenders of the guardrail */
        RL_UNMATCHED_STORE,     /* on the store, not in the warehouse */
        RL_UNMATCHED_WAREHOUSE, /* in the warehouse, not on the store */
        RL_DUPLICATED_ON_STORE, /* one SKU on several store items */
        RL_PLANNED,             /* what a dry run would write */
        RL_UNCHANGED,           /* already in agreement */
        RL__COUNT
};

struct report {
        long long seen; /* store items and units considered */
        long long changed;
        long long unchanged;
        long long skipped;
        long long failed;
        const char *state;     /* final outcome name, static string */
        struct ss_error error; /* request-level error, code 0 if none */
        long long list_count[RL__COUNT];
        struct buf lists[RL__COUNT]; /* JSON array bodies, no brackets */
        struct buf notes;            /* JSON array body of strings */
        struct buf extra;            /* extra "key":value members */
};

void report_init(struct report *r);
void report_free(struct report *r);

/* Adds an entry to a list: {"sku":..,"code":..,"reason":..,"before":..,
 * "after":..,"near":..}; code/reason/near may be NULL and before/after
 * LLONG_MIN to leave them out. */
void report_item(struct report *r,
                 enum report_list list,
                 const char *sku,
                 const char *code,
                 const char *reason,
                 long long before,
                 long long after,
                 const char *near);

/* Adds a sentence to notes. */
void report_note(struct report *r, const char *fmt, ...) SS_PRINTF(2, 3);

/* Appends `"key":<json>` to the detail object. */
void report_extra(struct report *r, const char *key, const char *json);

/* Writes the detail object (lists, notes, extras) as JSON into out. */
void report_detail_json(const struct report *r, struct buf *out);

#endif
