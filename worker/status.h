/* The request record (sync_requests) and the status events that announce
 * its states, written to the outbox so they reach Kafka exactly when the
 * state they describe is committed. */
#ifndef SS_STATUS_H
#define SS_STATUS_H

#include <libpq-fe.h>

#include "../common/err.h"
#include "process.h"
#include "report.h"
#include "request.h"

enum req_seen {
        REQ_NEW,      /* first delivery: recorded as accepted */
        REQ_RESUMED,  /* known but unfinished: an earlier run died */
        REQ_DONE,     /* already has a final state: a duplicate */
        REQ_CONFLICT, /* the id is known with a different request */
};

/* In its own transaction: records req (or counts another attempt) and
 * queues the `accepted` event for a new one. */
enum ss_err status_begin(PGconn *conn,
                         const struct sync_request *req,
                         const struct msg_view *msg,
                         enum req_seen *seen,
                         struct ss_error *err) SS_MUSTCHECK;

/* Queues a `running` event with progress done/total (own transaction). */
enum ss_err status_progress(PGconn *conn,
                            const struct sync_request *req,
                            long long done,
                            long long total,
                            struct ss_error *err) SS_MUSTCHECK;

/* Inside the caller's transaction: writes the final state, counts, error
 * and detail of rep, and queues the final event. */
enum ss_err status_finish(PGconn *conn,
                          const struct sync_request *req,
                          const struct report *rep,
                          struct ss_error *err) SS_MUSTCHECK;

/* In its own transaction: a message that cannot be carried out. Records
 * it as rejected (when it has a usable request id), queues a `rejected`
 * event with why's code and message, and queues a copy of the original
 * message for the dead-letter topic. req may be partly filled (only
 * request_id is trusted). */
enum ss_err status_reject(PGconn *conn,
                          const struct sync_request *req,
                          const struct msg_view *msg,
                          const struct ss_error *why,
                          struct ss_error *err) SS_MUSTCHECK;

/* Current UTC time as 2026-12-04T10:15:02.114Z. */
void status_now(char out[48]);

#endif
