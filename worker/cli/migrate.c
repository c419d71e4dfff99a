/* stocksync migrate: applies schemas/sql/NNN_*.sql in name order, each
 * once, all in one transaction under an advisory lock, so concurrent runs
 * and re-runs are safe. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../../common/db.h"
#include "cli.h"

#ifndef SS_SCHEMA_DIR
#define SS_SCHEMA_DIR "schemas/sql"
#endif

/* Any constant; only migrations take this lock. */
#define MIGRATE_LOCK 0x53544f43

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool read_file(const char *path, struct buf *out)
{
        FILE *f = fopen(path, "rb");
        if (f == NULL)
                return false;
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                buf_append(out, chunk, n);
        bool ok = !ferror(f) && buf_str(out) != NULL;
        fclose(f);
        return ok;
}

/* Sorted list of *.sql names in dir; returns the count, -1 on error. */
static int list_migrations(const char *dir, char ***names)
{
        DIR *d = opendir(dir);
        if (d == NULL)
                return -1;
        int n = 0, cap = 0;
        char **v = NULL;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
                size_t len = strlen(e->d_name);
                if (len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0)
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        char **nv = realloc(v, (size_t)cap * sizeof(*v));
                        if (nv == NULL)
                                break;
                        v = nv;
                }
                v[n] = strdup(e->d_name);
                if (v[n] == NULL)
                        break;
                n++;
        }
        closedir(d);
        if (n > 0)
                qsort(v, (size_t)n, sizeof(*v), cmp_names);
        *names = v;
        return n;
}

int cli_migrate(const struct config *cfg, int argc, char **argv)
{
        const char *dir = getenv("STOCKSYNC_SCHEMA_DIR");
        if (dir == NULL)
                dir = SS_SCHEMA_DIR;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
                        dir = argv[++i];
                } else {
                        fprintf(stderr, "usage: stocksync migrate [--dir "
                                        "DIR]\n");
                        return 2;
                }
        }

        struct ss_error err = { 0 };
        char **names = NULL;
        int n = list_migrations(dir, &names);
        int rc = 1, applied = 0;
        PGconn *conn = NULL;
        if (n <= 0) {
                ss_error_set(&err, SS_ERR_CONFIG,
                             "no migrations found in %s (set "
                             "STOCKSYNC_SCHEMA_DIR or --dir)",
                             dir);
                rc = cli_fail(&err);
                goto out;
        }
        conn = db_connect(cfg->database_url, &err);
        if (conn == NULL) {
                rc = cli_fail(&err);
                goto out;
        }
        char lock[32];
        snprintf(lock, sizeof(lock), "%d", MIGRATE_LOCK);
        const char *lp[] = { lock };
        if (db_begin(conn, &err) != SS_OK ||
            db_exec(conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lp,
                    &err) != SS_OK ||
            db_exec(conn,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version text PRIMARY KEY, applied_at timestamptz NOT "
                    "NULL DEFAULT now())",
                    0, NULL, &err) != SS_OK)
                goto fail;

        for (int i = 0; i < n; i++) {
                const char *vp[] = { names[i] };
                PGresult *res = db_query(
                        conn,
                        "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
                        vp, &err, NULL);
                if (res == NULL)
                        goto fail;
                bool done = PQntuples(res) > 0;
                PQclear(res);
                if (done)
                        continue;

                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                struct buf sql = BUF_INIT;
                if (!read_file(path, &sql)) {
                        buf_free(&sql);
                        ss_error_set(&err, SS_ERR_IO, "cannot read %s", path);
                        goto fail;
                }
                /* A file may hold many statements: simple-query protocol. */
                PGresult *r = PQexec(conn, buf_str(&sql));
                buf_free(&sql);
                if (PQresultStatus(r) != PGRES_COMMAND_OK &&
                    PQresultStatus(r) != PGRES_TUPLES_OK) {
                        const char *m = PQresultErrorMessage(r);
                        ss_error_set(&err, SS_ERR_DB, "%s: %.*s", names[i],
                                     (int)strcspn(m, "\n"), m);
                        PQclear(r);
                        goto fail;
                }
                PQclear(r);
                if (db_exec(conn,
                            "INSERT INTO schema_migrations (version) VALUES "
                            "($1)",
                            1, vp, &err) != SS_OK)
                        goto fail;
                printf("applied %s\n", names[i]);
                applied++;
        }
        if (db_commit(conn, &err) != SS_OK)
                goto fail;
        printf("schema up to date (%d applied, %d total)\n", applied, n);
        rc = 0;
        goto out;
fail:
        db_rollback(conn);
        rc = cli_fail(&err);
out:
        if (conn)
                PQfinish(conn);
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return rc;
}
