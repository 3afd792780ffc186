/*
 * check_time.c: calendar arithmetic and timestamp text (lm_time).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lm_err.h"
#include "lm_time.h"

/* Day numbers and civil dates are inverse over a wide range of years, and
 * agree with the C library's timegm where it works. */
START_TEST(test_time_civil_round_trip)
{
    int64_t prev = lm_days_from_civil(-2000, 1, 1) - 1;
    for (int64_t y = -2000; y <= 12000; y++) {
        for (unsigned m = 1; m <= 12; m++) {
            for (unsigned d = 1; d <= lm_days_in_month(y, m); d++) {
                int64_t z = lm_days_from_civil(y, m, d), y2;
                unsigned m2, d2;
                /* (plain ifs: Check records every passing assertion, slowly) */
                if (z != prev + 1) {
                    ck_abort_msg("%lld-%u-%u is not the day after the one before", (long long)y, m,
                                 d);
                }
                lm_civil_from_days(z, &y2, &m2, &d2);
                if (y2 != y || m2 != m || d2 != d) {
                    ck_abort_msg("%lld-%u-%u came back as %lld-%u-%u", (long long)y, m, d,
                                 (long long)y2, m2, d2);
                }
                prev = z;
            }
        }
    }
    {
        struct tm tm = {0};
        tm.tm_year = 2024 - 1900;
        tm.tm_mon = 1;
        tm.tm_mday = 29;
        ck_assert_int_eq(lm_days_from_civil(2024, 2, 29) * 86400, (int64_t)timegm(&tm));
    }
    ck_assert_int_eq(lm_days_in_month(1900, 2), 28);
    ck_assert_int_eq(lm_days_in_month(2000, 2), 29);
    ck_assert_int_eq(lm_days_in_month(2023, 2), 28);
}
END_TEST

START_TEST(test_time_format_and_parse)
{
    char buf[40];
    int64_t us;
    static const int64_t samples[] = {0,
                                      1,
                                      -1,
                                      999999,
                                      -1000000,
                                      1436918400000000LL,
                                      1700000000123456LL,
                                      -62135596800000000LL, /* 0001-01-01 */
                                      253402300799999999LL /* 9999-12-31 23:59:59.999999 */};

    ck_assert_int_eq(lm_time_format(0, 6, buf), 26);
    ck_assert_str_eq(buf, "1970-01-01 00:00:00.000000");
    lm_time_format(-1, 6, buf);
    ck_assert_str_eq(buf, "1969-12-31 23:59:59.999999");
    lm_time_format(1436918400123456LL, 3, buf);
    ck_assert_str_eq(buf, "2015-07-15 00:00:00.123");
    lm_time_format(1436918400123456LL, 0, buf);
    ck_assert_str_eq(buf, "2015-07-15 00:00:00");
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t n = lm_time_format(samples[i], 6, buf);
        ck_assert_int_eq(lm_time_parse(buf, n, &us), LM_OK);
        ck_assert_msg(us == samples[i], "%s read back as %lld, not %lld", buf, (long long)us,
                      (long long)samples[i]);
    }
    /* the other forms */
    ck_assert_int_eq(lm_time_parse("2015-07-15", 10, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400000000LL);
    ck_assert_int_eq(lm_time_parse("2015-07-15T01:02", 16, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400000000LL + 3720000000LL);
    ck_assert_int_eq(lm_time_parse("2015-07-15T01:02:03Z", 20, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400000000LL + 3723000000LL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 02:02:03+01:00", 25, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400000000LL + 3723000000LL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 00:02:03-0100", 24, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400000000LL + 3723000000LL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 02:02:03+01", 22, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400000000LL + 3723000000LL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 00:00:00.1234567", 27, &us), LM_OK);
    ck_assert_int_eq(us, 1436918400123456LL); /* past microseconds: dropped */
    /* not timestamps, and impossible ones */
    ck_assert_int_eq(lm_time_parse("2015-7-15", 9, &us), LM_EINVAL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 1:02", 15, &us), LM_EINVAL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 01:02:03.", 20, &us), LM_EINVAL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 01:02:03+1", 21, &us), LM_EINVAL);
    ck_assert_int_eq(lm_time_parse("2015-07-15 01:02:03 ", 20, &us), LM_EINVAL);
    ck_assert_int_eq(lm_time_parse("", 0, &us), LM_EINVAL);
    ck_assert_int_eq(lm_time_parse("2015-02-29", 10, &us), LM_ERANGE);
    ck_assert_int_eq(lm_time_parse("2015-13-01", 10, &us), LM_ERANGE);
    ck_assert_int_eq(lm_time_parse("2015-07-15 24:00:00", 19, &us), LM_ERANGE);
    ck_assert_int_eq(lm_time_parse("2015-07-15 23:60", 16, &us), LM_ERANGE);
    ck_assert_int_eq(lm_time_parse("2015-07-15 01:00+24:00", 22, &us), LM_ERANGE);
}
END_TEST

Suite *
time_suite(void)
{
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_time_civil_round_trip);
    tcase_add_test(tc, test_time_format_and_parse);
    suite_add_tcase(s, tc);
    return s;
}
