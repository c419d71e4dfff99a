/* stocksync verify: checks the ledger's invariants and prints the rows that
 * break one. Every integration test and benchmark ends by running it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/db.h"
#include "cli.h"

#define SHOW_ROWS 20

struct check {
        const char *name;
        const char *sql; /* returns offending rows */
};

static const struct check checks[] = {
        { "stock equals the sum of its movements",
          "SELECT coalesce(s.unit_id, m.unit_id) AS unit_id, "
          "coalesce(s.location_id, m.location_id) AS location_id, "
          "coalesce(s.serial, m.serial) AS serial, "
          "coalesce(s.batch, m.batch) AS batch, "
          "coalesce(s.lot, m.lot) AS lot, s.qty AS stock, m.total AS "
          "movements "
          "FROM stock s FULL JOIN (SELECT unit_id, location_id, serial, "
          "batch, lot, sum(qty_change) AS total FROM movements GROUP BY 1, "
          "2, 3, 4, 5) m USING (unit_id, location_id, serial, batch, lot) "
          "WHERE coalesce(s.qty, 0) <> coalesce(m.total, 0)" },
        { "each movement's before + change = after",
          "SELECT id, qty_before, qty_change, qty_after FROM movements "
          "WHERE qty_before + qty_change <> qty_after" },
        { "each movement's before = the previous after of its stock row",
          "SELECT id, unit_id, location_id, serial, batch, lot, qty_before, "
          "prev_after FROM (SELECT *, coalesce(lag(qty_after) OVER (PARTITION "
          "BY unit_id, location_id, serial, batch, lot ORDER BY id), 0) AS "
          "prev_after FROM movements) x WHERE qty_before <> prev_after" },
        { "every movement has exactly one published event",
          "SELECT m.id, count(o.id) AS events, count(o.sent_at) AS published "
          "FROM movements m LEFT JOIN outbox o ON o.movement_id = m.id "
          "GROUP BY m.id HAVING count(o.id) <> 1 OR count(o.sent_at) <> 1" },
        { "no stocksync movement without its request",
          "SELECT m.id, m.request_id, r.state FROM movements m LEFT JOIN "
          "sync_requests r ON r.request_id = m.request_id "
          "WHERE m.reason_code = 'ecommerce_pull' AND (r.request_id IS NULL "
          "OR r.state NOT IN ('succeeded', 'partial'))" },
};

static int run_check(PGconn *conn, const struct check *c, struct ss_error *err)
{
        PGresult *r = db_query(conn, c->sql, 0, NULL, err, NULL);
        if (r == NULL)
                return -1;
        int n = PQntuples(r);
        printf("%-4s %s", n ? "FAIL" : "ok", c->name);
        if (n)
                printf(" (%d offending rows)", n);
        printf("\n");
        for (int i = 0; i < n && i < SHOW_ROWS; i++) {
                printf("       ");
                for (int f = 0; f < PQnfields(r); f++)
                        printf("%s%s=%s", f ? " " : "", PQfname(r, f),
                               db_val(r, i, f) ? db_val(r, i, f) : "NULL");
                printf("\n");
        }
        PQclear(r);
        return n;
}

/* Waits up to seconds for the outbox to drain, so a check right after a
 * run does not count events still on their way. */
static void wait_outbox(PGconn *conn, double seconds)
{
        for (double waited = 0; waited < seconds; waited += 0.2) {
                PGresult *r = db_query(conn,
                                       "SELECT count(*) FROM outbox WHERE "
                                       "sent_at IS NULL",
                                       0, NULL, NULL, NULL);
                long long pending = r ? db_ll(r, 0, 0, 0) : 0;
                PQclear(r);
                if (pending == 0)
                        return;
                usleep(200 * 1000);
        }
}

int cli_verify(const struct config *cfg, int argc, char **argv)
{
        double wait = 30;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
                        wait = strtod(argv[++i], NULL);
                } else {
                        fprintf(stderr, "usage: stocksync verify [--wait "
                                        "SECONDS]\n");
                        return 2;
                }
        }
        struct ss_error err = { 0 };
        PGconn *conn = db_connect(cfg->database_url, &err);
        if (conn == NULL)
                return cli_fail(&err);
        wait_outbox(conn, wait);

        int failed = 0;
        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
                int n = run_check(conn, &checks[i], &err);
                if (n < 0) {
                        PQfinish(conn);
                        return cli_fail(&err);
                }
                failed += n > 0;
        }
        PQfinish(conn);
        printf("%s: %d of %zu invariants hold\n", failed ? "FAILED" : "OK",
               (int)(sizeof(checks) / sizeof(checks[0])) - failed,
               sizeof(checks) / sizeof(checks[0]));
        return failed ? 1 : 0;
}
