/* stocksync status: waits for a request's outcome in PostgreSQL (the
 * worker's sync_requests, or the exporter's export_requests) and prints
 * it. The database, not the status topic, is read: it is the record, and
 * a late reader still finds the answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/db.h"
#include "cli.h"

static bool is_final(const char *state)
{
        static const char *const finals[] = { "succeeded", "partial", "failed",
                                              "rejected",  "blocked", "skipped",
                                              NULL };
        for (size_t i = 0; finals[i]; i++)
                if (strcmp(state, finals[i]) == 0)
                        return true;
        return false;
}

static const char sync_sql[] =
        "SELECT state, action, integration_id, unit_id, seen, changed, "
        "unchanged, skipped, failed, error_code, error_message, "
        "detail::text, "
        "json_build_object('request_id', request_id, 'action', action, "
        "'integration_id', integration_id, 'unit_id', unit_id, 'state', "
        "state, 'counts', json_build_object('seen', seen, 'changed', "
        "changed, 'unchanged', unchanged, 'skipped', skipped, 'failed', "
        "failed), 'error', CASE WHEN error_code IS NULL THEN NULL ELSE "
        "json_build_object('code', error_code, 'message', error_message) "
        "END, 'detail', detail)::text "
        "FROM sync_requests WHERE request_id = $1";

/* export_requests belongs to the exporter's migration; to_regclass keeps
 * this working on a database without it. */
static const char export_sql[] =
        "SELECT to_regclass('export_requests') IS NOT NULL";

static const char export_row_sql[] =
        "SELECT state, path, rows, bytes, sha256, error_code, "
        "error_message, row_to_json(e)::text FROM export_requests e "
        "WHERE request_id = $1";

static void print_sync(const PGresult *r, const char *id)
{
        printf("request %s: %s\n", id, db_val(r, 0, 0));
        printf("  action %s, integration %s", db_val(r, 0, 1),
               db_val(r, 0, 2) ? db_val(r, 0, 2) : "-");
        if (db_val(r, 0, 3))
                printf(", unit %s", db_val(r, 0, 3));
        printf("\n  seen %s, changed %s, unchanged %s, skipped %s, failed "
               "%s\n",
               db_val(r, 0, 4), db_val(r, 0, 5), db_val(r, 0, 6),
               db_val(r, 0, 7), db_val(r, 0, 8));
        if (db_val(r, 0, 9))
                printf("  error %s: %s\n", db_val(r, 0, 9),
                       db_val(r, 0, 10) ? db_val(r, 0, 10) : "");
        if (db_val(r, 0, 11))
                printf("  detail %s\n", db_val(r, 0, 11));
}

static void print_export(const PGresult *r, const char *id)
{
        printf("export %s: %s\n", id, db_val(r, 0, 0));
        if (db_val(r, 0, 1))
                printf("  file %s\n  rows %s, bytes %s, sha256 %s\n",
                       db_val(r, 0, 1), db_val(r, 0, 2), db_val(r, 0, 3),
                       db_val(r, 0, 4));
        if (db_val(r, 0, 5))
                printf("  error %s: %s\n", db_val(r, 0, 5),
                       db_val(r, 0, 6) ? db_val(r, 0, 6) : "");
}

/* One look: 1 found final (printed), 0 not yet, -1 error. *ok is set to
 * whether the outcome is a success. */
static int look(PGconn *conn,
                const char *id,
                bool json,
                bool *ok,
                bool *found,
                struct ss_error *err)
{
        const char *p[] = { id };
        PGresult *r = db_query(conn, sync_sql, 1, p, err, NULL);
        if (r == NULL)
                return -1;
        if (PQntuples(r) > 0) {
                *found = true;
                const char *state = db_val(r, 0, 0);
                int done = is_final(state);
                if (done) {
                        *ok = strcmp(state, "succeeded") == 0;
                        if (json)
                                printf("%s\n", db_val(r, 0, 12));
                        else
                                print_sync(r, id);
                }
                PQclear(r);
                return done;
        }
        PQclear(r);

        r = db_query(conn, export_sql, 0, NULL, err, NULL);
        if (r == NULL)
                return -1;
        bool have = db_bool(r, 0, 0);
        PQclear(r);
        if (!have)
                return 0;
        r = db_query(conn, export_row_sql, 1, p, err, NULL);
        if (r == NULL)
                return -1;
        int done = 0;
        if (PQntuples(r) > 0) {
                *found = true;
                const char *state = db_val(r, 0, 0);
                done = is_final(state);
                if (done) {
                        *ok = strcmp(state, "succeeded") == 0;
                        if (json)
                                printf("%s\n", db_val(r, 0, 7));
                        else
                                print_export(r, id);
                }
        }
        PQclear(r);
        return done;
}

int cli_status(const struct config *cfg, int argc, char **argv)
{
        const char *id = NULL;
        double timeout = 120;
        bool wait = true, json = false;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
                        char *end = NULL;
                        timeout = strtod(argv[++i], &end);
                        if (*end || timeout < 0)
                                goto usage;
                } else if (strcmp(argv[i], "--no-wait") == 0) {
                        wait = false;
                } else if (strcmp(argv[i], "--json") == 0) {
                        json = true;
                } else if (argv[i][0] != '-' && id == NULL) {
                        id = argv[i];
                } else {
                        goto usage;
                }
        }
        if (id == NULL)
                goto usage;

        struct ss_error err = { 0 };
        PGconn *conn = db_connect(cfg->database_url, &err);
        if (conn == NULL)
                return cli_fail(&err);

        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = 1;
        for (;;) {
                bool ok = false, found = false;
                int done = look(conn, id, json, &ok, &found, &err);
                if (done < 0) {
                        rc = cli_fail(&err);
                        break;
                }
                if (done) {
                        rc = ok ? 0 : 1;
                        break;
                }
                clock_gettime(CLOCK_MONOTONIC, &t);
                double spent = (double)(t.tv_sec - t0.tv_sec) +
                               (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
                if (!wait || spent >= timeout) {
                        fprintf(stderr,
                                "stocksync: %s: request %s %s after %.0f s\n",
                                found ? "pending" : "not_found", id,
                                found ? "has not finished" : "is not known yet",
                                spent);
                        rc = 1;
                        break;
                }
                usleep(200 * 1000);
        }
        PQfinish(conn);
        return rc;
usage:
        fprintf(stderr, "usage: stocksync status REQUEST_ID [--timeout "
                        "SECONDS] [--no-wait] [--json]\n");
        return 2;
}
