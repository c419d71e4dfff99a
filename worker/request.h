/* The sync request message (topic stock.sync.requests) and its validation.
 * schemas/json/sync_request.schema.json is the same contract in JSON
 * Schema; tests feed its examples to both. */
#ifndef SS_REQUEST_H
#define SS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/err.h"

#define REQUEST_ID_MAX 100

enum sync_action {
        ACTION_PULL,
        ACTION_PUSH
};

struct sync_options {
        bool force;            /* push despite sync off / store master */
        bool bypass_guardrail; /* push despite the safety guardrail */
        bool all;              /* push every unit, not only changed ones */
        bool dry_run;          /* plan and report, write nothing */
};

struct sync_request {
        char request_id[REQUEST_ID_MAX + 1];
        enum sync_action action;
        long long integration_id;
        long long unit_id; /* 0: the whole integration */
        struct sync_options options;
        char requested_by[201];
        char requested_at[64];
};

/* Validates payload[0..len) as a request. key (may be NULL) is the Kafka
 * key; when present it must be the integration id. On failure err holds
 * the code (not_json, invalid_utf8, message_too_large, missing_field,
 * bad_field, unknown_field, unknown_action, id_out_of_range, key_mismatch)
 * and out->request_id holds the request id when one could be read (else
 * ""), so the rejection can still be reported against it. */
enum ss_err request_parse(const void *payload,
                          size_t len,
                          const void *key,
                          size_t key_len,
                          size_t max_bytes,
                          struct sync_request *out,
                          struct ss_error *err) SS_MUSTCHECK;

const char *request_action_name(enum sync_action a);

/* True for a usable request id: 1 to REQUEST_ID_MAX characters of
 * [A-Za-z0-9._:-]. */
bool request_id_valid(const char *s);

/* True for an RFC 3339 timestamp with a zone (Z or +hh:mm). */
bool request_time_valid(const char *s);

#endif
