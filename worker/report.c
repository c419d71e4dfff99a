/* Building the request outcome's detail object. */
#include "report.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const list_names[RL__COUNT] = {
        [RL_CHANGED] = "changed",
        [RL_SKIPPED] = "skipped",
        [RL_FAILED] = "failed",
        [RL_BLOCKED] = "blocked",
        [RL_UNCHANGED] = "unchanged",
        [RL_UNMATCHED_STORE] = "unmatched_store",
        [RL_UNMATCHED_WAREHOUSE] = "unmatched_warehouse",
        [RL_DUPLICATED_ON_STORE] = "duplicated_on_store",
        [RL_PLANNED] = "planned",
};

void report_init(struct report *r)
{
        memset(r, 0, sizeof(*r));
        r->state = "succeeded";
}

void report_free(struct report *r)
{
        for (int i = 0; i < RL__COUNT; i++)
                buf_free(&r->lists[i]);
        buf_free(&r->notes);
        buf_free(&r->extra);
}

void report_item(struct report *r,
                 enum report_list list,
                 const char *sku,
                 const char *code,
                 const char *reason,
                 long long before,
                 long long after,
                 const char *near)
{
        if (r->list_count[list]++ >= REPORT_LIST_MAX)
                return;
        struct buf *b = &r->lists[list];
        if (b->len)
                buf_putc(b, ',');
        buf_puts(b, "{\"sku\":");
        buf_json_str(b, sku ? sku : "");
        if (code) {
                buf_puts(b, ",\"code\":");
                buf_json_str(b, code);
        }
        if (reason) {
                buf_puts(b, ",\"reason\":");
                buf_json_str(b, reason);
        }
        if (before != LLONG_MIN)
                buf_printf(b, ",\"before\":%lld", before);
        if (after != LLONG_MIN)
                buf_printf(b, ",\"after\":%lld", after);
        if (near) {
                buf_puts(b, ",\"near_match\":");
                buf_json_str(b, near);
        }
        buf_putc(b, '}');
}

void report_note(struct report *r, const char *fmt, ...)
{
        char tmp[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (r->notes.len)
                buf_putc(&r->notes, ',');
        buf_json_str(&r->notes, tmp);
}

void report_extra(struct report *r, const char *key, const char *json)
{
        if (r->extra.len)
                buf_putc(&r->extra, ',');
        buf_json_str(&r->extra, key);
        buf_putc(&r->extra, ':');
        buf_puts(&r->extra, json);
}

void report_detail_json(const struct report *r, struct buf *out)
{
        bool first = true;
        buf_putc(out, '{');
        for (int i = 0; i < RL__COUNT; i++) {
                if (r->list_count[i] == 0)
                        continue;
                buf_printf(out, "%s\"%s\":{\"count\":%lld,\"items\":[",
                           first ? "" : ",", list_names[i], r->list_count[i]);
                buf_puts(out,
                         buf_str(&r->lists[i]) ? buf_str(&r->lists[i]) : "");
                buf_puts(out, "]}");
                first = false;
        }
        if (r->notes.len) {
                buf_printf(out, "%s\"notes\":[", first ? "" : ",");
                buf_puts(out, buf_str(&r->notes) ? buf_str(&r->notes) : "");
                buf_putc(out, ']');
                first = false;
        }
        if (r->extra.len) {
                if (!first)
                        buf_putc(out, ',');
                buf_puts(out, buf_str(&r->extra) ? buf_str(&r->extra) : "");
        }
        buf_putc(out, '}');
}
