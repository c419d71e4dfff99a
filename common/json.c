/* yajl tree helpers and a strict UTF-8 check. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

size_t json_utf8_seq(const unsigned char *p, const unsigned char *end)
{
        unsigned c = p[0];
        size_t n;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
                n = 1;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 2;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 3;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if ((size_t)(end - p) <= n)
                return 0;
        for (size_t i = 1; i <= n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n + 1;
}

bool json_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        const unsigned char *end = p + len;
        while (p < end) {
                if (*p == 0)
                        return false;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                size_t n = json_utf8_seq(p, end);
                if (n == 0)
                        return false;
                p += n;
        }
        return true;
}

/* True when a string in text[0..len) spells U+0000 as an escape. yajl
 * would decode it into a NUL that silently cuts the C string short (an id
 * "a\u0000b" would become "a"), so such text is refused like a raw NUL.
 * Every backslash in valid JSON starts an escape, so a scan needs no
 * parser. */
static bool has_nul_escape(const char *text, size_t len)
{
        for (size_t i = 0; i + 1 < len; i++) {
                if (text[i] != '\\')
                        continue;
                if (text[i + 1] == 'u' && i + 5 < len &&
                    memcmp(text + i + 2, "0000", 4) == 0)
                        return true;
                i++; /* skip the escaped character */
        }
        return false;
}

yajl_val json_parse(const char *text, size_t len, struct ss_error *err)
{
        if (!json_utf8_valid(text, len) || has_nul_escape(text, len)) {
                ss_error_set(err, SS_ERR_INVALID_UTF8,
                             "message is not valid UTF-8 or holds a NUL "
                             "character (raw or as \\u0000)");
                return NULL;
        }
        /* yajl_tree_parse wants a NUL-terminated copy. */
        char *copy = malloc(len + 1);
        if (copy == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        memcpy(copy, text, len);
        copy[len] = '\0';

        char ebuf[256];
        ebuf[0] = '\0';
        yajl_val v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
        free(copy);
        if (v == NULL) {
                /* yajl's message spans lines; keep the first. */
                ebuf[strcspn(ebuf, "\n")] = '\0';
                ss_error_set(err, SS_ERR_NOT_JSON, "not valid JSON: %s",
                             ebuf[0] ? ebuf : "parse error");
        }
        return v;
}

yajl_val json_get(yajl_val obj, const char *key)
{
        if (obj == NULL || !YAJL_IS_OBJECT(obj))
                return NULL;
        for (size_t i = 0; i < obj->u.object.len; i++)
                if (strcmp(obj->u.object.keys[i], key) == 0)
                        return obj->u.object.values[i];
        return NULL;
}

yajl_val json_path(yajl_val v, ...)
{
        va_list ap;
        va_start(ap, v);
        const char *key;
        while (v != NULL && (key = va_arg(ap, const char *)) != NULL)
                v = json_get(v, key);
        va_end(ap);
        return v;
}

const char *json_str(yajl_val v)
{
        return (v != NULL && YAJL_IS_STRING(v)) ? v->u.string : NULL;
}

bool json_int(yajl_val v, long long *out)
{
        if (v == NULL || !YAJL_IS_INTEGER(v))
                return false;
        *out = YAJL_GET_INTEGER(v);
        return true;
}

bool json_int_lenient(yajl_val v, long long *out)
{
        if (json_int(v, out))
                return true;
        if (v == NULL || !YAJL_IS_DOUBLE(v))
                return false;
        double d = YAJL_GET_DOUBLE(v);
        if (!isfinite(d) || d != floor(d) || d > 9e15 || d < -9e15)
                return false;
        *out = (long long)d;
        return true;
}

bool json_double(yajl_val v, double *out)
{
        if (v == NULL || !YAJL_IS_NUMBER(v))
                return false;
        if (YAJL_IS_INTEGER(v))
                *out = (double)YAJL_GET_INTEGER(v);
        else if (YAJL_IS_DOUBLE(v))
                *out = YAJL_GET_DOUBLE(v);
        else
                return false;
        return true;
}

bool json_bool(yajl_val v, bool *out)
{
        if (v == NULL || !(YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
                return false;
        *out = YAJL_IS_TRUE(v);
        return true;
}

bool json_is_null(yajl_val v)
{
        return v != NULL && YAJL_IS_NULL(v);
}

size_t json_len(yajl_val v)
{
        return (v != NULL && YAJL_IS_ARRAY(v)) ? v->u.array.len : 0;
}

yajl_val json_at(yajl_val v, size_t i)
{
        if (v == NULL || !YAJL_IS_ARRAY(v) || i >= v->u.array.len)
                return NULL;
        return v->u.array.values[i];
}
