/* One line per event, key=value, on stderr:
 *   ts=2026-12-04T10:15:02.114Z level=info svc=worker event=request_done
 *   req=9f2c platform=shopify integration=42 outcome=succeeded ...
 * The event name is constant; variables go into keys. Values containing
 * spaces, quotes, '=' or control characters are quoted and escaped. A
 * thread-local request context (req, platform, integration) is added to
 * every line the thread writes while it is set. */
#ifndef SS_LOG_H
#define SS_LOG_H

#include "buf.h"
#include "err.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* svc is borrowed and must outlive the process' logging. */
void log_init(const char *svc, enum log_level min_level);

/* Parses "debug|info|warn|error"; returns false when unknown. */
bool log_level_parse(const char *s, enum log_level *out);

bool log_enabled(enum log_level level);

/* Sets or clears (all NULL / 0) this thread's request context. The strings
 * are copied. */
void log_ctx_set(const char *req, const char *platform, long long integration);
void log_ctx_clear(void);

/* Builder for one line. */
struct log_line {
        struct buf b;
        enum log_level level;
        bool on;
};

void log_begin(struct log_line *l, enum log_level level, const char *event);
void log_kv(struct log_line *l, const char *key, const char *val);
void log_kvi(struct log_line *l, const char *key, long long val);
void log_kvf(struct log_line *l, const char *key, const char *fmt, ...)
        SS_PRINTF(3, 4);
/* Adds code=<stable name> msg=<text> from err. */
void log_err(struct log_line *l, const struct ss_error *err);
void log_end(struct log_line *l);

/* One-shot helper: log_msg(LOG_INFO, "started", "version=%s", VERSION).
 * The formatted text is appended as-is: use it only for values that need
 * no quoting (numbers, identifiers). */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
        SS_PRINTF(3, 4);

/* Copies url into out with any password (user:PASS@ or password=...)
 * replaced by "***", for config summaries. */
void log_redact_url(const char *url, char *out, size_t outsz);

#endif
