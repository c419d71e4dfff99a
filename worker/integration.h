/* An integration and its sync rules, loaded from PostgreSQL. */
#ifndef SS_INTEGRATION_H
#define SS_INTEGRATION_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "../common/err.h"
#include "rules.h"

struct integration {
        long long id;
        long long client_id;
        char platform[32];
        char *store_url;         /* owned */
        char *credentials;       /* owned JSON text; secret, never logged */
        char *store_location_id; /* owned, NULL = the store's default */
        bool active;
        bool sync_enabled;
        bool store_is_master; /* stock master is the store */
        long long pull_location_id;
        long long buffer_qty;
        long long max_list_qty; /* -1: no cap */
        bool push_discontinued_as_zero;
        bool case_insensitive;
        struct guard_limits guard;
        unsigned batch_size; /* 0: the platform's maximum */
        unsigned page_size;  /* 0: the platform's maximum */
        bool pull_location_pickable;
};

/* Loads integration id into out (free with integration_free). Returns
 * SS_ERR_UNKNOWN_INTEGRATION when there is none, SS_ERR_DB on failure. */
enum ss_err integration_load(PGconn *conn,
                             long long id,
                             struct integration *out,
                             struct ss_error *err) SS_MUSTCHECK;

void integration_free(struct integration *it);

#endif
