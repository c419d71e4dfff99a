/* Request validation: every example under schemas/json/examples/
 * sync_request is fed to the parser; valid/ must pass and invalid/<code>[.
 * anything].json must fail with exactly <code>. The JSON Schema test reads
 * the same files, so the schema and the parser cannot drift apart. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/request.h"

#define EXAMPLES SS_SOURCE_ROOT "/schemas/json/examples/sync_request"

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char *buf = malloc(1 << 16);
        assert_non_null(buf);
        *len = fread(buf, 1, (1 << 16) - 1, f);
        fclose(f);
        while (*len > 0 && (buf[*len - 1] == '\n'))
                (*len)--;
        buf[*len] = '\0';
        return buf;
}

static int
for_each_example(const char *sub,
                 void (*fn)(const char *name, const char *text, size_t len))
{
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/%s", EXAMPLES, sub);
        DIR *d = opendir(dir);
        assert_non_null(d);
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
                if (strstr(e->d_name, ".json") == NULL)
                        continue;
                char path[1024];
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                size_t len;
                char *text = slurp(path, &len);
                fn(e->d_name, text, len);
                free(text);
                n++;
        }
        closedir(d);
        return n;
}

static void expect_valid(const char *name, const char *text, size_t len)
{
        struct sync_request r;
        struct ss_error err = { 0 };
        enum ss_err rc = request_parse(text, len, NULL, 0, 1 << 20, &r, &err);
        if (rc != SS_OK)
                fail_msg("%s: %s: %s", name, ss_err_name(rc), err.msg);
}

static void expect_invalid(const char *name, const char *text, size_t len)
{
        char want[64];
        snprintf(want, sizeof(want), "%s", name);
        *strchr(want, '.') = '\0';
        struct sync_request r;
        struct ss_error err = { 0 };
        enum ss_err rc = request_parse(text, len, NULL, 0, 1 << 20, &r, &err);
        if (rc == SS_OK || strcmp(ss_err_name(rc), want) != 0)
                fail_msg("%s: want %s, got %s (%s)", name, want,
                         ss_err_name(rc), err.msg);
        assert_true(strlen(err.msg) > 0);
}

static void valid_examples(void **state)
{
        (void)state;
        assert_true(for_each_example("valid", expect_valid) >= 3);
}

static void invalid_examples(void **state)
{
        (void)state;
        assert_true(for_each_example("invalid", expect_invalid) >= 8);
}

static const char ok_msg[] =
        "{\"request_id\":\"r1\",\"action\":\"push\",\"integration_id\":12,"
        "\"unit_id\":5,\"options\":{\"force\":true,\"dry_run\":true},"
        "\"requested_by\":\"jane\",\"requested_at\":\"2026-12-04T10:00:00Z\"}";

static void fields_are_read(void **state)
{
        (void)state;
        struct sync_request r;
        struct ss_error err = { 0 };
        assert_int_equal(
                request_parse(ok_msg, strlen(ok_msg), "12", 2, 4096, &r, &err),
                SS_OK);
        assert_string_equal(r.request_id, "r1");
        assert_int_equal(r.action, ACTION_PUSH);
        assert_int_equal(r.integration_id, 12);
        assert_int_equal(r.unit_id, 5);
        assert_true(r.options.force);
        assert_true(r.options.dry_run);
        assert_false(r.options.all);
        assert_false(r.options.bypass_guardrail);
        assert_string_equal(r.requested_by, "jane");
}

static void key_must_be_integration(void **state)
{
        (void)state;
        struct sync_request r;
        struct ss_error err = { 0 };
        assert_int_equal(
                request_parse(ok_msg, strlen(ok_msg), "13", 2, 4096, &r, &err),
                SS_ERR_KEY_MISMATCH);
        /* The id is still known, so the rejection is reported against it. */
        assert_string_equal(r.request_id, "r1");
}

static void size_limit(void **state)
{
        (void)state;
        struct sync_request r;
        struct ss_error err = { 0 };
        assert_int_equal(
                request_parse(ok_msg, strlen(ok_msg), NULL, 0, 64, &r, &err),
                SS_ERR_TOO_LARGE);
}

static void edge_inputs(void **state)
{
        (void)state;
        struct sync_request r;
        struct ss_error err = { 0 };
        assert_int_equal(request_parse("", 0, NULL, 0, 4096, &r, &err),
                         SS_ERR_NOT_JSON);
        assert_int_equal(request_parse(NULL, 0, NULL, 0, 4096, &r, &err),
                         SS_ERR_NOT_JSON);
        const char arr[] = "[1,2]";
        assert_int_equal(
                request_parse(arr, strlen(arr), NULL, 0, 4096, &r, &err),
                SS_ERR_BAD_FIELD);
        const char big[] =
                "{\"request_id\":\"r\",\"action\":\"pull\",\"integration_id\":"
                "99999999999999999999,\"requested_by\":\"j\","
                "\"requested_at\":\"2026-12-04T10:00:00Z\"}";
        assert_int_equal(
                request_parse(big, strlen(big), NULL, 0, 4096, &r, &err),
                SS_ERR_OUT_OF_RANGE);
}

static void times(void **state)
{
        (void)state;
        assert_true(request_time_valid("2024-02-29T23:59:59Z"));
        assert_true(request_time_valid("2026-12-04T10:00:00.5+05:30"));
        assert_false(request_time_valid("2023-02-29T00:00:00Z"));
        assert_false(request_time_valid("2026-12-04 10:00:00Z"));
        assert_false(request_time_valid("2026-12-04T10:00:00"));
        assert_false(request_time_valid("2026-12-04T24:00:00Z"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(valid_examples),
                cmocka_unit_test(invalid_examples),
                cmocka_unit_test(fields_are_read),
                cmocka_unit_test(key_must_be_integration),
                cmocka_unit_test(size_limit),
                cmocka_unit_test(edge_inputs),
                cmocka_unit_test(times),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
