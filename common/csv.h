/* RFC 4180 CSV cells written into a struct buf, as schemas/CSV.md defines
 * them: comma separated, LF line ends, a cell quoted only when it holds a
 * comma, a double quote, CR or LF, quotes doubled inside. An empty text
 * is an empty, unquoted cell.
 *
 * Spreadsheet formulas: with neutralise on, a text cell starting with
 * '=', '+', '-', '@', TAB, CR or an apostrophe gets one apostrophe in front,
 * so Excel and LibreOffice show it as text. A reader gets the original
 * back by removing one leading apostrophe from any text cell that starts
 * with one. Numeric cells are never changed. */
#ifndef SS_CSV_H
#define SS_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* True when a text cell starting with s[0..len) is neutralised. */
bool csv_needs_neutralise(const char *s, size_t len);

/* True when s[0..len) must be quoted. */
bool csv_needs_quotes(const char *s, size_t len);

/* Appends s[0..len) as one text cell (s may be NULL when len is 0). */
void csv_text(struct buf *b, const char *s, size_t len, bool neutralise);

/* Appends v as a plain integer cell. */
void csv_int(struct buf *b, long long v);

/* The same cells written straight into memory, for callers that format
 * many cells per row and want one append instead of one per byte run. */

/* Most bytes csv_put_text() writes for a text of len bytes: two quotes,
 * the apostrophe and every byte doubled. */
#define CSV_TEXT_MAX(len) (2 * (size_t)(len) + 3)

/* Most bytes csv_put_int() writes. */
#define CSV_INT_MAX 20

/* Writes s[0..len) as one text cell at dst, which must hold
 * CSV_TEXT_MAX(len) bytes. Returns the end of what was written. */
char *csv_put_text(char *dst, const char *s, size_t len, bool neutralise);

/* Writes v at dst, which must hold CSV_INT_MAX bytes. Returns the end. */
char *csv_put_int(char *dst, long long v);

/* Appends the UTF-8 byte-order mark EF BB BF. */
void csv_bom(struct buf *b);

#endif
