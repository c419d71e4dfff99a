/* A growing byte buffer, always NUL-terminated so it can be read as a
 * string. On allocation failure it frees itself and remembers the failure,
 * so a chain of appends needs one check at the end. */
#ifndef SS_BUF_H
#define SS_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct buf {
        char *data; /* owned; NULL until the first append */
        size_t len;
        size_t cap;
        bool failed; /* an append ran out of memory; data was freed */
};

#define BUF_INIT { NULL, 0, 0, false }

void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) SS_PRINTF(2, 3);

/* Appends s as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);

/* Appends s with URL percent-encoding of every byte outside the RFC 3986
 * unreserved set. */
void buf_urlencode(struct buf *b, const char *s);

/* Returns the contents ("" when empty); NULL when an append failed. */
const char *buf_str(const struct buf *b);

void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* Hands the string to the caller (free with free()) and resets b. */
char *buf_steal(struct buf *b);

#endif
