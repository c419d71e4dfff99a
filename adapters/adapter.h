/* The one interface between the worker and a store platform. An adapter
 * speaks one platform's inventory API through common/http and common/json
 * and trades plain data: levels read from the store, and absolute writes
 * with a per-item outcome. It knows nothing of Kafka, PostgreSQL or the sync
 * rules, and the worker never asks which platform it holds. */
#ifndef SS_ADAPTER_H
#define SS_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "../common/err.h"
#include "../common/http.h"

/* One stock level as the store reports it. */
struct store_level {
        char *sku;         /* owned; exactly as the store sent it */
        char *item_id;     /* owned; the store's id to write this level by */
        char *location_id; /* owned; store location, NULL if none */
        char *name;        /* owned; display name, may be NULL */
        long long qty;     /* meaningful only when qty_known */
        bool qty_known;    /* false: missing/null, or not stocked there */
        bool tracked;      /* false: the store does not count stock */
};

struct store_levels {
        struct store_level *v; /* owned */
        size_t n;
        size_t cap;
};

/* Appends a copy of the given fields; NULL strings stay NULL. */
enum ss_err store_levels_add(struct store_levels *l, const char *sku,
                             const char *item_id, const char *location_id,
                             const char *name, long long qty, bool qty_known,
                             bool tracked) SS_MUSTCHECK;
void store_levels_free(struct store_levels *l);

/* One absolute write. The caller fills the inputs and sets result to
 * SS_ERR_NOT_ATTEMPTED; the adapter sets result (and reason) for every item
 * it got a verdict on. */
struct store_write {
        const char *sku;         /* borrowed */
        const char *item_id;     /* borrowed: store_level.item_id */
        const char *location_id; /* borrowed: store_level.location_id */
        long long qty;           /* the new level */
        long long expected;      /* the level read before (compare-and-set) */
        enum ss_err result;      /* SS_OK or an item error */
        char reason[160];        /* the store's words for a failure */
};

/* Settings for one integration, all borrowed for the adapter's lifetime. */
struct adapter_config {
        const char *store_url;   /* base URL, no trailing slash needed */
        yajl_val credentials;    /* JSON object; keys per platform */
        const char *location_id; /* store location; NULL = the default */
        const char *request_id;  /* for idempotency keys and references */
        unsigned batch_size;     /* 0 = the platform's maximum */
        unsigned page_size;      /* 0 = the platform's maximum */
};

struct adapter;

struct adapter_ops {
        const char *platform;    /* "shopify", "woocommerce", ... */
        const char *api_version; /* the API version the adapter targets */
        unsigned max_batch;      /* items per write call, platform limit */
        unsigned max_page;       /* items per read page, platform limit */
        /* set_levels rejects an item whose store level is no longer
         * `expected` with SS_ERR_STALE instead of overwriting it. */
        bool compare_and_set;

        /* Validates config (missing credential keys: SS_ERR_CONFIG) and
         * returns a new session in *out, freed with close(). The http
         * client is borrowed and must outlive the session. */
        enum ss_err (*open)(const struct adapter_config *cfg,
                            struct http_client *http, struct adapter **out,
                            struct ss_error *err);
        void (*close)(struct adapter *a);

        /* Appends the store's levels at the configured location: every
         * item when skus is NULL, else only items whose SKU equals one of
         * skus[0..nskus) byte for byte. Items without a SKU are skipped.
         * On error, out may hold the levels read so far. */
        enum ss_err (*list_levels)(struct adapter *a, const char *const *skus,
                                   size_t nskus, struct store_levels *out,
                                   struct ss_error *err);

        /* Writes w[0..n) in batches of at most the batch size. Returns
         * SS_OK when every batch got an answer (items may still have
         * failed); another code when the request as a whole must stop, in
         * which case items not yet answered keep SS_ERR_NOT_ATTEMPTED. */
        enum ss_err (*set_levels)(struct adapter *a, struct store_write *w,
                                  size_t n, struct ss_error *err);
};

/* The adapter for a platform name, or NULL when none is built in. */
const struct adapter_ops *adapter_find(const char *platform);

/* NULL-terminated list of every built-in adapter. */
extern const struct adapter_ops *const adapter_all[];

#endif
