/* common/http: backoff bounds, Retry-After, status classes, the URL rule,
 * and real exchanges (headers, bodies, keep-alive, caps, retries) against
 * the scripted loopback responder in fake_http.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../common/http.h"
#include "fake_http.h"

#define JSON_HDR "Content-Type: application/json\r\n"

/* ---- helpers ---- */

struct sleeps {
        unsigned ms[32];
        size_t n;
};

static void fake_sleep(void *arg, unsigned ms)
{
        struct sleeps *s = arg;
        if (s->n < 32)
                s->ms[s->n] = ms;
        s->n++;
}

/* A client with fast, recorded sleeps and a short timeout. */
static struct http_client *test_client(struct sleeps *s, unsigned attempts)
{
        struct http_policy p;
        http_policy_default(&p);
        p.max_attempts = attempts;
        p.timeout_ms = 3000;
        p.connect_timeout_ms = 1000;
        struct http_client *c = http_client_new(&p);
        assert_non_null(c);
        http_client_set_sleep(c, fake_sleep, s);
        return c;
}

static void set_headers(struct http_response *r, const char *lines)
{
        buf_reset(&r->headers);
        buf_puts(&r->headers, lines);
}

static char *url_of(struct fake_http *f, const char *path)
{
        static char url[128];
        snprintf(url, sizeof(url), "%s%s", fake_http_url(f), path);
        return url;
}

/* The URL of a loopback port we bound and closed again, so nothing of
 * anyone else's is touched and the connection is refused. */
static void dead_port_url(char *out, size_t outsz)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        snprintf(out, outsz, "http://127.0.0.1:%u/",
                 (unsigned)ntohs(sa.sin_port));
}

/* ---- policy and backoff ---- */

static void policy_defaults(void **state)
{
        (void)state;
        struct http_policy p;
        http_policy_default(&p);
        assert_int_equal(p.max_attempts, 6);
        assert_int_equal(p.base_delay_ms, 250);
        assert_int_equal(p.max_delay_ms, 20000);
        assert_int_equal(p.max_wait_ms, 60000);
        assert_int_equal(p.timeout_ms, 60000);
        assert_int_equal(p.connect_timeout_ms, 10000);
        assert_int_equal(p.max_body, (size_t)64 << 20);
}

static void backoff_stays_in_bounds(void **state)
{
        (void)state;
        struct http_policy p;
        http_policy_default(&p);

        for (unsigned n = 1; n <= 40; n++) {
                unsigned long long bound = p.base_delay_ms;
                for (unsigned i = 1; i < n && bound < p.max_delay_ms; i++)
                        bound *= 2;
                if (bound > p.max_delay_ms)
                        bound = p.max_delay_ms;
                unsigned hi = 0;
                for (int k = 0; k < 2000; k++) {
                        unsigned ms = http_backoff_ms(&p, n);
                        assert_true(ms >= 1);
                        assert_true(ms <= bound);
                        if (ms > hi)
                                hi = ms;
                }
                /* Full jitter spreads over the whole range. */
                assert_true(hi > bound / 2);
        }
}

static void backoff_edge_policies(void **state)
{
        (void)state;
        struct http_policy p = { .base_delay_ms = 0, .max_delay_ms = 1000 };
        for (int k = 0; k < 100; k++)
                assert_int_equal(http_backoff_ms(&p, 5), 1);

        /* A huge attempt number neither overflows nor passes the cap. */
        p.base_delay_ms = 4000000000u;
        p.max_delay_ms = 4000000000u;
        for (int k = 0; k < 100; k++)
                assert_true(http_backoff_ms(&p, 1000) <= 4000000000u);
}

/* ---- headers and Retry-After ---- */

static void header_lookup(void **state)
{
        (void)state;
        struct http_response r = HTTP_RESPONSE_INIT;
        char v[32];

        set_headers(&r, "Content-Type: application/json\n"
                        "X-Retry-After: 9\n"
                        "link:  <a>; rel=next  \n"
                        "Link: <b>\n");
        assert_true(http_header(&r, "content-type", v, sizeof(v)));
        assert_string_equal(v, "application/json");
        /* Last one wins, and surrounding blanks go. */
        assert_true(http_header(&r, "LINK", v, sizeof(v)));
        assert_string_equal(v, "<b>");
        /* A name that only ends like the one asked is not it. */
        assert_false(http_header(&r, "Retry-After", v, sizeof(v)));
        assert_false(http_header(&r, "Content", v, sizeof(v)));
        /* Truncated into a small buffer, still NUL-terminated. */
        char small[5];
        assert_true(http_header(&r, "Content-Type", small, sizeof(small)));
        assert_string_equal(small, "appl");
        http_response_free(&r);
}

static long retry_after_of(const char *value)
{
        struct http_response r = HTTP_RESPONSE_INIT;
        char line[160];
        snprintf(line, sizeof(line), "retry-after: %s\n", value);
        set_headers(&r, line);
        long ms = http_retry_after_ms(&r);
        http_response_free(&r);
        return ms;
}

static void retry_after_seconds(void **state)
{
        (void)state;
        assert_int_equal(retry_after_of("2"), 2000);
        assert_int_equal(retry_after_of("0"), 0);
        assert_int_equal(retry_after_of("1.5"), 1500);
        assert_int_equal(retry_after_of("2.0"), 2000);
        assert_int_equal(retry_after_of("0.25"), 250);
        /* Parts of a millisecond round up: never come back early. */
        assert_int_equal(retry_after_of("0.0001"), 1);
        assert_int_equal(retry_after_of("1.0005"), 1001);
        assert_int_equal(retry_after_of("  7  "), 7000);
        /* Absurd values are clamped, not wrapped. */
        assert_true(retry_after_of("99999999999999999999") > 0);

        assert_int_equal(retry_after_of("-1"), -1);
        assert_int_equal(retry_after_of("1e3"), -1);
        assert_int_equal(retry_after_of("1."), -1);
        assert_int_equal(retry_after_of(".5"), -1);
        assert_int_equal(retry_after_of("5s"), -1);
        assert_int_equal(retry_after_of("soon"), -1);
        assert_int_equal(retry_after_of(""), -1);

        struct http_response r = HTTP_RESPONSE_INIT;
        set_headers(&r, "Content-Type: text/plain\n");
        assert_int_equal(http_retry_after_ms(&r), -1);
        http_response_free(&r);
}

static void retry_after_dates(void **state)
{
        (void)state;
        char v[64];
        time_t later = time(NULL) + 30;
        struct tm tm;
        gmtime_r(&later, &tm);

        strftime(v, sizeof(v), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        long ms = retry_after_of(v);
        assert_true(ms >= 28000 && ms <= 31000);

        /* RFC 850 and asctime forms are HTTP dates too. */
        char day[16], mon[8];
        strftime(day, sizeof(day), "%A", &tm);
        strftime(mon, sizeof(mon), "%b", &tm);
        snprintf(v, sizeof(v), "%s, %02d-%s-%02d %02d:%02d:%02d GMT", day,
                 tm.tm_mday, mon, tm.tm_year % 100, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        ms = retry_after_of(v);
        assert_true(ms >= 28000 && ms <= 31000);
        strftime(v, sizeof(v), "%a %b %e %H:%M:%S %Y", &tm);
        ms = retry_after_of(v);
        assert_true(ms >= 28000 && ms <= 31000);

        /* A date in the past means now. */
        assert_int_equal(retry_after_of("Sun, 06 Nov 1994 08:49:37 GMT"), 0);
        assert_int_equal(retry_after_of("Someday, never"), -1);
}

/* ---- classification and URLs ---- */

static void classify_statuses(void **state)
{
        (void)state;

        static const struct {
                long status;
                enum ss_err code;
        } cases[] = {
                { 200, SS_OK },
                { 201, SS_OK },
                { 204, SS_OK },
                { 299, SS_OK },
                { 301, SS_ERR_BAD_RESPONSE },
                { 302, SS_ERR_BAD_RESPONSE },
                { 304, SS_ERR_BAD_RESPONSE },
                { 400, SS_ERR_STORE_REJECTED },
                { 401, SS_ERR_AUTH },
                { 403, SS_ERR_AUTH },
                { 404, SS_ERR_STORE_REJECTED },
                { 408, SS_ERR_TIMEOUT },
                { 409, SS_ERR_STORE_REJECTED },
                { 422, SS_ERR_STORE_REJECTED },
                { 429, SS_ERR_THROTTLED },
                { 500, SS_ERR_STORE_5XX },
                { 502, SS_ERR_STORE_5XX },
                { 503, SS_ERR_STORE_5XX },
                { 599, SS_ERR_STORE_5XX },
                { 0, SS_ERR_BAD_RESPONSE },
                { 101, SS_ERR_BAD_RESPONSE },
                { 600, SS_ERR_BAD_RESPONSE },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct http_response r = HTTP_RESPONSE_INIT;
                struct ss_error err = { 0 };
                r.status = cases[i].status;
                enum ss_err rc = http_classify(&r, &err);
                assert_int_equal(rc, cases[i].code);
                if (rc != SS_OK) {
                        char num[8];
                        snprintf(num, sizeof(num), "%ld", cases[i].status);
                        assert_int_equal(err.code, rc);
                        assert_non_null(strstr(err.msg, num));
                }
        }
}

static void url_rule(void **state)
{
        (void)state;

        static const struct {
                const char *url;
                bool ok;
        } cases[] = {
                { "https://shop.myshopify.com", true },
                { "https://shop.example.com:8443/wp-json/wc/v3/", true },
                { "HTTPS://shop.example.com/", true },
                { "http://127.0.0.1:8080/x", true },
                { "http://localhost/", true },
                { "http://LOCALHOST:1/", true },
                { "http://[::1]:9000/a?b=c", true },
                { "http://user:pw@127.0.0.1/", true },
                { "http://shop.example.com/", false },
                { "http://127.0.0.2/", false },
                { "http://127.0.0.1.evil.example/", false },
                { "http://localhost.evil.example/", false },
                { "http://localhost@evil.example/", false },
                { "http://127.0.0.1:80@evil.example/", false },
                { "ftp://127.0.0.1/", false },
                { "file:///etc/passwd", false },
                { "gopher://127.0.0.1/", false },
                { "127.0.0.1:8080", false },
                { "https://", false },
                { "https://shop.example.com/a b", false },
                { "https://shop.example.com/\r\nX-Evil: 1", false },
                { "", false },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (http_url_allowed(cases[i].url) != cases[i].ok)
                        fail_msg("http_url_allowed(\"%s\") should be %d",
                                 cases[i].url, cases[i].ok);
        }
        assert_false(http_url_allowed(NULL));
}

/* ---- exchanges ---- */

static void get_with_headers_and_keepalive(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 1);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };
        const char *hdrs[] = { "Accept: application/json", "X-Token: t1",
                               NULL };

        fake_http_push(f, 200, JSON_HDR "X-WP-Total: 42\r\n", "{\"ok\":true}");
        fake_http_push(f, 204, NULL, NULL);
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/items?page=2"),
                                    .headers = hdrs,
                                    .idempotent = true };
        assert_int_equal(http_exchange(c, &req, &r, &err), SS_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(buf_str(&r.body), "{\"ok\":true}");
        char v[16];
        assert_true(http_header(&r, "x-wp-total", v, sizeof(v)));
        assert_string_equal(v, "42");

        assert_int_equal(http_exchange(c, &req, &r, &err), SS_OK);
        assert_int_equal(r.status, 204);
        assert_int_equal(r.body.len, 0);
        /* The response was reset: no header of the first one is left. */
        assert_false(http_header(&r, "X-WP-Total", v, sizeof(v)));

        char *sent = fake_http_request(f, 0);
        assert_non_null(sent);
        assert_true(strncmp(sent, "GET /items?page=2 HTTP/1.1\r\n", 28) == 0);
        assert_non_null(strstr(sent, "\r\nX-Token: t1\r\n"));
        assert_non_null(strstr(sent, "\r\nAccept: application/json\r\n"));
        assert_null(strstr(sent, "Expect:"));
        free(sent);
        /* Both exchanges on one connection. */
        assert_int_equal(fake_http_requests(f), 2);
        assert_int_equal(fake_http_connections(f), 1);
        assert_int_equal(http_client_stats(c)->requests, 2);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void post_put_bodies_and_basic_auth(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 1);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };
        const char *hdrs[] = { "Content-Type: application/json", NULL };
        const char body[] = "{\"a\":1}";

        fake_http_push(f, 201, JSON_HDR, "{}");
        fake_http_push(f, 200, JSON_HDR, "{}");
        struct http_request req = { .method = "POST",
                                    .url = url_of(f, "/batch"),
                                    .body = body,
                                    .body_len = strlen(body),
                                    .headers = hdrs,
                                    .userpwd = "ck_1:cs_2" };
        assert_int_equal(http_exchange(c, &req, &r, &err), SS_OK);
        assert_int_equal(r.status, 201);
        req.method = "PUT";
        req.userpwd = NULL;
        assert_int_equal(http_exchange(c, &req, &r, &err), SS_OK);

        char *sent = fake_http_request(f, 0);
        assert_true(strncmp(sent, "POST /batch HTTP/1.1\r\n", 22) == 0);
        /* base64("ck_1:cs_2") */
        assert_non_null(strstr(sent, "Authorization: Basic Y2tfMTpjc18y"));
        assert_non_null(strstr(sent, "Content-Length: 7\r\n"));
        assert_non_null(strstr(sent, "\r\n\r\n{\"a\":1}"));
        free(sent);
        sent = fake_http_request(f, 1);
        assert_true(strncmp(sent, "PUT /batch HTTP/1.1\r\n", 21) == 0);
        assert_null(strstr(sent, "Authorization:"));
        assert_non_null(strstr(sent, "\r\n\r\n{\"a\":1}"));
        free(sent);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void refusals_before_sending(void **state)
{
        (void)state;
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 3);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        struct http_request req = { .method = "GET",
                                    .url = "http://shop.example.com/",
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_ERR_CONFIG);

        /* A header value with a line break would forge another header. */
        const char *hdrs[] = { "X-A: 1\r\nX-Evil: 2", NULL };
        req.url = "http://127.0.0.1:9/";
        req.headers = hdrs;
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_ERR_CONFIG);
        assert_int_equal(http_client_stats(c)->requests, 0);
        assert_int_equal(s.n, 0);

        http_response_free(&r);
        http_client_free(c);
}

static void redirect_not_followed(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 3);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        fake_http_push(f, 302, "Location: /elsewhere\r\n", NULL);
        fake_http_push(f, 200, JSON_HDR, "{}");
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err),
                         SS_ERR_BAD_RESPONSE);
        assert_int_equal(r.status, 302);
        assert_int_equal(fake_http_requests(f), 1);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void body_cap(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct http_policy p;
        http_policy_default(&p);
        p.max_body = 100;
        p.timeout_ms = 3000;
        struct http_client *c = http_client_new(&p);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };
        char big[201];
        memset(big, 'x', 200);
        big[200] = '\0';

        /* Announced by Content-Length, and streamed without one. */
        fake_http_push(f, 200, NULL, big);
        char raw[512];
        snprintf(raw, sizeof(raw),
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "c8\r\n%s\r\n0\r\n\r\n",
                 big);
        fake_http_push_raw(f, raw, 0, true);
        fake_http_push(f, 200, NULL, "exactly-fits");

        struct http_request req = { .method = "GET", .url = url_of(f, "/") };
        assert_int_equal(http_exchange(c, &req, &r, &err), SS_ERR_BAD_RESPONSE);
        assert_non_null(strstr(err.msg, "100"));
        assert_int_equal(http_exchange(c, &req, &r, &err), SS_ERR_BAD_RESPONSE);
        assert_int_equal(http_exchange(c, &req, &r, &err), SS_OK);
        assert_string_equal(buf_str(&r.body), "exactly-fits");

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

/* ---- the retry policy ---- */

static void retry_5xx_when_idempotent(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 6);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        fake_http_push(f, 503, NULL, "down");
        fake_http_push(f, 500, NULL, "down");
        fake_http_push(f, 200, JSON_HDR, "{\"n\":1}");
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_OK);
        assert_string_equal(buf_str(&r.body), "{\"n\":1}");
        const struct http_stats *st = http_client_stats(c);
        assert_int_equal(st->requests, 3);
        assert_int_equal(st->retries, 2);
        assert_int_equal(s.n, 2);
        /* Backoff steps 1 and 2: at most 250 and 500 ms. */
        assert_true(s.ms[0] >= 1 && s.ms[0] <= 250);
        assert_true(s.ms[1] >= 1 && s.ms[1] <= 500);
        assert_int_equal(st->waited_ms, s.ms[0] + s.ms[1]);

        /* Not idempotent: the first 5xx is final. */
        fake_http_push(f, 502, NULL, "down");
        req.idempotent = false;
        req.method = "POST";
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err),
                         SS_ERR_STORE_5XX);
        assert_int_equal(st->requests, 4);
        assert_int_equal(s.n, 2);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void gives_up_after_max_attempts(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 3);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        for (int i = 0; i < 5; i++)
                fake_http_push(f, 503, NULL, NULL);
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err),
                         SS_ERR_STORE_5XX);
        assert_int_equal(err.code, SS_ERR_STORE_5XX);
        assert_int_equal(r.status, 503);
        assert_int_equal(fake_http_requests(f), 3);
        assert_int_equal(s.n, 2);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void throttle_honours_retry_after(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 6);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        /* Retried even when not idempotent: the store did nothing. */
        fake_http_push(f, 429, "Retry-After: 2\r\n", NULL);
        fake_http_push(f, 429, "Retry-After: 0.5\r\n", NULL);
        fake_http_push(f, 429, NULL, NULL);
        fake_http_push(f, 200, JSON_HDR, "{}");
        struct http_request req = { .method = "POST",
                                    .url = url_of(f, "/"),
                                    .body = "{}",
                                    .body_len = 2 };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_OK);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.ms[0], 2000);
        assert_int_equal(s.ms[1], 500);
        /* No Retry-After: backoff step 3. */
        assert_true(s.ms[2] >= 1 && s.ms[2] <= 1000);
        const struct http_stats *st = http_client_stats(c);
        assert_int_equal(st->throttled, 3);
        assert_int_equal(st->retries, 3);
        assert_int_equal(st->waited_ms, 2500 + s.ms[2]);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void throttle_wait_from_named_header(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 6);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        /* A platform header in milliseconds stands in for Retry-After;
         * Retry-After still wins when both are there. */
        fake_http_push(f, 429, "X-Rate-Limit-Time-Reset-Ms: 1500\r\n", NULL);
        fake_http_push(f, 429,
                       "X-Rate-Limit-Time-Reset-Ms: 1500\r\n"
                       "Retry-After: 3\r\n",
                       NULL);
        fake_http_push(f, 429, "X-Rate-Limit-Time-Reset-Ms: soon\r\n", NULL);
        fake_http_push(f, 200, JSON_HDR, "{}");
        struct http_request req = {
                .method = "PUT",
                .url = url_of(f, "/"),
                .wait_ms_header = "X-Rate-Limit-Time-Reset-Ms",
        };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_OK);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.ms[0], 1500);
        assert_int_equal(s.ms[1], 3000);
        /* Not a number: backoff step 3. */
        assert_true(s.ms[2] >= 1 && s.ms[2] <= 1000);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void throttle_wait_beyond_cap_gives_up(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 6);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        /* 120 s is more than the 60 s cap: never come back early, so hand
         * the request back instead. */
        fake_http_push(f, 429, "Retry-After: 120\r\n", NULL);
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err),
                         SS_ERR_THROTTLED);
        assert_non_null(strstr(err.msg, "120000"));
        assert_int_equal(s.n, 0);
        assert_int_equal(fake_http_requests(f), 1);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void permanent_errors_not_retried(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 6);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        fake_http_push(f, 401, JSON_HDR, "{\"errors\":\"bad token\"}");
        fake_http_push(f, 403, NULL, NULL);
        fake_http_push(f, 422, NULL, NULL);
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_ERR_AUTH);
        /* The message names the status, never the body. */
        assert_null(strstr(err.msg, "bad token"));
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_ERR_AUTH);
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err),
                         SS_ERR_STORE_REJECTED);
        assert_int_equal(fake_http_requests(f), 3);
        assert_int_equal(s.n, 0);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

struct check_script {
        enum ss_err rc[4];
        unsigned wait[4];
        size_t n;
};

static enum ss_err scripted_check(const struct http_response *resp,
                                  void *arg,
                                  unsigned *wait_ms,
                                  struct ss_error *err)
{
        struct check_script *cs = arg;
        assert_true(resp->status >= 200 && resp->status <= 299);
        size_t i = cs->n++;
        assert_true(i < 4);
        *wait_ms = cs->wait[i];
        if (cs->rc[i] == SS_OK)
                return SS_OK;
        return ss_error_set(err, cs->rc[i], "scripted");
}

static void check_hook_throttle_and_stop(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 6);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        /* Throttled inside a 200 body: the hook's wait is used. The hook
         * does not run on the 503. */
        fake_http_push(f, 200, JSON_HDR, "{\"throttled\":1}");
        fake_http_push(f, 503, NULL, NULL);
        fake_http_push(f, 200, JSON_HDR, "{\"throttled\":0}");
        struct check_script cs = {
                .rc = { SS_ERR_THROTTLED, SS_OK },
                .wait = { 1234, 0 },
        };
        struct http_request req = { .method = "POST",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };
        assert_int_equal(http_do(c, &req, scripted_check, &cs, &r, &err),
                         SS_OK);
        assert_int_equal(cs.n, 2);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.ms[0], 1234);
        assert_int_equal(http_client_stats(c)->throttled, 1);

        /* Any other code from the hook stops at once. */
        fake_http_push(f, 200, JSON_HDR, "not json");
        struct check_script bad = { .rc = { SS_ERR_BAD_RESPONSE } };
        assert_int_equal(http_do(c, &req, scripted_check, &bad, &r, &err),
                         SS_ERR_BAD_RESPONSE);
        assert_int_equal(bad.n, 1);
        assert_int_equal(s.n, 2);

        /* A throttle wait above the cap hands the request back. */
        fake_http_push(f, 200, JSON_HDR, "{}");
        struct check_script slow = { .rc = { SS_ERR_THROTTLED },
                                     .wait = { 60001 } };
        assert_int_equal(http_do(c, &req, scripted_check, &slow, &r, &err),
                         SS_ERR_THROTTLED);
        assert_int_equal(s.n, 2);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void transport_errors(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 3);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };
        struct http_request req = { .method = "GET",
                                    .url = url_of(f, "/"),
                                    .idempotent = true };

        /* Connection dropped, then a body cut short: both retried. */
        fake_http_push_raw(f, NULL, 0, true);
        fake_http_push_raw(f,
                           "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                           "{\"data\":",
                           0, true);
        fake_http_push(f, 200, JSON_HDR, "{}");
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_OK);
        assert_int_equal(fake_http_requests(f), 3);
        assert_int_equal(s.n, 2);

        /* Not idempotent: a dropped connection may have been a write, so
         * it is neither retried nor sent on a reused connection (where
         * curl would re-send it by itself). */
        fake_http_push_raw(f, NULL, 0, true);
        req.idempotent = false;
        size_t conns = fake_http_connections(f);
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_ERR_HTTP);
        assert_int_equal(fake_http_requests(f), 4);
        assert_int_equal(fake_http_connections(f), conns + 1);
        assert_int_equal(s.n, 2);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

static void timeout_is_reported(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct http_policy p;
        http_policy_default(&p);
        p.timeout_ms = 300;
        p.max_attempts = 2;
        struct http_client *c = http_client_new(&p);
        struct sleeps s = { 0 };
        http_client_set_sleep(c, fake_sleep, &s);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };

        fake_http_push_raw(f, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                           1000, true);
        struct http_request req = { .method = "POST", .url = url_of(f, "/") };
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err),
                         SS_ERR_TIMEOUT);
        assert_int_equal(s.n, 0);
        /* A port we held and let go: refused at once, retried when safe. */
        char dead[64];
        dead_port_url(dead, sizeof(dead));
        req.url = dead;
        req.idempotent = true;
        assert_int_equal(http_do(c, &req, NULL, NULL, &r, &err), SS_ERR_HTTP);
        assert_int_equal(r.status, 0);
        assert_int_equal(s.n, 1);

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

/* Retries log one line each; the line must carry neither header values,
 * nor credentials, nor the query string, nor the body. */
static void retry_logs_hold_no_secrets(void **state)
{
        (void)state;
        struct fake_http *f = fake_http_start();
        assert_non_null(f);
        struct sleeps s = { 0 };
        struct http_client *c = test_client(&s, 2);
        struct http_response r = HTTP_RESPONSE_INIT;
        struct ss_error err = { 0 };
        char path[] = "/tmp/test_http_log_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);

        fflush(stderr);
        int saved = dup(2);
        assert_true(dup2(fd, 2) >= 0);

        fake_http_push(f, 503, NULL, "body-secret");
        fake_http_push(f, 200, NULL, "body-secret");
        const char *hdrs[] = { "X-Shopify-Access-Token: shpat_SECRET1", NULL };
        char url[160];
        snprintf(url, sizeof(url), "%s/x?consumer_secret=SECRET2",
                 fake_http_url(f));
        struct http_request req = { .method = "GET",
                                    .url = url,
                                    .headers = hdrs,
                                    .userpwd = "ck:SECRET3",
                                    .idempotent = true };
        enum ss_err rc = http_do(c, &req, NULL, NULL, &r, &err);

        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        assert_int_equal(rc, SS_OK);

        char text[4096] = "";
        FILE *in = fdopen(fd, "r");
        rewind(in);
        size_t n = fread(text, 1, sizeof(text) - 1, in);
        text[n] = '\0';
        fclose(in);
        unlink(path);
        assert_non_null(strstr(text, "event=http_retry"));
        assert_null(strstr(text, "SECRET"));
        assert_null(strstr(text, "body-secret"));

        http_response_free(&r);
        http_client_free(c);
        fake_http_stop(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(policy_defaults),
                cmocka_unit_test(backoff_stays_in_bounds),
                cmocka_unit_test(backoff_edge_policies),
                cmocka_unit_test(header_lookup),
                cmocka_unit_test(retry_after_seconds),
                cmocka_unit_test(retry_after_dates),
                cmocka_unit_test(classify_statuses),
                cmocka_unit_test(url_rule),
                cmocka_unit_test(get_with_headers_and_keepalive),
                cmocka_unit_test(post_put_bodies_and_basic_auth),
                cmocka_unit_test(refusals_before_sending),
                cmocka_unit_test(redirect_not_followed),
                cmocka_unit_test(body_cap),
                cmocka_unit_test(retry_5xx_when_idempotent),
                cmocka_unit_test(gives_up_after_max_attempts),
                cmocka_unit_test(throttle_honours_retry_after),
                cmocka_unit_test(throttle_wait_from_named_header),
                cmocka_unit_test(throttle_wait_beyond_cap_gives_up),
                cmocka_unit_test(permanent_errors_not_retried),
                cmocka_unit_test(check_hook_throttle_and_stop),
                cmocka_unit_test(transport_errors),
                cmocka_unit_test(timeout_is_reported),
                cmocka_unit_test(retry_logs_hold_no_secrets),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
