/* Thin libpq helpers: connect, run a statement with text parameters,
 * transactions. Every failure becomes SS_ERR_DB with the server's
 * SQLSTATE and first message line; the caller decides what it means. */
#ifndef SS_DB_H
#define SS_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "buf.h"
#include "err.h"

/* Returns a new connection (close with PQfinish), or NULL with err set.
 * Session time zone is forced to UTC. url may be "" for libpq defaults. */
PGconn *db_connect(const char *url, struct ss_error *err);

/* Runs sql with params[0..n) as text (NULL = SQL NULL). Returns a new
 * result (PQclear it) for COMMAND_OK or TUPLES_OK, else NULL with err set;
 * the SQLSTATE is copied into sqlstate (6 bytes) when non-NULL. */
PGresult *db_query(PGconn *conn,
                   const char *sql,
                   int n,
                   const char *const *params,
                   struct ss_error *err,
                   char *sqlstate);

/* db_query for statements whose rows are not wanted. */
enum ss_err db_exec(PGconn *conn,
                    const char *sql,
                    int n,
                    const char *const *params,
                    struct ss_error *err) SS_MUSTCHECK;

enum ss_err db_begin(PGconn *conn, struct ss_error *err) SS_MUSTCHECK;
enum ss_err db_commit(PGconn *conn, struct ss_error *err) SS_MUSTCHECK;
/* Rolls back if a transaction is open; never fails the caller. */
void db_rollback(PGconn *conn);

/* True when the connection is usable; tries one reset when it is not. */
bool db_ensure(PGconn *conn);

/* Value helpers on a result row: NULL-safe. */
const char *db_val(const PGresult *res, int row, int col); /* NULL if NULL */
long long db_ll(const PGresult *res, int row, int col, long long dflt);
bool db_bool(const PGresult *res, int row, int col);

/* Builders for PostgreSQL array literals ('{"a","b"}'), so a whole batch
 * goes to the server as one parameter (INSERT ... SELECT FROM unnest()). */
void db_array_begin(struct buf *b);
void db_array_text(struct buf *b, const char *s); /* NULL -> NULL */
void db_array_ll(struct buf *b, long long v);
void db_array_end(struct buf *b);

#endif
