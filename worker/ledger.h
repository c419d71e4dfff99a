/* What the sync needs from the warehouse database: a client's units with
 * their stock figures, applying pulled levels as movements, and recording
 * what a push did. */
#ifndef SS_LEDGER_H
#define SS_LEDGER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/err.h"

struct unit_row {
        long long id;
        char *sku;  /* owned */
        char *name; /* owned */
        bool discontinued;
        long long buffer;          /* per-unit safety stock, -1 if unset */
        long long onhand_pickable; /* in pickable locations */
        long long allocated;       /* open order allocations */
        long long at_location;     /* on hand at the pull location */
};

struct unit_rows {
        struct unit_row *v; /* owned */
        size_t n;
};

/* Loads the units of client (only unit_id when non-zero) with their
 * figures; location_id is the integration's pull location. */
enum ss_err ledger_load_units(PGconn *conn,
                              long long client_id,
                              long long unit_id,
                              long long location_id,
                              struct unit_rows *out,
                              struct ss_error *err) SS_MUSTCHECK;
void unit_rows_free(struct unit_rows *u);

/* One pulled level to apply. */
struct pull_item {
        long long unit_id;
        const char *sku;    /* borrowed */
        long long target;   /* the store's level */
        long long before;   /* out: on hand at the location before */
        enum ss_err result; /* out: SS_OK, or SS_ERR_NEGATIVE_STOCK */
        bool changed;       /* out: a movement was written */
};

/* Inside the caller's transaction: locks the stock rows of the items at
 * the integration's pull location, and writes one `ecommerce_pull`
 * movement per unit whose on-hand there differs from its target. The
 * change goes to the row without serial/batch/lot; a unit whose tracked
 * rows alone exceed the target cannot be lowered by a pull and fails with
 * SS_ERR_NEGATIVE_STOCK. */
enum ss_err ledger_apply_pull(PGconn *conn,
                              long long integration_id,
                              long long location_id,
                              const char *request_id,
                              struct pull_item *items,
                              size_t n,
                              struct ss_error *err) SS_MUSTCHECK;

/* One pushed unit's outcome. */
struct push_row {
        long long unit_id;
        const char *sku;     /* borrowed */
        const char *item_id; /* borrowed, may be NULL */
        long long store_before;
        long long sent;      /* LLONG_MIN: nothing sent */
        const char *outcome; /* pushed, unchanged, failed, not_attempted */
        const char *reason;  /* borrowed, may be NULL */
};

/* Inside the caller's transaction: records rows[0..n) in push_results. */
enum ss_err ledger_record_push(PGconn *conn,
                               const char *request_id,
                               const struct push_row *rows,
                               size_t n,
                               struct ss_error *err) SS_MUSTCHECK;

#endif
