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

/* The bytes that make a cell need quotes: comma, quote, CR, LF. */
static const unsigned char quote_byte[256] = {
        ['\n'] = 1,
        ['\r'] = 1,
        [','] = 1,
        ['"'] = 1,
};

bool csv_needs_quotes(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (quote_byte[(unsigned char)s[i]])
                        return true;
        return false;
}

char *csv_put_text(char *dst, const char *s, size_t len, bool neutralise)
{
        bool prefix = neutralise && csv_needs_neutralise(s, len);
        if (!csv_needs_quotes(s, len)) {
                if (prefix)
                        *dst++ = '\'';
                if (len > 0)
                        memcpy(dst, s, len);
                return dst + len;
        }

        *dst++ = '"';
        if (prefix)
                *dst++ = '\'';
        for (size_t i = 0; i < len; i++) {
                *dst++ = s[i];
                if (s[i] == '"')
                        *dst++ = '"';
        }
        *dst++ = '"';
        return dst;
}

char *csv_put_int(char *dst, long long v)
{
        char tmp[CSV_INT_MAX];
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
        size_t n = (size_t)(tmp + sizeof(tmp) - p);
        memcpy(dst, p, n);
        return dst + n;
}

void csv_text(struct buf *b, const char *s, size_t len, bool neutralise)
{
        char small[256];
        if (CSV_TEXT_MAX(len) <= sizeof(small)) {
                char *end = csv_put_text(small, s, len, neutralise);
                buf_append(b, small, (size_t)(end - small));
                return;
        }

        /* Long cells: quoting in runs, so no copy of the whole text. */
        bool prefix = neutralise && csv_needs_neutralise(s, len);
        if (!csv_needs_quotes(s, len)) {
                if (prefix)
                        buf_putc(b, '\'');
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
        char tmp[CSV_INT_MAX];
        char *end = csv_put_int(tmp, v);
        buf_append(b, tmp, (size_t)(end - tmp));
}

void csv_bom(struct buf *b)
{
        buf_append(b, "\xEF\xBB\xBF", 3);
}
