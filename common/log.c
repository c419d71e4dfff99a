/* key=value logger with a per-thread request context. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_svc = "stocksync";
static enum log_level log_min = LOG_INFO;

static _Thread_local char ctx_req[80];
static _Thread_local char ctx_platform[32];
static _Thread_local long long ctx_integration;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *svc, enum log_level min_level)
{
        log_svc = svc;
        log_min = min_level;
}

bool log_level_parse(const char *s, enum log_level *out)
{
        for (int i = 0; i < 4; i++) {
                if (strcmp(s, level_names[i]) == 0) {
                        *out = (enum log_level)i;
                        return true;
                }
        }
        return false;
}

bool log_enabled(enum log_level level)
{
        return level >= log_min;
}

void log_ctx_set(const char *req, const char *platform, long long integration)
{
        snprintf(ctx_req, sizeof(ctx_req), "%s", req ? req : "");
        snprintf(ctx_platform, sizeof(ctx_platform), "%s",
                 platform ? platform : "");
        ctx_integration = integration;
}

void log_ctx_clear(void)
{
        ctx_req[0] = ctx_platform[0] = '\0';
        ctx_integration = 0;
}

static bool needs_quotes(const char *v)
{
        if (*v == '\0')
                return true;
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
                if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' ||
                    *p == 0x7f)
                        return true;
        return false;
}

void log_begin(struct log_line *l, enum log_level level, const char *event)
{
        l->b = (struct buf)BUF_INIT;
        l->level = level;
        l->on = log_enabled(level);
        if (!l->on)
                return;

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        buf_printf(&l->b, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        buf_printf(&l->b, " level=%s svc=%s event=%s", level_names[level],
                   log_svc, event);
        if (ctx_req[0])
                log_kv(l, "req", ctx_req);
        if (ctx_platform[0])
                log_kv(l, "platform", ctx_platform);
        if (ctx_integration)
                log_kvi(l, "integration", ctx_integration);
}

void log_kv(struct log_line *l, const char *key, const char *val)
{
        if (!l->on)
                return;
        if (val == NULL)
                val = "";
        buf_printf(&l->b, " %s=", key);
        if (needs_quotes(val))
                buf_json_str(&l->b, val);
        else
                buf_puts(&l->b, val);
}

void log_kvi(struct log_line *l, const char *key, long long val)
{
        if (l->on)
                buf_printf(&l->b, " %s=%lld", key, val);
}

void log_kvf(struct log_line *l, const char *key, const char *fmt, ...)
{
        if (!l->on)
                return;
        char tmp[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        log_kv(l, key, tmp);
}

void log_err(struct log_line *l, const struct ss_error *err)
{
        log_kv(l, "code", ss_err_name(err->code));
        if (err->msg[0])
                log_kv(l, "msg", err->msg);
}

void log_end(struct log_line *l)
{
        if (l->on) {
                buf_putc(&l->b, '\n');
                const char *s = buf_str(&l->b);
                /* One write per line keeps lines whole across threads. */
                if (s != NULL)
                        fputs(s, stderr);
        }
        buf_free(&l->b);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
        struct log_line l;
        log_begin(&l, level, event);
        if (l.on && fmt && *fmt) {
                va_list ap;
                va_start(ap, fmt);
                char tmp[1024];
                vsnprintf(tmp, sizeof(tmp), fmt, ap);
                va_end(ap);
                buf_putc(&l.b, ' ');
                buf_puts(&l.b, tmp);
        }
        log_end(&l);
}

void log_redact_url(const char *url, char *out, size_t outsz)
{
        struct buf b = BUF_INIT;
        const char *p = url ? url : "";

        /* scheme://user:secret@host */
        const char *scheme = strstr(p, "://");
        const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
        const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
        if (at && colon && colon < at) {
                buf_append(&b, p, (size_t)(colon + 1 - p));
                buf_puts(&b, "***");
                p = at;
        }
        /* key=value DSN or query form */
        const char *pw = strstr(p, "password=");
        if (pw) {
                buf_append(&b, p, (size_t)(pw + 9 - p));
                buf_puts(&b, "***");
                p = pw + 9 + strcspn(pw + 9, " &");
        }
        buf_puts(&b, p);
        snprintf(out, outsz, "%s", buf_str(&b) ? buf_str(&b) : "");
        buf_free(&b);
}
