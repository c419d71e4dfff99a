/* SKU matching: one rule for pull and push (trim; case significant unless
 * opted out), and nothing matched silently when in doubt. Case C05. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "../../worker/match.h"

static void add(struct store_levels *l, const char *sku, const char *id)
{
        assert_int_equal(
                store_levels_add(l, sku, id, NULL, NULL, 1, true, true), SS_OK);
}

static void c05_whitespace_and_case(void **state)
{
        (void)state;
        struct store_levels l = { 0 };
        add(&l, "ABC-1 ", "gid://1");
        add(&l, "abc-2", "gid://2");
        const char *units[] = { "ABC-1", "ABC-2" };
        struct match_result m;
        assert_int_equal(match_skus(units, 2, &l, false, &m), SS_OK);
        /* Trailing space trimmed: matched, written by the store's own id. */
        assert_int_equal(m.level_of_unit[0], 0);
        assert_int_equal(m.unit_of_level[0], 0);
        /* Case differs: unmatched both ways, with the near match named. */
        assert_int_equal(m.level_of_unit[1], MATCH_NONE);
        assert_int_equal(m.unit_of_level[1], MATCH_NONE);
        assert_int_equal(m.near_unit[1], 1);
        match_result_free(&m);

        /* Opted into case-insensitive matching: abc-2 matches ABC-2. */
        assert_int_equal(match_skus(units, 2, &l, true, &m), SS_OK);
        assert_int_equal(m.level_of_unit[1], 1);
        assert_int_equal(m.near_unit[1], MATCH_NONE);
        match_result_free(&m);
        store_levels_free(&l);
}

static void duplicates_match_nothing(void **state)
{
        (void)state;
        struct store_levels l = { 0 };
        add(&l, "MUG", "1");
        add(&l, " MUG", "2");
        add(&l, "CUP", "3");
        const char *units[] = { "MUG", "CUP", "PLATE" };
        struct match_result m;
        assert_int_equal(match_skus(units, 3, &l, false, &m), SS_OK);
        assert_int_equal(m.level_of_unit[0], MATCH_AMBIGUOUS);
        assert_int_equal(m.unit_of_level[0], MATCH_AMBIGUOUS);
        assert_int_equal(m.unit_of_level[1], MATCH_AMBIGUOUS);
        assert_int_equal(m.level_of_unit[1], 2);
        assert_int_equal(m.level_of_unit[2], MATCH_NONE);
        match_result_free(&m);
        store_levels_free(&l);
}

static void units_colliding_under_the_rule(void **state)
{
        (void)state;
        struct store_levels l = { 0 };
        add(&l, "tee", "1");
        const char *units[] = { "TEE", "tee" };
        struct match_result m;
        /* Case-insensitive: two units share one key, neither may take the
         * store item. */
        assert_int_equal(match_skus(units, 2, &l, true, &m), SS_OK);
        assert_int_equal(m.level_of_unit[0], MATCH_AMBIGUOUS);
        assert_int_equal(m.level_of_unit[1], MATCH_AMBIGUOUS);
        assert_int_equal(m.unit_of_level[0], MATCH_AMBIGUOUS);
        match_result_free(&m);
        /* Case-sensitive: exact match only. */
        assert_int_equal(match_skus(units, 2, &l, false, &m), SS_OK);
        assert_int_equal(m.level_of_unit[0], MATCH_NONE);
        assert_int_equal(m.level_of_unit[1], 0);
        match_result_free(&m);
        store_levels_free(&l);
}

static void keys(void **state)
{
        (void)state;
        char k[16];
        assert_true(match_key("\t A-1 \r\n", false, k, sizeof(k)));
        assert_string_equal(k, "A-1");
        assert_true(match_key("Ab-Ç", true, k, sizeof(k)));
        assert_string_equal(k, "ab-Ç"); /* ASCII letters only */
        assert_false(match_key("   ", false, k, sizeof(k)));
        assert_false(match_key(NULL, false, k, sizeof(k)));
        assert_false(match_key("0123456789abcdefg", false, k, sizeof(k)));
}

static void empty_sides(void **state)
{
        (void)state;
        struct store_levels l = { 0 };
        struct match_result m;
        assert_int_equal(match_skus(NULL, 0, &l, false, &m), SS_OK);
        match_result_free(&m);
        add(&l, "   ", "1"); /* a blank SKU matches nothing */
        const char *units[] = { "X" };
        assert_int_equal(match_skus(units, 1, &l, false, &m), SS_OK);
        assert_int_equal(m.unit_of_level[0], MATCH_NONE);
        assert_int_equal(m.level_of_unit[0], MATCH_NONE);
        match_result_free(&m);
        store_levels_free(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(c05_whitespace_and_case),
                cmocka_unit_test(duplicates_match_nothing),
                cmocka_unit_test(units_colliding_under_the_rule),
                cmocka_unit_test(keys),
                cmocka_unit_test(empty_sides),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
