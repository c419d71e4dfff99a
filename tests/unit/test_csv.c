/* csv: quoting, neutralisation and integers, as schemas/CSV.md says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/csv.h"

static void cell_is(const char *in, bool neutralise, const char *want)
{
        struct buf b = BUF_INIT;
        csv_text(&b, in, strlen(in), neutralise);
        assert_non_null(buf_str(&b));
        assert_string_equal(buf_str(&b), want);
        buf_free(&b);
}

static void test_plain_and_quoted(void **state)
{
        (void)state;
        cell_is("", true, "");
        cell_is("SKU-1", true, "SKU-1");
        cell_is("a,b", true, "\"a,b\"");
        cell_is("say \"hi\"", true, "\"say \"\"hi\"\"\"");
        cell_is("\"", true, "\"\"\"\"");
        cell_is("line1\nline2", true, "\"line1\nline2\"");
        cell_is("cr\rhere", true, "\"cr\rhere\"");
        cell_is("Café Größe 42 – Ærø", true, "Café Größe 42 – Ærø");
        cell_is("semi;colon and 'quote'", true, "semi;colon and 'quote'");
}

/* C09: the three cells of the case, and every trigger character. */
static void test_neutralise(void **state)
{
        (void)state;
        cell_is("=HYPERLINK(\"http://example.test\",\"x\")", true,
                "\"'=HYPERLINK(\"\"http://example.test\"\",\"\"x\"\")\"");
        cell_is("+1 found on recount", true, "'+1 found on recount");
        cell_is("@L77", true, "'@L77");
        cell_is("-3", true, "'-3");
        cell_is("\tx", true, "'\tx");
        cell_is("\rx", true, "\"'\rx\"");
        cell_is("'already", true, "''already");
        cell_is("a=b", true, "a=b");
        /* Off: nothing is added. */
        cell_is("=1+1", false, "=1+1");
        cell_is("+1, two", false, "\"+1, two\"");
        assert_false(csv_needs_neutralise("", 0));
        assert_false(csv_needs_neutralise("x=", 2));
}

static void int_is(long long v, const char *want)
{
        struct buf b = BUF_INIT;
        csv_int(&b, v);
        assert_string_equal(buf_str(&b), want);
        buf_free(&b);
}

static void test_integers(void **state)
{
        (void)state;
        int_is(0, "0");
        int_is(-3, "-3");
        int_is(3, "3");
        int_is(9223372036854775807LL, "9223372036854775807");
        int_is(-9223372036854775807LL - 1, "-9223372036854775808");
}

/* The in-memory writers agree with the buffer ones and stay within the
 * bounds the header promises, worst cases included. */
static void test_put_bounds(void **state)
{
        (void)state;
        static const char *texts[] = { "",      "plain",      "\"\"\"",
                                       "=\"\"", "a,b\n\"c\"", "'" };
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                size_t len = strlen(texts[i]);
                char mem[64];
                memset(mem, '#', sizeof(mem));
                char *end = csv_put_text(mem, texts[i], len, true);
                assert_true((size_t)(end - mem) <= CSV_TEXT_MAX(len));
                assert_int_equal(mem[CSV_TEXT_MAX(len)], '#');
                struct buf b = BUF_INIT;
                csv_text(&b, texts[i], len, true);
                assert_int_equal(b.len, (size_t)(end - mem));
                assert_memory_equal(b.data ? b.data : "", mem, b.len);
                buf_free(&b);
        }
        char mem[CSV_INT_MAX + 1];
        mem[CSV_INT_MAX] = '#';
        char *end = csv_put_int(mem, -9223372036854775807LL - 1);
        assert_int_equal(end - mem, CSV_INT_MAX);
        assert_memory_equal(mem, "-9223372036854775808", CSV_INT_MAX);
        assert_int_equal(mem[CSV_INT_MAX], '#');
}

/* A cell longer than the stack buffer csv_text() uses for short ones. */
static void test_long_cell(void **state)
{
        (void)state;
        char text[1001];
        for (int i = 0; i < 1000; i++)
                text[i] = i % 10 == 0 ? '"' : 'x';
        text[0] = '=';
        text[1000] = '\0';
        struct buf b = BUF_INIT;
        csv_text(&b, text, 1000, true);
        assert_non_null(buf_str(&b));
        /* 99 doubled quotes, two around, one apostrophe. */
        assert_int_equal(b.len, 1000 + 99 + 2 + 1);
        assert_memory_equal(b.data, "\"'=xxxxxxxxx\"\"x", 15);
        assert_int_equal(b.data[b.len - 1], '"');
        buf_free(&b);
}

static void test_bom(void **state)
{
        (void)state;
        struct buf b = BUF_INIT;
        csv_bom(&b);
        assert_int_equal(b.len, 3);
        assert_memory_equal(b.data, "\xEF\xBB\xBF", 3);
        buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_and_quoted),
                cmocka_unit_test(test_neutralise),
                cmocka_unit_test(test_integers),
                cmocka_unit_test(test_put_bounds),
                cmocka_unit_test(test_long_cell),
                cmocka_unit_test(test_bom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
