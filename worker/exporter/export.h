/* On-demand exports: one export request (schemas/json/
 * export_request.schema.json) becomes one CSV file streamed from the
 * movement ledger, recorded in export_requests and announced by a status
 * event (schemas/json/export_status.schema.json). */
#ifndef SS_EXPORTER_EXPORT_H
#define SS_EXPORTER_EXPORT_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/config.h"
#include "../../common/err.h"

#define EXPORT_ID_MAX 64

/* Files of export requests go to <export_dir>/requested/client-N/. */
#define EXPORT_SUBDIR "requested"

struct export_request {
        char request_id[EXPORT_ID_MAX + 1]; /* "" when unusable */
        long long client_id;
        long long *unit_ids; /* owned, sorted, without repeats */
        size_t nunits;
        bool has_from, has_to;
        int64_t from_us, to_us; /* from inclusive, to exclusive */
        char *requested_by;     /* owned */
        int64_t requested_us;
};

/* Validates payload[0..len) (key: the message key, may be NULL) into req.
 * Fills req->request_id whenever the message has a usable one, even when
 * it fails, so a refusal can be recorded. Returns SS_ERR_NOT_JSON,
 * SS_ERR_INVALID_UTF8, SS_ERR_TOO_LARGE, SS_ERR_MISSING_FIELD,
 * SS_ERR_BAD_FIELD, SS_ERR_UNKNOWN_FIELD, SS_ERR_BAD_TIME,
 * SS_ERR_BAD_RANGE, SS_ERR_KEY_MISMATCH or SS_ERR_NOMEM. Free req with
 * export_request_free() either way. */
enum ss_err export_parse(const char *payload,
                         size_t len,
                         const char *key,
                         size_t klen,
                         const struct config *cfg,
                         struct export_request *req,
                         struct ss_error *err) SS_MUSTCHECK;

void export_request_free(struct export_request *req);

/* What export_handle() asks of its caller. */
enum export_next {
        EXPORT_DONE,  /* finished (any outcome): commit the offset */
        EXPORT_RETRY, /* database or broker unreachable: read it again */
};

struct export_ctx {
        const struct config *cfg; /* borrowed */
        rd_kafka_t *producer;     /* borrowed */
        PGconn *conn;             /* owned, opened on first use */
        char *root;               /* owned: absolute export directory */
        char *dir;                /* owned: root + "/" EXPORT_SUBDIR */
};

/* Prepares ctx; the export directory is resolved to an absolute path.
 * Returns SS_ERR_UNWRITABLE or SS_ERR_NOMEM. */
enum ss_err export_ctx_init(struct export_ctx *ctx,
                            const struct config *cfg,
                            rd_kafka_t *producer,
                            struct ss_error *err) SS_MUSTCHECK;
void export_ctx_free(struct export_ctx *ctx);

/* Carries out one export request message. Refusals and failures are
 * recorded and announced; the exporter goes on either way. */
enum export_next export_handle(struct export_ctx *ctx,
                               const rd_kafka_message_t *msg);

/* True for a usable export request id: 1 to EXPORT_ID_MAX characters of
 * [A-Za-z0-9_-] and '.' (not first), because it becomes part of a file
 * name. */
bool export_id_valid(const char *s);

#endif
