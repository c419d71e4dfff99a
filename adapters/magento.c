/* Magento 2 / Adobe Commerce adapter: stock levels are MSI source items
 * (sku x source_code), read through searchCriteria pages and written as
 * absolute quantities in batches. Some Magento versions answer 200 to a
 * write for a SKU they do not know, so writes nobody listed first are read
 * back before they count as done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../common/log.h"
#include "adapter.h"

/* With the merchant's "Web Api Input Limits" switched on (off by default,
 * Adobe's API security page), list inputs are capped at 20 items per
 * synchronous request and pages at 300 items. We cannot see the switch, so
 * the smaller limits are the defaults; config batch_size/page_size raise
 * them for stores known to run without limits. */
#define MAGENTO_MAX_BATCH 20
#define MAGENTO_MAX_PAGE  300

/* Bytes of URL-encoded SKUs per GET. Common front ends (nginx, Apache)
 * refuse request lines above 8 KiB; this leaves room for the rest. */
#define MAGENTO_SKU_URL_BUDGET 5000

#define MAGENTO_DEFAULT_SOURCE "default"

struct adapter {
        struct http_client *http; /* borrowed */
        char *base;               /* owned: ".../rest/V1", no slash after */
        char *auth;               /* owned: the Authorization header line */
        char *source;             /* owned: MSI source_code */
        unsigned batch;
        unsigned page;
};

/* One source item as read from a page. */
struct source_item {
        const char *sku;    /* borrowed from the page's JSON tree */
        const char *source; /* borrowed */
        long long qty;
        bool qty_known;
};

typedef enum ss_err (*item_fn)(void *arg,
                               const struct source_item *it,
                               struct ss_error *err);

static bool ends_with(const char *s, size_t len, const char *suffix)
{
        size_t n = strlen(suffix);
        return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* The store URL may be the shop root, ".../rest" or ".../rest/<store
 * code>"; all become the V1 base. */
static char *make_base(const char *url)
{
        size_t len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
                len--;

        bool has_rest = ends_with(url, len, "/rest");
        const char *slash = NULL;
        for (size_t i = len; i > 0 && slash == NULL; i--)
                if (url[i - 1] == '/')
                        slash = url + i - 1;
        if (slash != NULL && slash - url >= 5 &&
            memcmp(slash - 5, "/rest", 5) == 0)
                has_rest = true;

        struct buf b = BUF_INIT;
        buf_append(&b, url, len);
        buf_puts(&b, has_rest ? "/V1" : "/rest/V1");
        return buf_steal(&b);
}

static enum ss_err magento_open(const struct adapter_config *cfg,
                                struct http_client *http,
                                struct adapter **out,
                                struct ss_error *err)
{
        const char *token =
                json_str(json_get(cfg->credentials, "access_token"));
        if (cfg->store_url == NULL || cfg->store_url[0] == '\0')
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "magento: store_url is empty");
        if (!http_url_allowed(cfg->store_url))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "magento: store_url must be https");
        if (token == NULL || token[0] == '\0')
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "magento: credentials need a non-empty "
                                    "\"access_token\"");

        struct adapter *a = calloc(1, sizeof(*a));
        if (a == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        struct buf auth = BUF_INIT;
        buf_printf(&auth, "Authorization: Bearer %s", token);
        a->http = http;
        a->auth = buf_steal(&auth);
        a->base = make_base(cfg->store_url);
        a->source = strdup(cfg->location_id ? cfg->location_id
                                            : MAGENTO_DEFAULT_SOURCE);
        a->batch = cfg->batch_size ? cfg->batch_size : MAGENTO_MAX_BATCH;
        a->page = cfg->page_size ? cfg->page_size : MAGENTO_MAX_PAGE;
        if (a->auth == NULL || a->base == NULL || a->source == NULL) {
                free(a->auth);
                free(a->base);
                free(a->source);
                free(a);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        *out = a;
        return SS_OK;
}

static void magento_close(struct adapter *a)
{
        if (a == NULL)
                return;
        free(a->auth);
        free(a->base);
        free(a->source);
        free(a);
}

/* Renders one value of Magento's "parameters" into b. */
static bool put_param(struct buf *b, yajl_val v)
{
        long long i;
        double d;
        const char *s = json_str(v);
        if (s != NULL)
                buf_puts(b, s);
        else if (json_int(v, &i))
                buf_printf(b, "%lld", i);
        else if (json_double(v, &d))
                buf_printf(b, "%g", d);
        else
                return false;
        return true;
}

/* Appends a Magento message with its placeholders filled: "%1".."%9" index
 * a parameters array, "%name" keys a parameters object. */
static void put_message(struct buf *b, yajl_val obj)
{
        const char *m = json_str(json_get(obj, "message"));
        yajl_val params = json_get(obj, "parameters");
        if (m == NULL)
                return;
        for (const char *p = m; *p != '\0'; p++) {
                if (*p != '%') {
                        buf_putc(b, *p);
                        continue;
                }
                const char *start = p + 1, *end = start;
                while ((*end >= 'a' && *end <= 'z') ||
                       (*end >= 'A' && *end <= 'Z') ||
                       (*end >= '0' && *end <= '9') || *end == '_')
                        end++;
                yajl_val v = NULL;
                char key[64];
                size_t klen = (size_t)(end - start);
                if (klen > 0 && klen < sizeof(key)) {
                        memcpy(key, start, klen);
                        key[klen] = '\0';
                        if (YAJL_IS_ARRAY(params) && key[0] >= '1' &&
                            key[0] <= '9' && klen == 1)
                                v = json_at(params, (size_t)(key[0] - '1'));
                        else
                                v = json_get(params, key);
                }
                if (v != NULL && put_param(b, v))
                        p = end - 1;
                else
                        buf_putc(b, '%');
        }
}

/* Magento's error text from a response body, placeholders filled, with
 * any "errors" list after it; "" when the body is not Magento's shape. */
static void
error_text(const struct http_response *resp, char *out, size_t outsz)
{
        out[0] = '\0';
        const char *text = buf_str(&resp->body);
        if (text == NULL || resp->body.len == 0)
                return;
        yajl_val root = json_parse(text, resp->body.len, NULL);
        struct buf b = BUF_INIT, one = BUF_INIT;
        put_message(&b, root);
        yajl_val list = json_get(root, "errors");
        for (size_t i = 0; i < json_len(list) && i < 5; i++) {
                /* "Validation Failed: X" already quotes the first error. */
                buf_reset(&one);
                put_message(&one, json_at(list, i));
                if (buf_str(&one) == NULL || buf_str(&b) == NULL ||
                    strstr(buf_str(&b), buf_str(&one)) != NULL)
                        continue;
                buf_puts(&b, b.len ? "; " : "");
                buf_puts(&b, buf_str(&one));
        }
        if (buf_str(&b) != NULL)
                snprintf(out, outsz, "%s", buf_str(&b));
        buf_free(&one);
        buf_free(&b);
        yajl_tree_free(root);
}

/* One API exchange with the shared retry policy. On success *out holds the
 * parsed body (free with yajl_tree_free). On failure, why gets Magento's
 * own words (also appended to err's message) and *status what the store
 * answered (0: nothing). */
static enum ss_err call(struct adapter *a,
                        const char *method,
                        const char *url,
                        const char *body,
                        yajl_val *out,
                        long *status,
                        char *why,
                        size_t whysz,
                        struct ss_error *err)
{
        const char *headers[] = { a->auth, "Accept: application/json",
                                  body ? "Content-Type: application/json"
                                       : NULL,
                                  NULL };
        struct http_request req = {
                .method = method,
                .url = url,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .headers = headers,
                /* Reads, and absolute source-item upserts: both are safe
                 * to send again. */
                .idempotent = true,
        };
        struct http_response resp = HTTP_RESPONSE_INIT;
        char ctype[128] = "none";

        *out = NULL;
        why[0] = '\0';
        enum ss_err rc = http_do(a->http, &req, NULL, NULL, &resp, err);
        *status = resp.status;
        if (rc != SS_OK) {
                error_text(&resp, why, whysz);
                if (why[0] != '\0' && err != NULL) {
                        size_t n = strlen(err->msg);
                        snprintf(err->msg + n, sizeof(err->msg) - n,
                                 "; magento says: %s", why);
                }
                goto out;
        }

        /* A maintenance or login page comes back as 200 text/html. */
        if (!http_header(&resp, "content-type", ctype, sizeof(ctype)) ||
            strstr(ctype, "json") == NULL) {
                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                  "magento: a %s answered with content type "
                                  "\"%s\", not JSON",
                                  method, ctype);
                goto out;
        }
        struct ss_error perr = { 0 };
        *out = json_parse(resp.body.data ? resp.body.data : "", resp.body.len,
                          &perr);
        if (*out == NULL)
                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                  "magento: the answer to a %s is not valid "
                                  "JSON (%s)",
                                  method, perr.msg);
out:
        http_response_free(&resp);
        return rc;
}

/* Percent-encoded length of s, as buf_urlencode writes it. */
static size_t encoded_len(const char *s)
{
        size_t n = 0;
        for (; *s != '\0'; s++)
                n += strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                            "wxyz0123456789-._~",
                            *s) != NULL
                             ? 1
                             : 3;
        return n;
}

/* How many of skus[0..n) go in one filtered GET: at most one page, and
 * within the URL budget (always at least one). */
static size_t
chunk_len(const struct adapter *a, const char *const *skus, size_t n)
{
        size_t bytes = 0, k = 0;
        while (k < n && k < a->page) {
                bytes += encoded_len(skus[k]) + 3;
                if (k > 0 && bytes > MAGENTO_SKU_URL_BUDGET)
                        break;
                k++;
        }
        return k;
}

static void put_filter(
        struct buf *b, int group, int idx, const char *field, const char *cond)
{
        buf_printf(b,
                   "&searchCriteria[filter_groups][%d][filters][%d][field]=%s"
                   "&searchCriteria[filter_groups][%d][filters][%d]"
                   "[condition_type]=%s"
                   "&searchCriteria[filter_groups][%d][filters][%d][value]=",
                   group, idx, field, group, idx, cond, group, idx);
}

/* GET source-items at our source, optionally limited to skus[0..n): group
 * 0 is the source, group 1 ORs one "in" list for the SKUs and an "eq"
 * filter for each SKU holding a comma, which the "in" list would split. */
static char *search_url(const struct adapter *a,
                        const char *const *skus,
                        size_t n,
                        unsigned page_no)
{
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s/inventory/source-items?", a->base);
        buf_printf(&b,
                   "searchCriteria[pageSize]=%u"
                   "&searchCriteria[currentPage]=%u"
                   "&searchCriteria[sortOrders][0][field]=sku"
                   "&searchCriteria[sortOrders][0][direction]=ASC",
                   a->page, page_no);
        put_filter(&b, 0, 0, "source_code", "eq");
        buf_urlencode(&b, a->source);

        int idx = 0;
        bool first = true;
        for (size_t i = 0; i < n; i++) {
                if (strchr(skus[i], ',') != NULL)
                        continue;
                if (first)
                        put_filter(&b, 1, idx++, "sku", "in");
                else
                        buf_puts(&b, "%2C");
                buf_urlencode(&b, skus[i]);
                first = false;
        }
        for (size_t i = 0; i < n; i++) {
                if (strchr(skus[i], ',') == NULL)
                        continue;
                put_filter(&b, 1, idx++, "sku", "eq");
                buf_urlencode(&b, skus[i]);
        }
        return buf_steal(&b);
}

static enum ss_err
parse_item(yajl_val v, struct source_item *it, struct ss_error *err)
{
        yajl_val q = json_get(v, "quantity");
        it->sku = json_str(json_get(v, "sku"));
        it->source = json_str(json_get(v, "source_code"));
        it->qty = 0;
        /* Decimal quantities (is_qty_decimal) cannot be a whole level: they
         * read as unknown, never rounded. */
        it->qty_known = json_int_lenient(q, &it->qty);
        if (it->sku == NULL || it->source == NULL ||
            (!it->qty_known && !json_is_null(q) && !YAJL_IS_NUMBER(q)))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "magento: a source item lacks sku, "
                                    "source_code or a numeric quantity");
        return SS_OK;
}

/* Reads every page of one search, calling fn for each source item. Stops
 * on total_count, not on an empty page: before 2.4 Magento answers a page
 * past the end with the last page again (magento/magento2#3787). */
static enum ss_err search(struct adapter *a,
                          const char *const *skus,
                          size_t n,
                          item_fn fn,
                          void *arg,
                          struct ss_error *err)
{
        enum ss_err rc = SS_OK;
        long long total = -1, seen = 0;
        for (unsigned page_no = 1; rc == SS_OK; page_no++) {
                char *url = search_url(a, skus, n, page_no);
                yajl_val root = NULL;
                long status;
                char why[160];
                if (url == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                rc = call(a, "GET", url, NULL, &root, &status, why, sizeof(why),
                          err);
                free(url);
                if (rc != SS_OK)
                        break;

                yajl_val items = json_get(root, "items");
                size_t got = json_len(items);
                if (!YAJL_IS_ARRAY(items) ||
                    !json_int(json_get(root, "total_count"), &total) ||
                    total < 0) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "magento: source-items page %u "
                                          "lacks items or total_count",
                                          page_no);
                } else {
                        for (size_t i = 0; rc == SS_OK && i < got; i++) {
                                struct source_item it;
                                rc = parse_item(json_at(items, i), &it, err);
                                if (rc == SS_OK)
                                        rc = fn(arg, &it, err);
                        }
                        seen += (long long)got;
                }
                yajl_tree_free(root);
                /* Counting items, not pages, also copes with a store that
                 * caps the page size below what we asked for. Each page
                 * brings at least one item, which bounds the loop. */
                if (rc != SS_OK || got == 0 || seen >= total ||
                    (long long)page_no > total)
                        break;
        }
        return rc;
}

static int cmp_str_ptr(const void *x, const void *y)
{
        return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Is sku one of the sorted set[0..n), byte for byte? */
static bool in_set(const char *const *set, size_t n, const char *sku)
{
        return bsearch(&sku, set, n, sizeof(*set), cmp_str_ptr) != NULL;
}

struct list_ctx {
        struct adapter *a;
        const char *const *want; /* sorted chunk, NULL: take every item */
        size_t nwant;
        struct store_levels *out;
};

static enum ss_err
list_item(void *arg, const struct source_item *it, struct ss_error *err)
{
        struct list_ctx *c = arg;

        /* MySQL compares SKUs without case, so a filtered read may return
         * "abc" for "ABC"; the contract is byte for byte. */
        if (it->sku[0] == '\0' ||
            (c->want != NULL && !in_set(c->want, c->nwant, it->sku)))
                return SS_OK;
        if (strcmp(it->source, c->a->source) != 0)
                return SS_OK;
        /* LIMITATION: tracked is always true. Source items carry no
         * manage-stock flag, product lists omit stock_item
         * (magento/magento2#36533), and GET /V1/stockItems/{sku} costs a
         * request per SKU. Names are left NULL: source items have none. */
        if (store_levels_add(c->out, it->sku, it->sku, it->source, NULL,
                             it->qty, it->qty_known, true) != SS_OK)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return SS_OK;
}

/* Returns a new sorted copy of skus[0..n) without repeats in *out (free
 * with free()), its length in *nout. */
static enum ss_err sorted_unique(const char *const *skus,
                                 size_t n,
                                 const char ***out,
                                 size_t *nout,
                                 struct ss_error *err)
{
        const char **v = malloc((n ? n : 1) * sizeof(*v));
        if (v == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (skus[i] != NULL && skus[i][0] != '\0')
                        v[k++] = skus[i];
        qsort(v, k, sizeof(*v), cmp_str_ptr);
        size_t u = 0;
        for (size_t i = 0; i < k; i++)
                if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
                        v[u++] = v[i];
        *out = v;
        *nout = u;
        return SS_OK;
}

static enum ss_err magento_list_levels(struct adapter *a,
                                       const char *const *skus,
                                       size_t nskus,
                                       struct store_levels *out,
                                       struct ss_error *err)
{
        struct list_ctx c = { .a = a, .out = out };
        if (skus == NULL)
                return search(a, NULL, 0, list_item, &c, err);

        const char **set = NULL;
        size_t nset = 0;
        enum ss_err rc = sorted_unique(skus, nskus, &set, &nset, err);
        for (size_t i = 0; rc == SS_OK && i < nset; i += c.nwant) {
                c.want = set + i;
                c.nwant = chunk_len(a, set + i, nset - i);
                rc = search(a, c.want, c.nwant, list_item, &c, err);
        }
        free(set);
        return rc;
}

static void put_batch(struct buf *b,
                      const struct adapter *a,
                      const struct store_write *w,
                      size_t n)
{
        buf_puts(b, "{\"sourceItems\":[");
        for (size_t i = 0; i < n; i++) {
                buf_puts(b, i ? ",{\"sku\":" : "{\"sku\":");
                buf_json_str(b, w[i].sku);
                buf_puts(b, ",\"source_code\":");
                buf_json_str(b, a->source);
                /* Status is sent explicitly: a positive quantity with
                 * status 0 would stay out of stock. */
                buf_printf(b, ",\"quantity\":%lld,\"status\":%d}", w[i].qty,
                           w[i].qty > 0 ? 1 : 0);
        }
        buf_puts(b, "]}");
}

/* Writes w[0..n) in one request. Magento saves a batch all or nothing and
 * its validation errors do not name the item, so a 400 on several items is
 * split in halves until the refused ones stand alone. Accepted items get
 * SS_OK, or stay NOT_ATTEMPTED with *pending set when they must be read
 * back first. *refused counts the items Magento refused. */
static enum ss_err write_batch(struct adapter *a,
                               struct store_write *w,
                               size_t n,
                               bool *pending,
                               size_t *refused,
                               struct ss_error *err)
{
        struct buf body = BUF_INIT, url = BUF_INIT;
        yajl_val root = NULL;
        long status = 0;
        char why[160];
        struct ss_error werr = { 0 };
        enum ss_err rc;

        put_batch(&body, a, w, n);
        buf_printf(&url, "%s/inventory/source-items", a->base);
        if (buf_str(&body) == NULL || buf_str(&url) == NULL)
                rc = ss_error_set(&werr, SS_ERR_NOMEM, "out of memory");
        else
                rc = call(a, "POST", buf_str(&url), buf_str(&body), &root,
                          &status, why, sizeof(why), &werr);
        buf_free(&url);
        buf_free(&body);

        if (rc == SS_OK && !YAJL_IS_ARRAY(root)) {
                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                  "magento: a source-items save answered "
                                  "with something other than a JSON array");
        } else if (rc == SS_OK) {
                for (size_t i = 0; i < n; i++) {
                        pending[i] = w[i].item_id == NULL;
                        w[i].result = pending[i] ? SS_ERR_NOT_ATTEMPTED : SS_OK;
                }
        } else if (status == 400 && n > 1) {
                size_t half = n / 2;
                rc = write_batch(a, w, half, pending, refused, err);
                if (rc == SS_OK)
                        rc = write_batch(a, w + half, n - half, pending + half,
                                         refused, err);
        } else if (status == 400) {
                /* Magento's words when it gave any; the reason field is
                 * shorter than an error message. */
                const char *text = why[0] ? why : werr.msg;
                size_t len = strnlen(text, sizeof(w[0].reason) - 1);
                w[0].result = SS_ERR_ITEM_REJECTED;
                memcpy(w[0].reason, text, len);
                w[0].reason[len] = '\0';
                (*refused)++;
                rc = SS_OK;
        } else if (err != NULL) {
                *err = werr;
        }
        yajl_tree_free(root);
        return rc;
}

struct verify_ctx {
        const char *const *want; /* sorted unique SKUs of the chunk */
        size_t nwant;
        const char *source;
        struct source_item *got; /* [nwant]: sku NULL until read back */
};

static enum ss_err
verify_item(void *arg, const struct source_item *it, struct ss_error *err)
{
        (void)err;
        struct verify_ctx *c = arg;
        if (strcmp(it->source, c->source) != 0)
                return SS_OK;
        const char *const *hit = bsearch(&it->sku, c->want, c->nwant,
                                         sizeof(*c->want), cmp_str_ptr);
        if (hit != NULL) {
                /* The tree the strings live in dies with the page. */
                struct source_item *g = &c->got[hit - c->want];
                g->sku = *hit;
                g->qty = it->qty;
                g->qty_known = it->qty_known;
        }
        return SS_OK;
}

static void verdict(const struct adapter *a,
                    struct store_write *w,
                    const struct source_item *got,
                    size_t *unapplied)
{
        w->result = SS_ERR_ITEM_REJECTED;
        if (got->sku == NULL) {
                w->result = SS_ERR_ITEM_UNKNOWN;
                snprintf(w->reason, sizeof(w->reason),
                         "magento accepted the write but holds no source "
                         "item for this SKU at source %s afterwards "
                         "(unknown SKU?)",
                         a->source);
        } else if (!got->qty_known) {
                snprintf(w->reason, sizeof(w->reason),
                         "magento accepted the write but source %s reads a "
                         "non-whole quantity",
                         a->source);
        } else if (got->qty != w->qty) {
                snprintf(w->reason, sizeof(w->reason),
                         "magento accepted the write but source %s reads "
                         "%lld, not %lld",
                         a->source, got->qty, w->qty);
        } else {
                w->result = SS_OK;
                return;
        }
        (*unapplied)++;
}

/* Reads back the written items v[0..n) in as few searches as the page
 * size and URL budget allow, and gives each its verdict. */
static enum ss_err verify(struct adapter *a,
                          struct store_write **v,
                          size_t n,
                          size_t *unapplied,
                          struct ss_error *err)
{
        const char **raw = malloc((n ? n : 1) * sizeof(*raw));
        const char **skus = NULL;
        struct source_item *got = NULL;
        size_t nskus = 0;
        enum ss_err rc = SS_OK;
        if (raw == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                raw[i] = v[i]->sku;
        rc = sorted_unique(raw, n, &skus, &nskus, err);
        if (rc != SS_OK)
                goto out;
        got = calloc(nskus ? nskus : 1, sizeof(*got));
        if (got == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        for (size_t i = 0; rc == SS_OK && i < nskus;) {
                struct verify_ctx c = { .want = skus + i,
                                        .source = a->source,
                                        .got = got + i };
                c.nwant = chunk_len(a, skus + i, nskus - i);
                rc = search(a, c.want, c.nwant, verify_item, &c, err);
                i += c.nwant;
        }
        for (size_t i = 0; rc == SS_OK && i < n; i++) {
                const char **hit = bsearch(&v[i]->sku, skus, nskus,
                                           sizeof(*skus), cmp_str_ptr);
                static const struct source_item none = { 0 };
                verdict(a, v[i], hit ? &got[hit - skus] : &none, unapplied);
        }
out:
        free(got);
        free(skus);
        free(raw);
        return rc;
}

/* Items sent without an item_id were never listed at this source, so a
 * 200 proves nothing for them (magento/magento2#38154): they are read back
 * before they count as done. Items carrying an item_id came from
 * list_levels, so their source item exists, and Magento applies writes to
 * existing source items; reading those back too would add a request per
 * page of writes and catch nothing. */
static enum ss_err magento_set_levels(struct adapter *a,
                                      struct store_write *w,
                                      size_t n,
                                      struct ss_error *err)
{
        struct store_write **todo = calloc(n ? n : 1, sizeof(*todo));
        bool *pending = calloc(n ? n : 1, sizeof(*pending));
        size_t ntodo = 0, refused = 0, unapplied = 0;
        enum ss_err rc = SS_OK;
        if (todo == NULL || pending == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        for (size_t i = 0; rc == SS_OK && i < n; i += a->batch) {
                size_t k = n - i < a->batch ? n - i : a->batch;
                size_t before = refused;
                rc = write_batch(a, w + i, k, pending + i, &refused, err);
                for (size_t j = i; rc == SS_OK && j < i + k; j++)
                        if (pending[j])
                                todo[ntodo++] = &w[j];
                /* Every item of a batch refused on its own means the store
                 * refuses them all (unknown source, missing ACL). */
                if (rc == SS_OK && k > 1 && refused - before == k)
                        rc = ss_error_set(err, SS_ERR_STORE_REJECTED,
                                          "magento refused every item of a "
                                          "batch: %s",
                                          w[i].reason);
                /* Read back once a page's worth waits, and at the end. */
                if (rc == SS_OK && (ntodo >= a->page || i + k >= n) &&
                    ntodo > 0) {
                        rc = verify(a, todo, ntodo, &unapplied, err);
                        ntodo = 0;
                }
        }
        /* Items sent but not yet read back when the request stops keep
         * NOT_ATTEMPTED: sending an absolute level again is harmless. */
        for (size_t j = 0; j < ntodo; j++)
                snprintf(todo[j]->reason, sizeof(todo[j]->reason),
                         "sent, but the request stopped before magento's "
                         "answer could be read back");
        if (unapplied > 0) {
                struct log_line l;
                log_begin(&l, LOG_WARN, "magento_write_not_applied");
                log_kv(&l, "source", a->source);
                log_kvi(&l, "items", (long long)unapplied);
                log_end(&l);
        }
out:
        free(pending);
        free(todo);
        return rc;
}

const struct adapter_ops magento_adapter = {
        .platform = "magento",
        .api_version = "Magento 2.4 REST V1 (MSI source items)",
        .max_batch = MAGENTO_MAX_BATCH,
        .max_page = MAGENTO_MAX_PAGE,
        .compare_and_set = false,
        .open = magento_open,
        .close = magento_close,
        .list_levels = magento_list_levels,
        .set_levels = magento_set_levels,
};
