/* The push and pull rules, table-driven, against a real PostgreSQL
 * database (STOCKSYNC_DATABASE_URL, migrated, otherwise empty: the runner
 * test_rules.py makes a fresh one). The store is an in-memory adapter in
 * this file, so each case can say exactly what the store holds and can make
 * a shopper buy between the push's read and its write; the simulators and
 * the real adapters are covered by the scenario and contract suites.
 *
 * The combination table runs every mix of force x sync enabled x stock
 * master x guardrail trips x bypass x dry run over one catalog whose units
 * each carry one item rule (discontinued, non-pickable only, allocations,
 * over-allocation, integration buffer, unit buffer override, lots in mixed
 * locations), and checks the outcome, the counts and every value sent. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/db.h"
#include "../../common/log.h"
#include "../../worker/status.h"
#include "../../worker/sync.h"

/* ------------------------------------------------------------ fake store */

#define STORE_MAX 512

struct fake_item {
        char sku[64];
        char id[32];
        long long qty;
        bool known, tracked;
};

struct adapter {
        struct fake_item items[STORE_MAX];
        size_t n;
        bool cas;
        int lists;           /* list_levels calls so far */
        int sale_after_list; /* after this list call, sell ... */
        char sale_sku[64];   /* ... one of this SKU */

        struct {
                char sku[64];
                long long qty;
        } writes[STORE_MAX * 4];

        size_t nwrites;
        int set_calls;
};

static struct adapter store;

static struct fake_item *find(const char *sku)
{
        for (size_t i = 0; i < store.n; i++)
                if (strcmp(store.items[i].sku, sku) == 0)
                        return &store.items[i];
        return NULL;
}

static enum ss_err fake_list(struct adapter *a,
                             const char *const *skus,
                             size_t nskus,
                             struct store_levels *out,
                             struct ss_error *err)
{
        (void)err;
        for (size_t i = 0; i < a->n; i++) {
                struct fake_item *it = &a->items[i];
                bool want = skus == NULL;
                for (size_t k = 0; !want && k < nskus; k++)
                        want = strcmp(skus[k], it->sku) == 0;
                if (!want)
                        continue;
                if (store_levels_add(out, it->sku, it->id, "loc-1", it->sku,
                                     it->qty, it->known, it->tracked) != SS_OK)
                        return SS_ERR_NOMEM;
        }
        if (++a->lists == a->sale_after_list) {
                struct fake_item *s = find(a->sale_sku);
                if (s != NULL)
                        s->qty--;
        }
        return SS_OK;
}

static enum ss_err fake_set(struct adapter *a,
                            struct store_write *w,
                            size_t n,
                            struct ss_error *err)
{
        (void)err;
        a->set_calls++;
        for (size_t i = 0; i < n; i++) {
                struct fake_item *it = find(w[i].sku);
                if (it == NULL) {
                        w[i].result = SS_ERR_ITEM_UNKNOWN;
                        snprintf(w[i].reason, sizeof(w[i].reason),
                                 "no such item");
                        continue;
                }
                if (a->cas && it->qty != w[i].expected) {
                        w[i].result = SS_ERR_STALE;
                        continue;
                }
                it->qty = w[i].qty;
                w[i].result = SS_OK;
                snprintf(a->writes[a->nwrites].sku, sizeof(a->writes[0].sku),
                         "%s", w[i].sku);
                a->writes[a->nwrites++].qty = w[i].qty;
        }
        return SS_OK;
}

static const struct adapter_ops fake_ops = {
        .platform = "fake",
        .api_version = "test",
        .max_batch = 100,
        .max_page = 100,
        .list_levels = fake_list,
        .set_levels = fake_set,
};

static void store_reset(bool cas)
{
        memset(&store, 0, sizeof(store));
        store.cas = cas;
}

static void store_put(const char *sku, long long qty, bool known, bool tracked)
{
        struct fake_item *it = &store.items[store.n];
        snprintf(it->sku, sizeof(it->sku), "%s", sku);
        snprintf(it->id, sizeof(it->id), "item-%zu", store.n);
        it->qty = qty;
        it->known = known;
        it->tracked = tracked;
        store.n++;
}

static long long sent(const char *sku)
{
        long long v = LLONG_MIN;
        for (size_t i = 0; i < store.nwrites; i++)
                if (strcmp(store.writes[i].sku, sku) == 0)
                        v = store.writes[i].qty;
        return v;
}

/* -------------------------------------------------------------- database */

static PGconn *conn;
static struct config cfg;
static long long integ_id, client_id, pick_loc, quar_loc;
static int req_seq;

static void sql(const char *q)
{
        struct ss_error err = { 0 };
        if (db_exec(conn, q, 0, NULL, &err) != SS_OK)
                fail_msg("SQL failed: %s: %s", q, err.msg);
}

static long long sql_ll(const char *q)
{
        struct ss_error err = { 0 };
        PGresult *r = db_query(conn, q, 0, NULL, &err, NULL);
        if (r == NULL)
                fail_msg("SQL failed: %s: %s", q, err.msg);
        long long v = PQntuples(r) ? db_ll(r, 0, 0, LLONG_MIN) : LLONG_MIN;
        PQclear(r);
        return v;
}

static long long unit(const char *sku, const char *status, long long buffer)
{
        char q[512], b[24] = "NULL";
        if (buffer >= 0)
                snprintf(b, sizeof(b), "%lld", buffer);
        snprintf(q, sizeof(q),
                 "INSERT INTO inventory_units (client_id, sku, name, status, "
                 "buffer_qty) VALUES (%lld, '%s', 'Item %s', '%s', %s) "
                 "RETURNING id",
                 client_id, sku, sku, status, b);
        return sql_ll(q);
}

static void
receive(long long unit_id, long long loc, long long qty, const char *lot)
{
        char q[512];
        snprintf(q, sizeof(q),
                 "INSERT INTO movements (unit_id, location_id, lot, "
                 "reason_code, qty_change, request_id) VALUES (%lld, %lld, "
                 "'%s', 'receiving', %lld, 'seed')",
                 unit_id, loc, lot, qty);
        sql(q);
}

static void allocate(long long unit_id, long long qty, const char *status)
{
        char q[256];
        snprintf(q, sizeof(q),
                 "INSERT INTO order_allocations (unit_id, order_ref, qty, "
                 "status) VALUES (%lld, '#%d', %lld, '%s')",
                 unit_id, 1000 + (int)qty, qty, status);
        sql(q);
}

/* Runs one request through status_begin and sync_pull/sync_push exactly as
 * the worker does, with the fake store. Returns the request id. */
struct outcome {
        char state[16];
        char code[48];
        long long seen, changed, unchanged, skipped, failed;
        char detail[16384];
};

static void run(enum sync_action action,
                long long unit_id,
                struct sync_options opt,
                struct outcome *o)
{
        struct sync_request req = { .action = action,
                                    .integration_id = integ_id,
                                    .unit_id = unit_id,
                                    .options = opt };
        snprintf(req.request_id, sizeof(req.request_id), "rules-%d", ++req_seq);
        snprintf(req.requested_by, sizeof(req.requested_by), "tester");
        snprintf(req.requested_at, sizeof(req.requested_at),
                 "2026-12-04T10:00:00Z");
        struct msg_view msg = { .topic = "test", .offset = req_seq };
        struct ss_error err = { 0 };
        enum req_seen seen;
        assert_int_equal(status_begin(conn, &req, &msg, &seen, &err), SS_OK);
        assert_int_equal(seen, REQ_NEW);

        struct integration it;
        assert_int_equal(integration_load(conn, integ_id, &it, &err), SS_OK);
        struct report rep;
        report_init(&rep);
        struct sync_ctx ctx = { .conn = conn,
                                .cfg = &cfg,
                                .req = &req,
                                .integ = &it,
                                .ops = &fake_ops,
                                .adapter = &store,
                                .rep = &rep };
        enum ss_err rc = action == ACTION_PULL ? sync_pull(&ctx, &err)
                                               : sync_push(&ctx, &err);
        if (rc != SS_OK)
                fail_msg("sync failed: %s", err.msg);
        report_free(&rep);
        integration_free(&it);

        char q[256];
        snprintf(q, sizeof(q),
                 "SELECT state, coalesce(error_code, ''), seen, changed, "
                 "unchanged, skipped, failed, coalesce(detail::text, '') "
                 "FROM sync_requests WHERE request_id = '%s'",
                 req.request_id);
        PGresult *r = db_query(conn, q, 0, NULL, &err, NULL);
        assert_non_null(r);
        assert_int_equal(PQntuples(r), 1);
        snprintf(o->state, sizeof(o->state), "%s", db_val(r, 0, 0));
        snprintf(o->code, sizeof(o->code), "%s", db_val(r, 0, 1));
        o->seen = db_ll(r, 0, 2, -1);
        o->changed = db_ll(r, 0, 3, -1);
        o->unchanged = db_ll(r, 0, 4, -1);
        o->skipped = db_ll(r, 0, 5, -1);
        o->failed = db_ll(r, 0, 6, -1);
        /* jsonb prints ", " and ": "; the checks below use the compact
         * form the status event carries. */
        const char *d = db_val(r, 0, 7);
        size_t k = 0;
        for (size_t i = 0; d[i] && k + 1 < sizeof(o->detail); i++) {
                if (d[i] == ' ' && i > 0 &&
                    (d[i - 1] == ',' || d[i - 1] == ':'))
                        continue;
                o->detail[k++] = d[i];
        }
        o->detail[k] = '\0';
        PQclear(r);
}

static void set_integration(const char *assignments)
{
        char q[512];
        snprintf(q, sizeof(q), "UPDATE integrations SET %s WHERE id = %lld",
                 assignments, integ_id);
        sql(q);
}

/* A fresh client with one integration; every case starts here. */
static void fresh_client(void)
{
        char q[512];
        client_id = sql_ll("INSERT INTO clients (name) VALUES ('Rules Co') "
                           "RETURNING id");
        snprintf(q, sizeof(q),
                 "INSERT INTO integrations (client_id, platform, store_url, "
                 "credentials, pull_location_id) VALUES (%lld, 'fake', "
                 "'http://127.0.0.1:9', '{}', %lld) RETURNING id",
                 client_id, pick_loc);
        integ_id = sql_ll(q);
}

static int setup_db(void **state)
{
        (void)state;
        log_init("rules-test", LOG_WARN);
        struct ss_error err = { 0 };
        if (config_load(&cfg, &err) != SS_OK) {
                fprintf(stderr, "config: %s\n", err.msg);
                return -1;
        }
        cfg.status_progress_every = 2; /* several chunks per push */
        conn = db_connect(cfg.database_url, &err);
        if (conn == NULL) {
                fprintf(stderr, "database: %s\n", err.msg);
                return -1;
        }
        pick_loc = sql_ll("INSERT INTO locations (code, pickable, kind) "
                          "VALUES ('R-PICK', true, 'pick') RETURNING id");
        quar_loc = sql_ll("INSERT INTO locations (code, pickable, kind) "
                          "VALUES ('R-QUAR', false, 'quarantine') "
                          "RETURNING id");
        return 0;
}

static int teardown_db(void **state)
{
        (void)state;
        PQfinish(conn);
        return 0;
}

/* ------------------------------------------------------- the combinations */

/* The catalog every combination runs over. Integration buffer is 1. */
static void catalog(void)
{
        fresh_client();
        set_integration("buffer_qty = 1, guard_max_drop_pct = 100, "
                        "guard_max_item_drop = 1000");
        long long u;
        u = unit("PICK", "active", -1); /* 10 - buffer 1 = 9 */
        receive(u, pick_loc, 10, "");
        u = unit("ALLOC", "active", -1); /* 6 - open 2 - buffer 1 = 3 */
        receive(u, pick_loc, 6, "");
        allocate(u, 2, "open");
        allocate(u, 4, "picked");       /* closed: does not count */
        u = unit("QUAR", "active", -1); /* only non-pickable: 0 */
        receive(u, quar_loc, 30, "");
        u = unit("DISC", "discontinued", -1); /* skipped */
        receive(u, pick_loc, 3, "");
        u = unit("BUF", "active", 4); /* 10 - own buffer 4 = 6 = store */
        receive(u, pick_loc, 10, "");
        u = unit("OVER", "active", -1); /* 5 - 7 open: 0 */
        receive(u, pick_loc, 5, "");
        allocate(u, 7, "open");
        u = unit("LOTS", "active", -1); /* 3 + lot 3 pickable - 1 = 5 */
        receive(u, pick_loc, 3, "");
        receive(u, pick_loc, 3, "L-77");
        receive(u, quar_loc, 4, "L-78");

        store_reset(false);
        store_put("PICK", 4, true, true);
        store_put("ALLOC", 6, true, true);
        store_put("QUAR", 30, true, true);
        store_put("DISC", 3, true, true);
        store_put("BUF", 6, true, true);
        store_put("OVER", 2, true, true);
        store_put("LOTS", 1, true, true);
}

static void combinations(void **state)
{
        (void)state;
        int cases = 0;
        for (int mask = 0; mask < 64; mask++) {
                bool force = mask & 1, sync_off = mask & 2,
                     store_master = mask & 4, trips = mask & 8,
                     bypass = mask & 16, dry = mask & 32;
                catalog();
                char set[256];
                snprintf(set, sizeof(set),
                         "stock_sync_enabled = %s, stock_master = '%s', "
                         "guard_max_zeroed = %d",
                         sync_off ? "false" : "true",
                         store_master ? "ecommerce" : "wms", trips ? 1 : 10);
                set_integration(set);
                struct outcome o;
                struct sync_options opt = { .force = force,
                                            .bypass_guardrail = bypass,
                                            .dry_run = dry };
                run(ACTION_PUSH, 0, opt, &o);
                cases++;

                const char *want_state, *want_code = "";
                bool gated = !force && (sync_off || store_master);
                bool blocked = !gated && trips && !bypass;
                if (gated) {
                        want_state = "skipped";
                        want_code = sync_off ? "stock_sync_disabled"
                                             : "store_is_stock_master";
                } else if (blocked) {
                        want_state = "blocked";
                        want_code = "guardrail_blocked";
                } else {
                        want_state = "succeeded";
                }
                if (strcmp(o.state, want_state) != 0 ||
                    strcmp(o.code, want_code) != 0)
                        fail_msg("case %d (force=%d off=%d master=%d trips=%d "
                                 "bypass=%d dry=%d): got %s/%s, want %s/%s",
                                 mask, force, sync_off, store_master, trips,
                                 bypass, dry, o.state, o.code, want_state,
                                 want_code);

                bool writes = !gated && !blocked && !dry;
                if (!writes) {
                        assert_int_equal(store.nwrites, 0);
                        assert_int_equal(store.set_calls, 0);
                } else {
                        assert_int_equal(sent("PICK"), 9);
                        assert_int_equal(sent("ALLOC"), 3);
                        assert_int_equal(sent("QUAR"), 0);
                        assert_int_equal(sent("OVER"), 0);
                        assert_int_equal(sent("LOTS"), 5);
                        assert_int_equal(sent("DISC"), LLONG_MIN);
                        assert_int_equal(sent("BUF"), LLONG_MIN);
                        assert_int_equal(store.nwrites, 5);
                }
                if (!gated) {
                        assert_int_equal(o.seen, 7);
                        assert_int_equal(o.unchanged, 1); /* BUF */
                }
                if (!gated && !blocked) {
                        assert_int_equal(o.changed, 5);
                        assert_int_equal(o.skipped, 1);
                        assert_int_equal(o.failed, 0);
                        assert_non_null(
                                strstr(o.detail, "\"unit_discontinued\""));
                        /* Every outcome lists its SKUs, unchanged too. */
                        assert_non_null(strstr(o.detail,
                                               "\"unchanged\":{\"count\":1,"
                                               "\"items\":[{\"sku\":\"BUF\""));
                        if (dry)
                                assert_non_null(strstr(o.detail,
                                                       "\"planned\":{\"count\""
                                                       ":5"));
                        else
                                assert_non_null(strstr(o.detail,
                                                       "\"changed\":{\"count\""
                                                       ":5"));
                }
                if (blocked) {
                        /* The offenders, with before and after. */
                        assert_non_null(
                                strstr(o.detail, "\"blocked\":{\"count\":2"));
                        assert_non_null(strstr(o.detail, "\"sku\":\"QUAR\""));
                        assert_non_null(strstr(o.detail, "\"before\":30"));
                        assert_non_null(
                                strstr(o.detail, "\"rule\":\"max_zeroed\""));
                }
                if (!gated && trips && bypass)
                        assert_non_null(
                                strstr(o.detail, "\"bypassed_by\":\"tester\""));
                if (force && (sync_off || store_master))
                        assert_non_null(strstr(o.detail, "forced"));
        }
        assert_int_equal(cases, 64);
}

/* ---------------------------------------------------------- single rules */

static void push_all_and_one_unit(void **state)
{
        (void)state;
        catalog();
        struct outcome o;
        run(ACTION_PUSH, 0, (struct sync_options){ .all = true }, &o);
        assert_string_equal(o.state, "succeeded");
        /* BUF is written too, at its unchanged level. */
        assert_int_equal(sent("BUF"), 6);
        assert_int_equal(o.changed, 6);
        assert_int_equal(sent("DISC"), LLONG_MIN);

        catalog();
        long long pick = sql_ll("SELECT id FROM inventory_units WHERE sku = "
                                "'PICK' ORDER BY id DESC LIMIT 1");
        run(ACTION_PUSH, pick, (struct sync_options){ 0 }, &o);
        assert_string_equal(o.state, "succeeded");
        assert_int_equal(store.nwrites, 1);
        assert_int_equal(sent("PICK"), 9);
}

static void discontinued_as_zero(void **state)
{
        (void)state;
        catalog();
        set_integration("push_discontinued_as_zero = true");
        struct outcome o;
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        assert_string_equal(o.state, "succeeded");
        assert_int_equal(sent("DISC"), 0);
}

static void max_list_cap(void **state)
{
        (void)state;
        catalog();
        set_integration("max_list_qty = 4");
        struct outcome o;
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        /* PICK: 9 capped at 4 = the store's 4, so unchanged. */
        assert_int_equal(sent("PICK"), LLONG_MIN);
        assert_int_equal(sent("LOTS"), 4);
        assert_int_equal(sent("BUF"), 4);
        assert_int_equal(sent("ALLOC"), 3);
}

/* C01: on hand 4 after #1001 was picked, #1002 still open: 3. */
static void c01_allocations(void **state)
{
        (void)state;
        fresh_client();
        long long u = unit("TEE-RED-M", "active", -1);
        receive(u, pick_loc, 5, "");
        allocate(u, 1, "picked");
        allocate(u, 1, "open");
        char q[256];
        snprintf(q, sizeof(q),
                 "INSERT INTO movements (unit_id, location_id, reason_code, "
                 "qty_change, order_ref, request_id) VALUES (%lld, %lld, "
                 "'pick', -1, '#1001', 'wms-pick-1')",
                 u, pick_loc);
        sql(q);
        store_reset(false);
        store_put("TEE-RED-M", 5, true, true);
        struct outcome o;
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(sent("TEE-RED-M"), 3);

        /* The variant: 7 open allocations on 5 on hand sends 0. */
        allocate(u, 6, "open");
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(sent("TEE-RED-M"), 0);
}

/* C02: a shopper buys one between the push's read and its write. */
static void c02_race(bool cas)
{
        fresh_client();
        long long u = unit("PEN-01", "active", -1);
        receive(u, pick_loc, 10, "");
        store_reset(cas);
        store_put("PEN-01", 10, true, true);
        store.sale_after_list = 1; /* right after the push's first read */
        snprintf(store.sale_sku, sizeof(store.sale_sku), "PEN-01");
        struct outcome o;
        run(ACTION_PUSH, 0, (struct sync_options){ .all = true }, &o);
        assert_string_equal(o.state, "succeeded");
        /* The store ends at 9, never 10. */
        assert_int_equal(find("PEN-01")->qty, 9);
        assert_int_equal(sent("PEN-01"), 9);
}

static void c02_race_compare_and_set(void **state)
{
        (void)state;
        c02_race(true);
}

static void c02_race_reread(void **state)
{
        (void)state;
        c02_race(false);
}

/* C03: the only pickable location turns non-pickable; 400 SKUs at 10-50
 * would all go to 0. */
static void c03_guardrail(void **state)
{
        (void)state;
        fresh_client();
        long long loc = sql_ll("INSERT INTO locations (code, pickable) VALUES "
                               "('C03-ONLY', true) RETURNING id");
        store_reset(false);
        for (int i = 0; i < 400; i++) {
                char sku[32];
                snprintf(sku, sizeof(sku), "C03-%03d", i);
                receive(unit(sku, "active", -1), loc, 10 + i % 41, "");
                store_put(sku, 10 + i % 41, true, true);
        }
        char q[128];
        snprintf(q, sizeof(q),
                 "UPDATE locations SET pickable = false WHERE id = %lld", loc);
        sql(q);
        struct outcome o;
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        assert_string_equal(o.state, "blocked");
        assert_string_equal(o.code, "guardrail_blocked");
        assert_int_equal(store.nwrites, 0);
        assert_non_null(strstr(o.detail, "\"zeroed\":400"));
        assert_non_null(strstr(o.detail, "\"blocked\":{\"count\":400"));
        run(ACTION_PUSH, 0, (struct sync_options){ .bypass_guardrail = true },
            &o);
        assert_string_equal(o.state, "succeeded");
        assert_int_equal(store.nwrites, 400);
        assert_int_equal(sent("C03-399"), 0);
}

/* C04: the store is the stock master; unknown is never 0. */
static void c04_unknown_quantity(void **state)
{
        (void)state;
        fresh_client();
        set_integration("stock_master = 'ecommerce'");
        long long blue = unit("MUG-BLUE", "active", -1);
        receive(blue, pick_loc, 4, "");
        long long red = unit("MUG-RED", "active", -1);
        receive(red, pick_loc, 2, "");
        unit("MUG-GRN", "active", -1);
        store_reset(false);
        store_put("MUG-BLUE", 0, false, true); /* quantity missing */
        store_put("MUG-RED", 0, true, true);
        store_put("MUG-GRN", 7, true, true);
        store_put("MUG-UNTRACKED", 0, false, false);
        struct outcome o;
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_string_equal(o.state, "succeeded");
        assert_int_equal(o.changed, 2);
        assert_int_equal(o.skipped, 1);
        assert_non_null(strstr(o.detail, "\"store_quantity_unknown\""));
        char q[256];
        snprintf(q, sizeof(q),
                 "SELECT qty FROM stock WHERE unit_id = %lld AND location_id "
                 "= %lld AND lot = ''",
                 blue, pick_loc);
        assert_int_equal(sql_ll(q), 4); /* untouched */
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM movements WHERE unit_id = %lld AND "
                 "reason_code = 'ecommerce_pull'",
                 blue);
        assert_int_equal(sql_ll(q), 0);
        snprintf(q, sizeof(q),
                 "SELECT qty_after FROM movements WHERE unit_id = %lld AND "
                 "reason_code = 'ecommerce_pull'",
                 red);
        assert_int_equal(sql_ll(q), 0);

        /* The scheduled push without force sends nothing. */
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        assert_string_equal(o.state, "skipped");
        assert_string_equal(o.code, "store_is_stock_master");
        assert_int_equal(store.set_calls, 0);
}

/* C05 through the whole pull: trimmed match, case reported with near. */
static void c05_matching(void **state)
{
        (void)state;
        fresh_client();
        unit("ABC-1", "active", -1);
        unit("ABC-2", "active", -1);
        store_reset(false);
        store_put("ABC-1 ", 5, true, true);
        store_put("abc-2", 6, true, true);
        struct outcome o;
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(o.changed, 1);
        assert_non_null(strstr(o.detail, "\"unmatched_store\":{\"count\":1"));
        assert_non_null(strstr(o.detail, "\"near_match\":\"ABC-2\""));
        assert_non_null(
                strstr(o.detail, "\"unmatched_warehouse\":{\"count\":1"));
        /* Push writes by the store's own SKU and id. */
        run(ACTION_PUSH, 0, (struct sync_options){ .all = true }, &o);
        assert_int_equal(store.nwrites, 1);
        assert_string_equal(store.writes[0].sku, "ABC-1 ");
}

/* Pull: discontinued left alone; warehouse-master note; negative store. */
static void pull_rules(void **state)
{
        (void)state;
        fresh_client();
        long long d = unit("OLD", "discontinued", -1);
        receive(d, pick_loc, 3, "");
        unit("NEG", "active", -1);
        unit("NEW", "active", -1);
        store_reset(false);
        store_put("OLD", 9, true, true);
        store_put("NEG", -2, true, true);
        store_put("NEW", 5, true, true);
        struct outcome o;
        run(ACTION_PULL, 0, (struct sync_options){ .dry_run = true }, &o);
        assert_non_null(strstr(o.detail, "\"planned\":{\"count\":1"));
        assert_int_equal(sql_ll("SELECT count(*) FROM movements WHERE "
                                "reason_code = 'ecommerce_pull' AND "
                                "request_id LIKE 'rules-%' AND unit_id IN "
                                "(SELECT id FROM inventory_units WHERE sku = "
                                "'NEW')"),
                         0);
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_string_equal(o.state, "partial");
        assert_int_equal(o.changed, 1);
        assert_int_equal(o.failed, 1);
        assert_int_equal(o.skipped, 1);
        assert_non_null(strstr(o.detail, "overrode warehouse levels"));
        char q[128];
        snprintf(q, sizeof(q),
                 "SELECT qty FROM stock WHERE unit_id = %lld AND lot = ''", d);
        assert_int_equal(sql_ll(q), 3);
        /* Pulling again changes nothing. */
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(o.changed, 0);
        assert_int_equal(o.unchanged, 1);
}

/* Pull then push then pull is a fixed point: the pull location takes the
 * on-hand that makes the unit's availability equal to the store's level,
 * so stock elsewhere, allocations and the buffer are not counted twice
 * (a push -> pull cycle used to grow them into an oversell). */
static void pull_push_round_trip(void **state)
{
        (void)state;
        fresh_client();
        set_integration("buffer_qty = 1");
        long long reserve = sql_ll("INSERT INTO locations (code, pickable) "
                                   "VALUES ('R-RESERVE', true) RETURNING id");
        long long u = unit("TRIP", "active", -1);
        receive(u, pick_loc, 3, "");
        receive(u, reserve, 5, "");
        allocate(u, 2, "open");
        store_reset(false);
        store_put("TRIP", 10, true, true);
        struct outcome o;
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(o.changed, 1);
        char q[256];
        snprintf(q, sizeof(q),
                 "SELECT qty FROM stock WHERE unit_id = %lld AND location_id "
                 "= %lld AND lot = ''",
                 u, pick_loc);
        /* 10 sellable + 2 allocated + 1 buffer - 5 in reserve. */
        assert_int_equal(sql_ll(q), 8);
        run(ACTION_PUSH, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(o.unchanged, 1);
        assert_int_equal(store.nwrites, 0);
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(o.changed, 0);
        assert_int_equal(sql_ll(q), 8);

        /* The store shows less than the reserve alone: the pull location
         * goes to 0, said in a note; the push then lists what is left. */
        find("TRIP")->qty = 1;
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        assert_int_equal(sql_ll(q), 0);
        assert_non_null(strstr(o.detail, "other pickable locations"));
}

/* A pull location outside availability takes the store's level as is. */
static void pull_to_non_pickable_location(void **state)
{
        (void)state;
        fresh_client();
        char set[64];
        snprintf(set, sizeof(set), "pull_location_id = %lld", quar_loc);
        set_integration(set);
        long long u = unit("RECV", "active", -1);
        allocate(u, 3, "open");
        store_reset(false);
        store_put("RECV", 6, true, true);
        struct outcome o;
        run(ACTION_PULL, 0, (struct sync_options){ 0 }, &o);
        char q[256];
        snprintf(q, sizeof(q),
                 "SELECT qty FROM stock WHERE unit_id = %lld AND location_id "
                 "= %lld",
                 u, quar_loc);
        assert_int_equal(sql_ll(q), 6);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(combinations),
                cmocka_unit_test(push_all_and_one_unit),
                cmocka_unit_test(discontinued_as_zero),
                cmocka_unit_test(max_list_cap),
                cmocka_unit_test(c01_allocations),
                cmocka_unit_test(c02_race_compare_and_set),
                cmocka_unit_test(c02_race_reread),
                cmocka_unit_test(c03_guardrail),
                cmocka_unit_test(c04_unknown_quantity),
                cmocka_unit_test(c05_matching),
                cmocka_unit_test(pull_rules),
                cmocka_unit_test(pull_push_round_trip),
                cmocka_unit_test(pull_to_non_pickable_location),
        };
        return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
