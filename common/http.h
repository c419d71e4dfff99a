/* HTTP client for the store adapters, on libcurl: one exchange, or one
 * exchange with the retry policy every adapter shares (bounded exponential
 * backoff with full jitter; Retry-After honoured; auth failures and other
 * permanent 4xx never retried; redirects never followed, because a
 * redirected store URL is a configuration error and following it could
 * carry credentials elsewhere). Plain http:// is refused except to loopback
 * hosts, which only the local simulators use. Nothing here logs a header
 * value or a body: callers pass secrets through `userpwd` or headers and
 * they stay out of every log line. */
#ifndef SS_HTTP_H
#define SS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

struct http_policy {
        unsigned max_attempts;  /* tries per request, first included */
        unsigned base_delay_ms; /* first backoff step */
        unsigned max_delay_ms;  /* cap of one backoff step */
        unsigned max_wait_ms;   /* cap of one server-requested wait */
        unsigned timeout_ms;    /* whole exchange, per attempt */
        unsigned connect_timeout_ms;
        size_t max_body; /* larger responses are refused */
};

/* Defaults: 6 attempts, 250 ms base, 20 s step cap, 60 s wait cap, 60 s
 * timeout, 10 s connect timeout, 64 MiB body cap. */
void http_policy_default(struct http_policy *p);

struct http_request {
        const char *method; /* "GET", "POST", "PUT" */
        const char *url;
        const char *body; /* may be NULL */
        size_t body_len;
        const char *const *headers; /* NULL-terminated "Name: value" */
        const char *userpwd;        /* HTTP Basic "user:pass" or NULL */
        /* Safe to send again after a transport error or 5xx, when the
         * first attempt may have reached the store (absolute writes,
         * reads, writes with an idempotency key). */
        bool idempotent;
        /* Response header giving, in milliseconds, the wait before a 429
         * may be sent again when it carries no Retry-After (BigCommerce's
         * X-Rate-Limit-Time-Reset-Ms); NULL for none. */
        const char *wait_ms_header;
};

struct http_response {
        long status;        /* 0 until a response arrived */
        struct buf body;    /* owned */
        struct buf headers; /* owned: "name: value\n" lines */
};

#define HTTP_RESPONSE_INIT            \
        {                             \
                0, BUF_INIT, BUF_INIT \
        }

/* Value of a response header (case-insensitive name), copied into out;
 * false when absent. For repeated headers the last wins. */
bool http_header(const struct http_response *resp,
                 const char *name,
                 char *out,
                 size_t outsz);

/* Retry-After in milliseconds (delta-seconds, fractional allowed, or an
 * HTTP date); -1 when absent or unparsable. */
long http_retry_after_ms(const struct http_response *resp);

void http_response_reset(struct http_response *resp);
void http_response_free(struct http_response *resp);

/* Counters for benchmarks and tests. */
struct http_stats {
        unsigned long requests; /* exchanges sent, retries included */
        unsigned long retries;
        unsigned long throttled;
        unsigned long waited_ms;
};

struct http_client;

/* Returns a new client (free with http_client_free), or NULL on OOM.
 * policy may be NULL for the defaults; it is copied. One client per thread:
 * it owns a curl easy handle and keeps connections alive. */
struct http_client *http_client_new(const struct http_policy *policy);
void http_client_free(struct http_client *c);
const struct http_stats *http_client_stats(const struct http_client *c);
const struct http_policy *http_client_policy(const struct http_client *c);

/* Replaces sleeping (tests): fn(arg, ms) is called instead of nanosleep. */
void http_client_set_sleep(struct http_client *c,
                           void (*fn)(void *arg, unsigned ms),
                           void *arg);

/* Waits ms through the client's sleep function and counts it in waited_ms:
 * for adapters that pace themselves by a budget the store reports. */
void http_client_sleep(struct http_client *c, unsigned ms);

/* One exchange, no retry. SS_OK means a response arrived, whatever its
 * status (resp is reset first). SS_ERR_HTTP / SS_ERR_TIMEOUT on transport
 * failure, SS_ERR_CONFIG for a refused URL, SS_ERR_BAD_RESPONSE when the
 * body exceeds max_body. */
enum ss_err http_exchange(struct http_client *c,
                          const struct http_request *req,
                          struct http_response *resp,
                          struct ss_error *err) SS_MUSTCHECK;

/* Classifies a response by status: 2xx SS_OK; 401/403 SS_ERR_AUTH; 429
 * SS_ERR_THROTTLED; 408 SS_ERR_TIMEOUT; 5xx SS_ERR_STORE_5XX; 3xx
 * SS_ERR_BAD_RESPONSE (redirect not followed: fix the store URL); other 4xx
 * SS_ERR_STORE_REJECTED. The message names the status, never the body. */
enum ss_err http_classify(const struct http_response *resp,
                          struct ss_error *err);

/* Adapter hook run on every response http_classify found OK (2xx). It may
 * return SS_ERR_THROTTLED with *wait_ms set (a throttle signalled inside a
 * 200 body, as Shopify GraphQL does) or any other code to stop. */
typedef enum ss_err (*http_check_fn)(const struct http_response *resp,
                                     void *arg,
                                     unsigned *wait_ms,
                                     struct ss_error *err);

/* The exchange with the shared retry policy. Retries transport errors,
 * timeouts and 5xx (only when req->idempotent), and throttling (always:
 * the server refused before doing anything), waiting Retry-After or the
 * check's wait when given, else backoff; never sends before the server said
 * it may. Gives up after max_attempts with the last error. Auth and other
 * permanent errors return at once. resp holds the last response. */
enum ss_err http_do(struct http_client *c,
                    const struct http_request *req,
                    http_check_fn check,
                    void *check_arg,
                    struct http_response *resp,
                    struct ss_error *err) SS_MUSTCHECK;

/* Backoff before attempt n (1 = first retry): uniform in [0, min(cap,
 * base * 2^(n-1))], at least 1 ms. */
unsigned http_backoff_ms(const struct http_policy *p, unsigned n);

/* True when the URL's scheme is https, or http to a loopback host. */
bool http_url_allowed(const char *url);

#endif
