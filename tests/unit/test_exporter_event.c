/* exporter event: the audit event parser and its CSV row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/exporter/event.h"

/* As schemas/sql/004_movement_events.sql writes it (json_build_object
 * puts spaces around the colons). */
#define C09_EVENT                                                             \
        "{\"event\" : \"movement\", \"movement_id\" : 17, \"occurred_at\" : " \
        "\"2024-03-31T00:30:00.000000Z\", \"reason_code\" : \"recount\", "    \
        "\"note\" : \"+1 found on recount\", \"qty_before\" : 3, "            \
        "\"qty_after\" : 0, \"qty_change\" : -3, \"sku\" : \"SKU-1\", "       \
        "\"item_name\" : \"=HYPERLINK(\\\"http://example.test\\\","           \
        "\\\"x\\\")\", \"location_code\" : \"LAGER-S\\u00dcD\", "             \
        "\"serial\" : null, \"batch\" : null, \"lot\" : \"@L77\", "           \
        "\"order_ref\" : null, \"client_id\" : 5, \"unit_id\" : 9, "          \
        "\"integration_id\" : null, \"request_id\" : \"r1\"}"

static enum ss_err parse(const char *json,
                         struct movement_event *ev,
                         struct buf *scratch,
                         struct ss_error *err)
{
        return event_parse(json, strlen(json), scratch, ev, err);
}

static void test_trigger_payload(void **state)
{
        (void)state;
        struct movement_event ev;
        struct buf scratch = BUF_INIT;
        struct ss_error err = { 0 };
        assert_int_equal(parse(C09_EVENT, &ev, &scratch, &err), SS_OK);
        assert_int_equal(ev.movement_id, 17);
        assert_int_equal(ev.qty_before, 3);
        assert_int_equal(ev.qty_after, 0);
        assert_int_equal(ev.qty_change, -3);
        assert_int_equal(ev.client_id, 5);
        assert_int_equal(ev.unit_id, 9);
        assert_int_equal(ev.integration_id, 0);
        assert_null(ev.serial.p);
        assert_null(ev.order_ref.p);
        assert_int_equal(ev.location_code.len, strlen("LAGER-SÜD"));
        assert_memory_equal(ev.location_code.p, "LAGER-SÜD",
                            ev.location_code.len);

        /* C09: numbers untouched, three text cells neutralised. */
        struct buf row = BUF_INIT;
        event_csv_row(&ev, true, &row);
        assert_string_equal(
                buf_str(&row),
                "17,2024-03-31T00:30:00Z,recount,'+1 found on recount,3,0,"
                "-3,SKU-1,\"'=HYPERLINK(\"\"http://example.test\"\",\"\"x\""
                "\")\",LAGER-SÜD,,,'@L77,\n");
        buf_reset(&row);
        event_csv_row(&ev, false, &row);
        assert_string_equal(
                buf_str(&row),
                "17,2024-03-31T00:30:00Z,recount,+1 found on recount,3,0,"
                "-3,SKU-1,\"=HYPERLINK(\"\"http://example.test\"\",\"\"x\""
                "\")\",LAGER-SÜD,,,@L77,\n");
        buf_free(&row);
        buf_free(&scratch);
}

static void test_escapes_and_unknown_keys(void **state)
{
        (void)state;
        const char *json =
                "{\"future\":{\"a\":[1,2.5e3,{\"b\":null}],\"c\":\"\\n\"},"
                "\"event\":\"movement\",\"movement_id\":1,"
                "\"occurred_at\":\"2024-03-31T01:30:00+01:00\","
                "\"reason_code\":\"pick\",\"note\":\"line1\\nline2, \\\"q\\\""
                " \\ud83d\\ude00 \\/\",\"qty_before\":0,\"qty_after\":2,"
                "\"qty_change\":2,\"sku\":\"S\",\"item_name\":\"\","
                "\"location_code\":\"L\",\"serial\":\"SN1\",\"client_id\":1,"
                "\"unit_id\":2,\"order_ref\":\"#1001\",\"more\":true}";
        struct movement_event ev;
        struct buf scratch = BUF_INIT;
        struct ss_error err = { 0 };
        assert_int_equal(parse(json, &ev, &scratch, &err), SS_OK);
        const char *note = "line1\nline2, \"q\" \xF0\x9F\x98\x80 /";
        assert_int_equal(ev.note.len, strlen(note));
        assert_memory_equal(ev.note.p, note, ev.note.len);

        struct buf row = BUF_INIT;
        event_csv_row(&ev, true, &row);
        assert_string_equal(buf_str(&row),
                            "1,2024-03-31T00:30:00Z,pick,\"line1\nline2, "
                            "\"\"q\"\" \xF0\x9F\x98\x80 /\",0,2,2,S,,L,SN1,,,"
                            "#1001\n");
        buf_free(&row);
        buf_free(&scratch);
}

/* C12: a movement without serial, batch, lot or order has empty cells. */
static void test_unset_cells(void **state)
{
        (void)state;
        const char *json =
                "{\"event\":\"movement\",\"movement_id\":2,"
                "\"occurred_at\":\"2024-03-31T00:00:00.25Z\","
                "\"reason_code\":\"adjust\",\"qty_before\":5,"
                "\"qty_after\":4,\"qty_change\":-1,\"sku\":\"S\","
                "\"location_code\":\"L\",\"client_id\":1,\"unit_id\":2}";
        struct movement_event ev;
        struct buf scratch = BUF_INIT;
        struct ss_error err = { 0 };
        assert_int_equal(parse(json, &ev, &scratch, &err), SS_OK);
        struct buf row = BUF_INIT;
        event_csv_row(&ev, true, &row);
        assert_string_equal(buf_str(&row), "2,2024-03-31T00:00:00.250000Z,"
                                           "adjust,,5,4,-1,S,,L,,,,\n");
        buf_free(&row);
        buf_free(&scratch);
}

struct bad_case {
        const char *json;
        enum ss_err code;
};

#define GOOD_TAIL                                                 \
        "\"reason_code\":\"r\",\"qty_before\":0,\"qty_after\":1," \
        "\"qty_change\":1,\"sku\":\"S\",\"location_code\":\"L\"," \
        "\"client_id\":1,\"unit_id\":2"
#define HEAD                                         \
        "{\"event\":\"movement\",\"movement_id\":1," \
        "\"occurred_at\":\"2024-01-01T00:00:00Z\","

static void test_rejects(void **state)
{
        (void)state;
        static const struct bad_case cases[] = {
                { "", SS_ERR_NOT_JSON },
                { "garbage{", SS_ERR_NOT_JSON },
                { "[1,2]", SS_ERR_NOT_JSON },
                { HEAD GOOD_TAIL "}x", SS_ERR_NOT_JSON },
                { HEAD GOOD_TAIL, SS_ERR_NOT_JSON },
                { HEAD GOOD_TAIL ",}", SS_ERR_NOT_JSON },
                { HEAD "\"note\":\"a\\u0000b\"," GOOD_TAIL "}",
                  SS_ERR_NOT_JSON },
                { HEAD "\"note\":\"\\ud83d\"," GOOD_TAIL "}", SS_ERR_NOT_JSON },
                { HEAD "\"note\":\"tab\there\"," GOOD_TAIL "}",
                  SS_ERR_NOT_JSON },
                { HEAD "\"note\":\"\xC3\x28\"," GOOD_TAIL "}",
                  SS_ERR_INVALID_UTF8 },
                { "{\"event\":\"movement\",\"movement_id\":1," GOOD_TAIL "}",
                  SS_ERR_MISSING_FIELD },
                { HEAD "\"reason_code\":\"r\",\"qty_before\":0,"
                       "\"qty_after\":1,\"qty_change\":1,\"sku\":null,"
                       "\"location_code\":\"L\",\"client_id\":1,"
                       "\"unit_id\":2}",
                  SS_ERR_MISSING_FIELD },
                { HEAD "\"reason_code\":\"r\",\"qty_before\":0,"
                       "\"qty_after\":1,\"qty_change\":1,\"sku\":7,"
                       "\"location_code\":\"L\",\"client_id\":1,"
                       "\"unit_id\":2}",
                  SS_ERR_BAD_FIELD },
                { "{\"event\":\"status\",\"movement_id\":1,"
                  "\"occurred_at\":\"2024-01-01T00:00:00Z\"," GOOD_TAIL "}",
                  SS_ERR_BAD_FIELD },
                { "{\"event\":\"movement\",\"movement_id\":\"1\","
                  "\"occurred_at\":\"2024-01-01T00:00:00Z\"," GOOD_TAIL "}",
                  SS_ERR_BAD_FIELD },
                { "{\"event\":\"movement\",\"movement_id\":1.5,"
                  "\"occurred_at\":\"2024-01-01T00:00:00Z\"," GOOD_TAIL "}",
                  SS_ERR_BAD_FIELD },
                { "{\"event\":\"movement\",\"movement_id\":1,"
                  "\"occurred_at\":\"2024-01-01 00:00\"," GOOD_TAIL "}",
                  SS_ERR_BAD_TIME },
                { "{\"event\":\"movement\",\"movement_id\":1,"
                  "\"occurred_at\":\"2024-01-01T00:00:00\"," GOOD_TAIL "}",
                  SS_ERR_BAD_TIME },
                { HEAD "\"qty_before\":0,\"reason_code\":\"r\","
                       "\"qty_after\":1,\"qty_change\":1,\"sku\":\"S\","
                       "\"location_code\":\"L\",\"client_id\":1,"
                       "\"unit_id\":2,\"qty_before\":1}",
                  SS_ERR_BAD_FIELD },
                { HEAD "\"reason_code\":\"r\",\"qty_before\":0,"
                       "\"qty_after\":5,\"qty_change\":1,\"sku\":\"S\","
                       "\"location_code\":\"L\",\"client_id\":1,"
                       "\"unit_id\":2}",
                  SS_ERR_BAD_FIELD },
                { HEAD "\"reason_code\":\"r\",\"qty_before\":0,"
                       "\"qty_after\":1,\"qty_change\":1,\"sku\":\"S\","
                       "\"location_code\":\"L\",\"client_id\":0,"
                       "\"unit_id\":2}",
                  SS_ERR_BAD_FIELD },
                { HEAD "\"reason_code\":\"r\",\"qty_before\":"
                       "99999999999999999999,\"qty_after\":1,"
                       "\"qty_change\":1,\"sku\":\"S\",\"location_code\":"
                       "\"L\",\"client_id\":1,\"unit_id\":2}",
                  SS_ERR_BAD_FIELD },
                { HEAD "\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]"
                       "]]]]]]]]]]]]]]]]]]]]]]]]]]]," GOOD_TAIL "}",
                  SS_ERR_NOT_JSON },
        };
        struct buf scratch = BUF_INIT;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct movement_event ev;
                struct ss_error err = { 0 };
                enum ss_err rc = parse(cases[i].json, &ev, &scratch, &err);
                if (rc != cases[i].code)
                        fail_msg("case %zu: got %s (%s), want %s", i,
                                 ss_err_name(rc), err.msg,
                                 ss_err_name(cases[i].code));
                assert_true(err.msg[0] != '\0');
        }
        buf_free(&scratch);
}

/* An event whose note is the JSON string literal lit (quotes included). */
static char *event_with_note(const char *lit)
{
        const char *head = HEAD "\"note\":";
        const char *tail = "," GOOD_TAIL "}";
        size_t n = strlen(head) + strlen(lit) + strlen(tail) + 1;
        char *json = malloc(n);
        assert_non_null(json);
        snprintf(json, n, "%s%s%s", head, lit, tail);
        return json;
}

/* The string scanner steps over 8 bytes at a time: every byte that stops
 * it must be seen at every position in and across those words. */
static void test_string_bytes_at_every_position(void **state)
{
        (void)state;

        static const struct {
                const char *raw;     /* as written in the JSON string */
                const char *decoded; /* NULL: the event is refused */
                enum ss_err code;
        } cases[] = {
                { "\\\"", "\"", SS_OK },
                { "\\\\", "\\", SS_OK },
                { "\\n", "\n", SS_OK },
                { "\x7f", "\x7f", SS_OK },
                { "\xC3\xBC", "\xC3\xBC", SS_OK },
                { "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80", SS_OK },
                { "\x1f", NULL, SS_ERR_NOT_JSON },
                { "\t", NULL, SS_ERR_NOT_JSON },
                { "\xC3", NULL, SS_ERR_INVALID_UTF8 },
                { "\xFF", NULL, SS_ERR_INVALID_UTF8 },
        };

        const char *filler = "abcdefghijklmnopqrstuvwxyz";
        struct buf scratch = BUF_INIT;
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                for (int pre = 0; pre <= 17; pre++) {
                        int post = (pre * 5) % 11;
                        char lit[128], want[128];
                        snprintf(lit, sizeof(lit), "\"%.*s%s%.*s\"", pre,
                                 filler, cases[c].raw, post, filler);
                        char *json = event_with_note(lit);
                        struct movement_event ev;
                        struct ss_error err = { 0 };
                        enum ss_err rc = event_parse(json, strlen(json),
                                                     &scratch, &ev, &err);
                        if (cases[c].decoded == NULL) {
                                assert_int_equal(rc, cases[c].code);
                        } else {
                                assert_int_equal(rc, SS_OK);
                                snprintf(want, sizeof(want), "%.*s%s%.*s", pre,
                                         filler, cases[c].decoded, post,
                                         filler);
                                assert_int_equal(ev.note.len, strlen(want));
                                assert_memory_equal(ev.note.p, want,
                                                    ev.note.len);
                        }
                        free(json);
                }
        }
        buf_free(&scratch);
}

/* Keys that start like a known one, or come in another order, are not
 * mistaken for it. */
static void test_keys_near_known_names(void **state)
{
        (void)state;
        const char *json =
                "{\"note\\u0073\":\"a\",\"event\":\"movement\","
                "\"movement_id\":3,\"occurred_at\":\"2024-01-01T00:00:00Z\","
                "\"notes\":\"b\",\"not\":\"c\",\"reason_code\":\"r\","
                "\"qty_before\":0,\"sku\":\"S\",\"qty_after\":1,"
                "\"qty_change\":1,\"location_code\":\"L\",\"lot\":\"x\","
                "\"lotte\":\"y\",\"client_id\":1,\"unit_id\":2,"
                "\"note\":\"d\"}";
        struct movement_event ev;
        struct buf scratch = BUF_INIT;
        struct ss_error err = { 0 };
        assert_int_equal(parse(json, &ev, &scratch, &err), SS_OK);
        assert_int_equal(ev.movement_id, 3);
        assert_int_equal(ev.note.len, 1);
        assert_memory_equal(ev.note.p, "d", 1);
        assert_int_equal(ev.lot.len, 1);
        assert_memory_equal(ev.lot.p, "x", 1);
        assert_int_equal(ev.qty_after, 1);
        buf_free(&scratch);
}

/* What a text cell must look like (neutralise off), built the simple
 * way. */
static void quoted_cell(struct buf *b, const char *s)
{
        if (strpbrk(s, ",\"\r\n") == NULL) {
                buf_puts(b, s);
                return;
        }
        buf_putc(b, '"');
        for (; *s; s++) {
                buf_putc(b, *s);
                if (*s == '"')
                        buf_putc(b, '"');
        }
        buf_putc(b, '"');
}

/* Rows are formatted in a small buffer; cells of every size, up to ones
 * far larger than that buffer, come out whole and in order. */
static void test_row_with_long_cells(void **state)
{
        (void)state;
        static const size_t sizes[] = { 1,   100, 200, 254, 255, 256,
                                        300, 511, 512, 513, 2000 };
        struct buf scratch = BUF_INIT;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t n = sizes[i];
                char *text = malloc(n + 1);
                assert_non_null(text);
                for (size_t k = 0; k < n; k++)
                        text[k] = "ab\"c,d"[k % 6];
                text[n] = '\0';

                struct movement_event ev;
                struct ss_error err = { 0 };
                assert_int_equal(parse(C09_EVENT, &ev, &scratch, &err), SS_OK);
                ev.note = (struct event_str){ text, n };
                ev.item_name = (struct event_str){ text, n };
                ev.serial = (struct event_str){ text, n };

                struct buf want = BUF_INIT;
                buf_puts(&want, "17,2024-03-31T00:30:00Z,recount,");
                quoted_cell(&want, text);
                buf_puts(&want, ",3,0,-3,SKU-1,");
                quoted_cell(&want, text);
                buf_puts(&want, ",LAGER-SÜD,");
                quoted_cell(&want, text);
                buf_puts(&want, ",,@L77,\n");

                struct buf row = BUF_INIT;
                buf_puts(&row, "before|");
                event_csv_row(&ev, false, &row);
                assert_non_null(buf_str(&row));
                assert_string_equal(buf_str(&row) + strlen("before|"),
                                    buf_str(&want));
                buf_free(&row);
                buf_free(&want);
                free(text);
        }
        buf_free(&scratch);
}

/* Every cut of a good event fails cleanly (run under ASan it also shows
 * no read past the end). */
static void test_truncations(void **state)
{
        (void)state;
        const char *json = C09_EVENT;
        size_t n = strlen(json);
        struct buf scratch = BUF_INIT;
        for (size_t cut = 0; cut < n; cut++) {
                char *copy = malloc(cut ? cut : 1);
                assert_non_null(copy);
                memcpy(copy, json, cut);
                struct movement_event ev;
                struct ss_error err = { 0 };
                assert_int_not_equal(
                        event_parse(copy, cut, &scratch, &ev, &err), SS_OK);
                free(copy);
        }
        buf_free(&scratch);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_trigger_payload),
                cmocka_unit_test(test_escapes_and_unknown_keys),
                cmocka_unit_test(test_unset_cells),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_truncations),
                cmocka_unit_test(test_string_bytes_at_every_position),
                cmocka_unit_test(test_keys_near_known_names),
                cmocka_unit_test(test_row_with_long_cells),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
