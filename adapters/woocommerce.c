/* WooCommerce adapter: stock levels of products and variations through the
 * REST API v3 (/wp-json/wc/v3), read page by page and written with the
 * batch endpoints as absolute stock_quantity values. */
#include "adapter.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../common/log.h"

#define WOO_API_PATH "/wp-json/wc/v3"
/* per_page is capped at 100 by the WordPress REST core (larger values get
 * 400 rest_invalid_param); the batch endpoints take at most 100 entries by
 * default (filter woocommerce_rest_batch_items_limit, 413 beyond it). */
#define WOO_MAX_PAGE  100
#define WOO_MAX_BATCH 100
/* Bytes of encoded SKUs in one lookup URL: hosts and proxies refuse URLs
 * much longer than a few KiB. */
#define WOO_MAX_SKU_QUERY 3000
/* WordPress trims every response to these fields; a store that ignores
 * _fields sends whole objects, which read the same. */
#define WOO_FIELDS                                                \
        "id,name,sku,type,parent_id,manage_stock,stock_quantity," \
        "variations,attributes"

struct adapter {
        struct http_client *http; /* borrowed */
        char *base;               /* owned: store URL + WOO_API_PATH */
        char *userpwd;            /* owned: "key:secret"; never logged */
        unsigned page_size;
        unsigned batch_size; /* lowered when the store answers 413 */
};

/* A variable product whose variations are read after the products. */
struct woo_parent {
        long long id;
        char *name; /* owned, may be NULL */
        char *sku;  /* owned, may be NULL */
};

/* The SKUs a caller asked for, sorted and unique, with what was found. */
struct woo_wanted {
        const char **v; /* owned array of borrowed strings */
        bool *found;    /* owned */
        size_t n;
        size_t nfound;
};

/* One listing: where levels go and what is still to read. */
struct woo_list {
        struct adapter *a;
        struct store_levels *out;
        struct woo_wanted *want;    /* NULL: every item */
        struct woo_parent *parents; /* owned */
        size_t nparents;
        size_t capparents;
        const struct woo_parent *cur; /* parent of the variations read */
        bool stop_when_found;         /* end a walk once want is complete */
};

typedef enum ss_err (*woo_item_fn)(struct woo_list *l,
                                   yajl_val item,
                                   struct ss_error *err);

/* ---- one exchange ------------------------------------------------------- */

static const char *woo_hint(long status, const char *code)
{
        if (status == 401 || status == 403)
                return " (check the consumer key and secret, and that the "
                       "key has read_write permission)";
        if (strcmp(code, "rest_no_route") == 0)
                return " (check the store URL; WordPress needs pretty "
                       "permalinks for /wp-json/)";
        return "";
}

/* Adds WooCommerce's {code, message} from an error answer to err. */
static void woo_explain(const struct http_response *resp, struct ss_error *err)
{
        if (err == NULL || resp->status == 0 || resp->body.len == 0)
                return;
        yajl_val v = json_parse(resp->body.data, resp->body.len, NULL);
        const char *code = json_str(json_get(v, "code"));
        const char *msg = json_str(json_get(v, "message"));
        if (code != NULL) {
                char prev[sizeof(err->msg)];
                snprintf(prev, sizeof(prev), "%s", err->msg);
                ss_error_set(err, err->code, "%s: %s: %s%s", prev, code,
                             msg ? msg : "", woo_hint(resp->status, code));
        }
        yajl_tree_free(v);
}

/* A 2xx answer must be JSON: hosts, caches and security plugins put HTML
 * pages in front of WordPress, sometimes with status 200. */
static enum ss_err
woo_parse(const struct http_response *resp, yajl_val *out, struct ss_error *err)
{
        char ctype[128];
        if (!http_header(resp, "Content-Type", ctype, sizeof(ctype)))
                snprintf(ctype, sizeof(ctype), "no content type");
        if (strcasestr(ctype, "json") == NULL)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "store answered HTTP %ld with %s, not "
                                    "JSON (a maintenance page or a proxy in "
                                    "front of WordPress?)",
                                    resp->status, ctype);

        struct ss_error perr;
        *out = json_parse(resp->body.data ? resp->body.data : "",
                          resp->body.len, &perr);
        if (*out == NULL)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "store answer is not JSON: %s", perr.msg);
        return SS_OK;
}

/* One call with the shared retry policy. On SS_OK, *out is the parsed
 * answer, freed with yajl_tree_free(); resp holds the raw answer either
 * way. body may be NULL. */
static enum ss_err woo_call(struct adapter *a,
                            const char *method,
                            const char *url,
                            const struct buf *body,
                            struct http_response *resp,
                            yajl_val *out,
                            struct ss_error *err)
{
        static const char *const get_headers[] = { "Accept: application/json",
                                                   NULL };
        static const char *const post_headers[] = {
                "Accept: application/json", "Content-Type: application/json",
                NULL
        };
        struct http_request req = {
                .method = method,
                .url = url,
                .body = body ? buf_str(body) : NULL,
                .body_len = body ? body->len : 0,
                .headers = body ? post_headers : get_headers,
                .userpwd = a->userpwd,
                /* Reads and absolute stock writes may be sent again. */
                .idempotent = true,
        };

        *out = NULL;
        enum ss_err rc = http_do(a->http, &req, NULL, NULL, resp, err);
        if (rc != SS_OK) {
                woo_explain(resp, err);
                return rc;
        }
        return woo_parse(resp, out, err);
}

/* ---- session ------------------------------------------------------------ */

static unsigned woo_clamp(unsigned want, unsigned max)
{
        return (want == 0 || want > max) ? max : want;
}

static enum ss_err
woo_base_url(const char *store_url, char **out, struct ss_error *err)
{
        size_t len = strlen(store_url);
        while (len > 0 && store_url[len - 1] == '/')
                len--;

        /* Take the site root, or the API root if that is what was given. */
        size_t api = strlen(WOO_API_PATH);
        bool has_api = len >= api &&
                       strncmp(store_url + len - api, WOO_API_PATH, api) == 0;
        struct buf b = BUF_INIT;
        buf_append(&b, store_url, len);
        if (!has_api)
                buf_puts(&b, WOO_API_PATH);
        if (buf_str(&b) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        *out = buf_steal(&b);
        return SS_OK;
}

static enum ss_err
woo_credentials(yajl_val cred, char **out, struct ss_error *err)
{
        const char *key = json_str(json_get(cred, "consumer_key"));
        const char *secret = json_str(json_get(cred, "consumer_secret"));
        if (key == NULL || key[0] == '\0' || secret == NULL ||
            secret[0] == '\0')
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "woocommerce credentials need "
                                    "consumer_key and consumer_secret");
        /* Basic auth splits user and password at the first colon. */
        if (strchr(key, ':') != NULL)
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "woocommerce consumer_key holds a colon");

        struct buf b = BUF_INIT;
        buf_printf(&b, "%s:%s", key, secret);
        if (buf_str(&b) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        *out = buf_steal(&b);
        return SS_OK;
}

static void woo_close(struct adapter *a)
{
        if (a == NULL)
                return;
        if (a->userpwd != NULL)
                explicit_bzero(a->userpwd, strlen(a->userpwd));
        free(a->userpwd);
        free(a->base);
        free(a);
}

static enum ss_err woo_open(const struct adapter_config *cfg,
                            struct http_client *http,
                            struct adapter **out,
                            struct ss_error *err)
{
        if (cfg->store_url == NULL || cfg->store_url[0] == '\0')
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "woocommerce store URL is empty");
        if (!http_url_allowed(cfg->store_url))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "woocommerce store URL must use https");

        struct adapter *a = calloc(1, sizeof(*a));
        if (a == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        a->http = http;
        /* WooCommerce keeps one stock level per item: there are no
         * locations, so cfg->location_id is not used. */
        a->page_size = woo_clamp(cfg->page_size, WOO_MAX_PAGE);
        a->batch_size = woo_clamp(cfg->batch_size, WOO_MAX_BATCH);

        enum ss_err rc = woo_base_url(cfg->store_url, &a->base, err);
        if (rc == SS_OK)
                rc = woo_credentials(cfg->credentials, &a->userpwd, err);
        if (rc != SS_OK) {
                woo_close(a);
                return rc;
        }
        *out = a;
        return SS_OK;
}

/* ---- wanted SKUs -------------------------------------------------------- */

static int woo_strcmp(const void *x, const void *y)
{
        return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static enum ss_err
woo_wanted_init(struct woo_wanted *w, const char *const *skus, size_t n)
{
        w->v = malloc((n ? n : 1) * sizeof(*w->v));
        w->found = calloc(n ? n : 1, sizeof(*w->found));
        w->n = w->nfound = 0;
        if (w->v == NULL || w->found == NULL)
                return SS_ERR_NOMEM;

        /* An empty SKU can never match: items without one are skipped. */
        for (size_t i = 0; i < n; i++)
                if (skus[i] != NULL && skus[i][0] != '\0')
                        w->v[w->n++] = skus[i];
        qsort(w->v, w->n, sizeof(*w->v), woo_strcmp);
        size_t u = 0;
        for (size_t i = 0; i < w->n; i++)
                if (u == 0 || strcmp(w->v[u - 1], w->v[i]) != 0)
                        w->v[u++] = w->v[i];
        w->n = u;
        return SS_OK;
}

static void woo_wanted_free(struct woo_wanted *w)
{
        free(w->v);
        free(w->found);
}

enum woo_take {
        WOO_NOT_WANTED,
        WOO_FIRST,
        WOO_AGAIN
};

/* Marks sku found, and says whether it was asked for and already found. */
static enum woo_take woo_wanted_take(struct woo_wanted *w, const char *sku)
{
        const char **hit = bsearch(&sku, w->v, w->n, sizeof(*w->v), woo_strcmp);
        if (hit == NULL)
                return WOO_NOT_WANTED;
        size_t i = (size_t)(hit - w->v);
        if (w->found[i])
                return WOO_AGAIN;
        w->found[i] = true;
        w->nfound++;
        return WOO_FIRST;
}

/* True when out already holds the item (a lookup can meet a variation
 * twice: in the product list, on stores whose sku filter finds
 * variations, and again under its parent). */
static bool woo_listed(const struct store_levels *out, const char *item_id)
{
        for (size_t i = 0; i < out->n; i++)
                if (out->v[i].item_id != NULL &&
                    strcmp(out->v[i].item_id, item_id) == 0)
                        return true;
        return false;
}

static bool woo_all_found(const struct woo_list *l)
{
        return l->stop_when_found && l->want != NULL &&
               l->want->nfound == l->want->n;
}

/* ---- reading ------------------------------------------------------------ */

/* stock_quantity: a whole number, or null/absent when the store has none. */
static enum ss_err woo_qty(yajl_val obj,
                           long long id,
                           long long *qty,
                           bool *known,
                           struct ss_error *err)
{
        yajl_val v = json_get(obj, "stock_quantity");
        *known = false;
        if (v == NULL || json_is_null(v))
                return SS_OK;
        if (!json_int_lenient(v, qty))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "item %lld has a stock_quantity that "
                                    "is not a whole number",
                                    id);
        *known = true;
        return SS_OK;
}

/* manage_stock: true or false; a variation may say "parent" (its parent
 * counts the stock). */
static enum ss_err woo_managed(yajl_val obj,
                               long long id,
                               bool *managed,
                               bool *by_parent,
                               struct ss_error *err)
{
        yajl_val v = json_get(obj, "manage_stock");
        const char *s = json_str(v);
        *by_parent = s != NULL && strcmp(s, "parent") == 0;
        if (*by_parent) {
                *managed = false;
                return SS_OK;
        }
        if (!json_bool(v, managed))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "item %lld has no manage_stock flag", id);
        return SS_OK;
}

/* Appends one item's level, unless it has no SKU or was not asked for. */
static enum ss_err woo_add(struct woo_list *l,
                           yajl_val obj,
                           long long id,
                           const char *sku,
                           const char *item_id,
                           const char *name,
                           struct ss_error *err)
{
        if (sku == NULL || sku[0] == '\0')
                return SS_OK;
        if (l->want != NULL) {
                enum woo_take t = woo_wanted_take(l->want, sku);
                if (t == WOO_NOT_WANTED ||
                    (t == WOO_AGAIN && woo_listed(l->out, item_id)))
                        return SS_OK;
        }

        bool managed, by_parent, known;
        long long qty = 0;
        enum ss_err rc = woo_managed(obj, id, &managed, &by_parent, err);
        if (rc == SS_OK)
                rc = woo_qty(obj, id, &qty, &known, err);
        if (rc != SS_OK)
                return rc;
        /* An item that does not count its own stock has no level here.
         * Unmanaged, its quantity is null anyway; counted at its parent
         * ("parent"), it shows the parent's quantity, which is listed under
         * the parent's SKU and must not be counted twice. */
        if (!managed)
                known = false;
        if (store_levels_add(l->out, sku, item_id, NULL, name, qty, known,
                             managed) != SS_OK)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return SS_OK;
}

static enum ss_err woo_keep_parent(struct woo_list *l,
                                   long long id,
                                   const char *name,
                                   const char *sku,
                                   struct ss_error *err)
{
        if (l->nparents == l->capparents) {
                size_t cap = l->capparents ? l->capparents * 2 : 32;
                struct woo_parent *v = realloc(l->parents, cap * sizeof(*v));
                if (v == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                l->parents = v;
                l->capparents = cap;
        }
        struct woo_parent p = {
                .id = id,
                .name = name ? strdup(name) : NULL,
                .sku = (sku && sku[0]) ? strdup(sku) : NULL,
        };
        if ((name && p.name == NULL) || (sku && sku[0] && p.sku == NULL)) {
                free(p.name);
                free(p.sku);
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        l->parents[l->nparents++] = p;
        return SS_OK;
}

/* "Parent - Opt1, Opt2": how WooCommerce titles a variation; the v3
 * variation answer carries no name of its own. Returns a new string (free
 * with free()) or NULL when out of memory. */
static char *woo_variation_name(const char *parent, yajl_val attrs)
{
        struct buf b = BUF_INIT;
        buf_puts(&b, parent ? parent : "");
        const char *sep = parent ? " - " : "";
        for (size_t i = 0; i < json_len(attrs); i++) {
                const char *opt =
                        json_str(json_get(json_at(attrs, i), "option"));
                if (opt == NULL || opt[0] == '\0')
                        continue;
                buf_puts(&b, sep);
                buf_puts(&b, opt);
                sep = ", ";
        }
        if (buf_str(&b) == NULL)
                return NULL;
        return buf_steal(&b);
}

/* One variation of parent_id; parent is NULL when the product list
 * itself returned the variation (stores whose sku filter finds them). */
static enum ss_err woo_take_variation(struct woo_list *l,
                                      yajl_val v,
                                      long long parent_id,
                                      const struct woo_parent *parent,
                                      struct ss_error *err)
{
        long long id;
        if (!json_int(json_get(v, "id"), &id))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "variation of product %lld without an "
                                    "id",
                                    parent_id);
        const char *sku = json_str(json_get(v, "sku"));
        /* A variation with no SKU of its own shows its parent's: it has
         * no SKU to match on, and writing it would touch the wrong item. */
        if (sku != NULL && parent != NULL && parent->sku != NULL &&
            strcmp(sku, parent->sku) == 0)
                return SS_OK;

        char item_id[64];
        snprintf(item_id, sizeof(item_id), "v:%lld:%lld", parent_id, id);
        const char *given = json_str(json_get(v, "name"));
        char *name = NULL;
        if (given == NULL) {
                name = woo_variation_name(parent ? parent->name : NULL,
                                          json_get(v, "attributes"));
                if (name == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        enum ss_err rc =
                woo_add(l, v, id, sku, item_id, given ? given : name, err);
        free(name);
        return rc;
}

static enum ss_err
woo_take_product(struct woo_list *l, yajl_val p, struct ss_error *err)
{
        long long id;
        if (!json_int(json_get(p, "id"), &id))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "product without an integer id");
        const char *type = json_str(json_get(p, "type"));
        const char *sku = json_str(json_get(p, "sku"));
        const char *name = json_str(json_get(p, "name"));

        if (type != NULL && strcmp(type, "variation") == 0) {
                long long parent_id;
                if (!json_int(json_get(p, "parent_id"), &parent_id) ||
                    parent_id <= 0)
                        return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                            "variation %lld without a "
                                            "parent_id",
                                            id);
                return woo_take_variation(l, p, parent_id, NULL, err);
        }

        /* A variable product is an item only when it counts stock for all
         * its variations (manage_stock on the parent); its variations are
         * read later, unless it has none. */
        bool variable = type != NULL && strcmp(type, "variable") == 0;
        yajl_val kids = json_get(p, "variations");
        if (variable && l->want == NULL &&
            (kids == NULL || json_len(kids) > 0)) {
                enum ss_err rc = woo_keep_parent(l, id, name, sku, err);
                if (rc != SS_OK)
                        return rc;
        }
        if (variable && !YAJL_IS_TRUE(json_get(p, "manage_stock")))
                return SS_OK;

        char item_id[32];
        snprintf(item_id, sizeof(item_id), "p:%lld", id);
        return woo_add(l, p, id, sku, item_id, name, err);
}

static enum ss_err
woo_take_child(struct woo_list *l, yajl_val v, struct ss_error *err)
{
        return woo_take_variation(l, v, l->cur->id, l->cur, err);
}

/* X-WP-TotalPages says how many pages there are; without it, a short page
 * is the last. */
static bool woo_last_page(const struct http_response *resp,
                          unsigned page,
                          size_t count,
                          unsigned per_page)
{
        char hdr[32];
        if (count == 0)
                return true;
        if (http_header(resp, "X-WP-TotalPages", hdr, sizeof(hdr))) {
                char *end = NULL;
                unsigned long total = strtoul(hdr, &end, 10);
                if (end != hdr && *end == '\0')
                        return page >= total;
        }
        return count < per_page;
}

/* Reads every page of a collection (path relative to the API root, may
 * hold a query) and hands each element to fn. Ordered by id so that items
 * created during the walk land on later pages instead of shifting earlier
 * ones. */
static enum ss_err woo_walk(struct woo_list *l,
                            const char *path,
                            woo_item_fn fn,
                            struct ss_error *err)
{
        struct adapter *a = l->a;
        struct http_response resp = HTTP_RESPONSE_INIT;
        struct buf url = BUF_INIT;
        yajl_val page = NULL;
        enum ss_err rc = SS_OK;

        for (unsigned n = 1; !woo_all_found(l); n++) {
                buf_reset(&url);
                buf_printf(&url,
                           "%s%s%cper_page=%u&page=%u&orderby=id&order=asc"
                           "&_fields=" WOO_FIELDS,
                           a->base, path, strchr(path, '?') ? '&' : '?',
                           a->page_size, n);
                if (buf_str(&url) == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        goto out;
                }
                rc = woo_call(a, "GET", buf_str(&url), NULL, &resp, &page, err);
                if (rc != SS_OK)
                        goto out;
                if (!YAJL_IS_ARRAY(page)) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "store answered a list request "
                                          "with no list");
                        goto out;
                }
                size_t count = json_len(page);
                for (size_t i = 0; i < count && rc == SS_OK; i++)
                        rc = fn(l, json_at(page, i), err);
                if (rc != SS_OK)
                        goto out;
                yajl_tree_free(page);
                page = NULL;
                if (woo_last_page(&resp, n, count, a->page_size))
                        break;
        }
out:
        yajl_tree_free(page);
        buf_free(&url);
        http_response_free(&resp);
        return rc;
}

/* Reads the variations of every parent kept so far. */
static enum ss_err woo_walk_variations(struct woo_list *l, struct ss_error *err)
{
        char path[64];
        for (size_t i = 0; i < l->nparents && !woo_all_found(l); i++) {
                l->cur = &l->parents[i];
                snprintf(path, sizeof(path), "/products/%lld/variations",
                         l->cur->id);
                enum ss_err rc = woo_walk(l, path, woo_take_child, err);
                if (rc != SS_OK)
                        return rc;
        }
        l->cur = NULL;
        return SS_OK;
}

/* Looks the wanted SKUs up with products?sku=A,B,... The store splits the
 * filter on commas (and also tries the whole string), so a SKU holding a
 * comma is asked for alone. Matching is case-insensitive under MySQL's
 * usual collation; woo_add keeps only exact matches. */
static enum ss_err woo_lookup_products(struct woo_list *l, struct ss_error *err)
{
        const struct woo_wanted *w = l->want;
        struct buf path = BUF_INIT;
        enum ss_err rc = SS_OK;
        size_t i = 0;

        while (i < w->n && rc == SS_OK) {
                buf_reset(&path);
                buf_puts(&path, "/products?sku=");
                size_t start = path.len;
                unsigned count = 0;
                for (; i < w->n && count < l->a->page_size; i++) {
                        bool comma = strchr(w->v[i], ',') != NULL;
                        if (count > 0 &&
                            (comma || path.len - start > WOO_MAX_SKU_QUERY))
                                break;
                        if (count > 0)
                                buf_putc(&path, ',');
                        buf_urlencode(&path, w->v[i]);
                        count++;
                        if (comma) {
                                i++;
                                break;
                        }
                }
                if (buf_str(&path) == NULL)
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                else
                        rc = woo_walk(l, buf_str(&path), woo_take_product, err);
        }
        buf_free(&path);
        return rc;
}

/* From products?type=variable: keeps each parent that has variations. */
static enum ss_err
woo_take_parent(struct woo_list *l, yajl_val p, struct ss_error *err)
{
        long long id;
        if (!json_int(json_get(p, "id"), &id))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "product without an integer id");
        yajl_val kids = json_get(p, "variations");
        if (kids != NULL && json_len(kids) == 0)
                return SS_OK;
        return woo_keep_parent(l, id, json_str(json_get(p, "name")),
                               json_str(json_get(p, "sku")), err);
}

/* Variations the product list did not find (wc/v3 searches products only,
 * on most versions): walk the variable products and their variations until
 * every wanted SKU is found. */
static enum ss_err woo_lookup_variations(struct woo_list *l,
                                         struct ss_error *err)
{
        enum ss_err rc =
                woo_walk(l, "/products?type=variable", woo_take_parent, err);
        if (rc != SS_OK)
                return rc;
        l->stop_when_found = true;
        return woo_walk_variations(l, err);
}

static void woo_list_free(struct woo_list *l)
{
        for (size_t i = 0; i < l->nparents; i++) {
                free(l->parents[i].name);
                free(l->parents[i].sku);
        }
        free(l->parents);
}

static enum ss_err woo_list_levels(struct adapter *a,
                                   const char *const *skus,
                                   size_t nskus,
                                   struct store_levels *out,
                                   struct ss_error *err)
{
        struct woo_wanted want = { NULL, NULL, 0, 0 };
        struct woo_list l = { .a = a, .out = out };
        enum ss_err rc;

        if (skus == NULL) {
                rc = woo_walk(&l, "/products", woo_take_product, err);
                if (rc == SS_OK)
                        rc = woo_walk_variations(&l, err);
                goto out;
        }

        if (woo_wanted_init(&want, skus, nskus) != SS_OK) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }
        l.want = &want;
        rc = woo_lookup_products(&l, err);
        if (rc == SS_OK && want.nfound < want.n)
                rc = woo_lookup_variations(&l, err);
out:
        log_msg(LOG_DEBUG, "woo_list_done", "levels=%zu parents=%zu rc=%s",
                out->n, l.nparents, ss_err_name(rc));
        woo_list_free(&l);
        woo_wanted_free(&want);
        return rc;
}

/* ---- writing ------------------------------------------------------------ */

/* Where one write goes: parent 0 for a product, else the variation's
 * parent product (one parent per variations batch call). */
struct woo_target {
        size_t idx; /* into the caller's writes */
        long long parent;
        long long id;
};

static int woo_target_cmp(const void *x, const void *y)
{
        const struct woo_target *a = x;
        const struct woo_target *b = y;
        if (a->parent != b->parent)
                return a->parent < b->parent ? -1 : 1;
        return (a->idx > b->idx) - (a->idx < b->idx);
}

/* A positive decimal id running up to the byte stop; *next is after it. */
static bool
woo_parse_id(const char *s, char stop, const char **next, long long *out)
{
        long long v = 0;
        const char *p = s;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (LLONG_MAX - 9) / 10)
                        return false;
                v = v * 10 + (*p - '0');
        }
        if (p == s || *p != stop || v <= 0)
                return false;
        *next = p;
        *out = v;
        return true;
}

/* Reads "p:<id>" or "v:<parent>:<id>", the item ids woo_add hands out. */
static bool woo_parse_item_id(const char *s, long long *parent, long long *id)
{
        const char *p;
        if (s == NULL)
                return false;
        if (strncmp(s, "p:", 2) == 0) {
                *parent = 0;
                return woo_parse_id(s + 2, '\0', &p, id);
        }
        if (strncmp(s, "v:", 2) == 0)
                return woo_parse_id(s + 2, ':', &p, parent) &&
                       woo_parse_id(p + 1, '\0', &p, id);
        return false;
}

static void
woo_verdict(struct store_write *w, enum ss_err code, const char *fmt, ...)
        SS_PRINTF(3, 4);

static void
woo_verdict(struct store_write *w, enum ss_err code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
        va_end(ap);
        w->result = code;
}

/* The store's {code, message} of an error answer or of an item's error entry.
 */
static void woo_store_error(yajl_val e, const char **code, const char **msg)
{
        *code = json_str(json_get(e, "code"));
        *msg = json_str(json_get(e, "message"));
        if (*code == NULL)
                *code = "unknown_error";
        if (*msg == NULL)
                *msg = "";
}

/* Judges one element of the batch answer against what was written. */
static void woo_judge(yajl_val e, long long id, struct store_write *w)
{
        yajl_val error = json_get(e, "error");
        if (error != NULL) {
                const char *code, *msg;
                woo_store_error(error, &code, &msg);
                woo_verdict(w,
                            strstr(code, "invalid_id") ? SS_ERR_ITEM_UNKNOWN
                                                       : SS_ERR_ITEM_REJECTED,
                            "%s: %s", code, msg);
                return;
        }

        bool managed, by_parent, known;
        long long qty = 0;
        struct ss_error perr;
        if (woo_managed(e, id, &managed, &by_parent, &perr) != SS_OK ||
            woo_qty(e, id, &qty, &known, &perr) != SS_OK) {
                woo_verdict(w, SS_ERR_ITEM_REJECTED, "%s", perr.msg);
                return;
        }
        /* The store drops stock_quantity on items that do not manage
         * stock (and clears it), answering 200 all the same. */
        if (by_parent)
                woo_verdict(w, SS_ERR_NOT_TRACKED,
                            "stock is counted at the parent product; "
                            "quantity not applied");
        else if (!managed)
                woo_verdict(w, SS_ERR_NOT_TRACKED,
                            "store does not manage stock for this item; "
                            "quantity not applied");
        else if (!known || qty != w->qty)
                woo_verdict(w, SS_ERR_ITEM_REJECTED,
                            "store kept another quantity than %lld", w->qty);
        else
                woo_verdict(w, SS_OK, "%s", "");
}

/* The answer element for target i: the store mirrors the request order,
 * but match by id rather than trust it. */
static yajl_val
woo_answer_for(yajl_val list, bool *used, size_t i, long long id)
{
        long long got;
        yajl_val e = json_at(list, i);
        if (e != NULL && !used[i] && json_int(json_get(e, "id"), &got) &&
            got == id) {
                used[i] = true;
                return e;
        }
        for (size_t k = 0; k < json_len(list); k++) {
                e = json_at(list, k);
                if (!used[k] && json_int(json_get(e, "id"), &got) &&
                    got == id) {
                        used[k] = true;
                        return e;
                }
        }
        return NULL;
}

static enum ss_err woo_batch_answer(yajl_val ans,
                                    const struct woo_target *t,
                                    size_t n,
                                    struct store_write *w,
                                    struct ss_error *err)
{
        yajl_val list = json_get(ans, "update");
        if (list == NULL || !YAJL_IS_ARRAY(list))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "batch answer has no update list");
        bool *used = calloc(json_len(list) + 1, sizeof(*used));
        if (used == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        size_t missing = 0;
        for (size_t i = 0; i < n; i++) {
                yajl_val e = woo_answer_for(list, used, i, t[i].id);
                if (e == NULL)
                        missing++;
                else
                        woo_judge(e, t[i].id, &w[t[i].idx]);
        }
        free(used);
        /* Items without a verdict keep SS_ERR_NOT_ATTEMPTED; the writes
         * are absolute, so sending them again is safe. */
        if (missing > 0)
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "batch answer lacks %zu of %zu items",
                                    missing, n);
        return SS_OK;
}

/* A batch call the store refused as a whole. 413: more entries than the
 * store's batch limit (the caller halves the batch). An invalid parent id
 * fails the items of that parent; anything else stops the request. */
static enum ss_err woo_batch_refused(const struct http_response *resp,
                                     enum ss_err rc,
                                     const struct woo_target *t,
                                     size_t n,
                                     struct store_write *w,
                                     bool *too_large)
{
        if (resp->status == 413 && n > 1) {
                *too_large = true;
                return rc;
        }
        if (t[0].parent == 0 || (resp->status != 400 && resp->status != 404))
                return rc;

        yajl_val v = json_parse(resp->body.data ? resp->body.data : "",
                                resp->body.len, NULL);
        const char *code, *msg;
        woo_store_error(v, &code, &msg);
        if (strstr(code, "invalid_id") != NULL) {
                for (size_t i = 0; i < n; i++)
                        woo_verdict(&w[t[i].idx], SS_ERR_ITEM_UNKNOWN,
                                    "parent product %lld: %s: %s", t[0].parent,
                                    code, msg);
                rc = SS_OK;
        }
        yajl_tree_free(v);
        return rc;
}

/* One batch call for t[0..n), all of the same parent. */
static enum ss_err woo_send_batch(struct adapter *a,
                                  const struct woo_target *t,
                                  size_t n,
                                  struct store_write *w,
                                  bool *too_large,
                                  struct ss_error *err)
{
        struct buf url = BUF_INIT;
        struct buf body = BUF_INIT;
        struct http_response resp = HTTP_RESPONSE_INIT;
        yajl_val ans = NULL;
        enum ss_err rc;

        if (t[0].parent == 0)
                buf_printf(&url, "%s/products/batch", a->base);
        else
                buf_printf(&url, "%s/products/%lld/variations/batch", a->base,
                           t[0].parent);
        /* Only stock_quantity: manage_stock is the merchant's setting, and
         * echoing other fields (a SKU) can fail on stores that check it. */
        buf_puts(&body, "{\"update\":[");
        for (size_t i = 0; i < n; i++)
                buf_printf(&body, "%s{\"id\":%lld,\"stock_quantity\":%lld}",
                           i ? "," : "", t[i].id, w[t[i].idx].qty);
        buf_puts(&body, "]}");
        if (buf_str(&url) == NULL || buf_str(&body) == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        rc = woo_call(a, "POST", buf_str(&url), &body, &resp, &ans, err);
        if (rc != SS_OK)
                rc = woo_batch_refused(&resp, rc, t, n, w, too_large);
        else
                rc = woo_batch_answer(ans, t, n, w, err);
        log_msg(LOG_DEBUG, "woo_batch", "parent=%lld items=%zu status=%ld",
                t[0].parent, n, resp.status);
out:
        yajl_tree_free(ans);
        http_response_free(&resp);
        buf_free(&body);
        buf_free(&url);
        return rc;
}

/* Sends t[0..n), sorted by parent, in runs of one parent and at most the
 * batch size each. */
static enum ss_err woo_send_all(struct adapter *a,
                                const struct woo_target *t,
                                size_t n,
                                struct store_write *w,
                                struct ss_error *err)
{
        size_t at = 0;
        while (at < n) {
                size_t run = 1;
                while (at + run < n && run < a->batch_size &&
                       t[at + run].parent == t[at].parent)
                        run++;

                bool too_large = false;
                enum ss_err rc =
                        woo_send_batch(a, &t[at], run, w, &too_large, err);
                if (too_large) {
                        /* The store's limit is lower than ours: keep the
                         * smaller size for this session. */
                        a->batch_size = (unsigned)(run / 2);
                        log_msg(LOG_WARN, "woo_batch_shrunk", "batch=%u",
                                a->batch_size);
                        continue;
                }
                if (rc != SS_OK)
                        return rc;
                at += run;
        }
        return SS_OK;
}

static enum ss_err woo_set_levels(struct adapter *a,
                                  struct store_write *w,
                                  size_t n,
                                  struct ss_error *err)
{
        struct woo_target *t = malloc((n ? n : 1) * sizeof(*t));
        if (t == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        size_t nt = 0;
        for (size_t i = 0; i < n; i++) {
                long long parent, id;
                if (!woo_parse_item_id(w[i].item_id, &parent, &id)) {
                        woo_verdict(&w[i], SS_ERR_ITEM_UNKNOWN,
                                    "not a woocommerce item id");
                        continue;
                }
                t[nt++] = (struct woo_target){ i, parent, id };
        }
        qsort(t, nt, sizeof(*t), woo_target_cmp);

        enum ss_err rc = woo_send_all(a, t, nt, w, err);
        free(t);
        return rc;
}

const struct adapter_ops woocommerce_adapter = {
        .platform = "woocommerce",
        .api_version = "wc/v3",
        .max_batch = WOO_MAX_BATCH,
        .max_page = WOO_MAX_PAGE,
        .compare_and_set = false,
        .open = woo_open,
        .close = woo_close,
        .list_levels = woo_list_levels,
        .set_levels = woo_set_levels,
};
