/* UTC timestamps as microseconds since the Unix epoch, parsed from and
 * written as ISO 8601 text. The calendar arithmetic is our own, so the
 * result never depends on the host's TZ or locale. */
#ifndef SS_TIMEFMT_H
#define SS_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text timefmt_format() writes, NUL included. */
#define TIMEFMT_MAX 32

/* Parses s[0..len) as YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM), also
 * with a space instead of 'T' and +HHMM / +HH offsets. A zone is required:
 * a local time without one names no instant. Digits beyond microseconds
 * are cut off. Years 0001-9999. Returns false on any other text. */
bool timefmt_parse(const char *s, size_t len, int64_t *us);

/* Writes us as 2024-03-31T00:30:00Z, or with .ffffff before the Z when
 * the instant has a fraction of a second. Returns the length. */
size_t timefmt_format(int64_t us, char out[TIMEFMT_MAX]);

/* Days since 1970-01-01 of the UTC day holding us (floor division). */
int64_t timefmt_day(int64_t us);

/* Writes day (as from timefmt_day) as YYYY-MM-DD; out holds 11 bytes. */
void timefmt_day_str(int64_t day, char out[11]);

#endif
