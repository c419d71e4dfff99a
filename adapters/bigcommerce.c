/* BigCommerce adapter: levels read through the REST v3 Inventory API at one
 * location, tracking modes and names from the Catalog API, writes as
 * absolute adjustments in batches, paced by the store's rate-limit window.
 * Facts and sources: ../shared/platforms.md section 3. */
#include "adapter.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/http.h"
#include "../common/json.h"
#include "../common/log.h"

#define BC_API_VERSION "v3"
/* Inventory API: 2,000 items per adjustment, 1,000 items per read. */
#define BC_MAX_BATCH 2000
#define BC_MAX_PAGE  1000
/* Catalog products: at most 250 per page. */
#define BC_CATALOG_PAGE 250
/* Every store has location 1, its default (locations.v3.yml). */
#define BC_DEFAULT_LOCATION 1
/* Largest level per item and location the Inventory API accepts. */
#define BC_MAX_LEVEL 2147483647LL
/* Longest filter list we put in one URL. BigCommerce publishes no limit;
 * this keeps the request line well under the common 8 KiB. */
#define BC_MAX_FILTER 6000
/* Extra adjustment requests one set_levels call may spend isolating items
 * the store refused without naming them. */
#define BC_SPLIT_BUDGET 32
/* Guard against a store that keeps reporting more pages. */
#define BC_MAX_PAGES 100000

/* A product's inventory tracking mode, from the Catalog API. */
enum bc_tracking {
        BC_TRACK_UNKNOWN, /* the catalog did not list the product */
        BC_TRACK_NONE,
        BC_TRACK_PRODUCT,
        BC_TRACK_VARIANT,
};

struct bc_product {
        long long id;
        enum bc_tracking tracking;
        char *name; /* owned, may be NULL */
};

struct adapter {
        struct http_client *http; /* borrowed */
        char *base;               /* owned: ".../stores/<hash>/v3" */
        char *auth;               /* owned: the X-Auth-Token header line */
        const char *request_id;   /* borrowed, may be NULL */
        long long location;
        char location_str[24];
        unsigned page;
        unsigned batch;
        /* Products whose tracking mode is known, sorted by id; kept for the
         * session so re-reads cost no catalog requests. */
        struct bc_product *products; /* owned */
        size_t nproducts;
        size_t capproducts;
        /* Pages of the whole listing, -1 until a full read told us. */
        long long all_pages;
        /* The window is spent: send nothing before resume_ms. */
        bool paced;
        long long resume_ms; /* on the monotonic clock */
};

/* ---- small helpers ------------------------------------------------------ */

static bool parse_id(const char *s, long long *out)
{
        if (s == NULL || *s == '\0')
                return false;
        long long v = 0;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char)*p) || v > (INT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (*p - '0');
        }
        if (v == 0)
                return false;
        *out = v;
        return true;
}

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
        struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
                               .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

static bool
header_ll(const struct http_response *resp, const char *name, long long *out)
{
        char v[64];
        char *end;
        if (!http_header(resp, name, v, sizeof(v)) || v[0] == '\0')
                return false;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno != 0 || *end != '\0' || x < 0)
                return false;
        *out = x;
        return true;
}

/* ---- rate-limit window -------------------------------------------------- */

/* Every answer carries X-Rate-Limit-Requests-Left and
 * X-Rate-Limit-Time-Reset-Ms. When none are left, the next request would
 * only earn a 429 and count against the store's shared quota, so we wait
 * for the window to reset first. */
static void note_window(struct adapter *a, const struct http_response *resp)
{
        long long left, reset;
        if (resp->status == 0 ||
            !header_ll(resp, "X-Rate-Limit-Requests-Left", &left))
                return;
        if (left > 0) {
                a->paced = false;
                return;
        }
        if (!header_ll(resp, "X-Rate-Limit-Time-Reset-Ms", &reset) &&
            !header_ll(resp, "X-Rate-Limit-Time-Window-Ms", &reset))
                reset = 1000;
        a->paced = true;
        a->resume_ms = now_ms() + reset;
}

static enum ss_err wait_window(struct adapter *a, struct ss_error *err)
{
        if (!a->paced)
                return SS_OK;
        long long wait = a->resume_ms - now_ms();
        unsigned max_wait = http_client_policy(a->http)->max_wait_ms;
        if (wait > (long long)max_wait)
                return ss_error_set(err, SS_ERR_THROTTLED,
                                    "store's rate-limit window resets in "
                                    "%lld ms, more than the %u ms allowed",
                                    wait, max_wait);
        if (wait > 0) {
                log_msg(LOG_INFO, "bc_rate_window_wait", "wait_ms=%lld", wait);
                sleep_ms(wait);
        }
        a->paced = false;
        return SS_OK;
}

/* ---- one exchange ------------------------------------------------------- */

/* The problem+json title of an error answer, "" when there is none. */
static void
problem_title(const struct http_response *resp, char *out, size_t outsz)
{
        out[0] = '\0';
        const char *body = buf_str(&resp->body);
        if (body == NULL || resp->body.len == 0)
                return;
        yajl_val root = json_parse(body, resp->body.len, NULL);
        const char *t = json_str(json_get(root, "title"));
        if (t != NULL)
                snprintf(out, outsz, "%s", t);
        yajl_tree_free(root);
}

/* Sends one request with the shared retry policy and returns the parsed
 * JSON object of a 2xx answer in *out (free with yajl_tree_free). On an
 * error answer, resp holds it and err names the status and the store's
 * title. body may be NULL. */
static enum ss_err bc_call(struct adapter *a,
                           const char *method,
                           const char *url,
                           const struct buf *body,
                           struct http_response *resp,
                           yajl_val *out,
                           struct ss_error *err)
{
        *out = NULL;
        enum ss_err rc = wait_window(a, err);
        if (rc != SS_OK)
                return rc;

        const char *headers[] = { a->auth, "Accept: application/json",
                                  body ? "Content-Type: application/json"
                                       : NULL,
                                  NULL };
        struct http_request req = {
                .method = method,
                .url = url,
                .body = body ? buf_str(body) : NULL,
                .body_len = body ? body->len : 0,
                .headers = headers,
                /* Reads and absolute adjustments may be sent again. */
                .idempotent = true,
                .wait_ms_header = "X-Rate-Limit-Time-Reset-Ms",
        };
        rc = http_do(a->http, &req, NULL, NULL, resp, err);
        note_window(a, resp);
        if (rc != SS_OK) {
                char title[160];
                if (resp->status >= 400) {
                        problem_title(resp, title, sizeof(title));
                        if (title[0] != '\0' && err != NULL) {
                                char msg[sizeof(err->msg)];
                                snprintf(msg, sizeof(msg), "%s", err->msg);
                                ss_error_set(err, rc, "%s: %s", msg, title);
                        }
                }
                return rc;
        }

        char ctype[128];
        if (!http_header(resp, "Content-Type", ctype, sizeof(ctype)) ||
            strstr(ctype, "json") == NULL)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "store answered HTTP %ld with content "
                                    "type '%s', not JSON",
                                    resp->status, ctype);
        struct ss_error perr = { 0 };
        yajl_val root =
                json_parse(buf_str(&resp->body) ? buf_str(&resp->body) : "",
                           resp->body.len, &perr);
        if (root == NULL)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "store sent a malformed answer: %s",
                                    perr.msg);
        if (!YAJL_IS_OBJECT(root)) {
                yajl_tree_free(root);
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "store answer is not a JSON object");
        }
        *out = root;
        return SS_OK;
}

/* ---- session ------------------------------------------------------------ */

static enum ss_err bc_open(const struct adapter_config *cfg,
                           struct http_client *http,
                           struct adapter **out,
                           struct ss_error *err)
{
        struct adapter *a = NULL;
        struct buf b = BUF_INIT;
        enum ss_err rc;

        *out = NULL;
        const char *token =
                json_str(json_get(cfg->credentials, "access_token"));
        if (token == NULL || token[0] == '\0' ||
            strpbrk(token, "\r\n") != NULL) {
                rc = ss_error_set(err, SS_ERR_CONFIG,
                                  "BigCommerce credentials need a non-empty "
                                  "\"access_token\"");
                goto out;
        }
        if (cfg->store_url == NULL || !http_url_allowed(cfg->store_url)) {
                rc = ss_error_set(err, SS_ERR_CONFIG,
                                  "BigCommerce store URL is missing or not "
                                  "https");
                goto out;
        }
        a = calloc(1, sizeof(*a));
        if (a == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        a->http = http;
        a->request_id = cfg->request_id;
        a->all_pages = -1;

        /* The API base is .../stores/<hash>; accept it with "/v3" or a
         * trailing slash too. */
        size_t len = strlen(cfg->store_url);
        while (len > 0 && cfg->store_url[len - 1] == '/')
                len--;
        if (len >= 3 && strncmp(cfg->store_url + len - 3, "/v3", 3) == 0)
                len -= 3;
        buf_append(&b, cfg->store_url, len);
        buf_puts(&b, "/" BC_API_VERSION);
        a->base = buf_steal(&b);
        buf_printf(&b, "X-Auth-Token: %s", token);
        a->auth = buf_steal(&b);
        if (a->base == NULL || a->auth == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        a->location = BC_DEFAULT_LOCATION;
        if (cfg->location_id != NULL &&
            !parse_id(cfg->location_id, &a->location)) {
                rc = ss_error_set(err, SS_ERR_CONFIG,
                                  "BigCommerce location id must be a "
                                  "positive integer, got '%s'",
                                  cfg->location_id);
                goto out;
        }
        snprintf(a->location_str, sizeof(a->location_str), "%lld", a->location);
        a->page = cfg->page_size && cfg->page_size < BC_MAX_PAGE
                          ? cfg->page_size
                          : BC_MAX_PAGE;
        a->batch = cfg->batch_size && cfg->batch_size < BC_MAX_BATCH
                           ? cfg->batch_size
                           : BC_MAX_BATCH;
        *out = a;
        a = NULL;
        rc = SS_OK;
out:
        if (a != NULL) {
                free(a->base);
                free(a->auth);
                free(a);
        }
        buf_free(&b);
        return rc;
}

static void bc_close(struct adapter *a)
{
        if (a == NULL)
                return;
        for (size_t i = 0; i < a->nproducts; i++)
                free(a->products[i].name);
        free(a->products);
        free(a->base);
        /* The header line holds the token: leave no copy in freed
         * memory. */
        if (a->auth != NULL)
                explicit_bzero(a->auth, strlen(a->auth));
        free(a->auth);
        free(a);
}

/* ---- catalog: tracking modes -------------------------------------------- */

static int product_cmp(const void *x, const void *y)
{
        const struct bc_product *p = x, *q = y;
        return (p->id > q->id) - (p->id < q->id);
}

static struct bc_product *product_find(struct adapter *a, long long id)
{
        struct bc_product key = { .id = id };
        if (a->nproducts == 0)
                return NULL;
        return bsearch(&key, a->products, a->nproducts, sizeof(key),
                       product_cmp);
}

static enum ss_err product_add(struct adapter *a,
                               long long id,
                               enum bc_tracking tracking,
                               const char *name)
{
        if (a->nproducts == a->capproducts) {
                size_t cap = a->capproducts ? a->capproducts * 2 : 256;
                struct bc_product *v = realloc(a->products, cap * sizeof(*v));
                if (v == NULL)
                        return SS_ERR_NOMEM;
                a->products = v;
                a->capproducts = cap;
        }
        char *copy = NULL;
        if (name != NULL && (copy = strdup(name)) == NULL)
                return SS_ERR_NOMEM;
        a->products[a->nproducts++] = (struct bc_product){ .id = id,
                                                           .tracking = tracking,
                                                           .name = copy };
        return SS_OK;
}

static bool tracking_parse(const char *s, enum bc_tracking *out)
{
        /* "simple" and "sku" are the V2 names still seen in old data. */
        if (s == NULL)
                return false;
        if (strcmp(s, "none") == 0)
                *out = BC_TRACK_NONE;
        else if (strcmp(s, "product") == 0 || strcmp(s, "simple") == 0)
                *out = BC_TRACK_PRODUCT;
        else if (strcmp(s, "variant") == 0 || strcmp(s, "sku") == 0)
                *out = BC_TRACK_VARIANT;
        else
                return false;
        return true;
}

/* Reads the tracking mode and name of products ids[0..n) (n at most one
 * catalog page) into the session's table. */
static enum ss_err fetch_products(struct adapter *a,
                                  const long long *ids,
                                  size_t n,
                                  struct ss_error *err)
{
        struct buf url = BUF_INIT;
        struct http_response resp = HTTP_RESPONSE_INIT;
        yajl_val root = NULL;
        enum ss_err rc;

        buf_printf(&url,
                   "%s/catalog/products?include_fields=name,"
                   "inventory_tracking&limit=%d&page=1&id:in=",
                   a->base, BC_CATALOG_PAGE);
        for (size_t i = 0; i < n; i++)
                buf_printf(&url, "%s%lld", i ? "," : "", ids[i]);
        if (buf_str(&url) == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        rc = bc_call(a, "GET", buf_str(&url), NULL, &resp, &root, err);
        if (rc != SS_OK)
                goto out;
        yajl_val data = json_get(root, "data");
        if (data == NULL || !YAJL_IS_ARRAY(data)) {
                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                  "catalog products answer has no data "
                                  "array");
                goto out;
        }
        for (size_t i = 0; i < json_len(data); i++) {
                yajl_val p = json_at(data, i);
                long long id;
                enum bc_tracking t;
                const char *ts = json_str(json_get(p, "inventory_tracking"));
                if (!json_int(json_get(p, "id"), &id) ||
                    !tracking_parse(ts, &t)) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "catalog product without an id or "
                                          "with unknown inventory_tracking "
                                          "'%s'",
                                          ts ? ts : "(missing)");
                        goto out;
                }
                if (product_add(a, id, t, json_str(json_get(p, "name"))) !=
                    SS_OK) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        goto out;
                }
        }

        /* Remember products the catalog did not return, so they are not
         * asked for again. */
        if (a->nproducts > 0)
                qsort(a->products, a->nproducts, sizeof(*a->products),
                      product_cmp);
        size_t sorted = a->nproducts;
        for (size_t i = 0; i < n; i++) {
                struct bc_product key = { .id = ids[i] };
                if (sorted > 0 && bsearch(&key, a->products, sorted,
                                          sizeof(key), product_cmp) != NULL)
                        continue;
                if (product_add(a, ids[i], BC_TRACK_UNKNOWN, NULL) != SS_OK) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        goto out;
                }
        }
        rc = SS_OK;
out:
        /* Sorted again whatever happened: lookups rely on it. */
        if (a->nproducts > 0)
                qsort(a->products, a->nproducts, sizeof(*a->products),
                      product_cmp);
        yajl_tree_free(root);
        http_response_free(&resp);
        buf_free(&url);
        return rc;
}

static int ll_cmp(const void *x, const void *y)
{
        long long p = *(const long long *)x, q = *(const long long *)y;
        return (p > q) - (p < q);
}

static int str_cmp(const void *x, const void *y)
{
        return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* SKUs asked for, sorted for an exact (byte for byte) membership test:
 * the API's own filter need not compare the way we must. */
struct sku_set {
        const char **v; /* borrowed SKUs, sorted and unique */
        size_t n;
};

static bool sku_set_has(const struct sku_set *s, const char *sku)
{
        if (s == NULL)
                return true;
        return s->n > 0 &&
               bsearch(&sku, s->v, s->n, sizeof(*s->v), str_cmp) != NULL;
}

/* Makes sure the tracking mode of every product on one inventory page
 * that we will report is known, asking the catalog only for products not
 * seen before. */
static enum ss_err learn_products(struct adapter *a,
                                  yajl_val data,
                                  const struct sku_set *want,
                                  struct ss_error *err)
{
        size_t n = json_len(data);
        long long *ids = calloc(n + 1, sizeof(*ids));
        size_t k = 0;
        enum ss_err rc = SS_OK;

        if (ids == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                long long id;
                yajl_val ident = json_get(json_at(data, i), "identity");
                const char *sku = json_str(json_get(ident, "sku"));
                if (sku == NULL || sku[0] == '\0' || !sku_set_has(want, sku))
                        continue;
                if (json_int(json_get(ident, "product_id"), &id) &&
                    product_find(a, id) == NULL)
                        ids[k++] = id;
        }
        qsort(ids, k, sizeof(*ids), ll_cmp);
        size_t u = 0;
        for (size_t i = 0; i < k; i++)
                if (u == 0 || ids[u - 1] != ids[i])
                        ids[u++] = ids[i];
        for (size_t i = 0; i < u && rc == SS_OK; i += BC_CATALOG_PAGE) {
                size_t m = u - i < BC_CATALOG_PAGE ? u - i : BC_CATALOG_PAGE;
                rc = fetch_products(a, ids + i, m, err);
        }
        free(ids);
        return rc;
}

/* ---- reading levels ----------------------------------------------------- */

/* Turns one inventory item into a level at our location. */
static enum ss_err add_item(struct adapter *a,
                            yajl_val item,
                            const struct sku_set *want,
                            struct store_levels *out,
                            struct ss_error *err)
{
        yajl_val ident = json_get(item, "identity");
        const char *sku = json_str(json_get(ident, "sku"));
        long long pid = 0, vid = 0;
        bool has_vid = json_int(json_get(ident, "variant_id"), &vid);

        if (sku == NULL || sku[0] == '\0' || !sku_set_has(want, sku))
                return SS_OK;
        if (!json_int(json_get(ident, "product_id"), &pid))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "inventory item '%s' has no product_id",
                                    sku);

        /* The level is the on-hand count, which is what an absolute
         * adjustment sets (available_to_sell is that minus safety stock).
         * No entry at our location: never stocked there. */
        long long qty = 0;
        bool known = false;
        yajl_val locs = json_get(item, "locations");
        for (size_t i = 0; i < json_len(locs); i++) {
                yajl_val l = json_at(locs, i);
                long long id;
                if (!json_int(json_get(l, "location_id"), &id) ||
                    id != a->location)
                        continue;
                known = json_int_lenient(json_get(l, "total_inventory_onhand"),
                                         &qty);
        }

        /* A write must name the item the way the product tracks it: a
         * product-tracked item written by variant id is refused (422). */
        const struct bc_product *p = product_find(a, pid);
        enum bc_tracking t = p ? p->tracking : BC_TRACK_UNKNOWN;
        char item_id[48];
        if (t == BC_TRACK_PRODUCT || !has_vid)
                snprintf(item_id, sizeof(item_id), "product:%lld", pid);
        else
                snprintf(item_id, sizeof(item_id), "variant:%lld", vid);
        bool tracked = t != BC_TRACK_NONE;

        if (store_levels_add(out, sku, item_id, a->location_str,
                             p ? p->name : NULL, qty, known && tracked,
                             tracked) != SS_OK)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return SS_OK;
}

/* Reads every page of GET /inventory/items at our location, with the given
 * extra filter ("&sku:in=...", or "" for all items). With max_pages > 0 it
 * stops after the first page, adding nothing and setting *too_many, when
 * the listing has more pages than that. */
static enum ss_err list_pages(struct adapter *a,
                              const char *filter,
                              const struct sku_set *want,
                              long long max_pages,
                              bool *too_many,
                              struct store_levels *out,
                              struct ss_error *err)
{
        struct buf url = BUF_INIT;
        struct http_response resp = HTTP_RESPONSE_INIT;
        yajl_val root = NULL;
        enum ss_err rc = SS_OK;
        long long pages = 1;

        for (long long page = 1; page <= pages; page++) {
                buf_reset(&url);
                buf_printf(&url,
                           "%s/inventory/items?location_id:in=%s"
                           "&limit=%u&page=%lld%s",
                           a->base, a->location_str, a->page, page, filter);
                if (buf_str(&url) == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        break;
                }
                yajl_tree_free(root);
                rc = bc_call(a, "GET", buf_str(&url), NULL, &resp, &root, err);
                if (rc != SS_OK)
                        break;
                yajl_val data = json_get(root, "data");
                if (data == NULL || !YAJL_IS_ARRAY(data)) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "inventory items answer has no "
                                          "data array");
                        break;
                }
                yajl_val pg = json_path(root, "meta", "pagination", NULL);
                long long total_pages;
                if (json_int(json_get(pg, "total_pages"), &total_pages)) {
                        if (total_pages > BC_MAX_PAGES) {
                                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                                  "store reports %lld pages",
                                                  total_pages);
                                break;
                        }
                        pages = total_pages;
                        if (filter[0] == '\0')
                                a->all_pages = total_pages;
                } else if (json_len(data) >= a->page) {
                        /* No pagination block: go on while pages are
                         * full. */
                        pages = page + 1;
                }
                log_msg(LOG_DEBUG, "bc_items_page",
                        "page=%lld pages=%lld "
                        "items=%zu",
                        page, pages, json_len(data));
                if (page == 1 && max_pages > 0 && pages > max_pages) {
                        *too_many = true;
                        break;
                }
                if (json_len(data) == 0)
                        break;

                rc = learn_products(a, data, want, err);
                for (size_t i = 0; rc == SS_OK && i < json_len(data); i++)
                        rc = add_item(a, json_at(data, i), want, out, err);
                if (rc != SS_OK)
                        break;
        }
        yajl_tree_free(root);
        http_response_free(&resp);
        buf_free(&url);
        return rc;
}

static size_t urlencoded_len(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += isalnum((unsigned char)*s) || strchr("-._~", *s) ? 1 : 3;
        return n;
}

/* Takes SKUs from want->v[*pos..] for one sku:in filter, as many as fit a
 * page and a URL, and appends the filter to f (f may be NULL to count). */
static void next_filter(const struct adapter *a,
                        const struct sku_set *want,
                        size_t *pos,
                        struct buf *f)
{
        size_t used = 0;
        size_t n = 0;

        if (f != NULL) {
                buf_reset(f);
                buf_puts(f, "&sku:in=");
        }
        while (*pos < want->n && n < a->page) {
                const char *sku = want->v[*pos];
                size_t len = urlencoded_len(sku) + (n > 0);
                if (n > 0 && used + len > BC_MAX_FILTER)
                        break;
                if (f != NULL) {
                        if (n > 0)
                                buf_putc(f, ',');
                        buf_urlencode(f, sku);
                }
                used += len;
                n++;
                (*pos)++;
        }
}

static enum ss_err list_filtered(struct adapter *a,
                                 const struct sku_set *want,
                                 struct store_levels *out,
                                 struct ss_error *err)
{
        struct buf filter = BUF_INIT;
        enum ss_err rc = SS_OK;
        size_t pos = 0;

        while (rc == SS_OK && pos < want->n) {
                size_t start = pos;
                next_filter(a, want, &pos, &filter);
                if (buf_str(&filter) == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        break;
                }
                struct sku_set part = { want->v + start, pos - start };
                rc = list_pages(a, buf_str(&filter), &part, 0, NULL, out, err);
        }
        buf_free(&filter);
        return rc;
}

static enum ss_err bc_list_levels(struct adapter *a,
                                  const char *const *skus,
                                  size_t nskus,
                                  struct store_levels *out,
                                  struct ss_error *err)
{
        if (skus == NULL)
                return list_pages(a, "", NULL, 0, NULL, out, err);

        struct sku_set want = { calloc(nskus + 1, sizeof(*want.v)), 0 };
        enum ss_err rc = SS_OK;
        bool comma = false;

        if (want.v == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < nskus; i++) {
                if (skus[i] == NULL || skus[i][0] == '\0')
                        continue;
                want.v[want.n++] = skus[i];
                if (strchr(skus[i], ',') != NULL)
                        comma = true;
        }
        qsort(want.v, want.n, sizeof(*want.v), str_cmp);
        size_t u = 0;
        for (size_t i = 0; i < want.n; i++)
                if (u == 0 || strcmp(want.v[u - 1], want.v[i]) != 0)
                        want.v[u++] = want.v[i];
        want.n = u;
        if (want.n == 0)
                goto out;

        /* sku:in splits on commas, so a SKU holding one cannot be asked
         * for: read everything and pick. */
        if (comma) {
                rc = list_pages(a, "", &want, 0, NULL, out, err);
                goto out;
        }

        /* Many SKUs take many filtered requests; when the whole listing
         * takes fewer pages, read that instead. Unless an earlier full read
         * told us its size, the first page of it tells, and is kept. */
        long long chunks = 0;
        for (size_t pos = 0; pos < want.n; chunks++)
                next_filter(a, &want, &pos, NULL);
        if (chunks > 1 && a->all_pages < 0) {
                bool too_many = false;
                rc = list_pages(a, "", &want, chunks, &too_many, out, err);
                if (rc != SS_OK || !too_many)
                        goto out;
        } else if (chunks > 1 && a->all_pages <= chunks) {
                rc = list_pages(a, "", &want, 0, NULL, out, err);
                goto out;
        }
        rc = list_filtered(a, &want, out, err);
out:
        free(want.v);
        return rc;
}

/* ---- writing levels ----------------------------------------------------- */

/* How an item is named in an adjustment, parsed from item_id ("variant:N"
 * or "product:N"), or the SKU when there is no item id. */
struct bc_ident {
        const char *field; /* "variant_id", "product_id" or "sku" */
        long long id;
        const char *sku;
};

static bool ident_of(const struct store_write *w, struct bc_ident *out)
{
        if (w->item_id == NULL) {
                if (w->sku == NULL || w->sku[0] == '\0')
                        return false;
                *out = (struct bc_ident){ .field = "sku", .sku = w->sku };
                return true;
        }
        if (strncmp(w->item_id, "variant:", 8) == 0)
                *out = (struct bc_ident){ .field = "variant_id" };
        else if (strncmp(w->item_id, "product:", 8) == 0)
                *out = (struct bc_ident){ .field = "product_id" };
        else
                return false;
        return parse_id(w->item_id + 8, &out->id);
}

/* True when the store's text names this item: "variant_id 106", "sku
 * AB-1", ... as a whole token. */
static bool names_item(const char *text, const struct bc_ident *id)
{
        char token[200];
        if (id->sku != NULL)
                snprintf(token, sizeof(token), "sku %s", id->sku);
        else
                snprintf(token, sizeof(token), "%s %lld", id->field, id->id);
        size_t tl = strlen(token);
        for (const char *p = strstr(text, token); p != NULL;
             p = strstr(p + 1, token)) {
                char before = p > text ? p[-1] : ' ';
                char after = p[tl];
                bool start_ok = before == ' ' || before == '[' ||
                                before == '(' || before == ',';
                bool end_ok = after == '\0' ||
                              !(isalnum((unsigned char)after) || after == '-' ||
                                after == '_' || after == '.');
                if (start_ok && end_ok)
                        return true;
        }
        return false;
}

static void item_refused(struct store_write *w, const char *why)
{
        /* The store says "not found" for items it does not know. */
        w->result = strcasestr(why, "not found") != NULL ? SS_ERR_ITEM_UNKNOWN
                                                         : SS_ERR_ITEM_REJECTED;
        snprintf(w->reason, sizeof(w->reason), "%s", why);
}

/* The body of one absolute adjustment for w[idx[0..n)]. */
static void adjustment_body(const struct adapter *a,
                            struct store_write *w,
                            const size_t *idx,
                            size_t n,
                            struct buf *b)
{
        char reason[96];
        snprintf(reason, sizeof(reason), "stocksync %s",
                 a->request_id ? a->request_id : "sync");
        buf_puts(b, "{\"reason\":");
        buf_json_str(b, reason);
        buf_puts(b, ",\"items\":[");
        for (size_t i = 0; i < n; i++) {
                const struct store_write *x = &w[idx[i]];
                struct bc_ident id;
                long long loc = a->location;
                (void)ident_of(x, &id);
                if (x->location_id != NULL)
                        (void)parse_id(x->location_id, &loc);
                buf_printf(b, "%s{\"location_id\":%lld,\"%s\":", i ? "," : "",
                           loc, id.field);
                if (id.sku != NULL)
                        buf_json_str(b, id.sku);
                else
                        buf_printf(b, "%lld", id.id);
                buf_printf(b, ",\"quantity\":%lld}", x->qty);
        }
        buf_puts(b, "]}");
}

/* Marks items of a refused adjustment that the store named, by index in
 * errors ("items.3.quantity") or by identity in the title. Returns how many
 * were marked. */
static size_t mark_named(struct store_write *w,
                         const size_t *idx,
                         size_t n,
                         const struct http_response *resp,
                         bool *named)
{
        size_t marked = 0;
        const char *body = buf_str(&resp->body);
        yajl_val root = body ? json_parse(body, resp->body.len, NULL) : NULL;
        const char *title = json_str(json_get(root, "title"));
        yajl_val errors = json_get(root, "errors");

        for (size_t k = 0;
             errors && YAJL_IS_OBJECT(errors) && k < errors->u.object.len;
             k++) {
                const char *key = errors->u.object.keys[k];
                char *end;
                if (strncmp(key, "items.", 6) != 0)
                        continue;
                unsigned long pos = strtoul(key + 6, &end, 10);
                if (end == key + 6 || (*end != '\0' && *end != '.') ||
                    pos >= n || named[pos])
                        continue;
                const char *why = json_str(errors->u.object.values[k]);
                item_refused(&w[idx[pos]], why ? why : key);
                named[pos] = true;
                marked++;
        }
        for (size_t i = 0; title != NULL && i < n; i++) {
                struct bc_ident id;
                if (named[i] || !ident_of(&w[idx[i]], &id) ||
                    !names_item(title, &id))
                        continue;
                item_refused(&w[idx[i]], title);
                named[i] = true;
                marked++;
        }
        yajl_tree_free(root);
        return marked;
}

/* Sends w[idx[0..n)] as one absolute adjustment. A 422 refuses the whole
 * request for any bad item: the items the store names are marked and the
 * rest sent again; when it names none, the items are split in halves to
 * find them, within *budget extra requests. */
static enum ss_err send_items(struct adapter *a,
                              struct store_write *w,
                              size_t *idx,
                              size_t n,
                              unsigned *budget,
                              struct ss_error *err)
{
        struct buf body = BUF_INIT;
        struct http_response resp = HTTP_RESPONSE_INIT;
        yajl_val root = NULL;
        bool *named = NULL;
        char url[512];
        enum ss_err rc;

        adjustment_body(a, w, idx, n, &body);
        if (buf_str(&body) == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        snprintf(url, sizeof(url), "%s/inventory/adjustments/absolute",
                 a->base);
        rc = bc_call(a, "PUT", url, &body, &resp, &root, err);
        if (rc == SS_OK) {
                /* The API is asynchronous: 200 with a transaction id means
                 * the adjustment is accepted and queued, and a read right
                 * after may still show the old level, so nothing is read
                 * back here. */
                const char *tid = json_str(json_get(root, "transaction_id"));
                if (tid == NULL || tid[0] == '\0') {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "adjustment answer has no "
                                          "transaction_id");
                        goto out;
                }
                for (size_t i = 0; i < n; i++)
                        w[idx[i]].result = SS_OK;
                struct log_line l;
                log_begin(&l, LOG_DEBUG, "bc_adjusted");
                log_kvi(&l, "items", (long long)n);
                log_kv(&l, "transaction", tid);
                log_end(&l);
                goto out;
        }
        if (rc != SS_ERR_STORE_REJECTED || resp.status != 422)
                goto out;

        named = calloc(n, sizeof(*named));
        if (named == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        size_t marked = mark_named(w, idx, n, &resp, named);
        char title[160];
        problem_title(&resp, title, sizeof(title));
        struct log_line l;
        log_begin(&l, LOG_WARN, "bc_adjustment_refused");
        log_kvi(&l, "items", (long long)n);
        log_kvi(&l, "named", (long long)marked);
        log_kv(&l, "title", title);
        log_end(&l);
        if (marked == 0 && strcasestr(title, "location") != NULL) {
                /* A refused location sinks every item at it alike:
                 * splitting would only repeat the refusal. */
                goto out;
        }
        if (n == 1 && marked == 0) {
                item_refused(&w[idx[0]],
                             title[0] ? title : "refused by the store");
                rc = SS_OK;
                goto out;
        }
        if (*budget == 0) {
                /* err already holds the store's words. */
                goto out;
        }

        size_t m = 0;
        for (size_t i = 0; i < n; i++)
                if (!named[i])
                        idx[m++] = idx[i];
        rc = SS_OK;
        if (m == 0)
                goto out;
        if (marked > 0) {
                (*budget)--;
                rc = send_items(a, w, idx, m, budget, err);
                goto out;
        }
        (*budget)--;
        size_t half = m / 2;
        rc = send_items(a, w, idx, half, budget, err);
        if (rc == SS_OK && *budget > 0) {
                (*budget)--;
                rc = send_items(a, w, idx + half, m - half, budget, err);
        } else if (rc == SS_OK) {
                rc = ss_error_set(err, SS_ERR_STORE_REJECTED,
                                  "store refused adjustments without naming "
                                  "the items; gave up isolating them");
        }
out:
        free(named);
        yajl_tree_free(root);
        http_response_free(&resp);
        buf_free(&body);
        return rc;
}

/* Items the store would refuse anyway are answered here without a
 * request, so one of them cannot sink a batch. */
static bool item_sendable(struct store_write *w)
{
        struct bc_ident id;
        long long loc;
        if (!ident_of(w, &id)) {
                snprintf(w->reason, sizeof(w->reason),
                         "item id '%s' is not a BigCommerce variant or "
                         "product id",
                         w->item_id ? w->item_id : "");
        } else if (w->location_id != NULL && !parse_id(w->location_id, &loc)) {
                snprintf(w->reason, sizeof(w->reason),
                         "location id '%s' is not a BigCommerce location",
                         w->location_id);
        } else if (w->qty < 0 || w->qty > BC_MAX_LEVEL) {
                snprintf(w->reason, sizeof(w->reason),
                         "level %lld is outside 0..%lld", w->qty, BC_MAX_LEVEL);
        } else {
                return true;
        }
        w->result = SS_ERR_ITEM_REJECTED;
        return false;
}

/* Writes are absolute adjustments. A delta would go to
 * POST /inventory/adjustments/relative with the same items and a signed
 * quantity; it is not safe to send twice (no idempotency key), and it
 * fails on an item/location never set by an absolute adjustment, so the
 * interface offers only absolute writes. */
static enum ss_err bc_set_levels(struct adapter *a,
                                 struct store_write *w,
                                 size_t n,
                                 struct ss_error *err)
{
        size_t *idx = calloc(a->batch + 1, sizeof(*idx));
        unsigned budget = BC_SPLIT_BUDGET;
        enum ss_err rc = SS_OK;

        if (idx == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        /* One location per session, so the items arrive grouped by
         * location, as BigCommerce asks for bulk adjustments. */
        size_t i = 0;
        while (rc == SS_OK && i < n) {
                size_t m = 0;
                for (; i < n && m < a->batch; i++)
                        if (item_sendable(&w[i]))
                                idx[m++] = i;
                if (m > 0)
                        rc = send_items(a, w, idx, m, &budget, err);
        }
        free(idx);
        return rc;
}

const struct adapter_ops bigcommerce_adapter = {
        .platform = "bigcommerce",
        .api_version = "REST " BC_API_VERSION,
        .max_batch = BC_MAX_BATCH,
        .max_page = BC_MAX_PAGE,
        .compare_and_set = false,
        .open = bc_open,
        .close = bc_close,
        .list_levels = bc_list_levels,
        .set_levels = bc_set_levels,
};
