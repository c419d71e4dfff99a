/* Scripted loopback HTTP responder for the unit tests (see fake_http.h).
 * Test support only: it trusts its peer (our own client) and aborts the
 * test process on allocation failure. */
#include "fake_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fake_reply {
        char *raw; /* owned; NULL: send nothing */
        size_t len;
        unsigned delay_ms;
        bool close;
};

struct fake_http {
        int lfd;
        char url[64];
        pthread_t thread;
        atomic_bool stop;
        pthread_mutex_t mu;
        struct fake_reply *script; /* owned, guarded by mu */
        size_t nscript, next, capscript;
        char **reqs; /* owned, guarded by mu */
        size_t nreqs, capreqs;
        pthread_t *conns; /* owned: one thread per connection */
        size_t nconns, capconns;
};

static void *xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n);
        if (q == NULL)
                abort();
        return q;
}

static char *xstrndup(const char *s, size_t n)
{
        char *d = xrealloc(NULL, n + 1);
        memcpy(d, s, n);
        d[n] = '\0';
        return d;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

static void send_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;
                p += w;
                n -= (size_t)w;
        }
}

/* Waits for fd to be readable, checking the stop flag every 50 ms. */
static bool wait_readable(struct fake_http *f, int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };

        while (!atomic_load(&f->stop)) {
                int r = poll(&p, 1, 50);
                if (r > 0)
                        return true;
                if (r < 0 && errno != EINTR)
                        return false;
        }
        return false;
}

static size_t content_length(const char *head, size_t headlen)
{
        const char *p = head;
        const char *end = head + headlen;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                if (eol == NULL)
                        break;
                if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
                        return strtoul(p + 15, NULL, 10);
                p = eol + 1;
        }
        return 0;
}

/* Reads one request into a new string; NULL when the peer closed. */
static char *read_request(struct fake_http *f,
                          int fd,
                          char *pending,
                          size_t *npending,
                          size_t cap)
{
        for (;;) {
                char *hend = memmem(pending, *npending, "\r\n\r\n", 4);
                if (hend != NULL) {
                        size_t headlen = (size_t)(hend - pending) + 4;
                        size_t total =
                                headlen + content_length(pending, headlen);
                        if (total > cap)
                                return NULL;
                        if (*npending >= total) {
                                char *req = xstrndup(pending, total);
                                memmove(pending, pending + total,
                                        *npending - total);
                                *npending -= total;
                                return req;
                        }
                }
                if (*npending == cap || !wait_readable(f, fd))
                        return NULL;
                ssize_t r = recv(fd, pending + *npending, cap - *npending, 0);
                if (r <= 0)
                        return NULL;
                *npending += (size_t)r;
        }
}

/* Records req and takes the next reply; false when the script is over
 * (then *out is a 599 made on the spot, freed by the caller). */
static bool next_reply(struct fake_http *f, char *req, struct fake_reply *out)
{
        bool scripted;

        pthread_mutex_lock(&f->mu);
        if (f->nreqs == f->capreqs) {
                f->capreqs = f->capreqs ? f->capreqs * 2 : 16;
                f->reqs = xrealloc(f->reqs, f->capreqs * sizeof(*f->reqs));
        }
        f->reqs[f->nreqs++] = req;
        scripted = f->next < f->nscript;
        if (scripted)
                *out = f->script[f->next++];
        pthread_mutex_unlock(&f->mu);

        if (!scripted) {
                static const char over[] = "HTTP/1.1 599 Script Over\r\n"
                                           "Content-Length: 0\r\n\r\n";
                *out = (struct fake_reply){ .raw = xstrndup(over,
                                                            sizeof(over) - 1),
                                            .len = sizeof(over) - 1 };
        }
        return scripted;
}

static void serve_conn(struct fake_http *f, int fd)
{
        size_t cap = (size_t)1 << 20;
        char *pending = xrealloc(NULL, cap);
        size_t npending = 0;

        for (;;) {
                char *req = read_request(f, fd, pending, &npending, cap);
                if (req == NULL)
                        break;
                struct fake_reply r;
                bool scripted = next_reply(f, req, &r);
                if (r.delay_ms)
                        sleep_ms(r.delay_ms);
                if (r.raw != NULL)
                        send_all(fd, r.raw, r.len);
                if (!scripted)
                        free(r.raw);
                if (r.close)
                        break;
        }
        free(pending);
}

struct conn_arg {
        struct fake_http *f;
        int fd;
};

static void *conn_thread(void *arg)
{
        struct conn_arg *ca = arg;
        serve_conn(ca->f, ca->fd);
        close(ca->fd);
        free(ca);
        return NULL;
}

/* Accepts connections, one thread each: a client may open a new one while
 * an idle kept-alive one is still open. */
static void *serve(void *arg)
{
        struct fake_http *f = arg;

        while (wait_readable(f, f->lfd)) {
                int fd = accept(f->lfd, NULL, NULL);
                if (fd < 0)
                        continue;
                struct conn_arg *ca = xrealloc(NULL, sizeof(*ca));
                *ca = (struct conn_arg){ f, fd };
                pthread_mutex_lock(&f->mu);
                if (f->nconns == f->capconns) {
                        f->capconns = f->capconns ? f->capconns * 2 : 8;
                        f->conns = xrealloc(f->conns,
                                            f->capconns * sizeof(*f->conns));
                }
                if (pthread_create(&f->conns[f->nconns], NULL, conn_thread,
                                   ca) != 0)
                        abort();
                f->nconns++;
                pthread_mutex_unlock(&f->mu);
        }
        return NULL;
}

struct fake_http *fake_http_start(void)
{
        struct fake_http *f = calloc(1, sizeof(*f));
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t salen = sizeof(sa);

        if (f == NULL)
                return NULL;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        f->lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (f->lfd < 0)
                goto fail;
        if (bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            listen(f->lfd, 8) != 0 ||
            getsockname(f->lfd, (struct sockaddr *)&sa, &salen) != 0)
                goto fail;
        snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u",
                 (unsigned)ntohs(sa.sin_port));
        pthread_mutex_init(&f->mu, NULL);
        atomic_init(&f->stop, false);
        if (pthread_create(&f->thread, NULL, serve, f) != 0) {
                pthread_mutex_destroy(&f->mu);
                goto fail;
        }
        return f;
fail:
        if (f->lfd >= 0)
                close(f->lfd);
        free(f);
        return NULL;
}

void fake_http_stop(struct fake_http *f)
{
        if (f == NULL)
                return;
        atomic_store(&f->stop, true);
        pthread_join(f->thread, NULL);
        for (size_t i = 0; i < f->nconns; i++)
                pthread_join(f->conns[i], NULL);
        free(f->conns);
        close(f->lfd);
        for (size_t i = 0; i < f->nscript; i++)
                free(f->script[i].raw);
        for (size_t i = 0; i < f->nreqs; i++)
                free(f->reqs[i]);
        free(f->script);
        free(f->reqs);
        pthread_mutex_destroy(&f->mu);
        free(f);
}

const char *fake_http_url(const struct fake_http *f)
{
        return f->url;
}

void fake_http_push_raw(struct fake_http *f,
                        const char *raw,
                        unsigned delay_ms,
                        bool close)
{
        struct fake_reply r = {
                .raw = raw ? xstrndup(raw, strlen(raw)) : NULL,
                .len = raw ? strlen(raw) : 0,
                .delay_ms = delay_ms,
                .close = close,
        };

        pthread_mutex_lock(&f->mu);
        if (f->nscript == f->capscript) {
                f->capscript = f->capscript ? f->capscript * 2 : 16;
                f->script =
                        xrealloc(f->script, f->capscript * sizeof(*f->script));
        }
        f->script[f->nscript++] = r;
        pthread_mutex_unlock(&f->mu);
}

void fake_http_push(struct fake_http *f,
                    int status,
                    const char *headers,
                    const char *body)
{
        size_t blen = body ? strlen(body) : 0;
        size_t hlen = headers ? strlen(headers) : 0;
        size_t cap = 128 + hlen + blen;
        char *raw = xrealloc(NULL, cap);

        int n = snprintf(raw, cap,
                         "HTTP/1.1 %d Scripted\r\n%sContent-Length: %zu\r\n"
                         "\r\n%s",
                         status, headers ? headers : "", blen,
                         body ? body : "");
        if (n < 0 || (size_t)n >= cap)
                abort();
        fake_http_push_raw(f, raw, 0, false);
        free(raw);
}

size_t fake_http_requests(struct fake_http *f)
{
        pthread_mutex_lock(&f->mu);
        size_t n = f->nreqs;
        pthread_mutex_unlock(&f->mu);
        return n;
}

size_t fake_http_connections(struct fake_http *f)
{
        pthread_mutex_lock(&f->mu);
        size_t n = f->nconns;
        pthread_mutex_unlock(&f->mu);
        return n;
}

char *fake_http_request(struct fake_http *f, size_t i)
{
        char *copy = NULL;

        pthread_mutex_lock(&f->mu);
        if (i < f->nreqs)
                copy = xstrndup(f->reqs[i], strlen(f->reqs[i]));
        pthread_mutex_unlock(&f->mu);
        return copy;
}
