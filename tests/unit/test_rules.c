/* Availability and the guardrail, the rules that need no database. The
 * database-backed combinations run in tests/integration/test_rules.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "../../worker/rules.h"

static const struct guard_limits lim = { .max_zeroed = 10,
                                         .max_drop_pct = 50,
                                         .max_item_drop = 500 };

static void c01_allocations(void **state)
{
        (void)state;
        /* On hand 4 after #1001 was picked, one allocation still open. */
        assert_int_equal(rules_available(4, 1, 0, -1), 3);
        /* Allocations beyond stock never make a negative number. */
        assert_int_equal(rules_available(5, 7, 0, -1), 0);
}

static void buffer_and_cap(void **state)
{
        (void)state;
        assert_int_equal(rules_available(10, 2, 3, -1), 5);
        assert_int_equal(rules_available(10, 0, 0, 4), 4);
        assert_int_equal(rules_available(10, 0, 20, 4), 0);
        assert_int_equal(rules_available(0, 0, 0, 0), 0);
}

static void c03_mass_zeroing_blocked(void **state)
{
        (void)state;
        struct guard_item it[400];
        for (int i = 0; i < 400; i++)
                it[i] = (struct guard_item){ "S", 10 + i % 41, 0 };
        struct guard_verdict v;
        assert_int_equal(rules_guardrail(it, 400, &lim, &v), GUARD_ZEROED);
        assert_int_equal(v.zeroed, 400);
        assert_int_equal(v.total_after, 0);
        assert_true(v.drop_pct > 99.9);
        assert_true(rules_guard_offends(&it[0], GUARD_ZEROED, &lim));
        assert_string_equal(rules_guard_name(v.rule), "max_zeroed");
}

static void total_drop(void **state)
{
        (void)state;
        struct guard_item it[10];
        for (int i = 0; i < 10; i++)
                it[i] = (struct guard_item){ "S", 100, 40 };
        struct guard_verdict v;
        assert_int_equal(rules_guardrail(it, 10, &lim, &v), GUARD_TOTAL_DROP);
        /* Under the minimum run size the percentage rule stays quiet. */
        assert_int_equal(rules_guardrail(it, 9, &lim, &v), GUARD_PASS);
}

static void item_drop(void **state)
{
        (void)state;
        struct guard_item it[2] = { { "BIG", 1000, 400 }, { "S", 5, 5 } };
        struct guard_verdict v;
        assert_int_equal(rules_guardrail(it, 2, &lim, &v), GUARD_ITEM_DROP);
        assert_int_equal(v.worst_item_drop, 600);
        assert_true(rules_guard_offends(&it[0], GUARD_ITEM_DROP, &lim));
        assert_false(rules_guard_offends(&it[1], GUARD_ITEM_DROP, &lim));
}

static void quiet_runs_pass(void **state)
{
        (void)state;
        struct guard_item it[3] = { { "A", 10, 9 },
                                    { "B", 0, 5 },
                                    { "C", 3, 0 } };
        struct guard_verdict v;
        assert_int_equal(rules_guardrail(it, 3, &lim, &v), GUARD_PASS);
        assert_int_equal(v.zeroed, 1);
        assert_int_equal(rules_guardrail(NULL, 0, &lim, &v), GUARD_PASS);
        /* A store showing a negative level counts as 0, not as a rise. */
        struct guard_item neg = { "N", -4, 0 };
        assert_int_equal(rules_guardrail(&neg, 1, &lim, &v), GUARD_PASS);
        assert_int_equal(v.zeroed, 0);
}

static void limits_at_the_edge(void **state)
{
        (void)state;
        struct guard_limits l = { .max_zeroed = 2,
                                  .max_drop_pct = 100,
                                  .max_item_drop = 1000 };
        struct guard_item it[3] = { { "A", 1, 0 },
                                    { "B", 1, 0 },
                                    { "C", 1, 0 } };
        struct guard_verdict v;
        assert_int_equal(rules_guardrail(it, 2, &l, &v), GUARD_PASS);
        assert_int_equal(rules_guardrail(it, 3, &l, &v), GUARD_ZEROED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(c01_allocations),
                cmocka_unit_test(buffer_and_cap),
                cmocka_unit_test(c03_mass_zeroing_blocked),
                cmocka_unit_test(total_drop),
                cmocka_unit_test(item_drop),
                cmocka_unit_test(quiet_runs_pass),
                cmocka_unit_test(limits_at_the_edge),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
