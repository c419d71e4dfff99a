/* The movement audit event (schemas/json/movement_event.schema.json):
 * a flat JSON object read by a small parser of our own, because the
 * exporter reads one per movement and a tree per message would cost more
 * than everything else together; and its CSV row (schemas/CSV.md). */
#ifndef SS_EXPORTER_EVENT_H
#define SS_EXPORTER_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/err.h"

/* The header row, LF included, in the contract's column order. */
extern const char event_csv_header[];

/* A text value: p[0..len), or unset (JSON null or absent) when p is NULL.
 * Borrowed from the payload or the scratch buffer given to event_parse(). */
struct event_str {
        const char *p;
        size_t len;
};

struct movement_event {
        long long movement_id;
        int64_t occurred_us; /* UTC, microseconds since the epoch */
        long long qty_before, qty_after, qty_change;
        long long client_id, unit_id;
        long long integration_id; /* 0 when null */
        struct event_str reason_code, note, sku, item_name, location_code;
        struct event_str serial, batch, lot, order_ref, request_id;
};

/* Parses payload[0..len) into ev. Text values point into payload or into
 * scratch (reset here, owned by the caller), so ev is valid until either
 * changes. Unknown keys are skipped, so producers may add fields.
 * Returns SS_ERR_INVALID_UTF8, SS_ERR_NOT_JSON, SS_ERR_MISSING_FIELD,
 * SS_ERR_BAD_FIELD, SS_ERR_BAD_TIME or SS_ERR_NOMEM with err naming the
 * field. */
enum ss_err event_parse(const char *payload,
                        size_t len,
                        struct buf *scratch,
                        struct movement_event *ev,
                        struct ss_error *err) SS_MUSTCHECK;

/* Appends ev as one CSV row, LF included. */
void event_csv_row(const struct movement_event *ev,
                   bool neutralise,
                   struct buf *out);

#endif
