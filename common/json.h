/* Reading JSON through yajl's tree API with typed, NULL-safe getters.
 * Writing JSON is done with struct buf and buf_json_str(): every message we
 * emit is small and flat, so a generator adds nothing. */
#ifndef SS_JSON_H
#define SS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "err.h"

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF) and holds no NUL byte. */
bool json_utf8_valid(const char *s, size_t len);

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80, end
 * the end of the text), or 0: no overlongs, no surrogates, nothing above
 * U+10FFFF. */
size_t json_utf8_seq(const unsigned char *p, const unsigned char *end);

/* Parses text[0..len) (need not be NUL-terminated). Returns a new tree,
 * free with yajl_tree_free(), or NULL with err set to SS_ERR_INVALID_UTF8
 * or SS_ERR_NOT_JSON. */
yajl_val json_parse(const char *text, size_t len, struct ss_error *err);

/* Member of an object, or NULL when obj is not an object or has no key. */
yajl_val json_get(yajl_val obj, const char *key);

/* Walks a path of object keys, e.g. json_path(v, "data", "shop", NULL). */
yajl_val json_path(yajl_val v, ...) __attribute__((sentinel));

/* Borrowed string, or NULL when v is not a string. */
const char *json_str(yajl_val v);

/* True and *out set when v is a JSON integer (no fraction, in range). */
bool json_int(yajl_val v, long long *out);

/* Like json_int, but also accepts a number with a zero fraction (37.0),
 * which some platforms send for quantities. */
bool json_int_lenient(yajl_val v, long long *out);

/* True and *out set when v is any number. */
bool json_double(yajl_val v, double *out);

/* True and *out set when v is true or false. */
bool json_bool(yajl_val v, bool *out);

bool json_is_null(yajl_val v);

/* Array length and element; 0 / NULL when v is not an array. */
size_t json_len(yajl_val v);
yajl_val json_at(yajl_val v, size_t i);

#endif
