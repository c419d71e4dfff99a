/* A scripted HTTP/1.1 responder on 127.0.0.1 for unit tests: a thread that
 * accepts connections on an ephemeral port, records every request and
 * answers each with the next reply in its script. Connections are kept
 * alive unless a reply says otherwise, so keep-alive can be observed. */
#ifndef SS_FAKE_HTTP_H
#define SS_FAKE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct fake_http;

/* Returns a new responder listening on 127.0.0.1 (free with
 * fake_http_stop), or NULL when no socket or thread could be made. */
struct fake_http *fake_http_start(void);

/* Stops the thread, closes every socket and frees f. NULL does nothing. */
void fake_http_stop(struct fake_http *f);

/* "http://127.0.0.1:<port>", valid until fake_http_stop. */
const char *fake_http_url(const struct fake_http *f);

/* Queues a reply: status, extra header lines ("Name: v\r\n" each, may be
 * NULL) and a body (may be NULL). Content-Length is added. The strings are
 * copied. */
void fake_http_push(struct fake_http *f,
                    int status,
                    const char *headers,
                    const char *body);

/* Queues raw bytes sent as they are, after waiting delay_ms; close: shut
 * the connection after them. raw NULL sends nothing (with close: a reset
 * connection). */
void fake_http_push_raw(struct fake_http *f,
                        const char *raw,
                        unsigned delay_ms,
                        bool close);

/* Requests answered or dropped so far, and connections accepted. A request
 * beyond the script is answered 599. */
size_t fake_http_requests(struct fake_http *f);
size_t fake_http_connections(struct fake_http *f);

/* Request i as received (request line, headers, body), copied into a new
 * string (free with free()), or NULL when there is no such request. */
char *fake_http_request(struct fake_http *f, size_t i);

#endif
