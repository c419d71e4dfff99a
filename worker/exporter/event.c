/* Audit event parsing and its CSV row. */
#include "event.h"

#include <string.h>

#include "../../common/csv.h"
#include "../../common/json.h"
#include "../../common/timefmt.h"

const char event_csv_header[] =
        "movement_id,occurred_at,reason_code,note,qty_before,qty_after,"
        "qty_change,sku,item_name,location_code,serial,batch,lot,order_ref\n";

/* Nesting allowed inside skipped unknown values. */
#define MAX_DEPTH 32

enum kind {
        K_INT,
        K_STR,
        K_TIME,
        K_EVENT
};

/* What the event must hold: NOT_NULL fields must be present and set. */
enum need {
        OPTIONAL,
        NOT_NULL
};

struct field {
        const char *name;
        size_t nlen;
        enum kind kind;
        enum need need;
        size_t offset; /* into struct movement_event */
};

#define F(n, k, r, m)                                                      \
        {                                                                  \
                n, sizeof(n) - 1, k, r, offsetof(struct movement_event, m) \
        }

static const struct field fields[] = {
        F("event", K_EVENT, NOT_NULL, movement_id),
        F("movement_id", K_INT, NOT_NULL, movement_id),
        F("occurred_at", K_TIME, NOT_NULL, occurred_us),
        F("reason_code", K_STR, NOT_NULL, reason_code),
        F("note", K_STR, OPTIONAL, note),
        F("qty_before", K_INT, NOT_NULL, qty_before),
        F("qty_after", K_INT, NOT_NULL, qty_after),
        F("qty_change", K_INT, NOT_NULL, qty_change),
        F("sku", K_STR, NOT_NULL, sku),
        F("item_name", K_STR, OPTIONAL, item_name),
        F("location_code", K_STR, NOT_NULL, location_code),
        F("serial", K_STR, OPTIONAL, serial),
        F("batch", K_STR, OPTIONAL, batch),
        F("lot", K_STR, OPTIONAL, lot),
        F("order_ref", K_STR, OPTIONAL, order_ref),
        F("client_id", K_INT, NOT_NULL, client_id),
        F("unit_id", K_INT, NOT_NULL, unit_id),
        F("integration_id", K_INT, OPTIONAL, integration_id),
        F("request_id", K_STR, OPTIONAL, request_id),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* A string token: either p[0..len) in the payload (no escapes), or
 * scratch[off..off+len) when escapes had to be decoded. */
struct tok {
        const char *p;
        size_t off;
        size_t len;
};

struct parser {
        const char *begin, *s, *end;
        struct buf *scratch;
        struct ss_error *err;
};

static enum ss_err syntax(struct parser *ps, const char *what)
{
        return ss_error_set(ps->err, SS_ERR_NOT_JSON,
                            "not valid JSON: %s at byte %zu", what,
                            (size_t)(ps->s - ps->begin));
}

static void ws(struct parser *ps)
{
        while (ps->s < ps->end && (*ps->s == ' ' || *ps->s == '\n' ||
                                   *ps->s == '\r' || *ps->s == '\t'))
                ps->s++;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static bool hex4(struct parser *ps, unsigned *out)
{
        if (ps->end - ps->s < 4)
                return false;
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                int h = hexval(ps->s[i]);
                if (h < 0)
                        return false;
                v = v << 4 | (unsigned)h;
        }
        ps->s += 4;
        *out = v;
        return true;
}

static void put_utf8(struct buf *b, unsigned cp)
{
        char u[4];
        size_t n;
        if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | cp >> 12);
                u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (char)(0xf0 | cp >> 18);
                u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                n = 4;
        }
        buf_append(b, u, n);
}

/* One escape after the backslash, decoded into scratch. */
static enum ss_err escape(struct parser *ps)
{
        if (ps->s >= ps->end)
                return syntax(ps, "unterminated string");
        char c = *ps->s++;
        static const char from[] = "\"\\/bfnrt";
        static const char to[] = "\"\\/\b\f\n\r\t";
        const char *hit = strchr(from, c);
        if (c != '\0' && hit != NULL) {
                buf_putc(ps->scratch, to[hit - from]);
                return SS_OK;
        }
        unsigned cp;
        if (c != 'u' || !hex4(ps, &cp))
                return syntax(ps, "bad escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (ps->end - ps->s < 2 || ps->s[0] != '\\' || ps->s[1] != 'u')
                        return syntax(ps, "lone surrogate");
                ps->s += 2;
                if (!hex4(ps, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return syntax(ps, "lone surrogate");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                /* NUL cannot live in PostgreSQL text or our C strings. */
                return syntax(ps, "lone surrogate or NUL");
        }
        put_utf8(ps->scratch, cp);
        return SS_OK;
}

/* Bytes a string may hold as they are: printable ASCII except the quote
 * and the backslash. Everything else takes the slow path. */
/* clang-format off */
static const unsigned char plain[256] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* clang-format on */

/* Steps over whole 8-byte words that hold only plain bytes: one test per
 * word instead of one table look-up per byte. A word with any byte below
 * 0x20, above 0x7f, a quote or a backslash stops it. */
static void skip_plain8(struct parser *ps)
{
        const uint64_t ones = 0x0101010101010101ULL;
        const uint64_t highs = 0x8080808080808080ULL;
        while (ps->end - ps->s >= 8) {
                uint64_t w;
                memcpy(&w, ps->s, 8);
                uint64_t quote = w ^ (ones * '"');
                uint64_t bslash = w ^ (ones * '\\');
                /* (x - ones) & ~x has a high bit set exactly when some
                 * byte of x is zero; with 0x20 instead of ones, when some
                 * byte is below 0x20. OR-ing w in catches bytes >= 0x80. */
                uint64_t hit = ((w - ones * 0x20) & ~w) |
                               ((quote - ones) & ~quote) |
                               ((bslash - ones) & ~bslash) | w;
                if ((hit & highs) != 0)
                        return;
                ps->s += 8;
        }
}

/* Steps over one raw (unescaped) string byte or UTF-8 sequence. */
static enum ss_err raw_char(struct parser *ps)
{
        unsigned char c = (unsigned char)*ps->s;
        if (c < 0x20)
                return syntax(ps, "control character in string");
        if (c < 0x80) {
                ps->s++;
                return SS_OK;
        }
        size_t n = json_utf8_seq((const unsigned char *)ps->s,
                                 (const unsigned char *)ps->end);
        if (n == 0)
                return ss_error_set(ps->err, SS_ERR_INVALID_UTF8,
                                    "text is not valid UTF-8 at byte %zu",
                                    (size_t)(ps->s - ps->begin));
        ps->s += n;
        return SS_OK;
}

/* A string, after its opening quote. Plain strings are borrowed from the
 * payload; the first backslash switches to decoding into scratch. UTF-8
 * is checked here: outside strings any byte above 0x7f is a syntax
 * error anyway. */
static enum ss_err string(struct parser *ps, struct tok *t)
{
        const char *start = ps->s;
        for (;;) {
                skip_plain8(ps);
                while (ps->s < ps->end && plain[(unsigned char)*ps->s])
                        ps->s++;
                if (ps->s >= ps->end || *ps->s == '"' || *ps->s == '\\')
                        break;
                enum ss_err rc = raw_char(ps);
                if (rc != SS_OK)
                        return rc;
        }
        if (ps->s >= ps->end)
                return syntax(ps, "unterminated string");
        if (*ps->s == '"') {
                t->p = start;
                t->len = (size_t)(ps->s - start);
                ps->s++;
                return SS_OK;
        }

        t->p = NULL;
        t->off = ps->scratch->len;
        buf_append(ps->scratch, start, (size_t)(ps->s - start));
        while (ps->s < ps->end && *ps->s != '"') {
                enum ss_err rc;
                if (*ps->s == '\\') {
                        ps->s++;
                        rc = escape(ps);
                } else {
                        const char *from = ps->s;
                        rc = raw_char(ps);
                        buf_append(ps->scratch, from, (size_t)(ps->s - from));
                }
                if (rc != SS_OK)
                        return rc;
        }
        if (ps->s >= ps->end)
                return syntax(ps, "unterminated string");
        ps->s++;
        if (buf_str(ps->scratch) == NULL)
                return ss_error_set(ps->err, SS_ERR_NOMEM, "out of memory");
        t->len = ps->scratch->len - t->off;
        return SS_OK;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Any JSON number; *integer tells whether it was a plain integer that
 * fits, and *v holds it then. */
static enum ss_err number(struct parser *ps, bool *integer, long long *v)
{
        bool neg = false;
        unsigned long long acc = 0;
        bool overflow = false;
        *integer = true;
        if (ps->s < ps->end && *ps->s == '-') {
                neg = true;
                ps->s++;
        }
        if (ps->s >= ps->end || !is_digit(*ps->s))
                return syntax(ps, "bad number");
        if (*ps->s == '0' && ps->s + 1 < ps->end && is_digit(ps->s[1]))
                return syntax(ps, "leading zero");
        while (ps->s < ps->end && is_digit(*ps->s)) {
                unsigned d = (unsigned)(*ps->s++ - '0');
                if (acc > (9223372036854775807ULL - d) / 10)
                        overflow = true;
                acc = acc * 10 + d;
        }
        if (ps->s < ps->end && *ps->s == '.') {
                *integer = false;
                ps->s++;
                if (ps->s >= ps->end || !is_digit(*ps->s))
                        return syntax(ps, "bad fraction");
                while (ps->s < ps->end && is_digit(*ps->s))
                        ps->s++;
        }
        if (ps->s < ps->end && (*ps->s == 'e' || *ps->s == 'E')) {
                *integer = false;
                ps->s++;
                if (ps->s < ps->end && (*ps->s == '+' || *ps->s == '-'))
                        ps->s++;
                if (ps->s >= ps->end || !is_digit(*ps->s))
                        return syntax(ps, "bad exponent");
                while (ps->s < ps->end && is_digit(*ps->s))
                        ps->s++;
        }
        if (overflow)
                *integer = false;
        *v = neg ? -(long long)acc : (long long)acc;
        return SS_OK;
}

static bool literal(struct parser *ps, const char *word)
{
        size_t n = strlen(word);
        if ((size_t)(ps->end - ps->s) < n || memcmp(ps->s, word, n) != 0)
                return false;
        ps->s += n;
        return true;
}

/* Skips one value of any type (for keys we do not know). */
static enum ss_err skip_value(struct parser *ps, int depth)
{
        ws(ps);
        if (ps->s >= ps->end)
                return syntax(ps, "value expected");
        char c = *ps->s;
        if (c == '"') {
                struct tok t;
                ps->s++;
                size_t mark = ps->scratch->len;
                enum ss_err rc = string(ps, &t);
                ps->scratch->len = mark;
                return rc;
        }
        if (c == '-' || is_digit(c)) {
                bool integer;
                long long v;
                return number(ps, &integer, &v);
        }
        if (literal(ps, "true") || literal(ps, "false") || literal(ps, "null"))
                return SS_OK;
        if (c != '{' && c != '[')
                return syntax(ps, "value expected");
        if (depth >= MAX_DEPTH)
                return syntax(ps, "nested too deep");

        char close = c == '{' ? '}' : ']';
        ps->s++;
        ws(ps);
        if (ps->s < ps->end && *ps->s == close) {
                ps->s++;
                return SS_OK;
        }
        for (;;) {
                if (close == '}') {
                        ws(ps);
                        if (ps->s >= ps->end || *ps->s != '"')
                                return syntax(ps, "key expected");
                        enum ss_err rc = skip_value(ps, depth + 1);
                        if (rc != SS_OK)
                                return rc;
                        ws(ps);
                        if (ps->s >= ps->end || *ps->s != ':')
                                return syntax(ps, "':' expected");
                        ps->s++;
                }
                enum ss_err rc = skip_value(ps, depth + 1);
                if (rc != SS_OK)
                        return rc;
                ws(ps);
                if (ps->s < ps->end && *ps->s == ',') {
                        ps->s++;
                        continue;
                }
                if (ps->s < ps->end && *ps->s == close) {
                        ps->s++;
                        return SS_OK;
                }
                return syntax(ps, "',' or end expected");
        }
}

static bool field_is(const struct field *f, const char *k, size_t len)
{
        return f->nlen == len && memcmp(f->name, k, len) == 0;
}

/* The expected key read straight from the payload, without scanning it
 * as a string first: when the bytes after the opening quote are the
 * hinted name and a closing quote, the key is that name (names hold no
 * character that JSON escapes). On a hit ps->s is past the closing
 * quote. */
static const struct field *hinted_key(struct parser *ps, size_t *hint)
{
        if (*hint >= NFIELDS)
                return NULL;
        const struct field *f = &fields[*hint];
        if ((size_t)(ps->end - ps->s) <= f->nlen || ps->s[f->nlen] != '"')
                return NULL;
        for (size_t i = 0; i < f->nlen; i++)
                if (ps->s[i] != f->name[i])
                        return NULL;
        ps->s += f->nlen + 1;
        (*hint)++;
        return f;
}

/* Producers write the keys in one order, so the field after the previous
 * one is tried first; *hint carries that position. */
static const struct field *find_field(const char *k, size_t len, size_t *hint)
{
        if (*hint < NFIELDS && field_is(&fields[*hint], k, len))
                return &fields[(*hint)++];
        for (size_t i = 0; i < NFIELDS; i++)
                if (field_is(&fields[i], k, len)) {
                        *hint = i + 1;
                        return &fields[i];
                }
        return NULL;
}

static enum ss_err
bad(struct parser *ps, const struct field *f, const char *want)
{
        return ss_error_set(ps->err, SS_ERR_BAD_FIELD, "%s: want %s", f->name,
                            want);
}

/* Reads the value of a known field into ev; strings stay as tokens until
 * the scratch buffer has stopped moving. */
static enum ss_err known_value(struct parser *ps,
                               const struct field *f,
                               struct movement_event *ev,
                               struct tok *toks)
{
        char *dst = (char *)ev + f->offset;
        ws(ps);
        if (literal(ps, "null")) {
                if (f->need == NOT_NULL)
                        return ss_error_set(ps->err, SS_ERR_MISSING_FIELD,
                                            "%s is null", f->name);
                return SS_OK;
        }
        if (f->kind == K_INT) {
                bool integer;
                long long v;
                if (ps->s >= ps->end || (*ps->s != '-' && !is_digit(*ps->s)))
                        return bad(ps, f, "an integer");
                enum ss_err rc = number(ps, &integer, &v);
                if (rc != SS_OK)
                        return rc;
                if (!integer)
                        return bad(ps, f, "an integer");
                memcpy(dst, &v, sizeof(v));
                return SS_OK;
        }
        if (ps->s >= ps->end || *ps->s != '"')
                return bad(ps, f, "a string");
        ps->s++;
        struct tok t;
        enum ss_err rc = string(ps, &t);
        if (rc != SS_OK)
                return rc;
        const char *text = t.p ? t.p : ps->scratch->data + t.off;
        if (f->kind == K_EVENT) {
                if (t.len != 8 || memcmp(text, "movement", 8) != 0)
                        return bad(ps, f, "\"movement\"");
                return SS_OK;
        }
        if (f->kind == K_TIME) {
                int64_t us;
                if (!timefmt_parse(text, t.len, &us))
                        return ss_error_set(ps->err, SS_ERR_BAD_TIME,
                                            "%s: want an ISO 8601 time with "
                                            "a zone",
                                            f->name);
                memcpy(dst, &us, sizeof(us));
                return SS_OK;
        }
        toks[f - fields] = t;
        /* A placeholder that marks the field as set. */
        struct event_str set = { "", t.len };
        memcpy(dst, &set, sizeof(set));
        return SS_OK;
}

static enum ss_err members(struct parser *ps,
                           struct movement_event *ev,
                           struct tok *toks,
                           bool *seen)
{
        size_t hint = 0;
        ws(ps);
        if (ps->s < ps->end && *ps->s == '}') {
                ps->s++;
                return SS_OK;
        }
        for (;;) {
                ws(ps);
                if (ps->s >= ps->end || *ps->s != '"')
                        return syntax(ps, "key expected");
                ps->s++;
                enum ss_err rc;
                const struct field *f = hinted_key(ps, &hint);
                if (f == NULL) {
                        size_t mark = ps->scratch->len;
                        struct tok key;
                        rc = string(ps, &key);
                        if (rc != SS_OK)
                                return rc;
                        const char *k =
                                key.p ? key.p : ps->scratch->data + key.off;
                        f = find_field(k, key.len, &hint);
                        ps->scratch->len = mark;
                }
                ws(ps);
                if (ps->s >= ps->end || *ps->s != ':')
                        return syntax(ps, "':' expected");
                ps->s++;

                if (f == NULL) {
                        rc = skip_value(ps, 1);
                } else if (seen[f - fields]) {
                        rc = ss_error_set(ps->err, SS_ERR_BAD_FIELD,
                                          "%s appears twice", f->name);
                } else {
                        seen[f - fields] = true;
                        rc = known_value(ps, f, ev, toks);
                }
                if (rc != SS_OK)
                        return rc;

                ws(ps);
                if (ps->s < ps->end && *ps->s == ',') {
                        ps->s++;
                        continue;
                }
                if (ps->s < ps->end && *ps->s == '}') {
                        ps->s++;
                        return SS_OK;
                }
                return syntax(ps, "',' or '}' expected");
        }
}

/* Checks what the schema cannot say alone. */
static enum ss_err
check(const struct movement_event *ev, const bool *seen, struct ss_error *err)
{
        for (size_t i = 0; i < NFIELDS; i++)
                if (fields[i].need == NOT_NULL && !seen[i])
                        return ss_error_set(err, SS_ERR_MISSING_FIELD,
                                            "%s is missing", fields[i].name);
        if (ev->movement_id < 1 || ev->client_id < 1 || ev->unit_id < 1)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "movement_id, client_id and unit_id "
                                    "must be positive");
        if (ev->qty_change == 0 ||
            __builtin_add_overflow(ev->qty_before, ev->qty_change,
                                   &(long long){ 0 }) ||
            ev->qty_before + ev->qty_change != ev->qty_after)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "qty_before + qty_change must equal "
                                    "qty_after, with a non-zero change");
        if (ev->reason_code.len == 0 || ev->sku.len == 0 ||
            ev->location_code.len == 0)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "reason_code, sku and location_code "
                                    "must not be empty");
        return SS_OK;
}

enum ss_err event_parse(const char *payload,
                        size_t len,
                        struct buf *scratch,
                        struct movement_event *ev,
                        struct ss_error *err)
{
        struct tok toks[NFIELDS];
        bool seen[NFIELDS] = { false };
        memset(ev, 0, sizeof(*ev));
        /* A failed buffer has freed itself; start it afresh. */
        if (scratch->failed)
                *scratch = (struct buf)BUF_INIT;
        buf_reset(scratch);

        if (payload == NULL || len == 0)
                return ss_error_set(err, SS_ERR_NOT_JSON, "empty message");

        struct parser ps = { payload, payload, payload + len, scratch, err };
        ws(&ps);
        if (ps.s >= ps.end || *ps.s != '{')
                return syntax(&ps, "an object expected");
        ps.s++;
        enum ss_err rc = members(&ps, ev, toks, seen);
        if (rc != SS_OK)
                return rc;
        ws(&ps);
        if (ps.s != ps.end)
                return syntax(&ps, "text after the object");
        if (scratch->failed)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        /* Scratch has stopped growing: turn tokens into pointers. */
        for (size_t i = 0; i < NFIELDS; i++) {
                if (fields[i].kind != K_STR || !seen[i])
                        continue;
                struct event_str *s =
                        (struct event_str *)((char *)ev + fields[i].offset);
                if (s->p == NULL)
                        continue; /* was null */
                s->p = toks[i].p ? toks[i].p : scratch->data + toks[i].off;
                s->len = toks[i].len;
        }
        return check(ev, seen, err);
}

/* A row is formatted into a small stack buffer and appended in a few
 * pieces: one buf_append per row instead of one per cell and comma. A
 * cell too long for the buffer goes straight to the output. */
struct row_out {
        struct buf *out;
        char *p;
        char tmp[512];
};

static void row_flush(struct row_out *r)
{
        buf_append(r->out, r->tmp, (size_t)(r->p - r->tmp));
        r->p = r->tmp;
}

/* Makes room for n more bytes; false when n can never fit. */
static bool row_room(struct row_out *r, size_t n)
{
        if (n > sizeof(r->tmp))
                return false;
        if ((size_t)(r->tmp + sizeof(r->tmp) - r->p) < n)
                row_flush(r);
        return true;
}

static void row_int(struct row_out *r, long long v)
{
        row_room(r, CSV_INT_MAX + 1);
        r->p = csv_put_int(r->p, v);
        *r->p++ = ',';
}

/* A text cell; end is the character after it (',' or '\n'). */
static void row_text(struct row_out *r,
                     const struct event_str *s,
                     bool neutralise,
                     char end)
{
        size_t len = s->p != NULL ? s->len : 0;
        if (row_room(r, CSV_TEXT_MAX(len) + 1)) {
                if (s->p != NULL)
                        r->p = csv_put_text(r->p, s->p, len, neutralise);
        } else {
                row_flush(r);
                csv_text(r->out, s->p, len, neutralise);
        }
        row_room(r, 1);
        *r->p++ = end;
}

void event_csv_row(const struct movement_event *ev,
                   bool neutralise,
                   struct buf *out)
{
        struct row_out r;
        r.out = out;
        r.p = r.tmp;

        row_int(&r, ev->movement_id);
        row_room(&r, TIMEFMT_MAX + 1);
        r.p += timefmt_format(ev->occurred_us, r.p);
        *r.p++ = ',';
        row_text(&r, &ev->reason_code, neutralise, ',');
        row_text(&r, &ev->note, neutralise, ',');
        row_int(&r, ev->qty_before);
        row_int(&r, ev->qty_after);
        row_int(&r, ev->qty_change);
        row_text(&r, &ev->sku, neutralise, ',');
        row_text(&r, &ev->item_name, neutralise, ',');
        row_text(&r, &ev->location_code, neutralise, ',');
        row_text(&r, &ev->serial, neutralise, ',');
        row_text(&r, &ev->batch, neutralise, ',');
        row_text(&r, &ev->lot, neutralise, ',');
        row_text(&r, &ev->order_ref, neutralise, '\n');
        row_flush(&r);
}
