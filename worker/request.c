/* Strict parsing of sync requests: unknown fields are refused, so a typo
 * such as "forse" can never silently turn a forced push into a normal one. */
#include "request.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../common/json.h"

static const char *const top_fields[] = { "request_id",     "action",
                                          "integration_id", "unit_id",
                                          "options",        "requested_by",
                                          "requested_at",   NULL };
static const char *const option_fields[] = { "force", "bypass_guardrail", "all",
                                             "dry_run", NULL };

static bool in_list(const char *k, const char *const *list)
{
        for (size_t i = 0; list[i]; i++)
                if (strcmp(k, list[i]) == 0)
                        return true;
        return false;
}

static enum ss_err check_fields(yajl_val obj,
                                const char *const *allowed,
                                const char *where,
                                struct ss_error *err)
{
        for (size_t i = 0; i < obj->u.object.len; i++) {
                const char *k = obj->u.object.keys[i];
                if (!in_list(k, allowed))
                        return ss_error_set(err, SS_ERR_UNKNOWN_FIELD,
                                            "%s has an unknown field '%.60s'",
                                            where, k);
                /* JSON readers disagree on which of two equal keys wins;
                 * a producer and this worker must never read different
                 * requests from one message. */
                for (size_t j = 0; j < i; j++)
                        if (strcmp(obj->u.object.keys[j], k) == 0)
                                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                                    "%s has the field '%s' "
                                                    "more than once",
                                                    where, k);
        }
        return SS_OK;
}

bool request_id_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > REQUEST_ID_MAX)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("._:-", *s))
                        return false;
        return true;
}

bool request_time_valid(const char *s)
{
        int y, mo, d, h, mi, sec, n = 0;
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
                   &n) != 6 ||
            n != 19)
                return false;
        static const int mdays[] = { 31, 29, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31 };
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
            h > 23 || mi > 59 || sec > 60)
                return false;
        if (mo == 2 && d == 29 &&
            !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
                return false;
        const char *p = s + 19;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p))
                        return false;
                while (isdigit((unsigned char)*p))
                        p++;
        }
        if (*p == 'Z' && p[1] == '\0')
                return true;
        int zh, zm;
        n = 0;
        if ((*p == '+' || *p == '-') &&
            sscanf(p + 1, "%2d:%2d%n", &zh, &zm, &n) == 2 && n == 5 &&
            p[6] == '\0' && zh <= 23 && zm <= 59)
                return true;
        return false;
}

/* A positive 64-bit id. yajl keeps the literal's text; a literal of
 * digits only that did not fit in a long long is "out of range", one with a
 * fraction or exponent is not an id at all. */
static enum ss_err
read_id(yajl_val v, const char *name, long long *out, struct ss_error *err)
{
        if (v == NULL)
                return ss_error_set(err, SS_ERR_MISSING_FIELD, "%s is required",
                                    name);
        if (!YAJL_IS_NUMBER(v))
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "%s must be a positive integer", name);
        const char *lit = v->u.number.r;
        if (strpbrk(lit, ".eE") != NULL)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "%s must be a whole number", name);
        long long n;
        if (!json_int(v, &n) || n < 1)
                return ss_error_set(err, SS_ERR_OUT_OF_RANGE,
                                    "%s is out of range (1 to "
                                    "9223372036854775807)",
                                    name);
        *out = n;
        return SS_OK;
}

static enum ss_err read_text(yajl_val obj,
                             const char *name,
                             char *dst,
                             size_t dstsz,
                             struct ss_error *err)
{
        yajl_val v = json_get(obj, name);
        if (v == NULL)
                return ss_error_set(err, SS_ERR_MISSING_FIELD, "%s is required",
                                    name);
        const char *s = json_str(v);
        if (s == NULL)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "%s must be a string", name);
        if (s[0] == '\0' || strlen(s) >= dstsz)
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "%s must be 1 to %zu characters", name,
                                    dstsz - 1);
        memcpy(dst, s, strlen(s) + 1);
        return SS_OK;
}

static enum ss_err
read_options(yajl_val v, struct sync_options *o, struct ss_error *err)
{
        memset(o, 0, sizeof(*o));
        if (v == NULL || json_is_null(v))
                return SS_OK;
        if (!YAJL_IS_OBJECT(v))
                return ss_error_set(err, SS_ERR_BAD_FIELD,
                                    "options must be an object");
        enum ss_err rc = check_fields(v, option_fields, "options", err);
        if (rc != SS_OK)
                return rc;
        bool *dst[] = { &o->force, &o->bypass_guardrail, &o->all, &o->dry_run };
        for (size_t i = 0; option_fields[i]; i++) {
                yajl_val b = json_get(v, option_fields[i]);
                if (b != NULL && !json_bool(b, dst[i]))
                        return ss_error_set(err, SS_ERR_BAD_FIELD,
                                            "options.%s must be true or "
                                            "false",
                                            option_fields[i]);
        }
        return SS_OK;
}

static enum ss_err
check_key(const void *key, size_t key_len, long long id, struct ss_error *err)
{
        if (key == NULL) /* not checked: a parse outside Kafka */
                return SS_OK;
        char want[32];
        int n = snprintf(want, sizeof(want), "%lld", id);
        if ((size_t)n != key_len || memcmp(want, key, key_len) != 0)
                return ss_error_set(err, SS_ERR_KEY_MISMATCH,
                                    "message key must be the integration id "
                                    "(%s), so one integration's requests "
                                    "stay in order on one partition",
                                    want);
        return SS_OK;
}

enum ss_err request_parse(const void *payload,
                          size_t len,
                          const void *key,
                          size_t key_len,
                          size_t max_bytes,
                          struct sync_request *out,
                          struct ss_error *err)
{
        memset(out, 0, sizeof(*out));
        if (payload == NULL || len == 0)
                return ss_error_set(err, SS_ERR_NOT_JSON, "message is empty");
        if (len > max_bytes)
                return ss_error_set(err, SS_ERR_TOO_LARGE,
                                    "message is %zu bytes; the limit is %zu",
                                    len, max_bytes);

        yajl_val root = json_parse(payload, len, err);
        if (root == NULL)
                return err ? err->code : SS_ERR_NOT_JSON;

        enum ss_err rc;
        if (!YAJL_IS_OBJECT(root)) {
                rc = ss_error_set(err, SS_ERR_BAD_FIELD,
                                  "a request must be a JSON object");
                goto out;
        }

        /* The id first, so later refusals can be reported against it. */
        const char *rid = json_str(json_get(root, "request_id"));
        if (rid != NULL && request_id_valid(rid))
                memcpy(out->request_id, rid, strlen(rid) + 1);

        rc = check_fields(root, top_fields, "request", err);
        if (rc != SS_OK)
                goto out;
        if (json_get(root, "request_id") == NULL) {
                rc = ss_error_set(err, SS_ERR_MISSING_FIELD,
                                  "request_id is required");
                goto out;
        }
        if (out->request_id[0] == '\0') {
                rc = ss_error_set(err, SS_ERR_BAD_FIELD,
                                  "request_id must be 1 to %d characters of "
                                  "letters, digits and . _ : -",
                                  REQUEST_ID_MAX);
                goto out;
        }

        yajl_val action = json_get(root, "action");
        const char *a = json_str(action);
        if (action == NULL) {
                rc = ss_error_set(err, SS_ERR_MISSING_FIELD,
                                  "action is required");
                goto out;
        }
        if (a == NULL) {
                rc = ss_error_set(err, SS_ERR_BAD_FIELD,
                                  "action must be a string");
                goto out;
        }
        if (strcmp(a, "pull") == 0) {
                out->action = ACTION_PULL;
        } else if (strcmp(a, "push") == 0) {
                out->action = ACTION_PUSH;
        } else {
                rc = ss_error_set(err, SS_ERR_UNKNOWN_ACTION,
                                  "action '%.40s' is not pull or push", a);
                goto out;
        }

        rc = read_id(json_get(root, "integration_id"), "integration_id",
                     &out->integration_id, err);
        if (rc != SS_OK)
                goto out;
        yajl_val unit = json_get(root, "unit_id");
        if (unit != NULL && !json_is_null(unit)) {
                rc = read_id(unit, "unit_id", &out->unit_id, err);
                if (rc != SS_OK)
                        goto out;
        }
        rc = read_options(json_get(root, "options"), &out->options, err);
        if (rc != SS_OK)
                goto out;
        rc = read_text(root, "requested_by", out->requested_by,
                       sizeof(out->requested_by), err);
        if (rc != SS_OK)
                goto out;
        rc = read_text(root, "requested_at", out->requested_at,
                       sizeof(out->requested_at), err);
        if (rc != SS_OK)
                goto out;
        if (!request_time_valid(out->requested_at)) {
                rc = ss_error_set(err, SS_ERR_BAD_FIELD,
                                  "requested_at must be an RFC 3339 time "
                                  "with a zone, e.g. 2026-12-04T10:00:00Z");
                goto out;
        }
        rc = check_key(key, key_len, out->integration_id, err);
out:
        yajl_tree_free(root);
        return rc;
}

const char *request_action_name(enum sync_action a)
{
        return a == ACTION_PULL ? "pull" : "push";
}
