/* HTTP exchanges for the store adapters on one libcurl easy handle per
 * client, and the retry policy they share: which outcomes may be sent
 * again, how long to wait, and when to give up. */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

/* Longest wait we compute from a Retry-After value; anything longer is
 * clamped here and then refused by max_wait_ms anyway. */
#define RETRY_AFTER_MAX_MS ((long)INT_MAX)

#ifndef SS_VERSION
#define SS_VERSION "dev"
#endif

struct http_client {
        CURL *curl; /* owned; kept across exchanges for keep-alive */
        struct http_policy policy;
        struct http_stats stats;
        void (*sleep_fn)(void *arg, unsigned ms);
        void *sleep_arg;
        char errbuf[CURL_ERROR_SIZE];
};

/* Per-exchange state the curl callbacks write into. */
struct exchange {
        struct http_response *resp;
        size_t max_body;
        bool too_big;
        bool oom;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
        curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool curl_ready(void)
{
        pthread_once(&curl_once, curl_init_once);
        return curl_init_rc == CURLE_OK;
}

void http_policy_default(struct http_policy *p)
{
        *p = (struct http_policy){
                .max_attempts = 6,
                .base_delay_ms = 250,
                .max_delay_ms = 20000,
                .max_wait_ms = 60000,
                .timeout_ms = 60000,
                .connect_timeout_ms = 10000,
                .max_body = (size_t)64 << 20,
        };
}

/* ---- jitter ---- */

/* xorshift64*, one state per thread, seeded from the clock and the state's
 * own address so that threads and processes started together diverge.
 * Jitter needs spread, not secrecy. */
static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
        if (rng_state == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                rng_state = ((uint64_t)ts.tv_sec * 1000000007u) ^
                            (uint64_t)ts.tv_nsec ^
                            (uint64_t)(uintptr_t)&rng_state;
                if (rng_state == 0)
                        rng_state = 0x9e3779b97f4a7c15u;
        }
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1du;
}

unsigned http_backoff_ms(const struct http_policy *p, unsigned n)
{
        uint64_t step = p->base_delay_ms;
        unsigned shift = n > 0 ? n - 1 : 0;

        /* Doubling stops once the cap is reached, so no shift overflows. */
        while (shift-- > 0 && step < p->max_delay_ms)
                step *= 2;
        if (step > p->max_delay_ms)
                step = p->max_delay_ms;

        uint64_t ms = rng_next() % (step + 1);
        return ms < 1 ? 1 : (unsigned)ms;
}

/* ---- URLs ---- */

static bool host_is_loopback(const char *host)
{
        return strcasecmp(host, "localhost") == 0 ||
               strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0;
}

bool http_url_allowed(const char *url)
{
        if (url == NULL || !curl_ready())
                return false;
        /* Control bytes and spaces have no business in a store URL and
         * would let a header or request line be forged. */
        for (const unsigned char *p = (const unsigned char *)url; *p; p++)
                if (*p <= ' ' || *p == 0x7f)
                        return false;

        /* Let curl's own parser decide what the host is, so we judge the
         * same host curl will connect to (user@host tricks included). */
        CURLU *u = curl_url();
        char *scheme = NULL;
        char *host = NULL;
        bool ok = false;

        if (u == NULL)
                return false;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
                goto out;
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
                goto out;
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                goto out;
        if (host[0] == '\0')
                goto out;
        if (strcasecmp(scheme, "https") == 0)
                ok = true;
        else if (strcasecmp(scheme, "http") == 0)
                ok = host_is_loopback(host);
out:
        curl_free(host);
        curl_free(scheme);
        curl_url_cleanup(u);
        return ok;
}

/* Host and path of url without user info or query (which may carry
 * credentials), for log lines. */
static void url_for_log(const char *url, char *out, size_t outsz)
{
        CURLU *u = curl_url();
        char *host = NULL;
        char *path = NULL;

        snprintf(out, outsz, "?");
        if (u == NULL)
                return;
        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
                snprintf(out, outsz, "%s%s", host, path);
        curl_free(path);
        curl_free(host);
        curl_url_cleanup(u);
}

/* ---- responses ---- */

void http_response_reset(struct http_response *resp)
{
        resp->status = 0;
        /* A buffer that ran out of memory stays failed until freed; a new
         * exchange deserves a fresh start. */
        if (resp->body.failed)
                buf_free(&resp->body);
        if (resp->headers.failed)
                buf_free(&resp->headers);
        buf_reset(&resp->body);
        buf_reset(&resp->headers);
}

void http_response_free(struct http_response *resp)
{
        resp->status = 0;
        buf_free(&resp->body);
        buf_free(&resp->headers);
}

bool http_header(const struct http_response *resp,
                 const char *name,
                 char *out,
                 size_t outsz)
{
        const char *p = buf_str(&resp->headers);
        size_t nlen = strlen(name);
        bool found = false;

        if (p == NULL)
                return false;
        while (*p) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p) : strlen(p);

                if (len > nlen && p[nlen] == ':' &&
                    strncasecmp(p, name, nlen) == 0) {
                        const char *v = p + nlen + 1;
                        const char *end = p + len;
                        while (v < end && (*v == ' ' || *v == '\t'))
                                v++;
                        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                                end--;
                        if (outsz > 0)
                                snprintf(out, outsz, "%.*s", (int)(end - v), v);
                        found = true;
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        return found;
}

/* Delta-seconds with an optional fraction ("2", "1.5"); -1 otherwise. */
static long parse_delta_seconds(const char *s)
{
        long long ms = 0;
        const char *p = s;

        if (!isdigit((unsigned char)*p))
                return -1;
        while (isdigit((unsigned char)*p)) {
                if (ms <= RETRY_AFTER_MAX_MS)
                        ms = ms * 10 + (*p - '0') * 1000;
                p++;
        }
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p))
                        return -1;
                /* Round any fraction of a millisecond up: waiting a
                 * little longer is safe, a little shorter is not. */
                long long scale = 100;
                bool rest = false;
                for (; isdigit((unsigned char)*p); p++) {
                        if (scale > 0)
                                ms += (*p - '0') * scale;
                        else if (*p != '0')
                                rest = true;
                        scale /= 10;
                }
                if (rest)
                        ms++;
        }
        if (*p != '\0')
                return -1;
        return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (long)ms;
}

long http_retry_after_ms(const struct http_response *resp)
{
        char v[128];

        if (!http_header(resp, "Retry-After", v, sizeof(v)) || v[0] == '\0')
                return -1;
        if (isdigit((unsigned char)v[0]))
                return parse_delta_seconds(v);

        /* An HTTP date always starts with a day name. */
        if (!isalpha((unsigned char)v[0]))
                return -1;
        time_t when = curl_getdate(v, NULL);
        if (when == (time_t)-1)
                return -1;
        time_t now = time(NULL);
        if (when <= now)
                return 0;
        double ms = difftime(when, now) * 1000.0;
        return ms > (double)RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (long)ms;
}

/* A header holding a whole number of milliseconds; -1 when absent or not
 * a number. */
static long header_ms(const struct http_response *resp, const char *name)
{
        char v[32];
        long long ms = 0;

        if (!http_header(resp, name, v, sizeof(v)) || v[0] == '\0')
                return -1;
        for (const char *p = v; *p; p++) {
                if (!isdigit((unsigned char)*p))
                        return -1;
                if (ms <= RETRY_AFTER_MAX_MS)
                        ms = ms * 10 + (*p - '0');
        }
        return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : (long)ms;
}

enum ss_err http_classify(const struct http_response *resp,
                          struct ss_error *err)
{
        long s = resp->status;

        if (s >= 200 && s <= 299)
                return SS_OK;
        if (s == 401 || s == 403)
                return ss_error_set(err, SS_ERR_AUTH,
                                    "store refused the credentials (HTTP %ld)",
                                    s);
        if (s == 429)
                return ss_error_set(err, SS_ERR_THROTTLED,
                                    "store is throttling requests (HTTP 429)");
        if (s == 408)
                return ss_error_set(err, SS_ERR_TIMEOUT,
                                    "store timed out the request (HTTP 408)");
        if (s >= 500 && s <= 599)
                return ss_error_set(err, SS_ERR_STORE_5XX,
                                    "store server error (HTTP %ld)", s);
        if (s >= 300 && s <= 399)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "store answered with a redirect (HTTP "
                                    "%ld), not followed: fix the store URL",
                                    s);
        if (s >= 400 && s <= 499)
                return ss_error_set(err, SS_ERR_STORE_REJECTED,
                                    "store rejected the request (HTTP %ld)", s);
        return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                            "unexpected HTTP status %ld", s);
}

/* ---- client ---- */

static void sleep_ms(void *arg, unsigned ms)
{
        (void)arg;
        struct timespec ts = { .tv_sec = ms / 1000,
                               .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

struct http_client *http_client_new(const struct http_policy *policy)
{
        if (!curl_ready())
                return NULL;

        struct http_client *c = calloc(1, sizeof(*c));
        if (c == NULL)
                return NULL;
        c->curl = curl_easy_init();
        if (c->curl == NULL) {
                free(c);
                return NULL;
        }
        if (policy != NULL)
                c->policy = *policy;
        else
                http_policy_default(&c->policy);
        if (c->policy.max_attempts == 0)
                c->policy.max_attempts = 1;
        c->sleep_fn = sleep_ms;
        return c;
}

void http_client_free(struct http_client *c)
{
        if (c == NULL)
                return;
        curl_easy_cleanup(c->curl);
        free(c);
}

const struct http_stats *http_client_stats(const struct http_client *c)
{
        return &c->stats;
}

const struct http_policy *http_client_policy(const struct http_client *c)
{
        return &c->policy;
}

void http_client_set_sleep(struct http_client *c,
                           void (*fn)(void *arg, unsigned ms),
                           void *arg)
{
        c->sleep_fn = fn ? fn : sleep_ms;
        c->sleep_arg = fn ? arg : NULL;
}

void http_client_sleep(struct http_client *c, unsigned ms)
{
        c->stats.waited_ms += ms;
        if (ms > 0)
                c->sleep_fn(c->sleep_arg, ms);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
        struct exchange *x = userp;
        size_t n = size * nmemb;

        if (x->resp->body.len + n > x->max_body) {
                x->too_big = true;
                return 0;
        }
        buf_append(&x->resp->body, data, n);
        if (x->resp->body.failed) {
                x->oom = true;
                return 0;
        }
        return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
        struct exchange *x = userp;
        size_t n = size * nmemb;
        size_t len = n;

        /* A new status line starts a new header block (after a 1xx). */
        if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                buf_reset(&x->resp->headers);
                return n;
        }
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
                len--;
        if (len == 0)
                return n;
        buf_append(&x->resp->headers, data, len);
        buf_putc(&x->resp->headers, '\n');
        if (x->resp->headers.failed) {
                x->oom = true;
                return 0;
        }
        return n;
}

/* The request headers as a curl list; NULL with *bad set when a header
 * carries CR or LF (it would forge another header). */
static struct curl_slist *
build_headers(const struct http_request *req, bool *bad, bool *oom)
{
        struct curl_slist *list = NULL;

        for (size_t i = 0; req->headers && req->headers[i]; i++) {
                if (strpbrk(req->headers[i], "\r\n") != NULL) {
                        *bad = true;
                        goto fail;
                }
                struct curl_slist *l = curl_slist_append(list, req->headers[i]);
                if (l == NULL)
                        goto nomem;
                list = l;
        }
        /* curl would otherwise pause large bodies for a 100-continue. */
        struct curl_slist *l = curl_slist_append(list, "Expect:");
        if (l == NULL)
                goto nomem;
        return l;
nomem:
        *oom = true;
fail:
        curl_slist_free_all(list);
        return NULL;
}

static enum ss_err set_options(struct http_client *c,
                               const struct http_request *req,
                               struct curl_slist *headers,
                               struct exchange *x)
{
        CURL *h = c->curl;
        CURLcode rc = CURLE_OK;

        /* Reset keeps live connections, so keep-alive survives. */
        curl_easy_reset(h);
        c->errbuf[0] = '\0';

#define SETOPT(opt, val)                                    \
        do {                                                \
                if (rc == CURLE_OK)                         \
                        rc = curl_easy_setopt(h, opt, val); \
        } while (0)
        SETOPT(CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
        SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
        SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
        SETOPT(CURLOPT_REDIR_PROTOCOLS,
               (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(CURLOPT_USERAGENT, "stocksync/" SS_VERSION);
        /* Any encoding curl can decode; max_body applies to the decoded
         * bytes, so a small compressed answer cannot blow up memory. */
        SETOPT(CURLOPT_ACCEPT_ENCODING, "");
        SETOPT(CURLOPT_TIMEOUT_MS, (long)c->policy.timeout_ms);
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)c->policy.connect_timeout_ms);
        SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
        SETOPT(CURLOPT_HTTPHEADER, headers);
        SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        SETOPT(CURLOPT_WRITEDATA, x);
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(CURLOPT_HEADERDATA, x);
        /* Refuse early when Content-Length already says too much; the
         * write callback catches the rest. */
        if (c->policy.max_body < (size_t)INT64_MAX)
                SETOPT(CURLOPT_MAXFILESIZE_LARGE,
                       (curl_off_t)c->policy.max_body);
        /* curl silently re-sends a request once when a reused connection
         * turns out dead. That is a retry too: only where it is safe. */
        if (!req->idempotent)
                SETOPT(CURLOPT_FRESH_CONNECT, 1L);
        if (req->userpwd != NULL) {
                SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                SETOPT(CURLOPT_USERPWD, req->userpwd);
        }

        const char *method = req->method ? req->method : "GET";
        if (strcmp(method, "GET") == 0 && req->body == NULL) {
                SETOPT(CURLOPT_HTTPGET, 1L);
        } else {
                if (strcmp(method, "POST") != 0)
                        SETOPT(CURLOPT_CUSTOMREQUEST, method);
                SETOPT(CURLOPT_POST, 1L);
                SETOPT(CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)(req->body ? req->body_len : 0));
                SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
#undef SETOPT

        if (rc == CURLE_OUT_OF_MEMORY)
                return SS_ERR_NOMEM;
        return rc == CURLE_OK ? SS_OK : SS_ERR_INTERNAL;
}

static enum ss_err map_curl_error(struct http_client *c,
                                  CURLcode rc,
                                  const struct exchange *x,
                                  struct ss_error *err)
{
        const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);

        if (x->oom || rc == CURLE_OUT_OF_MEMORY)
                return ss_error_set(err, SS_ERR_NOMEM,
                                    "out of memory reading the response");
        if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "response body larger than %zu bytes",
                                    c->policy.max_body);
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
                return ss_error_set(err, SS_ERR_TIMEOUT,
                                    "store did not answer in time: %s", why);
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return ss_error_set(err, SS_ERR_CONFIG, "bad store URL: %s",
                                    why);
        default:
                return ss_error_set(err, SS_ERR_HTTP, "store unreachable: %s",
                                    why);
        }
}

/* One debug line per exchange: method, host and path, status, size and
 * time; never the query, a header value or the body. */
static void log_exchange(struct http_client *c,
                         const struct http_request *req,
                         const struct http_response *resp,
                         enum ss_err rc)
{
        struct log_line l;
        char url[256];
        double secs = 0;

        if (!log_enabled(LOG_DEBUG))
                return;
        url_for_log(req->url, url, sizeof(url));
        curl_easy_getinfo(c->curl, CURLINFO_TOTAL_TIME, &secs);
        log_begin(&l, LOG_DEBUG, "http_exchange");
        log_kv(&l, "method", req->method ? req->method : "GET");
        log_kv(&l, "url", url);
        log_kvi(&l, "status", resp->status);
        log_kvi(&l, "bytes", (long long)resp->body.len);
        log_kvi(&l, "dur_ms", (long long)(secs * 1000.0));
        if (rc != SS_OK)
                log_kv(&l, "code", ss_err_name(rc));
        log_end(&l);
}

enum ss_err http_exchange(struct http_client *c,
                          const struct http_request *req,
                          struct http_response *resp,
                          struct ss_error *err)
{
        struct curl_slist *headers = NULL;
        struct exchange x = { .resp = resp, .max_body = c->policy.max_body };
        bool bad = false;
        bool oom = false;
        bool performed = false;
        enum ss_err rc;

        http_response_reset(resp);
        if (!http_url_allowed(req->url)) {
                rc = ss_error_set(err, SS_ERR_CONFIG,
                                  "store URL refused: only https, or http "
                                  "to a loopback host");
                goto out;
        }
        headers = build_headers(req, &bad, &oom);
        if (headers == NULL) {
                rc = oom ? ss_error_set(err, SS_ERR_NOMEM, "out of memory")
                         : ss_error_set(err, SS_ERR_CONFIG,
                                        "request header holds a line break");
                goto out;
        }
        rc = set_options(c, req, headers, &x);
        if (rc != SS_OK) {
                ss_error_set(err, rc, "could not configure the HTTP request");
                goto out;
        }

        c->stats.requests++;
        performed = true;
        CURLcode crc = curl_easy_perform(c->curl);
        long status = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        resp->status = status;
        if (crc != CURLE_OK) {
                rc = map_curl_error(c, crc, &x, err);
                goto out;
        }
        if (resp->body.failed || resp->headers.failed) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        rc = SS_OK;
out:
        if (performed)
                log_exchange(c, req, resp, rc);
        /* The handle keeps a pointer to the list until the next reset. */
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(headers);
        return rc;
}

/* ---- retry policy ---- */

static bool may_retry(enum ss_err rc, const struct http_request *req)
{
        switch (rc) {
        case SS_ERR_THROTTLED:
                return true;
        case SS_ERR_HTTP:
        case SS_ERR_TIMEOUT:
        case SS_ERR_STORE_5XX:
                return req->idempotent;
        default:
                return false;
        }
}

static void log_retry(const struct http_request *req,
                      const char *url,
                      unsigned attempt,
                      long status,
                      unsigned wait_ms,
                      const struct ss_error *err)
{
        struct log_line l;

        log_begin(&l, LOG_WARN, "http_retry");
        log_kv(&l, "method", req->method ? req->method : "GET");
        log_kv(&l, "url", url);
        log_kvi(&l, "attempt", attempt);
        log_kvi(&l, "status", status);
        log_kvi(&l, "wait_ms", wait_ms);
        log_err(&l, err);
        log_end(&l);
}

enum ss_err http_do(struct http_client *c,
                    const struct http_request *req,
                    http_check_fn check,
                    void *check_arg,
                    struct http_response *resp,
                    struct ss_error *err)
{
        const struct http_policy *p = &c->policy;
        char url[256];
        enum ss_err rc = SS_ERR_INTERNAL;

        url_for_log(req->url ? req->url : "", url, sizeof(url));
        for (unsigned attempt = 1;; attempt++) {
                long server_wait = -1;

                rc = http_exchange(c, req, resp, err);
                if (rc == SS_OK)
                        rc = http_classify(resp, err);
                if (rc == SS_OK && check != NULL) {
                        unsigned wait = 0;
                        rc = check(resp, check_arg, &wait, err);
                        if (rc == SS_ERR_THROTTLED && wait > 0)
                                server_wait = wait;
                }
                if (rc == SS_OK)
                        return SS_OK;

                /* Retry-After on 429 and 503 says when to come back. */
                if (server_wait < 0 && resp->status != 0)
                        server_wait = http_retry_after_ms(resp);
                if (server_wait < 0 && resp->status == 429 &&
                    req->wait_ms_header != NULL)
                        server_wait = header_ms(resp, req->wait_ms_header);
                if (rc == SS_ERR_THROTTLED)
                        c->stats.throttled++;
                if (!may_retry(rc, req) || attempt >= p->max_attempts)
                        return rc;

                unsigned wait;
                if (server_wait >= 0) {
                        /* Never come back early; if the store wants more
                         * than we may wait, give the request back. */
                        if ((unsigned long)server_wait > p->max_wait_ms) {
                                ss_error_set(err, rc,
                                             "store asks to wait %ld ms, "
                                             "more than the %u ms allowed",
                                             server_wait, p->max_wait_ms);
                                return rc;
                        }
                        wait = (unsigned)server_wait;
                } else {
                        wait = http_backoff_ms(p, attempt);
                }
                log_retry(req, url, attempt, resp->status, wait, err);
                c->stats.retries++;
                http_client_sleep(c, wait);
        }
}
