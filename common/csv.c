/* CSV cell writer. */
#include "csv.h"

#include <string.h>

bool csv_needs_neutralise(const char *s, size_t len)
{
        if (len == 0)
                return false;
        switch (s[0]) {
        case '=':
        case '+':
        case '-':
        case '@':
        case '\t':
        case '\r':
        /* Escaping the escape keeps the rule reversible. */
        case '\'':
                return true;
        default:
                return false;
        }
}

bool csv_needs_quotes(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == ',' || c == '"' || c == '\n' || c == '\r')
                        return true;
        }
        return false;
}

void csv_text(struct buf *b, const char *s, size_t len, bool neutralise)
{
        bool prefix = neutralise && csv_needs_neutralise(s, len);
        if (!csv_needs_quotes(s, len)) {
                if (prefix)
                        buf_putc(b, '\'');
                if (len > 0)
                        buf_append(b, s, len);
                return;
        }

        buf_putc(b, '"');
        if (prefix)
                buf_putc(b, '\'');
        size_t start = 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] != '"')
                        continue;
                /* Copy up to and including the quote, then double it. */
                buf_append(b, s + start, i + 1 - start);
                buf_putc(b, '"');
                start = i + 1;
        }
        if (start < len)
                buf_append(b, s + start, len - start);
        buf_putc(b, '"');
}

void csv_int(struct buf *b, long long v)
{
        char tmp[24];
        char *p = tmp + sizeof(tmp);
        /* Work in unsigned so the most negative value has no overflow. */
        unsigned long long u =
                v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u != 0);
        if (v < 0)
                *--p = '-';
        buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void csv_bom(struct buf *b)
{
        buf_append(b, "\xEF\xBB\xBF", 3);
}
