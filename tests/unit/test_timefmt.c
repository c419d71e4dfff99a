/* timefmt: ISO 8601 parsing and formatting, independent of TZ. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../common/timefmt.h"

static int64_t parse_ok(const char *s)
{
        int64_t us = 0;
        assert_true(timefmt_parse(s, strlen(s), &us));
        return us;
}

static void test_parse_utc(void **state)
{
        (void)state;
        assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
        assert_int_equal(parse_ok("2024-03-31T00:30:00Z"),
                         1711845000LL * 1000000);
        assert_int_equal(parse_ok("2024-03-31T01:30:00.000000Z"),
                         1711848600LL * 1000000);
        assert_int_equal(parse_ok("2024-02-29 12:00:00.5Z"),
                         1709208000LL * 1000000 + 500000);
        /* Digits beyond microseconds are cut, never rounded up. */
        assert_int_equal(parse_ok("1970-01-01T00:00:00.123456789Z"), 123456);
        assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1000000);
}

static void test_parse_offsets(void **state)
{
        (void)state;
        int64_t z = parse_ok("2024-03-31T00:30:00Z");
        assert_int_equal(parse_ok("2024-03-31T01:30:00+01:00"), z);
        assert_int_equal(parse_ok("2024-03-31T01:30:00+0100"), z);
        assert_int_equal(parse_ok("2024-03-31T01:30:00+01"), z);
        assert_int_equal(parse_ok("2024-03-30T19:30:00-05:00"), z);
}

static void test_parse_rejects(void **state)
{
        (void)state;
        static const char *const bad[] = {
                "",
                "2024-03-31",
                "2024-03-31T00:30:00",  /* no zone: no instant */
                "2024-03-31T00:30Z",    /* no seconds */
                "2024-02-30T00:00:00Z", /* no such day */
                "2023-02-29T00:00:00Z", /* not a leap year */
                "2024-13-01T00:00:00Z",
                "2024-01-01T24:00:00Z",
                "2024-01-01T00:60:00Z",
                "2024-01-01T00:00:60Z",
                "2024-01-01T00:00:00.Z",
                "2024-01-01T00:00:00.1234567890Z",
                "2024-01-01T00:00:00Zjunk",
                "2024-01-01T00:00:00+25:00",
                "0000-01-01T00:00:00Z",
                "tomorrow",
                "2024-1-01T00:00:00Z",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t us = 42;
                assert_false(timefmt_parse(bad[i], strlen(bad[i]), &us));
        }
}

static void fmt_is(int64_t us, const char *want)
{
        char out[TIMEFMT_MAX];
        size_t n = timefmt_format(us, out);
        assert_string_equal(out, want);
        assert_int_equal(n, strlen(want));
}

static void test_format(void **state)
{
        (void)state;
        fmt_is(0, "1970-01-01T00:00:00Z");
        fmt_is(1711845000LL * 1000000, "2024-03-31T00:30:00Z");
        fmt_is(1711845000LL * 1000000 + 500000, "2024-03-31T00:30:00.500000Z");
        fmt_is(-1, "1969-12-31T23:59:59.999999Z");
        fmt_is(253402300799LL * 1000000, "9999-12-31T23:59:59Z");
}

/* C11: the host's TZ must not matter. */
static void test_tz_independent(void **state)
{
        (void)state;
        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        int64_t a = parse_ok("2024-03-31T00:30:00Z");
        int64_t b = parse_ok("2024-03-31T01:30:00Z");
        assert_int_equal(b - a, 3600LL * 1000000);
        fmt_is(a, "2024-03-31T00:30:00Z");
        fmt_is(b, "2024-03-31T01:30:00Z");
        unsetenv("TZ");
        tzset();
}

static void test_round_trip_and_days(void **state)
{
        (void)state;
        /* Every day boundary over four centuries, and odd instants. */
        for (int64_t day = -800; day < 146097; day += 37) {
                int64_t us = day * 86400LL * 1000000 + 12345;
                char out[TIMEFMT_MAX];
                size_t n = timefmt_format(us, out);
                int64_t back = 0;
                assert_true(timefmt_parse(out, n, &back));
                assert_int_equal(back, us);
                assert_int_equal(timefmt_day(us), day);
                assert_int_equal(timefmt_day(us - 12346), day - 1);
        }
        char d[11];
        timefmt_day_str(timefmt_day(parse_ok("2024-03-30T23:59:59.5Z")), d);
        assert_string_equal(d, "2024-03-30");
        timefmt_day_str(19813, d);
        assert_string_equal(d, "2024-03-31");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_utc),
                cmocka_unit_test(test_parse_offsets),
                cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_tz_independent),
                cmocka_unit_test(test_round_trip_and_days),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
