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
                cmocka_unit_test(test_bom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
