/* libpq wrapper. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Server notices (a connection terminated by an administrator, a
 * deprecation warning) become one log line each instead of raw text on
 * stderr. */
static void notice_to_log(void *arg, const char *message)
{
        (void)arg;
        struct log_line l;
        log_begin(&l, LOG_WARN, "postgres_notice");
        log_kvf(&l, "msg", "%.*s", (int)strcspn(message, "\n"), message);
        log_end(&l);
}

PGconn *db_connect(const char *url, struct ss_error *err)
{
        PGconn *conn = PQconnectdb(url ? url : "");
        if (conn == NULL) {
                ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return NULL;
        }
        PQsetNoticeProcessor(conn, notice_to_log, NULL);
        if (PQstatus(conn) != CONNECTION_OK) {
                const char *m = PQerrorMessage(conn);
                ss_error_set(err, SS_ERR_DB, "cannot connect: %.*s",
                             (int)strcspn(m, "\n"), m);
                PQfinish(conn);
                return NULL;
        }
        PGresult *r = PQexec(conn, "SET TIME ZONE 'UTC'");
        PQclear(r);
        return conn;
}

PGresult *db_query(PGconn *conn,
                   const char *sql,
                   int n,
                   const char *const *params,
                   struct ss_error *err,
                   char *sqlstate)
{
        PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                if (sqlstate)
                        sqlstate[0] = '\0';
                return res;
        }
        const char *state =
                res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *m =
                res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        if (m == NULL)
                m = PQerrorMessage(conn);
        if (sqlstate)
                snprintf(sqlstate, 6, "%s", state ? state : "");
        ss_error_set(err, SS_ERR_DB, "%s: %.*s", state ? state : "08000",
                     (int)strcspn(m, "\n"), m);
        PQclear(res);
        return NULL;
}

enum ss_err db_exec(PGconn *conn,
                    const char *sql,
                    int n,
                    const char *const *params,
                    struct ss_error *err)
{
        PGresult *res = db_query(conn, sql, n, params, err, NULL);
        if (res == NULL)
                return SS_ERR_DB;
        PQclear(res);
        return SS_OK;
}

enum ss_err db_begin(PGconn *conn, struct ss_error *err)
{
        return db_exec(conn, "BEGIN", 0, NULL, err);
}

enum ss_err db_commit(PGconn *conn, struct ss_error *err)
{
        return db_exec(conn, "COMMIT", 0, NULL, err);
}

void db_rollback(PGconn *conn)
{
        if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
                PGresult *r = PQexec(conn, "ROLLBACK");
                PQclear(r);
        }
}

bool db_ensure(PGconn *conn)
{
        if (PQstatus(conn) == CONNECTION_OK)
                return true;
        PQreset(conn);
        if (PQstatus(conn) != CONNECTION_OK)
                return false;
        PGresult *r = PQexec(conn, "SET TIME ZONE 'UTC'");
        PQclear(r);
        return true;
}

const char *db_val(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return NULL;
        return PQgetvalue(res, row, col);
}

long long db_ll(const PGresult *res, int row, int col, long long dflt)
{
        const char *v = db_val(res, row, col);
        return v ? strtoll(v, NULL, 10) : dflt;
}

bool db_bool(const PGresult *res, int row, int col)
{
        const char *v = db_val(res, row, col);
        return v && v[0] == 't';
}

/* Elements are separated by commas; the buffer's last byte tells whether
 * this is the first element. */
static void array_sep(struct buf *b)
{
        if (b->len > 0 && b->data[b->len - 1] != '{')
                buf_putc(b, ',');
}

void db_array_begin(struct buf *b)
{
        buf_putc(b, '{');
}

void db_array_text(struct buf *b, const char *s)
{
        array_sep(b);
        if (s == NULL) {
                buf_puts(b, "NULL");
                return;
        }
        buf_putc(b, '"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        buf_putc(b, '\\');
                buf_putc(b, *s);
        }
        buf_putc(b, '"');
}

void db_array_ll(struct buf *b, long long v)
{
        array_sep(b);
        buf_printf(b, "%lld", v);
}

void db_array_end(struct buf *b)
{
        buf_putc(b, '}');
}
