/* adapter-probe: drives one store adapter from the command line, for the
 * contract suite and the request benchmark. It prints every level or write
 * outcome as one JSON line on stdout and ends with a JSON summary line that
 * carries the stable error code and the HTTP counters; logs go to stderr. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../adapters/adapter.h"
#include "../../common/buf.h"
#include "../../common/json.h"
#include "../../common/log.h"
#include "../../common/uuid.h"

/* Exit statuses: the request worked and every item was accepted; the
 * request failed (or the command line was wrong); the request worked but
 * some items were refused. */
enum {
        EXIT_ALL_OK = 0,
        EXIT_FAILED = 1,
        EXIT_ITEMS_FAILED = 2
};

struct probe_opts {
        const char *platform;
        const char *url;
        const char *credentials; /* JSON text, or @FILE */
        const char *location;
        const char *file; /* set --file */
        const char *op;   /* "list" or "set" */
        unsigned batch;
        unsigned page;
        unsigned attempts; /* 0: the client's default */
        unsigned base_delay_ms;
        unsigned timeout_ms;
        unsigned max_wait_ms;
        bool read_all; /* set: list every level, match here */
        enum log_level log_level;
        char **args; /* borrowed from argv: SKUs or SKU=QTY */
        int nargs;
};

/* One SKU=QTY[:EXPECTED] from the command line or a file. */
struct set_item {
        char *sku; /* owned */
        long long qty;
        long long expected;
        bool has_expected;
};

struct set_items {
        struct set_item *v; /* owned */
        size_t n;
        size_t cap;
};

static void usage(FILE *out)
{
        fprintf(out,
                "usage: adapter-probe --platform P --url URL "
                "--credentials JSON|@FILE\n"
                "         [--location ID] [--batch N] [--page N] "
                "[--attempts N]\n"
                "         [--base-delay-ms N] [--timeout-ms N] "
                "[--max-wait-ms N]\n"
                "         [--log-level debug|info|warn|error]\n"
                "         list [SKU...]\n"
                "       adapter-probe ... [--read-all] set "
                "SKU=QTY[:EXPECTED]... | set --file F\n"
                "       adapter-probe platforms\n"
                "\n"
                "Prints one JSON line per level (list) or per item (set), "
                "then a JSON\n"
                "summary line with the stable error code and HTTP counters. "
                "set reads the\n"
                "levels first to learn item ids (by SKU, or every level "
                "with --read-all).\n"
                "Exit: 0 ok, 1 the request failed, 2 some items were "
                "refused.\n");
}

static bool parse_uint(const char *s, unsigned *out)
{
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v > UINT_MAX ||
            s[0] == '-')
                return false;
        *out = (unsigned)v;
        return true;
}

static bool parse_ll(const char *s, const char *end, long long *out)
{
        if (s == end)
                return false;
        char tmp[32];
        size_t len = (size_t)(end - s);
        if (len >= sizeof(tmp))
                return false;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *stop = NULL;
        errno = 0;
        long long v = strtoll(tmp, &stop, 10);
        if (errno != 0 || *stop != '\0')
                return false;
        *out = v;
        return true;
}

/* Options with a value; NULL when name is not one of them. */
static const char **opt_str_slot(struct probe_opts *o, const char *name)
{
        if (strcmp(name, "--platform") == 0)
                return &o->platform;
        if (strcmp(name, "--url") == 0)
                return &o->url;
        if (strcmp(name, "--credentials") == 0)
                return &o->credentials;
        if (strcmp(name, "--location") == 0)
                return &o->location;
        return NULL;
}

static unsigned *opt_uint_slot(struct probe_opts *o, const char *name)
{
        if (strcmp(name, "--batch") == 0)
                return &o->batch;
        if (strcmp(name, "--page") == 0)
                return &o->page;
        if (strcmp(name, "--attempts") == 0)
                return &o->attempts;
        if (strcmp(name, "--base-delay-ms") == 0)
                return &o->base_delay_ms;
        if (strcmp(name, "--timeout-ms") == 0)
                return &o->timeout_ms;
        if (strcmp(name, "--max-wait-ms") == 0)
                return &o->max_wait_ms;
        return NULL;
}

static enum ss_err
parse_args(int argc, char **argv, struct probe_opts *o, struct ss_error *err)
{
        int i = 1;
        for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
                const char *name = argv[i];
                if (strcmp(name, "--read-all") == 0) {
                        o->read_all = true;
                        continue;
                }
                if (i + 1 >= argc)
                        return ss_error_set(err, SS_ERR_CONFIG,
                                            "%s needs a value", name);
                const char *val = argv[++i];
                const char **s = opt_str_slot(o, name);
                unsigned *u = opt_uint_slot(o, name);
                if (s != NULL) {
                        *s = val;
                } else if (u != NULL) {
                        if (!parse_uint(val, u))
                                return ss_error_set(err, SS_ERR_CONFIG,
                                                    "%s wants a number", name);
                } else if (strcmp(name, "--log-level") == 0) {
                        if (!log_level_parse(val, &o->log_level))
                                return ss_error_set(err, SS_ERR_CONFIG,
                                                    "unknown log level");
                } else {
                        return ss_error_set(err, SS_ERR_CONFIG,
                                            "unknown option %s", name);
                }
        }
        if (o->platform == NULL || o->url == NULL || o->credentials == NULL)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "--platform, --url and --credentials "
                                    "are required");
        if (i >= argc)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "missing operation: list or set");
        o->op = argv[i++];
        if (strcmp(o->op, "set") == 0 && i < argc &&
            strcmp(argv[i], "--file") == 0) {
                if (i + 1 >= argc)
                        return ss_error_set(err, SS_ERR_CONFIG,
                                            "--file needs a value");
                o->file = argv[i + 1];
                i += 2;
        }
        o->args = argv + i;
        o->nargs = argc - i;
        if (strcmp(o->op, "list") != 0 && strcmp(o->op, "set") != 0)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "unknown operation '%s'", o->op);
        if (strcmp(o->op, "set") == 0 && o->file == NULL && o->nargs == 0)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "set needs SKU=QTY items or --file");
        if (o->file != NULL && o->nargs > 0)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "give items either inline or by --file");
        return SS_OK;
}

/* Reads a whole file into b. */
static enum ss_err
read_file(const char *path, struct buf *b, struct ss_error *err)
{
        FILE *f = fopen(path, "rb");
        if (f == NULL)
                return ss_error_set(err, SS_ERR_IO, "cannot open %s: %s", path,
                                    strerror(errno));
        char chunk[8192];
        size_t got;
        while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
                buf_append(b, chunk, got);
        bool failed = ferror(f) != 0;
        fclose(f);
        if (failed)
                return ss_error_set(err, SS_ERR_IO, "cannot read %s", path);
        if (buf_str(b) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return SS_OK;
}

/* Parses the credentials argument (JSON text, or @FILE holding it) into a
 * new tree in *out, freed with yajl_tree_free(). The text is never echoed:
 * errors say where it failed, not what it held. */
static enum ss_err
load_credentials(const char *arg, yajl_val *out, struct ss_error *err)
{
        struct buf b = BUF_INIT;
        enum ss_err rc = SS_OK;
        const char *text = arg;
        if (arg[0] == '@') {
                rc = read_file(arg + 1, &b, err);
                if (rc != SS_OK)
                        goto out;
                text = buf_str(&b);
        }
        struct ss_error perr = { 0 };
        yajl_val v = json_parse(text, strlen(text), &perr);
        if (v == NULL || !YAJL_IS_OBJECT(v)) {
                yajl_tree_free(v);
                rc = ss_error_set(err, SS_ERR_CONFIG,
                                  "credentials must be a JSON object");
                goto out;
        }
        *out = v;
out:
        buf_free(&b);
        return rc;
}

static void set_items_free(struct set_items *items)
{
        for (size_t i = 0; i < items->n; i++)
                free(items->v[i].sku);
        free(items->v);
        items->v = NULL;
        items->n = items->cap = 0;
}

/* Parses "SKU=QTY[:EXPECTED]" (line[0..len)) and appends it. The SKU is
 * everything before the last '=', so SKUs holding '=' still work. */
static enum ss_err set_items_add(struct set_items *items,
                                 const char *line,
                                 size_t len,
                                 struct ss_error *err)
{
        const char *end = line + len;
        const char *eq = NULL;
        for (const char *p = line; p < end; p++)
                if (*p == '=')
                        eq = p;
        if (eq == NULL || eq == line)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "item '%.*s' is not SKU=QTY[:EXPECTED]",
                                    (int)(len > 80 ? 80 : len), line);
        const char *colon = memchr(eq, ':', (size_t)(end - eq));
        struct set_item it = { 0 };
        bool ok = parse_ll(eq + 1, colon ? colon : end, &it.qty);
        if (ok && colon != NULL) {
                it.has_expected = true;
                ok = parse_ll(colon + 1, end, &it.expected);
        }
        if (!ok)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "item '%.*s' has a bad quantity",
                                    (int)(len > 80 ? 80 : len), line);

        if (items->n == items->cap) {
                size_t cap = items->cap ? items->cap * 2 : 64;
                struct set_item *v = realloc(items->v, cap * sizeof(*v));
                if (v == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                items->v = v;
                items->cap = cap;
        }
        it.sku = strndup(line, (size_t)(eq - line));
        if (it.sku == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        items->v[items->n++] = it;
        return SS_OK;
}

/* Items from a file, one per line; blank lines and '#' lines skipped. */
static enum ss_err set_items_from_file(struct set_items *items,
                                       const char *path,
                                       struct ss_error *err)
{
        struct buf b = BUF_INIT;
        enum ss_err rc = read_file(path, &b, err);
        if (rc != SS_OK)
                goto out;
        const char *p = buf_str(&b);
        while (*p != '\0') {
                size_t len = strcspn(p, "\n");
                size_t used = len;
                if (len > 0 && p[len - 1] == '\r')
                        len--;
                if (len > 0 && p[0] != '#') {
                        rc = set_items_add(items, p, len, err);
                        if (rc != SS_OK)
                                goto out;
                }
                p += used + (p[used] == '\n');
        }
out:
        buf_free(&b);
        return rc;
}

static void put_str_or_null(struct buf *b, const char *s)
{
        if (s == NULL)
                buf_puts(b, "null");
        else
                buf_json_str(b, s);
}

/* Writes b as one line on stdout; false when it ran out of memory. */
static bool emit_line(struct buf *b)
{
        const char *s = buf_str(b);
        if (s == NULL)
                return false;
        puts(s);
        buf_reset(b);
        return true;
}

static void put_level(struct buf *b, const struct store_level *lv)
{
        buf_puts(b, "{\"sku\":");
        put_str_or_null(b, lv->sku);
        buf_puts(b, ",\"item_id\":");
        put_str_or_null(b, lv->item_id);
        buf_puts(b, ",\"location_id\":");
        put_str_or_null(b, lv->location_id);
        buf_puts(b, ",\"name\":");
        put_str_or_null(b, lv->name);
        if (lv->qty_known)
                buf_printf(b, ",\"qty\":%lld", lv->qty);
        else
                buf_puts(b, ",\"qty\":null");
        buf_printf(b, ",\"tracked\":%s}", lv->tracked ? "true" : "false");
}

static void
put_stats(struct buf *b, const char *key, const struct http_stats *s)
{
        buf_printf(b,
                   ",\"%s\":{\"requests\":%lu,\"retries\":%lu,"
                   "\"throttled\":%lu,\"waited_ms\":%lu}",
                   key, s->requests, s->retries, s->throttled, s->waited_ms);
}

/* Opens the summary object: op, result code name and message. */
static void
put_summary_head(struct buf *b, const char *op, const struct ss_error *err)
{
        buf_puts(b, "{\"op\":");
        put_str_or_null(b, op);
        buf_puts(b, ",\"result\":");
        buf_json_str(b, ss_err_name(err->code));
        buf_puts(b, ",\"message\":");
        buf_json_str(b, err->msg);
}

/* The SKUs the caller asked for that the store did not return. */
static void put_missing(struct buf *b,
                        char **skus,
                        int nskus,
                        const struct store_levels *levels)
{
        buf_puts(b, ",\"missing\":[");
        bool first = true;
        for (int i = 0; i < nskus; i++) {
                bool found = false;
                for (size_t l = 0; l < levels->n && !found; l++)
                        found = levels->v[l].sku != NULL &&
                                strcmp(levels->v[l].sku, skus[i]) == 0;
                if (found)
                        continue;
                if (!first)
                        buf_putc(b, ',');
                buf_json_str(b, skus[i]);
                first = false;
        }
        buf_putc(b, ']');
}

/* Makes err agree with rc, so the summary never says "ok" for a failure
 * an adapter forgot to describe. */
static void settle_error(enum ss_err rc, struct ss_error *err)
{
        if (rc == SS_OK) {
                ss_error_clear(err);
        } else if (err->code != rc) {
                char msg[sizeof(err->msg)];
                snprintf(msg, sizeof(msg), "%s", err->msg);
                ss_error_set(err, rc, "%s",
                             msg[0] ? msg : "the adapter gave no message");
        }
}

static int run_list(const struct probe_opts *o,
                    const struct adapter_ops *ops,
                    struct adapter *a,
                    struct http_client *http)
{
        struct store_levels levels = { 0 };
        struct ss_error err = { 0 };
        struct buf b = BUF_INIT;
        const char *const *skus = NULL;
        if (o->nargs > 0)
                skus = (const char *const *)o->args;

        enum ss_err rc =
                ops->list_levels(a, skus, (size_t)o->nargs, &levels, &err);
        settle_error(rc, &err);
        /* Levels read before a failure are printed too: they show how far
         * the adapter got. */
        for (size_t i = 0; i < levels.n; i++) {
                put_level(&b, &levels.v[i]);
                emit_line(&b);
        }

        put_summary_head(&b, "list", &err);
        buf_printf(&b, ",\"levels\":%zu", levels.n);
        put_missing(&b, o->args, o->nargs, &levels);
        put_stats(&b, "http", http_client_stats(http));
        buf_putc(&b, '}');
        bool printed = emit_line(&b);

        struct log_line l;
        log_begin(&l, rc == SS_OK ? LOG_INFO : LOG_ERROR, "probe_list_done");
        log_kvi(&l, "levels", (long long)levels.n);
        if (rc != SS_OK)
                log_err(&l, &err);
        log_end(&l);

        buf_free(&b);
        store_levels_free(&levels);
        return rc == SS_OK && printed ? EXIT_ALL_OK : EXIT_FAILED;
}

/* Sorted view of levels by SKU, so 10,000 items match in n log n. */
static int cmp_level_ptr(const void *x, const void *y)
{
        const struct store_level *const *a = x;
        const struct store_level *const *b = y;
        return strcmp((*a)->sku, (*b)->sku);
}

/* Finds the level for sku; sets *dups when more than one has it. */
static const struct store_level *
find_level(struct store_level **sorted, size_t n, const char *sku, bool *dups)
{
        struct store_level key = { .sku = (char *)sku };
        struct store_level *kp = &key;
        struct store_level **hit =
                bsearch(&kp, sorted, n, sizeof(*sorted), cmp_level_ptr);
        *dups = false;
        if (hit == NULL)
                return NULL;
        if ((hit > sorted && strcmp(hit[-1]->sku, sku) == 0) ||
            (hit + 1 < sorted + n && strcmp(hit[1]->sku, sku) == 0))
                *dups = true;
        return *hit;
}

static int cmp_item_ptr(const void *x, const void *y)
{
        const struct set_item *const *a = x;
        const struct set_item *const *b = y;
        int c = strcmp((*a)->sku, (*b)->sku);
        /* Equal SKUs keep input order, so the first one is the one sent. */
        return c != 0 ? c : (*a < *b ? -1 : *a > *b);
}

/* Marks in dup[] every item whose SKU an earlier item already has; false
 * when out of memory. */
static bool mark_repeated_skus(const struct set_items *items, bool *dup)
{
        const struct set_item **idx = calloc(items->n + 1, sizeof(*idx));
        if (idx == NULL)
                return false;
        for (size_t i = 0; i < items->n; i++)
                idx[i] = &items->v[i];
        qsort(idx, items->n, sizeof(*idx), cmp_item_ptr);
        for (size_t i = 1; i < items->n; i++)
                if (strcmp(idx[i - 1]->sku, idx[i]->sku) == 0)
                        dup[idx[i] - items->v] = true;
        free(idx);
        return true;
}

/* Fills w[i] for every item: ready to send (NOT_ATTEMPTED) or refused
 * here with the reason. Returns how many are ready. */
static size_t plan_writes(const struct set_items *items,
                          const struct store_levels *levels,
                          struct store_write *w)
{
        struct store_level **sorted = calloc(levels->n + 1, sizeof(*sorted));
        bool *dup = calloc(items->n + 1, sizeof(*dup));
        if (dup == NULL || !mark_repeated_skus(items, dup)) {
                free(sorted);
                sorted = NULL;
        }
        size_t nsorted = 0;
        for (size_t l = 0; sorted != NULL && l < levels->n; l++)
                if (levels->v[l].sku != NULL)
                        sorted[nsorted++] = &levels->v[l];
        if (sorted != NULL)
                qsort(sorted, nsorted, sizeof(*sorted), cmp_level_ptr);

        size_t ready = 0;
        for (size_t i = 0; i < items->n; i++) {
                const struct set_item *it = &items->v[i];
                w[i] = (struct store_write){ .sku = it->sku,
                                             .qty = it->qty,
                                             .expected = it->expected,
                                             .result = SS_ERR_NOT_ATTEMPTED };
                bool dups = false;
                const struct store_level *lv = NULL;
                if (sorted != NULL)
                        lv = find_level(sorted, nsorted, it->sku, &dups);
                const char *why = NULL;
                if (sorted == NULL) {
                        w[i].result = SS_ERR_NOMEM;
                        why = "out of memory";
                } else if (dup[i]) {
                        w[i].result = SS_ERR_BAD_FIELD;
                        why = "SKU given twice";
                } else if (lv == NULL) {
                        w[i].result = SS_ERR_UNMATCHED;
                        why = "no item with this SKU at the location";
                } else if (dups) {
                        w[i].result = SS_ERR_AMBIGUOUS_SKU;
                        why = "more than one item has this SKU";
                } else if (!lv->tracked) {
                        w[i].result = SS_ERR_NOT_TRACKED;
                        why = "the store does not track this item's stock";
                } else if (!lv->qty_known && !it->has_expected) {
                        w[i].result = SS_ERR_QTY_UNKNOWN;
                        why = "the store's level is unknown; give "
                              "SKU=QTY:EXPECTED to write anyway";
                } else if (lv->item_id == NULL) {
                        w[i].result = SS_ERR_INTERNAL;
                        why = "the adapter returned this level without an "
                              "item id";
                }
                if (why != NULL) {
                        snprintf(w[i].reason, sizeof(w[i].reason), "%s", why);
                        continue;
                }
                w[i].item_id = lv->item_id;
                w[i].location_id = lv->location_id;
                if (!it->has_expected)
                        w[i].expected = lv->qty;
                ready++;
        }
        free(dup);
        free(sorted);
        return ready;
}

static void put_write(struct buf *b, const struct store_write *w)
{
        buf_puts(b, "{\"sku\":");
        put_str_or_null(b, w->sku);
        buf_puts(b, ",\"item_id\":");
        put_str_or_null(b, w->item_id);
        buf_printf(b, ",\"qty\":%lld", w->qty);
        /* An item refused before matching has no level to compare with. */
        if (w->item_id != NULL)
                buf_printf(b, ",\"expected\":%lld", w->expected);
        else
                buf_puts(b, ",\"expected\":null");
        buf_puts(b, ",\"result\":");
        buf_json_str(b, ss_err_name(w->result));
        buf_puts(b, ",\"reason\":");
        buf_json_str(b, w->reason);
        buf_putc(b, '}');
}

/* Reads the levels the items need: only their SKUs, or with --read-all
 * every level at the location. */
static enum ss_err read_for_set(const struct probe_opts *o,
                                const struct adapter_ops *ops,
                                struct adapter *a,
                                const struct set_items *items,
                                struct store_levels *levels,
                                struct ss_error *err)
{
        if (o->read_all)
                return ops->list_levels(a, NULL, 0, levels, err);
        const char **skus = calloc(items->n ? items->n : 1, sizeof(*skus));
        if (skus == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < items->n; i++)
                skus[i] = items->v[i].sku;
        enum ss_err rc = ops->list_levels(a, skus, items->n, levels, err);
        free(skus);
        return rc;
}

/* Hands the `sent` items of w[0..n) still NOT_ATTEMPTED to the adapter,
 * packed together, and copies their outcomes back; the items refused here
 * keep their verdict. */
static enum ss_err send_planned(const struct adapter_ops *ops,
                                struct adapter *a,
                                struct store_write *w,
                                size_t n,
                                size_t sent,
                                struct ss_error *err)
{
        struct store_write *todo = calloc(sent, sizeof(*todo));
        if (todo == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (w[i].result == SS_ERR_NOT_ATTEMPTED)
                        todo[k++] = w[i];
        enum ss_err rc = ops->set_levels(a, todo, sent, err);
        k = 0;
        for (size_t i = 0; i < n; i++)
                if (w[i].result == SS_ERR_NOT_ATTEMPTED)
                        w[i] = todo[k++];
        free(todo);
        return rc;
}

static int run_set(const struct probe_opts *o,
                   const struct adapter_ops *ops,
                   struct adapter *a,
                   struct http_client *http)
{
        struct set_items items = { 0 };
        struct store_levels levels = { 0 };
        struct store_write *w = NULL;
        struct ss_error err = { 0 };
        struct buf b = BUF_INIT;
        struct http_stats read_stats = { 0 };
        size_t sent = 0, ok = 0;
        enum ss_err rc = SS_OK;

        if (o->file != NULL)
                rc = set_items_from_file(&items, o->file, &err);
        for (int i = 0; rc == SS_OK && i < o->nargs; i++)
                rc = set_items_add(&items, o->args[i], strlen(o->args[i]),
                                   &err);
        if (rc != SS_OK)
                goto out;

        rc = read_for_set(o, ops, a, &items, &levels, &err);
        read_stats = *http_client_stats(http);
        if (rc != SS_OK)
                goto out;

        w = calloc(items.n ? items.n : 1, sizeof(*w));
        if (w == NULL) {
                rc = ss_error_set(&err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        sent = plan_writes(&items, &levels, w);
        if (sent > 0)
                rc = send_planned(ops, a, w, items.n, sent, &err);

out:
        settle_error(rc, &err);
        for (size_t i = 0; w != NULL && i < items.n; i++) {
                if (w[i].result == SS_OK)
                        ok++;
                put_write(&b, &w[i]);
                emit_line(&b);
        }
        put_summary_head(&b, "set", &err);
        buf_printf(&b,
                   ",\"read_first\":true,\"read_scope\":\"%s\","
                   "\"levels_read\":%zu,\"items\":%zu,\"sent\":%zu,"
                   "\"ok\":%zu,\"failed\":%zu",
                   o->read_all ? "all" : "skus", levels.n, items.n, sent, ok,
                   items.n - ok);
        put_stats(&b, "read_http", &read_stats);
        put_stats(&b, "http", http_client_stats(http));
        buf_putc(&b, '}');
        bool printed = emit_line(&b);

        struct log_line l;
        log_begin(&l, rc == SS_OK ? LOG_INFO : LOG_ERROR, "probe_set_done");
        log_kvi(&l, "items", (long long)items.n);
        log_kvi(&l, "sent", (long long)sent);
        log_kvi(&l, "ok", (long long)ok);
        if (rc != SS_OK)
                log_err(&l, &err);
        log_end(&l);

        size_t nitems = items.n;
        free(w);
        buf_free(&b);
        store_levels_free(&levels);
        set_items_free(&items);
        if (rc != SS_OK || !printed)
                return EXIT_FAILED;
        return ok == nitems ? EXIT_ALL_OK : EXIT_ITEMS_FAILED;
}

/* One line per built-in adapter, with the limits a benchmark needs. */
static int run_platforms(void)
{
        struct buf b = BUF_INIT;
        bool printed = true;
        for (size_t i = 0; adapter_all[i] != NULL; i++) {
                const struct adapter_ops *ops = adapter_all[i];
                buf_puts(&b, "{\"platform\":");
                buf_json_str(&b, ops->platform);
                buf_puts(&b, ",\"api_version\":");
                put_str_or_null(&b, ops->api_version);
                buf_printf(&b,
                           ",\"max_batch\":%u,\"max_page\":%u,"
                           "\"compare_and_set\":%s}",
                           ops->max_batch, ops->max_page,
                           ops->compare_and_set ? "true" : "false");
                printed = emit_line(&b) && printed;
        }
        buf_free(&b);
        return printed ? EXIT_ALL_OK : EXIT_FAILED;
}

/* A failure before the operation ran: still one summary line. */
static int fail_early(const char *op, const struct ss_error *err)
{
        struct buf b = BUF_INIT;
        struct http_stats none = { 0 };
        put_summary_head(&b, op, err);
        put_stats(&b, "http", &none);
        buf_putc(&b, '}');
        emit_line(&b);
        buf_free(&b);

        struct log_line l;
        log_begin(&l, LOG_ERROR, "probe_failed");
        log_err(&l, err);
        log_end(&l);
        return EXIT_FAILED;
}

static void http_policy_from_opts(const struct probe_opts *o,
                                  struct http_policy *p)
{
        http_policy_default(p);
        if (o->attempts > 0)
                p->max_attempts = o->attempts;
        if (o->base_delay_ms > 0)
                p->base_delay_ms = o->base_delay_ms;
        if (o->timeout_ms > 0)
                p->timeout_ms = o->timeout_ms;
        if (o->max_wait_ms > 0)
                p->max_wait_ms = o->max_wait_ms;
}

static void log_start(const struct probe_opts *o, const struct adapter_ops *ops)
{
        char url[512];
        log_redact_url(o->url, url, sizeof(url));
        struct log_line l;
        log_begin(&l, LOG_INFO, "probe_start");
        log_kv(&l, "op", o->op);
        log_kv(&l, "url", url);
        log_kv(&l, "api_version", ops->api_version);
        log_kvi(&l, "batch", o->batch ? o->batch : ops->max_batch);
        log_kvi(&l, "page", o->page ? o->page : ops->max_page);
        log_end(&l);
}

int main(int argc, char **argv)
{
        struct probe_opts o = { .log_level = LOG_INFO };
        struct ss_error err = { 0 };
        yajl_val creds = NULL;
        struct http_client *http = NULL;
        struct adapter *a = NULL;
        int status = EXIT_FAILED;

        if (argc == 2 &&
            (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                usage(stdout);
                return EXIT_ALL_OK;
        }
        if (argc == 2 && strcmp(argv[1], "platforms") == 0)
                return run_platforms();
        log_init("probe", LOG_INFO);
        if (parse_args(argc, argv, &o, &err) != SS_OK) {
                usage(stderr);
                return fail_early(o.op, &err);
        }
        log_init("probe", o.log_level);
        log_ctx_set(NULL, o.platform, 0);

        const struct adapter_ops *ops = adapter_find(o.platform);
        if (ops == NULL) {
                ss_error_set(&err, SS_ERR_NO_ADAPTER,
                             "no adapter for platform '%s' is built in",
                             o.platform);
                return fail_early(o.op, &err);
        }
        if (load_credentials(o.credentials, &creds, &err) != SS_OK) {
                status = fail_early(o.op, &err);
                goto out;
        }

        struct http_policy policy;
        http_policy_from_opts(&o, &policy);
        http = http_client_new(&policy);
        if (http == NULL) {
                ss_error_set(&err, SS_ERR_NOMEM, "out of memory");
                status = fail_early(o.op, &err);
                goto out;
        }

        char req_id[37];
        if (uuid_v4(req_id) != SS_OK)
                snprintf(req_id, sizeof(req_id), "probe-%ld", (long)getpid());
        log_ctx_set(req_id, o.platform, 0);
        struct adapter_config cfg = {
                .store_url = o.url,
                .credentials = creds,
                .location_id = o.location,
                .request_id = req_id,
                .batch_size = o.batch,
                .page_size = o.page,
        };
        log_start(&o, ops);
        if (ops->open(&cfg, http, &a, &err) != SS_OK) {
                status = fail_early(o.op, &err);
                goto out;
        }

        if (strcmp(o.op, "list") == 0)
                status = run_list(&o, ops, a, http);
        else
                status = run_set(&o, ops, a, http);

out:
        if (a != NULL)
                ops->close(a);
        http_client_free(http);
        yajl_tree_free(creds);
        fflush(stdout);
        return status;
}
