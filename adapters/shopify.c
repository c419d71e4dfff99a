/* Shopify adapter: reads "available" levels at one location and writes them
 * back with inventorySetQuantities through the GraphQL Admin API, with
 * compare-and-set (changeFromQuantity) and an idempotency key per batch. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../common/log.h"
#include "../common/uuid.h"
#include "adapter.h"

/* 2026-04 made changeFromQuantity and @idempotent mandatory on
 * inventorySetQuantities. 2026-10 is the newest stable version (December
 * 2026); our notes describe the inventory API up to 2026-04 and we rely on
 * 2026-10 keeping both rules. A version bump is a code change: re-read the
 * changelog first. */
#define SHOPIFY_API_VERSION "2026-10"

/* Any GraphQL input array and any connection's `first` stop at 250. */
#define SHOPIFY_MAX_BATCH 250
#define SHOPIFY_MAX_PAGE  250

/* A single query may not request more than 1000 cost points. Each node of
 * our list query costs about 4 (item, variant, level, quantities), a
 * connection 2 more, so a page is capped to keep under the ceiling. */
#define SHOPIFY_MAX_QUERY_COST 1000
#define SHOPIFY_NODE_COST      4

/* SKUs per search query. The search string grows with each; 50 keeps it
 * short and the answer one page in the usual case. */
#define SHOPIFY_SKUS_PER_QUERY 50

#define LOCATION_GID "gid://shopify/Location/"

/* Which kind of call a cost belongs to, for pacing. */
enum gql_kind {
        GQL_LIST,
        GQL_SET,
        GQL_OTHER
};

/* The cost bucket as the last answer described it, and what our calls
 * cost as the store counts them: a list page per node asked (`first`),
 * a mutation as a whole. */
struct bucket {
        bool known;
        double available;
        double maximum;
        double rate;        /* points per second */
        struct timespec at; /* CLOCK_MONOTONIC when read */
        double node_cost;
        double set_cost;
};

struct adapter {
        struct http_client *http; /* borrowed */
        char *endpoint;           /* owned: .../admin/api/<v>/graphql.json */
        char *token_header;       /* owned: secret, wiped on close */
        char *location;           /* owned: Location GID, NULL until known */
        const char *request_id;   /* borrowed from the config */
        unsigned page;
        unsigned batch;
        struct bucket bucket;
};

/* ---- GraphQL documents ---- */

static const char LOCATION_QUERY[] =
        "query PrimaryLocation { location { id } }";

static const char LEVELS_QUERY[] =
        "query StockLevels($first: Int!, $after: String, $query: String, "
        "$location: ID!) { inventoryItems(first: $first, after: $after, "
        "query: $query) { nodes { id sku tracked variant { displayName } "
        "inventoryLevel(locationId: $location) { quantities(names: "
        "[\"available\"]) { name quantity } } } pageInfo { hasNextPage "
        "endCursor } } }";

static const char SET_MUTATION[] =
        "mutation SetStock($input: InventorySetQuantitiesInput!, "
        "$key: String!) { inventorySetQuantities(input: $input) "
        "@idempotent(key: $key) { inventoryAdjustmentGroup { reason } "
        "userErrors { code field message } } }";

/* ---- one GraphQL exchange ---- */

/* The parsed body of the last attempt, handed from the check hook to the
 * caller so each response is parsed once. */
struct gql_reply {
        yajl_val root; /* owned */
};

static bool has_error_code(yajl_val root, const char *code)
{
        yajl_val errors = json_get(root, "errors");

        for (size_t i = 0; i < json_len(errors); i++) {
                const char *c = json_str(json_path(json_at(errors, i),
                                                   "extensions", "code", NULL));
                if (c != NULL && strcmp(c, code) == 0)
                        return true;
        }
        return false;
}

/* Shopify's cost math: the bucket must hold the requested cost, and it
 * refills at restoreRate points per second. 0 when the figures are
 * missing, which leaves the wait to the client's backoff. */
static unsigned throttle_wait_ms(yajl_val root)
{
        yajl_val cost = json_path(root, "extensions", "cost", NULL);
        yajl_val status = json_get(cost, "throttleStatus");
        double requested, available, rate;

        if (!json_double(json_get(cost, "requestedQueryCost"), &requested) ||
            !json_double(json_get(status, "currentlyAvailable"), &available) ||
            !json_double(json_get(status, "restoreRate"), &rate) || rate <= 0)
                return 0;
        double missing = requested - available;
        if (missing < 1)
                missing = 1;
        double ms = ceil(missing / rate * 1000.0);
        return ms > (double)(UINT_MAX / 2) ? UINT_MAX / 2 : (unsigned)ms;
}

static bool is_json_type(const struct http_response *resp)
{
        char ct[128];

        if (!http_header(resp, "Content-Type", ct, sizeof(ct)))
                return false;
        size_t n = strlen("application/json");
        return strncasecmp(ct, "application/json", n) == 0 &&
               (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static enum ss_err gql_check(const struct http_response *resp,
                             void *arg,
                             unsigned *wait_ms,
                             struct ss_error *err)
{
        struct gql_reply *reply = arg;
        struct ss_error perr = { 0 };

        yajl_tree_free(reply->root);
        reply->root = NULL;

        if (!is_json_type(resp))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "Shopify answered HTTP %ld without a "
                                    "JSON content type",
                                    resp->status);
        reply->root = json_parse(resp->body.data ? resp->body.data : "",
                                 resp->body.len, &perr);
        if (reply->root == NULL) {
                if (perr.code == SS_ERR_NOMEM)
                        return ss_error_set(err, SS_ERR_NOMEM, "%s", perr.msg);
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "Shopify response is not JSON (%s)",
                                    perr.msg);
        }
        if (!YAJL_IS_OBJECT(reply->root))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "Shopify response is not a JSON object");
        if (has_error_code(reply->root, "THROTTLED")) {
                *wait_ms = throttle_wait_ms(reply->root);
                return ss_error_set(err, SS_ERR_THROTTLED,
                                    "Shopify query cost throttle");
        }
        return SS_OK;
}

/* Maps top-level GraphQL errors (the whole operation failed) to a code. */
static enum ss_err gql_errors(yajl_val root, struct ss_error *err)
{
        yajl_val first = json_at(json_get(root, "errors"), 0);
        const char *msg = json_str(json_get(first, "message"));
        const char *code =
                json_str(json_path(first, "extensions", "code", NULL));

        if (msg == NULL)
                msg = "no message";
        if (code != NULL && strcmp(code, "ACCESS_DENIED") == 0)
                return ss_error_set(err, SS_ERR_AUTH,
                                    "Shopify denied access (check the "
                                    "app's inventory scopes): %.150s",
                                    msg);
        return ss_error_set(err, SS_ERR_STORE_REJECTED,
                            "Shopify refused the query (%s): %.150s",
                            code ? code : "error", msg);
}

static double seconds_since(const struct timespec *t)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - t->tv_sec) +
               (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static double
expected_cost(const struct bucket *b, enum gql_kind kind, unsigned nodes)
{
        if (kind == GQL_LIST)
                return 2.0 + nodes * b->node_cost;
        return kind == GQL_SET ? b->set_cost : 0;
}

/* Waits until the bucket should hold what the call will cost, so a page
 * loop runs at the restore rate instead of being refused every other
 * call. A wrong guess costs one THROTTLED answer, no more. */
static void pace(struct adapter *a, enum gql_kind kind, unsigned nodes)
{
        const struct bucket *b = &a->bucket;
        double cost = expected_cost(b, kind, nodes);

        if (!b->known || b->rate <= 0 || cost <= 0)
                return;
        double avail = b->available + seconds_since(&b->at) * b->rate;
        if (avail > b->maximum)
                avail = b->maximum;
        if (avail >= cost)
                return;
        double ms = ceil((cost - avail) / b->rate * 1000.0);
        unsigned cap = http_client_policy(a->http)->max_wait_ms;
        unsigned wait = ms > (double)cap ? cap : (unsigned)ms;
        log_msg(LOG_DEBUG, "shopify_pace", "wait_ms=%u", wait);
        http_client_sleep(a->http, wait);
}

static void
note_cost(struct adapter *a, enum gql_kind kind, unsigned nodes, yajl_val root)
{
        yajl_val cost = json_path(root, "extensions", "cost", NULL);
        yajl_val status = json_get(cost, "throttleStatus");
        struct bucket *b = &a->bucket;
        double requested;

        b->known = json_double(json_get(status, "currentlyAvailable"),
                               &b->available) &&
                   json_double(json_get(status, "maximumAvailable"),
                               &b->maximum) &&
                   json_double(json_get(status, "restoreRate"), &b->rate);
        clock_gettime(CLOCK_MONOTONIC, &b->at);
        if (!json_double(json_get(cost, "requestedQueryCost"), &requested))
                return;
        if (kind == GQL_LIST && nodes > 0 && requested > 2)
                b->node_cost = (requested - 2) / nodes;
        else if (kind == GQL_SET)
                b->set_cost = requested;
}

/* Posts {"query", "variables"} and returns the parsed body in *root (free
 * with yajl_tree_free) once it holds `data` and no top-level error. */
static enum ss_err gql_post(struct adapter *a,
                            enum gql_kind kind,
                            unsigned nodes,
                            const char *query,
                            const char *variables,
                            yajl_val *root,
                            struct ss_error *err)
{
        struct buf body = BUF_INIT;
        struct http_response resp = HTTP_RESPONSE_INIT;
        struct gql_reply reply = { NULL };
        enum ss_err rc;

        buf_puts(&body, "{\"query\":");
        buf_json_str(&body, query);
        buf_printf(&body, ",\"variables\":%s}", variables);
        if (buf_str(&body) == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto out;
        }

        const char *headers[] = {
                "Content-Type: application/json",
                "Accept: application/json",
                a->token_header,
                NULL,
        };
        /* Reads are safe to repeat, and so is the write: it is absolute,
         * compare-and-set, and carries an idempotency key. */
        struct http_request req = {
                .method = "POST",
                .url = a->endpoint,
                .body = body.data,
                .body_len = body.len,
                .headers = headers,
                .idempotent = true,
        };
        pace(a, kind, nodes);
        rc = http_do(a->http, &req, gql_check, &reply, &resp, err);
        if (rc != SS_OK)
                goto out;
        note_cost(a, kind, nodes, reply.root);

        if (json_len(json_get(reply.root, "errors")) > 0) {
                rc = gql_errors(reply.root, err);
                goto out;
        }
        if (!YAJL_IS_OBJECT(json_get(reply.root, "data"))) {
                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                  "Shopify response has no data object");
                goto out;
        }
        *root = reply.root;
        reply.root = NULL;
out:
        yajl_tree_free(reply.root);
        http_response_free(&resp);
        buf_free(&body);
        return rc;
}

/* ---- session ---- */

static void shopify_close(struct adapter *a)
{
        if (a == NULL)
                return;
        if (a->token_header != NULL) {
                explicit_bzero(a->token_header, strlen(a->token_header));
                free(a->token_header);
        }
        free(a->endpoint);
        free(a->location);
        free(a);
}

/* A location GID, or a bare numeric id turned into one. */
static enum ss_err
location_gid(const char *id, char **out, struct ss_error *err)
{
        size_t n = strlen(LOCATION_GID);
        const char *digits = id;
        struct buf b = BUF_INIT;

        if (strncmp(id, LOCATION_GID, n) == 0)
                digits = id + n;
        if (*digits == '\0' || strspn(digits, "0123456789") != strlen(digits))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "Shopify location must be a Location "
                                    "GID (gid://shopify/Location/123)");
        buf_printf(&b, "%s%s", LOCATION_GID, digits);
        *out = buf_steal(&b);
        if (*out == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return SS_OK;
}

static unsigned clamp_size(unsigned want, unsigned max)
{
        return want == 0 || want > max ? max : want;
}

static enum ss_err shopify_open(const struct adapter_config *cfg,
                                struct http_client *http,
                                struct adapter **out,
                                struct ss_error *err)
{
        const char *token =
                json_str(json_get(cfg->credentials, "access_token"));
        struct adapter *a = NULL;
        struct buf b = BUF_INIT;
        enum ss_err rc;

        if (token == NULL || token[0] == '\0' || strpbrk(token, "\r\n"))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "Shopify credentials need a non-empty "
                                    "\"access_token\" string");
        if (cfg->store_url == NULL || !http_url_allowed(cfg->store_url))
                return ss_error_set(err, SS_ERR_CONFIG,
                                    "Shopify store URL must be https "
                                    "(http only to loopback)");

        a = calloc(1, sizeof(*a));
        if (a == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        a->http = http;
        a->request_id = cfg->request_id;

        size_t len = strlen(cfg->store_url);
        while (len > 0 && cfg->store_url[len - 1] == '/')
                len--;
        buf_printf(&b, "%.*s/admin/api/%s/graphql.json", (int)len,
                   cfg->store_url, SHOPIFY_API_VERSION);
        a->endpoint = buf_steal(&b);
        buf_printf(&b, "X-Shopify-Access-Token: %s", token);
        a->token_header = buf_steal(&b);
        if (a->endpoint == NULL || a->token_header == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto fail;
        }
        /* No location (or an empty one): the shop's primary, asked later. */
        if (cfg->location_id != NULL && cfg->location_id[0] != '\0') {
                rc = location_gid(cfg->location_id, &a->location, err);
                if (rc != SS_OK)
                        goto fail;
        }

        unsigned cost_cap = (SHOPIFY_MAX_QUERY_COST - 2) / SHOPIFY_NODE_COST;
        a->page = clamp_size(cfg->page_size, SHOPIFY_MAX_PAGE);
        if (a->page > cost_cap)
                a->page = cost_cap;
        a->batch = clamp_size(cfg->batch_size, SHOPIFY_MAX_BATCH);
        /* First guesses until the store tells. */
        a->bucket.node_cost = SHOPIFY_NODE_COST;
        a->bucket.set_cost = 10.0;
        *out = a;
        return SS_OK;
fail:
        shopify_close(a);
        return rc;
}

/* The configured location, or the shop's primary one, asked once. */
static enum ss_err ensure_location(struct adapter *a, struct ss_error *err)
{
        yajl_val root = NULL;

        if (a->location != NULL)
                return SS_OK;
        enum ss_err rc =
                gql_post(a, GQL_OTHER, 0, LOCATION_QUERY, "{}", &root, err);
        if (rc != SS_OK)
                return rc;
        const char *id =
                json_str(json_path(root, "data", "location", "id", NULL));
        if (id == NULL) {
                rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                  "Shopify named no primary location");
        } else {
                a->location = strdup(id);
                if (a->location == NULL)
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        }
        yajl_tree_free(root);
        return rc;
}

/* ---- list_levels ---- */

static int cmp_str(const void *x, const void *y)
{
        return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The "available" quantity of a level node; false when the item is not
 * stocked at the location or the quantity is missing or null. */
static bool available_qty(yajl_val level, long long *qty)
{
        yajl_val list = json_get(level, "quantities");

        for (size_t i = 0; i < json_len(list); i++) {
                yajl_val q = json_at(list, i);
                const char *name = json_str(json_get(q, "name"));
                if (name != NULL && strcmp(name, "available") == 0)
                        return json_int_lenient(json_get(q, "quantity"), qty);
        }
        return false;
}

/* Appends one inventory item node; skus (sorted) filters when not NULL. */
static enum ss_err add_node(struct adapter *a,
                            yajl_val node,
                            const char *const *skus,
                            size_t nskus,
                            struct store_levels *out,
                            struct ss_error *err)
{
        const char *sku = json_str(json_get(node, "sku"));
        const char *id = json_str(json_get(node, "id"));
        bool tracked;
        long long qty = 0;

        if (sku == NULL || sku[0] == '\0')
                return SS_OK;
        /* Shopify's sku search is a search, not an equality test: keep
         * only byte-exact matches. */
        if (skus != NULL &&
            bsearch(&sku, skus, nskus, sizeof(*skus), cmp_str) == NULL)
                return SS_OK;
        if (id == NULL || !json_bool(json_get(node, "tracked"), &tracked))
                return ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                    "Shopify inventory item lacks id or "
                                    "tracked");

        bool known = available_qty(json_get(node, "inventoryLevel"), &qty);
        const char *name =
                json_str(json_path(node, "variant", "displayName", NULL));
        if (store_levels_add(out, sku, id, a->location, name, qty, known,
                             tracked) != SS_OK)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        return SS_OK;
}

/* Reads every page of inventoryItems for one search (NULL: all items). */
static enum ss_err list_query(struct adapter *a,
                              const char *search,
                              const char *const *skus,
                              size_t nskus,
                              struct store_levels *out,
                              struct ss_error *err)
{
        /* The bucket is charged for `first`, not for what comes back: a
         * search for n SKUs asks for about n nodes, more pages follow if
         * the search matched more. */
        unsigned first =
                skus != NULL && nskus < a->page ? (unsigned)nskus : a->page;
        char *cursor = NULL;
        yajl_val root = NULL;
        struct buf vars = BUF_INIT;
        enum ss_err rc = SS_OK;

        for (unsigned pageno = 1;; pageno++) {
                buf_reset(&vars);
                buf_printf(&vars, "{\"first\":%u,\"location\":", first);
                buf_json_str(&vars, a->location);
                buf_puts(&vars, ",\"after\":");
                if (cursor != NULL)
                        buf_json_str(&vars, cursor);
                else
                        buf_puts(&vars, "null");
                buf_puts(&vars, ",\"query\":");
                if (search != NULL)
                        buf_json_str(&vars, search);
                else
                        buf_puts(&vars, "null");
                buf_putc(&vars, '}');
                if (buf_str(&vars) == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        goto out;
                }

                yajl_tree_free(root);
                root = NULL;
                rc = gql_post(a, GQL_LIST, first, LEVELS_QUERY, vars.data,
                              &root, err);
                if (rc != SS_OK)
                        goto out;

                yajl_val conn = json_path(root, "data", "inventoryItems", NULL);
                yajl_val nodes = json_get(conn, "nodes");
                bool more;
                if (!YAJL_IS_ARRAY(nodes) ||
                    !json_bool(json_path(conn, "pageInfo", "hasNextPage", NULL),
                               &more)) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "Shopify inventoryItems answer "
                                          "lacks nodes or pageInfo");
                        goto out;
                }
                for (size_t i = 0; i < json_len(nodes); i++) {
                        rc = add_node(a, json_at(nodes, i), skus, nskus, out,
                                      err);
                        if (rc != SS_OK)
                                goto out;
                }
                log_msg(LOG_DEBUG, "shopify_page", "page=%u nodes=%zu", pageno,
                        json_len(nodes));
                if (!more)
                        break;

                /* A cursor that does not move would loop for ever. */
                const char *next = json_str(
                        json_path(conn, "pageInfo", "endCursor", NULL));
                if (next == NULL || (cursor && strcmp(next, cursor) == 0)) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "Shopify says more pages follow "
                                          "but gave no new cursor");
                        goto out;
                }
                free(cursor);
                cursor = strdup(next);
                if (cursor == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        goto out;
                }
        }
out:
        yajl_tree_free(root);
        buf_free(&vars);
        free(cursor);
        return rc;
}

/* Shopify search syntax: sku:"A" OR sku:"B", with \ and " escaped. */
static void build_search(struct buf *b, const char *const *skus, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        buf_puts(b, " OR ");
                buf_puts(b, "sku:\"");
                for (const char *p = skus[i]; *p; p++) {
                        if (*p == '"' || *p == '\\')
                                buf_putc(b, '\\');
                        buf_putc(b, *p);
                }
                buf_putc(b, '"');
        }
}

static enum ss_err shopify_list_levels(struct adapter *a,
                                       const char *const *skus,
                                       size_t nskus,
                                       struct store_levels *out,
                                       struct ss_error *err)
{
        enum ss_err rc = ensure_location(a, err);

        if (rc != SS_OK)
                return rc;
        if (skus == NULL)
                return list_query(a, NULL, NULL, 0, out, err);

        /* Sorted and without repeats, so each SKU is asked once and the
         * exact-match filter can bsearch. */
        const char **sorted = malloc((nskus ? nskus : 1) * sizeof(*sorted));
        struct buf search = BUF_INIT;
        size_t n = 0;

        if (sorted == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < nskus; i++)
                if (skus[i] != NULL && skus[i][0] != '\0')
                        sorted[n++] = skus[i];
        qsort(sorted, n, sizeof(*sorted), cmp_str);
        size_t uniq = 0;
        for (size_t i = 0; i < n; i++)
                if (uniq == 0 || strcmp(sorted[uniq - 1], sorted[i]) != 0)
                        sorted[uniq++] = sorted[i];

        for (size_t at = 0; at < uniq && rc == SS_OK;
             at += SHOPIFY_SKUS_PER_QUERY) {
                size_t chunk = uniq - at < SHOPIFY_SKUS_PER_QUERY
                                       ? uniq - at
                                       : SHOPIFY_SKUS_PER_QUERY;
                buf_reset(&search);
                build_search(&search, sorted + at, chunk);
                if (buf_str(&search) == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        break;
                }
                rc = list_query(a, search.data, sorted + at, chunk, out, err);
        }
        buf_free(&search);
        free(sorted);
        return rc;
}

/* ---- set_levels ---- */

/* FNV-1a: the idempotency key must change when the payload does, so a
 * different write is never answered from an earlier one's cache. */
static uint64_t fnv1a(const char *s, size_t n)
{
        uint64_t h = 0xcbf29ce484222325u;

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)s[i];
                h *= 0x100000001b3u;
        }
        return h;
}

static bool uri_safe(const char *s)
{
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
                        return false;
        return true;
}

/* Variables for one mutation over the items pending[0..n). */
static void build_set_vars(struct adapter *a,
                           const char *key_prefix,
                           size_t batchno,
                           struct store_write *const *pending,
                           size_t n,
                           struct buf *vars)
{
        struct buf input = BUF_INIT;

        buf_puts(&input, "{\"name\":\"available\",\"reason\":\"correction\"");
        if (a->request_id != NULL && uri_safe(a->request_id))
                buf_printf(&input,
                           ",\"referenceDocumentUri\":"
                           "\"gid://stocksync/SyncRequest/%s\"",
                           a->request_id);
        buf_puts(&input, ",\"quantities\":[");
        for (size_t i = 0; i < n; i++) {
                const struct store_write *w = pending[i];
                buf_puts(&input, i ? ",{" : "{");
                buf_puts(&input, "\"inventoryItemId\":");
                buf_json_str(&input, w->item_id);
                buf_puts(&input, ",\"locationId\":");
                buf_json_str(&input,
                             w->location_id ? w->location_id : a->location);
                buf_printf(&input,
                           ",\"quantity\":%lld,\"changeFromQuantity\":%lld}",
                           w->qty, w->expected);
        }
        buf_puts(&input, "]}");

        const char *s = buf_str(&input);
        if (s == NULL) {
                buf_free(vars);
                vars->failed = true;
                return;
        }
        char key[128];
        snprintf(key, sizeof(key), "%s-%zu-%016llx", key_prefix, batchno,
                 (unsigned long long)fnv1a(s, input.len));
        buf_puts(vars, "{\"key\":");
        buf_json_str(vars, key);
        buf_printf(vars, ",\"input\":%s}", s);
        buf_free(&input);
}

static enum ss_err map_user_error(const char *code)
{
        if (strcmp(code, "CHANGE_FROM_QUANTITY_STALE") == 0 ||
            strcmp(code, "COMPARE_QUANTITY_STALE") == 0)
                return SS_ERR_STALE;
        if (strcmp(code, "INVALID_INVENTORY_ITEM") == 0)
                return SS_ERR_ITEM_UNKNOWN;
        return SS_ERR_ITEM_REJECTED;
}

/* Index into the sent quantities from a userError field path such as
 * ["input", "quantities", "3", "changeFromQuantity"]; -1 when the error
 * is not about one entry. */
static long error_index(yajl_val field, size_t n)
{
        const char *k0 = json_str(json_at(field, 0));
        const char *k1 = json_str(json_at(field, 1));
        yajl_val k2 = json_at(field, 2);
        long long idx;

        if (k0 == NULL || k1 == NULL || strcmp(k0, "input") != 0 ||
            strcmp(k1, "quantities") != 0)
                return -1;
        const char *s = json_str(k2);
        if (s != NULL) {
                char *end = NULL;
                idx = strtoll(s, &end, 10);
                if (end == s || *end != '\0')
                        return -1;
        } else if (!json_int(k2, &idx)) {
                return -1;
        }
        return idx >= 0 && (size_t)idx < n ? (long)idx : -1;
}

static void set_verdict(struct store_write *w,
                        enum ss_err code,
                        const char *store_code,
                        const char *msg)
{
        w->result = code;
        snprintf(w->reason, sizeof(w->reason), "%s: %s", store_code,
                 msg ? msg : "");
}

/* Applies the userErrors of one answer to pending[0..n). Returns how many
 * items got an error; SS_ERR_* in *rc when the whole request must stop. */
static size_t apply_user_errors(yajl_val errors,
                                struct store_write **pending,
                                size_t n,
                                enum ss_err *rc,
                                struct ss_error *err)
{
        size_t failed = 0;

        for (size_t i = 0; i < json_len(errors); i++) {
                yajl_val ue = json_at(errors, i);
                const char *code = json_str(json_get(ue, "code"));
                const char *msg = json_str(json_get(ue, "message"));
                if (code == NULL)
                        code = "ERROR";

                /* The same key is still being worked on: come back later
                 * rather than guess the outcome. */
                if (strcmp(code, "IDEMPOTENCY_CONCURRENT_REQUEST") == 0) {
                        *rc = ss_error_set(err, SS_ERR_THROTTLED,
                                           "Shopify is still processing "
                                           "this batch (%s)",
                                           code);
                        return failed;
                }
                long idx = error_index(json_get(ue, "field"), n);
                for (size_t j = 0; j < n; j++) {
                        if (idx >= 0 && (size_t)idx != j)
                                continue;
                        if (pending[j]->result == SS_ERR_NOT_ATTEMPTED)
                                failed++;
                        set_verdict(pending[j], map_user_error(code), code,
                                    msg);
                }
        }
        return failed;
}

/* Writes one batch. Shopify may reject a whole call for one bad entry
 * (the docs leave it open), so when an answer has userErrors and no
 * adjustment group, nothing was applied and the remaining items are sent
 * again without the refused ones. Each round refuses at least one item, so
 * this ends. */
static enum ss_err set_batch(struct adapter *a,
                             const char *key_prefix,
                             size_t batchno,
                             struct store_write **pending,
                             size_t n,
                             struct ss_error *err)
{
        struct buf vars = BUF_INIT;
        yajl_val root = NULL;
        enum ss_err rc = SS_OK;

        for (unsigned round = 0; n > 0; round++) {
                buf_reset(&vars);
                build_set_vars(a, key_prefix, batchno, pending, n, &vars);
                if (buf_str(&vars) == NULL) {
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        goto out;
                }
                yajl_tree_free(root);
                root = NULL;
                rc = gql_post(a, GQL_SET, 0, SET_MUTATION, vars.data, &root,
                              err);
                if (rc != SS_OK)
                        goto out;

                yajl_val payload =
                        json_path(root, "data", "inventorySetQuantities", NULL);
                yajl_val errors = json_get(payload, "userErrors");
                if (!YAJL_IS_OBJECT(payload) || !YAJL_IS_ARRAY(errors)) {
                        rc = ss_error_set(err, SS_ERR_BAD_RESPONSE,
                                          "Shopify inventorySetQuantities "
                                          "answer lacks userErrors");
                        goto out;
                }
                size_t failed = apply_user_errors(errors, pending, n, &rc, err);
                if (rc != SS_OK)
                        goto out;
                bool applied = YAJL_IS_OBJECT(
                        json_get(payload, "inventoryAdjustmentGroup"));
                if (failed == 0 || applied) {
                        for (size_t j = 0; j < n; j++)
                                if (pending[j]->result == SS_ERR_NOT_ATTEMPTED)
                                        pending[j]->result = SS_OK;
                        break;
                }
                log_msg(LOG_DEBUG, "shopify_batch_resend",
                        "batch=%zu round=%u refused=%zu", batchno, round,
                        failed);

                size_t keep = 0;
                for (size_t j = 0; j < n; j++)
                        if (pending[j]->result == SS_ERR_NOT_ATTEMPTED)
                                pending[keep++] = pending[j];
                n = keep;
        }
out:
        yajl_tree_free(root);
        buf_free(&vars);
        return rc;
}

static enum ss_err shopify_set_levels(struct adapter *a,
                                      struct store_write *w,
                                      size_t n,
                                      struct ss_error *err)
{
        char key_prefix[80];
        enum ss_err rc = SS_OK;

        if (n == 0)
                return SS_OK;
        rc = ensure_location(a, err);
        if (rc != SS_OK)
                return rc;

        /* Keys are scoped by request: without an id a fresh random one
         * keeps two equal writes at different times apart. */
        if (a->request_id != NULL && a->request_id[0] != '\0' &&
            strlen(a->request_id) < 64) {
                snprintf(key_prefix, sizeof(key_prefix), "%s", a->request_id);
        } else {
                char uuid[37];
                if (uuid_v4(uuid) != SS_OK)
                        return ss_error_set(err, SS_ERR_IO,
                                            "no random source for an "
                                            "idempotency key");
                snprintf(key_prefix, sizeof(key_prefix), "%s", uuid);
        }

        struct store_write **pending = malloc(a->batch * sizeof(*pending));
        if (pending == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        for (size_t at = 0, batchno = 0; at < n && rc == SS_OK;
             at += a->batch, batchno++) {
                size_t end = n - at < a->batch ? n : at + a->batch;
                size_t m = 0;
                for (size_t i = at; i < end; i++) {
                        if (w[i].item_id == NULL) {
                                set_verdict(&w[i], SS_ERR_ITEM_UNKNOWN,
                                            "NO_ITEM_ID",
                                            "no Shopify inventory item id");
                                continue;
                        }
                        w[i].result = SS_ERR_NOT_ATTEMPTED;
                        pending[m++] = &w[i];
                }
                rc = set_batch(a, key_prefix, batchno, pending, m, err);
        }
        free(pending);
        return rc;
}

const struct adapter_ops shopify_adapter = {
        .platform = "shopify",
        .api_version = SHOPIFY_API_VERSION,
        .max_batch = SHOPIFY_MAX_BATCH,
        .max_page = SHOPIFY_MAX_PAGE,
        .compare_and_set = true,
        .open = shopify_open,
        .close = shopify_close,
        .list_levels = shopify_list_levels,
        .set_levels = shopify_set_levels,
};
