/* Stable error codes shared by every layer, and the caller-owned error
 * record that carries a code plus a short human message. The names returned
 * by ss_err_name() are a public contract: they appear in status events,
 * DLQ headers, logs and CSV refusals, so never rename one. */
#ifndef SS_ERR_H
#define SS_ERR_H

#include <stdbool.h>

#define SS_MUSTCHECK __attribute__((warn_unused_result))
#define SS_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* X(enum, "stable_name", class) where class says what a caller may do. */
#define SS_ERR_LIST(X)                                                        \
        X(SS_OK, "ok", SS_CLASS_NONE)                                         \
        X(SS_ERR_NOMEM, "out_of_memory", SS_CLASS_RETRY)                     \
        X(SS_ERR_INTERNAL, "internal_error", SS_CLASS_REQUEST)               \
        X(SS_ERR_CONFIG, "bad_config", SS_CLASS_REQUEST)                     \
        /* malformed requests: rejected, copied to the DLQ */                \
        X(SS_ERR_NOT_JSON, "not_json", SS_CLASS_REQUEST)                     \
        X(SS_ERR_INVALID_UTF8, "invalid_utf8", SS_CLASS_REQUEST)             \
        X(SS_ERR_TOO_LARGE, "message_too_large", SS_CLASS_REQUEST)           \
        X(SS_ERR_MISSING_FIELD, "missing_field", SS_CLASS_REQUEST)           \
        X(SS_ERR_BAD_FIELD, "bad_field", SS_CLASS_REQUEST)                   \
        X(SS_ERR_UNKNOWN_FIELD, "unknown_field", SS_CLASS_REQUEST)           \
        X(SS_ERR_UNKNOWN_ACTION, "unknown_action", SS_CLASS_REQUEST)         \
        X(SS_ERR_OUT_OF_RANGE, "id_out_of_range", SS_CLASS_REQUEST)          \
        X(SS_ERR_KEY_MISMATCH, "key_mismatch", SS_CLASS_REQUEST)             \
        /* refusals by what the database says */                              \
        X(SS_ERR_UNKNOWN_INTEGRATION, "unknown_integration", SS_CLASS_REQUEST) \
        X(SS_ERR_INTEGRATION_INACTIVE, "integration_inactive",                \
          SS_CLASS_REQUEST)                                                   \
        X(SS_ERR_UNKNOWN_UNIT, "unknown_unit", SS_CLASS_REQUEST)             \
        X(SS_ERR_UNIT_OTHER_CLIENT, "unit_not_of_client", SS_CLASS_REQUEST)  \
        X(SS_ERR_UNKNOWN_CLIENT, "unknown_client", SS_CLASS_REQUEST)         \
        X(SS_ERR_NO_ADAPTER, "unsupported_platform", SS_CLASS_REQUEST)       \
        X(SS_ERR_DUPLICATE_REQUEST, "duplicate_request", SS_CLASS_REQUEST)   \
        /* rules */                                                           \
        X(SS_ERR_SYNC_DISABLED, "stock_sync_disabled", SS_CLASS_REQUEST)     \
        X(SS_ERR_STORE_IS_MASTER, "store_is_stock_master", SS_CLASS_REQUEST) \
        X(SS_ERR_GUARDRAIL, "guardrail_blocked", SS_CLASS_REQUEST)           \
        X(SS_ERR_DISCONTINUED, "unit_discontinued", SS_CLASS_ITEM)           \
        X(SS_ERR_QTY_UNKNOWN, "store_quantity_unknown", SS_CLASS_ITEM)       \
        X(SS_ERR_NOT_TRACKED, "store_item_not_tracked", SS_CLASS_ITEM)       \
        X(SS_ERR_UNMATCHED, "sku_unmatched", SS_CLASS_ITEM)                  \
        X(SS_ERR_AMBIGUOUS_SKU, "sku_duplicated_on_store", SS_CLASS_ITEM)    \
        X(SS_ERR_NEGATIVE_STOCK, "would_go_negative", SS_CLASS_ITEM)         \
        /* store (adapter) errors */                                          \
        X(SS_ERR_HTTP, "store_unreachable", SS_CLASS_RETRY)                  \
        X(SS_ERR_TIMEOUT, "store_timeout", SS_CLASS_RETRY)                   \
        X(SS_ERR_THROTTLED, "store_throttled", SS_CLASS_THROTTLE)            \
        X(SS_ERR_STORE_5XX, "store_server_error", SS_CLASS_RETRY)            \
        X(SS_ERR_AUTH, "store_auth_failed", SS_CLASS_AUTH)                   \
        X(SS_ERR_STORE_REJECTED, "store_rejected_request", SS_CLASS_REQUEST) \
        X(SS_ERR_BAD_RESPONSE, "store_bad_response", SS_CLASS_REQUEST)       \
        X(SS_ERR_ITEM_REJECTED, "store_rejected_item", SS_CLASS_ITEM)        \
        X(SS_ERR_ITEM_UNKNOWN, "store_unknown_item", SS_CLASS_ITEM)          \
        X(SS_ERR_STALE, "store_level_changed", SS_CLASS_ITEM)                \
        X(SS_ERR_NOT_ATTEMPTED, "not_attempted", SS_CLASS_ITEM)              \
        /* infrastructure */                                                  \
        X(SS_ERR_DB, "database_error", SS_CLASS_RETRY)                       \
        X(SS_ERR_KAFKA, "kafka_error", SS_CLASS_RETRY)                       \
        X(SS_ERR_IO, "io_error", SS_CLASS_REQUEST)                           \
        X(SS_ERR_DISK_FULL, "disk_full", SS_CLASS_RETRY)                     \
        X(SS_ERR_NOT_FOUND, "not_found", SS_CLASS_REQUEST)                   \
        X(SS_ERR_BAD_TIME, "bad_timestamp", SS_CLASS_REQUEST)                \
        X(SS_ERR_BAD_RANGE, "bad_time_range", SS_CLASS_REQUEST)              \
        X(SS_ERR_UNWRITABLE, "output_unwritable", SS_CLASS_REQUEST)

/* What a caller may do about an error. */
enum ss_err_class {
        SS_CLASS_NONE,     /* not an error */
        SS_CLASS_RETRY,    /* transient: retry with backoff */
        SS_CLASS_THROTTLE, /* the peer asked us to wait */
        SS_CLASS_ITEM,     /* permanent for one item; the rest go on */
        SS_CLASS_REQUEST,  /* permanent for the whole request */
        SS_CLASS_AUTH,     /* credentials refused: never retried */
};

#define SS_ERR_ENUM(e, name, cls) e,
enum ss_err { SS_ERR_LIST(SS_ERR_ENUM) SS_ERR__COUNT };
#undef SS_ERR_ENUM

/* Caller-owned: code for machines, msg for people. */
struct ss_error {
        enum ss_err code;
        char msg[256];
};

/* Returns the stable snake_case name of code ("unknown" if out of range). */
const char *ss_err_name(enum ss_err code);

enum ss_err_class ss_err_class(enum ss_err code);

/* Fills err (which may be NULL) and returns code, so callers can write
 * `return ss_error_set(err, SS_ERR_X, "...")`. */
enum ss_err ss_error_set(struct ss_error *err, enum ss_err code,
                         const char *fmt, ...) SS_PRINTF(3, 4);

void ss_error_clear(struct ss_error *err);

#endif
