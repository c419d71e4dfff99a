/* exporter export: validation of export requests (export_parse), as a
 * table of messages and the code each must get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/exporter/export.h"

static struct config cfg;

static int setup(void **state)
{
        (void)state;
        struct ss_error err = { 0 };
        setenv("STOCKSYNC_EXPORT_MAX_UNITS", "3", 1);
        setenv("STOCKSYNC_MAX_MESSAGE_BYTES", "1024", 1);
        return config_load(&cfg, &err) == SS_OK ? 0 : -1;
}

#define OK_TAIL \
        "\"requested_by\":\"ui:7\",\"requested_at\":\"2026-01-01T00:00:00Z\""

struct req_case {
        const char *json;
        const char *key;
        enum ss_err code;
        const char *id; /* request_id expected even on failure */
};

static void test_requests(void **state)
{
        (void)state;
        static const struct req_case cases[] = {
                { "{\"request_id\":\"r1\",\"client_id\":5,"
                  "\"unit_ids\":[3,1,3]," OK_TAIL "}",
                  "5", SS_OK, "r1" },
                { "{\"request_id\":\"r2\",\"client_id\":5,"
                  "\"unit_ids\":[1],"
                  "\"from\":\"2024-03-31T01:00:00+01:00\","
                  "\"to\":\"2024-03-31T00:00:00Z\"," OK_TAIL "}",
                  NULL, SS_OK, "r2" },
                { "", "5", SS_ERR_NOT_JSON, "" },
                { "{\"request_id\":", "5", SS_ERR_NOT_JSON, "" },
                { "[1]", "5", SS_ERR_NOT_JSON, "" },
                { "{\"request_id\":\"\xC3\x28\"}", "5", SS_ERR_INVALID_UTF8,
                  "" },
                { "{\"client_id\":5,\"unit_ids\":[1]," OK_TAIL "}", "5",
                  SS_ERR_MISSING_FIELD, "" },
                { "{\"request_id\":\"a/b\",\"client_id\":5,"
                  "\"unit_ids\":[1]," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "" },
                { "{\"request_id\":\".hidden\",\"client_id\":5,"
                  "\"unit_ids\":[1]," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "" },
                { "{\"request_id\":\"r3\",\"unit_ids\":[1]," OK_TAIL "}", "5",
                  SS_ERR_MISSING_FIELD, "r3" },
                { "{\"request_id\":\"r4\",\"client_id\":0,"
                  "\"unit_ids\":[1]," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "r4" },
                { "{\"request_id\":\"r5\",\"client_id\":5,"
                  "\"unit_ids\":[]," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "r5" },
                { "{\"request_id\":\"r6\",\"client_id\":5,"
                  "\"unit_ids\":[1,2,3,4]," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "r6" },
                { "{\"request_id\":\"r7\",\"client_id\":5,"
                  "\"unit_ids\":[1,-2]," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "r7" },
                { "{\"request_id\":\"r8\",\"client_id\":5,"
                  "\"unit_ids\":7," OK_TAIL "}",
                  "5", SS_ERR_BAD_FIELD, "r8" },
                { "{\"request_id\":\"r9\",\"client_id\":5,"
                  "\"unit_ids\":[1]," OK_TAIL "}",
                  "6", SS_ERR_KEY_MISMATCH, "r9" },
                { "{\"request_id\":\"r10\",\"client_id\":5,"
                  "\"unit_ids\":[1],\"from\":\"2024-02-01T00:00:00Z\","
                  "\"to\":\"2024-01-01T00:00:00Z\"," OK_TAIL "}",
                  "5", SS_ERR_BAD_RANGE, "r10" },
                { "{\"request_id\":\"r11\",\"client_id\":5,"
                  "\"unit_ids\":[1],\"from\":\"2024-02-01\"," OK_TAIL "}",
                  "5", SS_ERR_BAD_TIME, "r11" },
                { "{\"request_id\":\"r12\",\"client_id\":5,"
                  "\"unit_ids\":[1],\"requested_by\":\"x\","
                  "\"requested_at\":\"2024-02-30T00:00:00Z\"}",
                  "5", SS_ERR_BAD_TIME, "r12" },
                { "{\"request_id\":\"r13\",\"client_id\":5,"
                  "\"unit_ids\":[1],\"requested_by\":\"x\"}",
                  "5", SS_ERR_MISSING_FIELD, "r13" },
                { "{\"request_id\":\"r14\",\"client_id\":5,"
                  "\"unit_ids\":[1],\"requested_by\":\"\","
                  "\"requested_at\":\"2024-02-01T00:00:00Z\"}",
                  "5", SS_ERR_BAD_FIELD, "r14" },
                { "{\"request_id\":\"r15\",\"client_id\":5,"
                  "\"unit_ids\":[1],\"units\":[2]," OK_TAIL "}",
                  "5", SS_ERR_UNKNOWN_FIELD, "r15" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct req_case *c = &cases[i];
                struct export_request req;
                struct ss_error err = { 0 };
                enum ss_err rc = export_parse(c->json, strlen(c->json), c->key,
                                              c->key ? strlen(c->key) : 0, &cfg,
                                              &req, &err);
                if (rc != c->code)
                        fail_msg("case %zu: got %s (%s), want %s", i,
                                 ss_err_name(rc), err.msg,
                                 ss_err_name(c->code));
                assert_string_equal(req.request_id, c->id);
                if (rc != SS_OK)
                        assert_true(err.msg[0] != '\0');
                export_request_free(&req);
        }
}

static void test_parsed_values(void **state)
{
        (void)state;
        const char *json =
                "{\"request_id\":\"r1\",\"client_id\":5,\"unit_ids\":[3,1,3],"
                "\"from\":\"2024-03-31T01:00:00+01:00\"," OK_TAIL "}";
        struct export_request req;
        struct ss_error err = { 0 };
        assert_int_equal(
                export_parse(json, strlen(json), "5", 1, &cfg, &req, &err),
                SS_OK);
        assert_int_equal(req.client_id, 5);
        assert_int_equal(req.nunits, 2); /* sorted, repeats dropped */
        assert_int_equal(req.unit_ids[0], 1);
        assert_int_equal(req.unit_ids[1], 3);
        assert_true(req.has_from);
        assert_false(req.has_to);
        assert_int_equal(req.from_us, 1711843200LL * 1000000);
        assert_string_equal(req.requested_by, "ui:7");
        export_request_free(&req);

        /* Over STOCKSYNC_MAX_MESSAGE_BYTES. */
        char big[2048];
        memset(big, ' ', sizeof(big));
        memcpy(big, json, strlen(json));
        assert_int_equal(
                export_parse(big, sizeof(big), "5", 1, &cfg, &req, &err),
                SS_ERR_TOO_LARGE);
        export_request_free(&req);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_requests),
                cmocka_unit_test(test_parsed_values),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
