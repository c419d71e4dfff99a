/* Growing buffer with sticky allocation failure. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool buf_reserve(struct buf *b, size_t extra)
{
        if (b->failed)
                return false;
        if (b->len + extra + 1 <= b->cap)
                return true;
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + extra + 1)
                cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
                free(b->data);
                b->data = NULL;
                b->len = b->cap = 0;
                b->failed = true;
                return false;
        }
        b->data = p;
        b->cap = cap;
        return true;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
        if (!buf_reserve(b, n))
                return;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
        buf_append(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
        buf_append(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !buf_reserve(b, (size_t)n))
                return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

void buf_json_str(struct buf *b, const char *s)
{
        static const char hex[] = "0123456789abcdef";

        buf_putc(b, '"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '"':
                        buf_puts(b, "\\\"");
                        break;
                case '\\':
                        buf_puts(b, "\\\\");
                        break;
                case '\n':
                        buf_puts(b, "\\n");
                        break;
                case '\r':
                        buf_puts(b, "\\r");
                        break;
                case '\t':
                        buf_puts(b, "\\t");
                        break;
                default:
                        if (*p < 0x20) {
                                char esc[7] = { '\\', 'u', '0', '0',
                                                hex[*p >> 4], hex[*p & 15],
                                                0 };
                                buf_puts(b, esc);
                        } else {
                                buf_putc(b, (char)*p);
                        }
                }
        }
        buf_putc(b, '"');
}

void buf_urlencode(struct buf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
                    *p == '.' || *p == '~') {
                        buf_putc(b, (char)*p);
                } else {
                        char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
                        buf_append(b, esc, 3);
                }
        }
}

const char *buf_str(const struct buf *b)
{
        if (b->failed)
                return NULL;
        return b->data ? b->data : "";
}

void buf_reset(struct buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        b->failed = false;
}

char *buf_steal(struct buf *b)
{
        char *s = b->failed ? NULL : b->data;
        if (s == NULL && !b->failed)
                s = calloc(1, 1);
        b->data = NULL;
        b->len = b->cap = 0;
        b->failed = false;
        return s;
}
